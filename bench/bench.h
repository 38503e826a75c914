/* bench.h: parley-bench's harness. Each file in bench/ registers its suites with BENCH_SUITE, so adding
 * a suite never touches a shared table. A suite reports rows of named fields through bench_report;
 * the harness prints them as an aligned table, or with --json as one object
 * {"suite": NAME, "results": [{...}, ...]} on stdout. Single-threaded; not real-time code. */
#ifndef PARLEY_BENCH_H
#define PARLEY_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_report bench_report;

typedef struct bench_suite {
  const char *name;
  const char *summary;
  /* argv[0] names the suite ("parley-bench NAME"), argv[1..] are its own arguments (--json removed);
   * parse them with bench_args. Returns an exit code, or BENCH_HELP_SHOWN (nothing to report). */
  int (*run)(bench_report *rep, int argc, char **argv);
} bench_suite;

#define BENCH_HELP_SHOWN (-1)

/* Parses a suite's arguments against its option table (sim/cli.h: the same table prints --help).
 * Returns 0 to go on; otherwise what the suite should return: BENCH_HELP_SHOWN after --help, 2 after a
 * usage error (already reported). */
struct parley__cli_opt;
int bench_args(const char *usage_line, const struct parley__cli_opt *opts, size_t n_opts, int argc, char **argv);

void bench_register(const bench_suite *suite);

#define BENCH_SUITE(ident, name_, summary_, fn)                                                  \
  static const bench_suite bench_suite_##ident = {name_, summary_, fn};                          \
  __attribute__((constructor)) static void bench_register_##ident(void) {                        \
    bench_register(&bench_suite_##ident);                                                        \
  }

/* One result row: begin, add fields in column order, end. Strings are copied. */
void bench_row_begin(bench_report *rep);
void bench_field_str(bench_report *rep, const char *key, const char *value);
void bench_field_num(bench_report *rep, const char *key, double value, int decimals);
void bench_field_int(bench_report *rep, const char *key, long long value);
void bench_row_end(bench_report *rep);
/* A free-text note printed under the table (not in JSON, which goes to stdout alone). */
void bench_note(bench_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic nanoseconds, for timing. */
int64_t bench_now_ns(void);
/* bench_connect_relay.c: the connect suite's rows through a real TURN server (trials calls). 0 or 1. */
int bench_connect_relay(bench_report *rep, int trials);
/* Sorts samples in place and returns the q-quantile (0..1) by nearest rank. */
int64_t bench_quantile_ns(int64_t *samples, size_t n, double q);
double bench_quantile(double *samples, size_t n, double q);

/* A mono 48 kHz clip (e.g. tests/data/speech_a_48k.wav, relative to the current directory) as floats
 * (malloc'd; *n samples), or NULL after a message on stderr naming the suite. */
float *bench_load_clip(const char *suite, const char *path, size_t *n);

/* Keeps the optimiser from deleting work whose result is otherwise unused. */
static inline void bench_use(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#endif
