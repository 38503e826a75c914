/* bench_mixer.c: cost of one 10 ms mixer frame (every participant puts a frame, then run: sum, N
 * mix-minus outputs, limiter, levels and ranking) for N = 2, 10, 100, 1000, all talking. */
#include <stdint.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "engine/mixer.h"
#include "base/rng.h"

enum { FRAME = 480, WARMUP = 50, DISTINCT = 8 };

static int run_mixer(bench_report *rep, int argc, char **argv) {
  (void)argc;
  (void)argv;
  static const size_t ns[] = {2, 10, 100, 1000};
  double per_participant[4];
  /* A few distinct noise frames per participant position, at speech-like levels (~-26 dBFS RMS);
   * with 1000 talkers the sums go well past the knee, so the limiter path is measured too. */
  float *frames = malloc((size_t)DISTINCT * FRAME * sizeof *frames);
  if (!frames) return 1;
  parley__rng rng;
  parley__rng_seed(&rng, 7);
  for (size_t i = 0; i < (size_t)DISTINCT * FRAME; i++)
    frames[i] = (float)(0.1 * (2 * parley__rng_uniform(&rng) - 1));

  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    size_t n = ns[t];
    int reps = n >= 1000 ? 300 : n >= 100 ? 1000 : 5000;
    parley__mixer *m = parley__mixer_new(n, FRAME, 3);
    int64_t *times = malloc((size_t)reps * sizeof *times);
    if (!m || !times) return 1;
    for (size_t i = 0; i < n; i++) parley__mixer_add(m, (uint32_t)(i * 2654435761u));
    for (int r = -WARMUP; r < reps; r++) {
      int64_t t0 = bench_now_ns();
      for (size_t i = 0; i < n; i++)
        parley__mixer_put(m, (uint32_t)(i * 2654435761u), frames + ((i + (size_t)(r + WARMUP)) % DISTINCT) * FRAME,
                          true);
      parley__mixer_run(m);
      int64_t dt = bench_now_ns() - t0;
      if (r >= 0) times[r] = dt;
    }
    bench_use(parley__mixer_full(m));
    double median = (double)bench_quantile_ns(times, (size_t)reps, 0.5);
    double p99 = (double)bench_quantile_ns(times, (size_t)reps, 0.99);
    per_participant[t] = median / (double)n;
    bench_row_begin(rep);
    bench_field_int(rep, "participants", (long long)n);
    bench_field_num(rep, "ns_per_frame", median, 0);
    bench_field_num(rep, "ns_per_participant", per_participant[t], 1);
    bench_field_num(rep, "p99_ns", p99, 0);
    bench_field_num(rep, "pct_of_10ms", median / 1e5, 3);
    bench_row_end(rep);
    free(times);
    parley__mixer_free(m);
  }
  free(frames);
  bench_note(rep, "per frame = put for every participant + run; 480 samples, top_k 3, all VAD true");
  bench_note(rep, "linearity, ns per participant: N=2 %.0f, N=10 %.0f, N=100 %.0f, N=1000 %.0f",
             per_participant[0], per_participant[1], per_participant[2], per_participant[3]);
  return 0;
}

BENCH_SUITE(mixer, "mixer", "conference mixer: one 10 ms frame (put all + run) vs participants", run_mixer)
