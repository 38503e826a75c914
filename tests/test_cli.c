/* test_cli.c: the option tables behind every program's command line and --help (sim/cli.h). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "sim/cli.h"

typedef struct vals {
  bool flag;
  int n;
  int64_t big;
  uint64_t seed;
  double ratio;
  const char *file;
} vals;

static int parse(vals *v, int argc, char **argv, int *first) {
  const parley__cli_opt opts[] = {
      {"flag", PARLEY__CLI_FLAG, &v->flag, NULL, "a switch", 0, 0},
      {"n", PARLEY__CLI_INT, &v->n, "N", "1..10", 1, 10},
      {"big", PARLEY__CLI_INT64, &v->big, "B", "any", 0, 0},
      {"seed", PARLEY__CLI_U64, &v->seed, "S", "seed", 0, 0},
      {"ratio", PARLEY__CLI_DOUBLE, &v->ratio, "R", "0..1", 0, 1},
      {"file", PARLEY__CLI_STRING, &v->file, "FILE", "a path", 0, 0},
  };
  return parley__cli_parse("prog [options] ARG", opts, sizeof opts / sizeof opts[0], argc, argv, first);
}

Test(cli, parses_every_kind_and_leaves_positionals) {
  vals v = {0};
  char *argv[] = {"prog", "--flag", "--n", "7", "--big=-5000000000", "--seed", "18446744073709551615",
                  "--ratio", "0.25", "--file", "x.wav", "rest", "--n", "3", NULL};
  int first = -1;
  cr_assert_eq(parse(&v, 14, argv, &first), 0);
  cr_expect(v.flag);
  cr_expect_eq(v.n, 7);
  cr_expect_eq(v.big, -5000000000LL);
  cr_expect_eq(v.seed, UINT64_MAX);
  cr_expect_float_eq(v.ratio, 0.25, 1e-12);
  cr_expect_str_eq(v.file, "x.wav");
  cr_expect_eq(first, 11, "options stop at the first positional argument");
  /* A second parse in the same process starts afresh. */
  vals w = {0};
  char *again[] = {"prog", "--n", "2", NULL};
  cr_assert_eq(parse(&w, 3, again, NULL), 0);
  cr_expect_eq(w.n, 2);
}

Test(cli, bad_values_and_unknown_options_are_usage_errors, .init = cr_redirect_stderr) {
  char *out_of_range[] = {"prog", "--n", "11", NULL};
  char *junk[] = {"prog", "--n", "7x", NULL};
  char *negative_seed[] = {"prog", "--seed", "-1", NULL};
  char *ratio[] = {"prog", "--ratio", "1.5", NULL};
  char *unknown[] = {"prog", "--nope", NULL};
  char *missing[] = {"prog", "--n", NULL};
  char **cases[] = {out_of_range, junk, negative_seed, ratio, unknown, missing};
  int counts[] = {3, 3, 3, 3, 2, 2};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    vals v = {.n = 4};
    cr_expect_eq(parse(&v, counts[i], cases[i], NULL), 2, "case %zu", i);
    cr_expect_eq(v.n, 4, "case %zu: a refused value leaves the default", i);
  }
}

Test(cli, help_is_generated_from_the_table, .init = cr_redirect_stdout) {
  vals v = {0};
  char *argv[] = {"prog", "--help", NULL};
  cr_assert_eq(parse(&v, 2, argv, NULL), 1);
  fflush(stdout);
  cr_expect_stdout_eq_str("usage: prog [options] ARG\n\noptions:\n"
                          "  --flag                     a switch\n"
                          "  --n N                      1..10\n"
                          "  --big B                    any\n"
                          "  --seed S                   seed\n"
                          "  --ratio R                  0..1\n"
                          "  --file FILE                a path\n"
                          "  --help                     print this help\n");
}
