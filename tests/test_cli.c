/* test_cli.c: the option tables behind every program's command line and --help (sim/cli.h). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>

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

/* ---- CALL, CALL_FLAG and CHOICE options; unlisted variants; options and positionals in any order ---- */

typedef struct seen {
  const char *values[4];
  int n;
  int flags;
} seen;

/* Takes "A:B" only; remembers each value in order. */
static const char *take_pair(void *target, const char *value) {
  seen *s = target;
  if (!strchr(value, ':')) return "wants A:B";
  if (s->n < 4) s->values[s->n++] = value;
  return NULL;
}

static const char *count_flag(void *target, const char *value) {
  seen *s = target;
  if (value) return "a flag has no value";
  s->flags++;
  return NULL;
}

typedef struct more {
  seen pairs, quiet;
  int mode;
  bool hidden;
} more;

static int parse_more(more *m, int argc, char **argv, int *first, bool any_order) {
  parley__cli_call pair = {take_pair, &m->pairs}, quiet = {count_flag, &m->quiet};
  const parley__cli_opt opts[] = {
      {"pair", PARLEY__CLI_CALL, &pair, "A:B", "repeatable", 0, 0},
      {"quiet", PARLEY__CLI_CALL_FLAG, &quiet, NULL, "counted", 0, 0},
      {"mode", PARLEY__CLI_CHOICE, &m->mode, "fast|slow|off", "how\nand why", 0, 0},
      {"a-very-long-option-name", PARLEY__CLI_FLAG, &m->hidden, NULL, NULL, 0, 0},
  };
  size_t n = sizeof opts / sizeof opts[0];
  return any_order ? parley__cli_parse_any_order("prog CMD", opts, n, argc, argv, first)
                   : parley__cli_parse("prog CMD", opts, n, argc, argv, first);
}

Test(cli, call_options_see_every_occurrence_in_order) {
  more m = {0};
  char *argv[] = {"prog", "--pair", "1:2", "--quiet", "--pair=3:4", "--quiet", "--mode", "slow",
                  "--a-very-long-option-name", NULL};
  cr_assert_eq(parse_more(&m, 9, argv, NULL, false), 0);
  cr_assert_eq(m.pairs.n, 2);
  cr_expect_str_eq(m.pairs.values[0], "1:2");
  cr_expect_str_eq(m.pairs.values[1], "3:4");
  cr_expect_eq(m.quiet.flags, 2, "the flag's parser ran at each occurrence, with no value");
  cr_expect_eq(m.mode, 1, "slow is the second choice");
  cr_expect(m.hidden, "an unlisted option is still parsed");
}

Test(cli, refused_call_and_choice_values_are_usage_errors, .init = cr_redirect_stderr) {
  more m = {.mode = 2};
  char *bad_pair[] = {"prog", "--pair", "12", NULL};
  cr_expect_eq(parse_more(&m, 3, bad_pair, NULL, false), 2);
  cr_expect_eq(m.pairs.n, 0);
  char *bad_choice[] = {"prog", "--mode", "fas", NULL};
  cr_expect_eq(parse_more(&m, 3, bad_choice, NULL, false), 2);
  cr_expect_eq(m.mode, 2, "a refused choice leaves the default");
  fflush(stderr);
  char buf[4096] = {0};
  FILE *err = cr_get_redirected_stderr();
  size_t got = fread(buf, 1, sizeof buf - 1, err);
  cr_assert_gt(got, 0);
  cr_expect_not_null(strstr(buf, "prog: --pair '12': wants A:B\n"), "the parser's reason is shown: %s", buf);
  cr_expect_not_null(strstr(buf, "prog: --mode takes one of fast|slow|off, not 'fas'\n"), "%s", buf);
}

Test(cli, help_lists_listed_options_with_continuation_lines, .init = cr_redirect_stdout) {
  more m = {0};
  char *argv[] = {"/usr/bin/prog", "-h", NULL};
  cr_assert_eq(parse_more(&m, 2, argv, NULL, false), 1);
  fflush(stdout);
  cr_expect_stdout_eq_str("usage: prog CMD\n\noptions:\n"
                          "  --pair A:B                 repeatable\n"
                          "  --quiet                    counted\n"
                          "  --mode fast|slow|off       how\n"
                          "                             and why\n"
                          "  --help                     print this help\n");
}

Test(cli, any_order_moves_positionals_behind_the_options) {
  more m = {0};
  char *argv[] = {"prog", "listen", "--quiet", "127.0.0.1:7000", "--pair", "1:2", "--", "--mode", NULL};
  int first = -1;
  cr_assert_eq(parse_more(&m, 8, argv, &first, true), 0);
  cr_expect_eq(m.quiet.flags, 1);
  cr_expect_eq(m.pairs.n, 1);
  cr_expect_eq(m.mode, 0, "--mode after -- is an argument, not an option");
  cr_assert_eq(first, 5, "three positionals end argv");
  cr_expect_str_eq(argv[5], "listen");
  cr_expect_str_eq(argv[6], "127.0.0.1:7000");
  cr_expect_str_eq(argv[7], "--mode");
  /* The plain parser stops at the first positional. */
  more n = {0};
  char *plain[] = {"prog", "--quiet", "listen", "--quiet", NULL};
  cr_assert_eq(parse_more(&n, 4, plain, &first, false), 0);
  cr_expect_eq(n.quiet.flags, 1);
  cr_expect_eq(first, 2);
}
