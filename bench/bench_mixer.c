/* bench_mixer.c: cost of one 10 ms mixer frame (every participant puts a frame, then run: sum, N
 * mix-minus outputs, limiter, levels and ranking) for N = 2, 10, 100, 1000, all talking, beside the
 * memory floor: a plain loop doing the same copy + sum + mix-minus of the same samples, timed in the
 * same repetitions (alternating with the mixer, so both see the same machine load). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "engine/mixer.h"
#include "base/rng.h"

enum { FRAME = 480, WARMUP = 50, DISTINCT = 8 };

/* The floor: copy each frame in, sum them, and write each one's mix-minus; no gain, clamp, limiter,
 * levels or ranking. FRAME is a constant, so gcc -O2 vectorises every loop here. */
static void plain_frame(float *restrict in, float *restrict out, float *restrict sum,
                        const float *restrict frames, size_t n, size_t r) {
  for (size_t i = 0; i < n; i++)
    memcpy(in + i * FRAME, frames + ((i + r) % DISTINCT) * FRAME, FRAME * sizeof *in);
  memset(sum, 0, FRAME * sizeof *sum);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < FRAME; k++) sum[k] += in[i * FRAME + k];
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < FRAME; k++) out[i * FRAME + k] = sum[k] - in[i * FRAME + k];
}

static int run_mixer(bench_report *rep, int argc, char **argv) {
  (void)argc;
  (void)argv;
  static const size_t ns[] = {2, 10, 100, 1000};
  double per_participant[4];
  /* A few distinct noise frames per participant position, at speech-like levels (~-26 dBFS RMS);
   * with 1000 talkers the sums go well past full scale, so the limiter path is measured too. */
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
    int64_t *base_times = malloc((size_t)reps * sizeof *base_times);
    float *in = malloc(n * FRAME * sizeof *in), *out = malloc(n * FRAME * sizeof *out);
    float *sum = malloc(FRAME * sizeof *sum);
    if (!m || !times || !base_times || !in || !out || !sum) return 1;
    for (size_t i = 0; i < n; i++) parley__mixer_add(m, (uint32_t)(i * 2654435761u));
    for (int r = -WARMUP; r < reps; r++) {
      size_t shift = (size_t)(r + WARMUP);
      int64_t t0 = bench_now_ns();
      for (size_t i = 0; i < n; i++)
        parley__mixer_put(m, (uint32_t)(i * 2654435761u), frames + ((i + shift) % DISTINCT) * FRAME, true);
      parley__mixer_run(m);
      int64_t t1 = bench_now_ns();
      plain_frame(in, out, sum, frames, n, shift);
      bench_use(out);
      int64_t t2 = bench_now_ns();
      if (r >= 0) times[r] = t1 - t0, base_times[r] = t2 - t1;
    }
    bench_use(parley__mixer_full(m));
    double median = (double)bench_quantile_ns(times, (size_t)reps, 0.5);
    double p99 = (double)bench_quantile_ns(times, (size_t)reps, 0.99);
    double base = (double)bench_quantile_ns(base_times, (size_t)reps, 0.5);
    per_participant[t] = median / (double)n;
    bench_row_begin(rep);
    bench_field_int(rep, "participants", (long long)n);
    bench_field_num(rep, "ns_per_frame", median, 0);
    bench_field_num(rep, "ns_per_participant", per_participant[t], 1);
    bench_field_num(rep, "p99_ns", p99, 0);
    bench_field_num(rep, "pct_of_10ms", median / 1e5, 3);
    bench_field_num(rep, "baseline_ns_per_frame", base, 0);
    bench_field_num(rep, "x_baseline", median / base, 2);
    bench_row_end(rep);
    free(times);
    free(base_times);
    free(in);
    free(out);
    free(sum);
    parley__mixer_free(m);
  }
  free(frames);
  bench_note(rep, "per frame = put for every participant + run; 480 samples, top_k 3, all VAD true");
  bench_note(rep, "baseline = plain copy + sum + mix-minus of the same frames, median over the same reps");
  bench_note(rep, "linearity, ns per participant: N=2 %.0f, N=10 %.0f, N=100 %.0f, N=1000 %.0f",
             per_participant[0], per_participant[1], per_participant[2], per_participant[3]);
  return 0;
}

BENCH_SUITE(mixer, "mixer",
            "conference mixer: one 10 ms frame (put all + run) vs participants, beside a plain copy + sum + "
            "mix-minus loop",
            run_mixer)
