/* cli.c: table-driven getopt_long (see cli.h). Owns nothing; program start-up only. */
#define _GNU_SOURCE
#include "sim/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 64
#define HELP_COLUMN 26 /* the help text starts here, or past the longest option */

static bool takes_value(const parley__cli_opt *o) {
  return o->kind != PARLEY__CLI_FLAG && o->kind != PARLEY__CLI_CALL_FLAG;
}

static void option_text(const parley__cli_opt *o, char *buf, size_t cap) {
  if (takes_value(o)) snprintf(buf, cap, "--%s %s", o->name, o->arg ? o->arg : "VALUE");
  else snprintf(buf, cap, "--%s", o->name);
}

void parley__cli_help(FILE *to, const char *usage_line, const parley__cli_opt *opts, size_t n_opts) {
  fprintf(to, "usage: %s\n", usage_line);
  int width = HELP_COLUMN;
  char left[96];
  for (size_t i = 0; i < n_opts; i++) {
    option_text(&opts[i], left, sizeof left);
    if (opts[i].help && (int)strlen(left) + 1 > width) width = (int)strlen(left) + 1;
  }
  if (n_opts) fprintf(to, "\noptions:\n");
  for (size_t i = 0; i < n_opts; i++) {
    if (!opts[i].help) continue;
    option_text(&opts[i], left, sizeof left);
    fprintf(to, "  %-*s ", width, left);
    for (const char *h = opts[i].help; *h; h++) {
      fputc(*h, to);
      if (*h == '\n') fprintf(to, "  %-*s ", width, "");
    }
    fputc('\n', to);
  }
  fprintf(to, "  %-*s %s\n", width, "--help", "print this help");
}

static bool in_range(const parley__cli_opt *o, double v) {
  return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max);
}

/* The index of value among words ("a|b|c"), or -1. */
static int choice(const char *words, const char *value) {
  size_t len = strlen(value);
  int i = 0;
  for (const char *w = words; w && *w; i++) {
    const char *bar = strchr(w, '|');
    size_t n = bar ? (size_t)(bar - w) : strlen(w);
    if (n == len && strncmp(w, value, n) == 0) return i;
    w = bar ? bar + 1 : NULL;
  }
  return -1;
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
  case PARLEY__CLI_CHOICE: {
    int i = choice(o->arg, value);
    if (i < 0) {
      fprintf(stderr, "%s: --%s takes one of %s, not '%s'\n", prog, o->name, o->arg ? o->arg : "?", value);
      return false;
    }
    *(int *)o->target = i;
    return true;
  }
  case PARLEY__CLI_CALL:
  case PARLEY__CLI_CALL_FLAG: {
    const parley__cli_call *call = o->target;
    const char *why = call->fn(call->ctx, value);
    if (!why) return true;
    if (value) fprintf(stderr, "%s: --%s '%s': %s\n", prog, o->name, value, why);
    else fprintf(stderr, "%s: --%s: %s\n", prog, o->name, why);
    return false;
  }
  }
  if (o->min != 0 || o->max != 0)
    fprintf(stderr, "%s: --%s takes %s from %.10g to %.10g, not '%s'\n", prog, o->name, o->arg ? o->arg : "a value",
            o->min, o->max, value);
  else
    fprintf(stderr, "%s: --%s: '%s' is not a valid %s\n", prog, o->name, value, o->arg ? o->arg : "value");
  return false;
}

static int parse(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv,
                 int *first_positional, bool any_order) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : "parley";
  const char *slash = strrchr(prog, '/');
  if (slash && slash[1]) prog = slash + 1;
  if (n_opts > MAX_OPTS) return 2;
  struct option lo[MAX_OPTS + 2];
  for (size_t i = 0; i < n_opts; i++)
    lo[i] = (struct option){opts[i].name, takes_value(&opts[i]) ? required_argument : no_argument, NULL,
                            (int)(256 + i)};
  lo[n_opts] = (struct option){"help", no_argument, NULL, 'h'};
  lo[n_opts + 1] = (struct option){0, 0, 0, 0};
  optind = 0; /* glibc: a full re-initialisation, so the parser can run more than once per process */
  opterr = 0;
  /* "+": stop at the first positional. "-": hand each positional over in order (code 1), whatever
   * POSIXLY_CORRECT says; they are gathered at argv[1..) (slots already read), then moved behind
   * the options. */
  const char *shortopts = any_order ? "-:h" : "+:h";
  int n_pos = 0;
  for (;;) {
    int idx = -1;
    int c = getopt_long(argc, argv, shortopts, lo, &idx);
    if (c == -1) break;
    if (c == 1) {
      argv[1 + n_pos++] = optarg;
      continue;
    }
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
  if (n_pos) memmove(&argv[optind - n_pos], &argv[1], (size_t)n_pos * sizeof *argv);
  if (first_positional) *first_positional = optind - n_pos;
  return 0;
}

int parley__cli_parse(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv,
                      int *first_positional) {
  return parse(usage_line, opts, n_opts, argc, argv, first_positional, false);
}

int parley__cli_parse_any_order(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc,
                                char **argv, int *first_positional) {
  return parse(usage_line, opts, n_opts, argc, argv, first_positional, true);
}
