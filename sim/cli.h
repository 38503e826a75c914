/* cli.h: command lines for parley's programs (parley-bench suites, the tools): one table of options is
 * both what getopt_long parses and what --help prints, so the two cannot disagree.
 *
 * Each option is --NAME (with a value, --NAME VALUE or --NAME=VALUE) and stores into its target: a flag
 * sets a bool, the others parse their value fully (no trailing junk, within the range given). Not for
 * the library: single-threaded program start-up only. */
#ifndef PARLEY_SIM_CLI_H
#define PARLEY_SIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum parley__cli_kind {
  PARLEY__CLI_FLAG,   /* bool *: set to true */
  PARLEY__CLI_INT,    /* int *, within [min, max] */
  PARLEY__CLI_INT64,  /* int64_t *, within [min, max] */
  PARLEY__CLI_U64,    /* uint64_t *, any value */
  PARLEY__CLI_DOUBLE, /* double *, within [min, max] */
  PARLEY__CLI_STRING, /* const char **: points into argv */
} parley__cli_kind;

typedef struct parley__cli_opt {
  const char *name; /* without the leading "--" */
  parley__cli_kind kind;
  void *target;
  const char *arg;  /* the value's name in the help, e.g. "N" (ignored for flags) */
  const char *help; /* one line */
  double min, max;  /* INT, INT64, DOUBLE: the accepted range (both 0: any) */
} parley__cli_opt;

/* Parses argv[1..argc) against opts. --help / -h prints the generated help to stdout and returns 1.
 * An unknown option, a missing or malformed value, or a value out of range prints what was wrong and
 * the help to stderr and returns 2 (the exit code for a usage error). Otherwise returns 0 and sets
 * *first_positional (may be NULL) to the index of the first argument that is not an option. argv[0] is
 * the program name used in messages. */
int parley__cli_parse(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv,
                      int *first_positional);

/* Prints "usage: <usage_line>" and one line per option. */
void parley__cli_help(FILE *to, const char *usage_line, const parley__cli_opt *opts, size_t n_opts);

#endif
