/* main.c: parley-bench's entry and report printer. Suites register themselves (bench.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sndfile.h>

#include "bench/bench.h"
#include "sim/cli.h"

#define MAX_SUITES 32
#define MAX_FIELDS 16

static const bench_suite *suites[MAX_SUITES];
static int n_suites;

void bench_register(const bench_suite *suite) {
  if (n_suites < MAX_SUITES) suites[n_suites++] = suite;
}

typedef struct field {
  char key[48];
  char value[64];
  bool numeric;
} field;

struct bench_report {
  const char *suite;
  bool json;
  field (*rows)[MAX_FIELDS];
  int n_fields[4096];
  int n_rows;
  char notes[4096];
};

void bench_row_begin(bench_report *rep) {
  if (rep->n_rows < 4096) rep->n_fields[rep->n_rows] = 0;
}

static void add_field(bench_report *rep, const char *key, const char *value, bool numeric) {
  if (rep->n_rows >= 4096) return;
  int i = rep->n_fields[rep->n_rows];
  if (i >= MAX_FIELDS) return;
  field *f = &rep->rows[rep->n_rows][i];
  snprintf(f->key, sizeof f->key, "%s", key);
  snprintf(f->value, sizeof f->value, "%s", value);
  f->numeric = numeric;
  rep->n_fields[rep->n_rows] = i + 1;
}

void bench_field_str(bench_report *rep, const char *key, const char *value) {
  add_field(rep, key, value, false);
}

void bench_field_num(bench_report *rep, const char *key, double value, int decimals) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", decimals, value);
  add_field(rep, key, buf, true);
}

void bench_field_int(bench_report *rep, const char *key, long long value) {
  char buf[64];
  snprintf(buf, sizeof buf, "%lld", value);
  add_field(rep, key, buf, true);
}

void bench_row_end(bench_report *rep) {
  if (rep->n_rows < 4096) rep->n_rows++;
}

void bench_note(bench_report *rep, const char *fmt, ...) {
  size_t used = strlen(rep->notes);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rep->notes + used, sizeof rep->notes - used, fmt, ap);
  va_end(ap);
  used = strlen(rep->notes);
  if (used + 1 < sizeof rep->notes) strcat(rep->notes, "\n");
}

int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static size_t rank(size_t n, double q) {
  if (q <= 0) return 0;
  size_t k = (size_t)(q * (double)n + 0.999999);
  return k == 0 ? 0 : (k > n ? n - 1 : k - 1);
}

int64_t bench_quantile_ns(int64_t *samples, size_t n, double q) {
  if (n == 0) return 0;
  qsort(samples, n, sizeof *samples, cmp_i64);
  return samples[rank(n, q)];
}

double bench_quantile(double *samples, size_t n, double q) {
  if (n == 0) return 0;
  qsort(samples, n, sizeof *samples, cmp_double);
  return samples[rank(n, q)];
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar(*s);
  }
  putchar('"');
}

static void print_json(const bench_report *rep) {
  printf("{\"suite\": ");
  print_json_string(rep->suite);
  printf(", \"results\": [");
  for (int r = 0; r < rep->n_rows; r++) {
    printf(r ? ",\n  {" : "\n  {");
    for (int i = 0; i < rep->n_fields[r]; i++) {
      const field *f = &rep->rows[r][i];
      if (i) printf(", ");
      print_json_string(f->key);
      printf(": ");
      if (f->numeric) printf("%s", f->value);
      else print_json_string(f->value);
    }
    printf("}");
  }
  printf("\n]}\n");
}

/* Columns come from the first row; a row with other keys starts a new table. */
static void print_table(const bench_report *rep) {
  printf("parley-bench %s\n", rep->suite);
  int start = 0;
  while (start < rep->n_rows) {
    int end = start + 1;
    while (end < rep->n_rows && rep->n_fields[end] == rep->n_fields[start]) {
      bool same = true;
      for (int i = 0; i < rep->n_fields[start]; i++)
        if (strcmp(rep->rows[end][i].key, rep->rows[start][i].key)) same = false;
      if (!same) break;
      end++;
    }
    int nf = rep->n_fields[start];
    int width[MAX_FIELDS];
    for (int i = 0; i < nf; i++) {
      width[i] = (int)strlen(rep->rows[start][i].key);
      for (int r = start; r < end; r++) {
        int w = (int)strlen(rep->rows[r][i].value);
        if (w > width[i]) width[i] = w;
      }
    }
    for (int i = 0; i < nf; i++) printf("%s%-*s", i ? "  " : "", width[i], rep->rows[start][i].key);
    printf("\n");
    for (int r = start; r < end; r++) {
      for (int i = 0; i < nf; i++) {
        const field *f = &rep->rows[r][i];
        if (f->numeric) printf("%s%*s", i ? "  " : "", width[i], f->value);
        else printf("%s%-*s", i ? "  " : "", width[i], f->value);
      }
      printf("\n");
    }
    start = end;
    if (start < rep->n_rows) printf("\n");
  }
  if (rep->notes[0]) printf("\n%s", rep->notes);
}

