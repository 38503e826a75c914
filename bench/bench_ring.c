/* bench_ring.c: cost of one push+pop pair on the SPSC ring, single thread (the uncontended floor). */
#include <stdint.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "base/ring.h"

static int run_ring(bench_report *rep, int argc, char **argv) {
  (void)argc;
  (void)argv;
  enum { BATCH = 1000, REPS = 2000 };
  parley__ring *r = parley__ring_new(64, 1024);
  if (!r) return 1;
  int64_t *ns = malloc(REPS * sizeof *ns);
  if (!ns) return 1;
  unsigned char item[64] = {0};
  for (int rep_i = 0; rep_i < REPS; rep_i++) {
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < BATCH; i++) {
      item[0] = (unsigned char)i;
      parley__ring_push(r, item);
      parley__ring_pop(r, item);
    }
    ns[rep_i] = bench_now_ns() - t0;
  }
  bench_use(item);
  bench_row_begin(rep);
  bench_field_str(rep, "stage", "ring push+pop (64 B)");
  bench_field_num(rep, "median_ns", (double)bench_quantile_ns(ns, REPS, 0.5) / BATCH, 1);
  bench_field_num(rep, "p99_ns", (double)bench_quantile_ns(ns, REPS, 0.99) / BATCH, 1);
  bench_row_end(rep);
  free(ns);
  parley__ring_free(r);
  return 0;
}

BENCH_SUITE(ring, "ring", "SPSC ring push+pop cost, single thread", run_ring)
