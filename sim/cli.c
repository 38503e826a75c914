/* cli.c: table-driven getopt_long (see cli.h). Owns nothing; program start-up only. */
#define _GNU_SOURCE
#include "sim/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64

void parley__cli_help(FILE *to, const char *usage_line, const parley__cli_opt *opts, size_t n_opts) {
  fprintf(to, "usage: %s\n", usage_line);
  if (n_opts) fprintf(to, "\noptions:\n");
  for (size_t i = 0; i < n_opts; i++) {
    char left[64];
    if (opts[i].kind == PARLEY__CLI_FLAG) snprintf(left, sizeof left, "--%s", opts[i].name);
    else snprintf(left, sizeof left, "--%s %s", opts[i].name, opts[i].arg ? opts[i].arg : "VALUE");
    fprintf(to, "  %-26s %s\n", left, opts[i].help ? opts[i].help : "");
  }
  fprintf(to, "  %-26s %s\n", "--help", "print this help");
}

static bool in_range(const parley__cli_opt *o, double v) {
  return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max);
}

/* Stores value into o's target; false (with a message on stderr) when it does not parse or fit. */
static bool store(const char *prog, const parley__cli_opt *o, const char *value) {
  char *end = NULL;
  errno = 0;
  switch (o->kind) {
  case PARLEY__CLI_FLAG:
    *(bool *)o->target = true;
    return true;
  case PARLEY__CLI_STRING:
    *(const char **)o->target = value;
    return true;
  case PARLEY__CLI_INT:
  case PARLEY__CLI_INT64: {
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || !in_range(o, (double)v) || (o->kind == PARLEY__CLI_INT && (v < INT32_MIN || v > INT32_MAX)))
      break;
    if (o->kind == PARLEY__CLI_INT) *(int *)o->target = (int)v;
    else *(int64_t *)o->target = v;
    return true;
  }
  case PARLEY__CLI_U64: {
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-') break;
    *(uint64_t *)o->target = v;
    return true;
  }
  case PARLEY__CLI_DOUBLE: {
    double v = strtod(value, &end);
    if (errno || end == value || *end || !in_range(o, v)) break;
    *(double *)o->target = v;
    return true;
  }
  }
  if (o->min != 0 || o->max != 0)
    fprintf(stderr, "%s: --%s takes %s from %g to %g, not '%s'\n", prog, o->name, o->arg ? o->arg : "a value",
            o->min, o->max, value);
  else
    fprintf(stderr, "%s: --%s: '%s' is not a valid %s\n", prog, o->name, value, o->arg ? o->arg : "value");
  return false;
}

int parley__cli_parse(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv,
                      int *first_positional) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : "parley";
  if (n_opts > MAX_OPTS) return 2;
  struct option lo[MAX_OPTS + 2];
  for (size_t i = 0; i < n_opts; i++)
    lo[i] = (struct option){opts[i].name, opts[i].kind == PARLEY__CLI_FLAG ? no_argument : required_argument, NULL,
                            (int)(256 + i)};
  lo[n_opts] = (struct option){"help", no_argument, NULL, 'h'};
  lo[n_opts + 1] = (struct option){0, 0, 0, 0};
  optind = 0; /* glibc: a full re-initialisation, so the parser can run more than once per process */
  opterr = 0;
  for (;;) {
    int idx = -1;
    int c = getopt_long(argc, argv, "+:h", lo, &idx);
    if (c == -1) break;
    if (c == 'h') {
      parley__cli_help(stdout, usage_line, opts, n_opts);
      return 1;
    }
    if (c >= 256 && (size_t)(c - 256) < n_opts) {
      if (!store(prog, &opts[c - 256], optarg)) {
        parley__cli_help(stderr, usage_line, opts, n_opts);
        return 2;
      }
      continue;
    }
    const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (c == ':') fprintf(stderr, "%s: %s needs a value\n", prog, bad);
    else fprintf(stderr, "%s: unknown option '%s'\n", prog, bad);
    parley__cli_help(stderr, usage_line, opts, n_opts);
    return 2;
  }
  if (first_positional) *first_positional = optind;
  return 0;
}
