/* cli.h: command lines for parley's programs (parley-bench suites, the tools): one table of options is
 * both what getopt_long parses and what --help prints, so the two cannot disagree.
 *
 * Each option is --NAME (with a value, --NAME VALUE or --NAME=VALUE) and stores into its target: a flag
 * sets a bool, the others parse their value fully (no trailing junk, within the range given); an option
 * given twice keeps the last value, except the CALL kinds, which see every occurrence. Not for the
 * library: single-threaded program start-up only. */
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
  PARLEY__CLI_CHOICE, /* int *: the index of the value among arg's words, "|"-separated ("10|20") */
  PARLEY__CLI_CALL,   /* parley__cli_call *: its fn parses the value (HOST:PORT, START:LENGTH, ...); it
                       * runs at each occurrence, in order, so an option may repeat and add up */
  PARLEY__CLI_CALL_FLAG, /* parley__cli_call *: a flag with an action of its own (fn gets value NULL) */
} parley__cli_kind;

/* A CALL option's parser and its context: fn(ctx, value) returns NULL when it took the value, else why
 * not (a short phrase: the parser prints "PROG: --NAME 'VALUE': <why>" and the help, and the command
 * line is a usage error). */
typedef struct parley__cli_call {
  const char *(*fn)(void *ctx, const char *value);
  void *ctx;
} parley__cli_call;

typedef struct parley__cli_opt {
  const char *name; /* without the leading "--" */
  parley__cli_kind kind;
  void *target;
  const char *arg;  /* the value's name in the help, e.g. "N" (ignored for flags) */
  const char *help; /* one line, or more separated by '\n'; NULL: parsed but not listed (a variant
                     * that a listed option's help or the usage text describes) */
  double min, max;  /* INT, INT64, DOUBLE: the accepted range (both 0: any) */
} parley__cli_opt;

/* Parses argv[1..argc) against opts. --help / -h prints the generated help to stdout and returns 1.
 * An unknown option, a missing or malformed value, or a value out of range prints what was wrong and
 * the help to stderr and returns 2 (the exit code for a usage error). Otherwise returns 0 and sets
 * *first_positional (may be NULL) to the index of the first argument that is not an option. argv[0] is
 * the program name used in messages (its last path component). */
int parley__cli_parse(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv,
                      int *first_positional);

/* Like parley__cli_parse, but options and positional arguments may come in any order ("listen ADDR
 * --echo" or "--echo listen ADDR"): argv is reordered so that the positional arguments, in their
 * order, follow the options from *first_positional on. */
int parley__cli_parse_any_order(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc,
                                char **argv, int *first_positional);

/* Prints "usage: <usage_line>" and the listed options, one line each (continuation lines aligned). */
void parley__cli_help(FILE *to, const char *usage_line, const parley__cli_opt *opts, size_t n_opts);

#endif