int bench_args(const char *usage_line, const parley__cli_opt *opts, size_t n_opts, int argc, char **argv) {
  char line[256];
  snprintf(line, sizeof line, "%s [--json]%s%s", argv[0], usage_line[0] ? " " : "", usage_line);
  int first = argc;
  int rc = parley__cli_parse(line, opts, n_opts, argc, argv, &first);
  if (rc == 1) return BENCH_HELP_SHOWN;
  if (rc) return rc;
  if (first < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[first]);
    parley__cli_help(stderr, line, opts, n_opts);
    return 2;
  }
  return 0;
}

static void usage(FILE *to) {
  fprintf(to, "usage: parley-bench SUITE [--json] [suite options]\n\nsuites:\n");
  for (int i = 0; i < n_suites; i++) fprintf(to, "  %-12s %s\n", suites[i]->name, suites[i]->summary);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const bench_suite *suite = NULL;
  for (int i = 0; i < n_suites; i++)
    if (!strcmp(suites[i]->name, argv[1])) suite = suites[i];
  if (!suite) {
    fprintf(stderr, "parley-bench: unknown suite '%s'\n", argv[1]);
    usage(stderr);
    return 2;
  }
  static bench_report rep;
  rep.suite = suite->name;
  rep.rows = calloc(4096, sizeof *rep.rows);
  if (!rep.rows) {
    fprintf(stderr, "parley-bench: out of memory\n");
    return 1;
  }
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  char name[64];
  snprintf(name, sizeof name, "parley-bench %s", suite->name);
  rest[0] = name;
  int n_rest = 1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) rep.json = true;
    else rest[n_rest++] = argv[i];
  }
  int rc = suite->run(&rep, n_rest, rest);
  if (rc == BENCH_HELP_SHOWN) {
    rc = 0;
  } else if (rc == 2) {
    /* a usage error, already reported: no table */
  } else if (rep.json) {
    print_json(&rep);
  } else {
    print_table(&rep);
  }
  free(rest);
  free(rep.rows);
  return rc;
}

float *bench_load_clip(const char *suite, const char *path, size_t *n) {
  SF_INFO info = {0};
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) {
    fprintf(stderr, "parley-bench %s: cannot open the clip %s: %s (run from the source tree or pass"
                    " --clip FILE)\n", suite, path, sf_strerror(NULL));
    return NULL;
  }
  if (info.channels != 1 || info.samplerate != 48000 || info.frames <= 0) {
    fprintf(stderr, "parley-bench %s: %s: need mono 48000 Hz, got %d channel(s) at %d Hz\n", suite, path,
            info.channels, info.samplerate);
    sf_close(f);
    return NULL;
  }
  float *x = malloc((size_t)info.frames * sizeof *x);
  if (x) *n = (size_t)sf_readf_float(f, x, info.frames);
  sf_close(f);
  return x;
}
