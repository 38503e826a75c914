/* test_resampler.c: the streaming resampler stage (engine/resampler.c) against ideal signals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/resampler.h"
#include "base/rng.h"
#include "parley/parley.h"
#include "tests/audio_helpers.h"

#define PI 3.14159265358979323846
/* The engine's default quality; the 60 dB goal holds for every quality >= 2 (see resampler.h). */
#define QUALITY PARLEY__RESAMPLER_QUALITY_DEFAULT

static const int rates[] = {8000, 16000, 32000, 44100, 48000};
#define NRATES (sizeof rates / sizeof rates[0])

/* A sine delayed by a (fractional) number of samples: the ideal output of a delaying stage. */
static void delayed_sine(float *x, size_t n, double freq_hz, int rate_hz, double amp, double delay) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * freq_hz * ((double)i - delay) / rate_hz));
}

/* Feeds in[0..n) through r in chunks whose sizes come from rng (1 .. 10000 samples, mostly small),
 * and if r2 is non-NULL each chunk's output straight through r2. Returns the samples written to out. */
static size_t run_chunked(parley__resampler *r, parley__resampler *r2, const float *in, size_t n,
                          float *out, size_t out_cap, uint64_t seed) {
  parley__rng rng;
  parley__rng_seed(&rng, seed);
  static float mid[70000];
  size_t pos = 0, written = 0;
  while (pos < n) {
    uint32_t pick = parley__rng_below(&rng, 10);
    size_t chunk = pick < 3 ? 1 + parley__rng_below(&rng, 4)                      /* 1..4 */
                 : pick < 9 ? 1 + parley__rng_below(&rng, 700)                    /* typical */
                            : 1 + parley__rng_below(&rng, 10000);                 /* big */
    if (chunk > n - pos) chunk = n - pos;
    size_t mid_cap = parley__resampler_max_output(r, chunk);
    cr_assert_leq(mid_cap, sizeof mid / sizeof mid[0]);
    int got = parley__resampler_process(r, in + pos, chunk, mid, mid_cap);
    cr_assert_geq(got, 0, "process failed: %d", got);
    if (r2) {
      size_t need = parley__resampler_max_output(r2, (size_t)got);
      cr_assert_leq(written + need, out_cap);
      int got2 = parley__resampler_process(r2, mid, (size_t)got, out + written, out_cap - written);
      cr_assert_geq(got2, 0, "process (2) failed: %d", got2);
      written += (size_t)got2;
    } else {
      cr_assert_leq(written + (size_t)got, out_cap);
      memcpy(out + written, mid, (size_t)got * sizeof *mid);
      written += (size_t)got;
    }
    pos += chunk;
  }
  return written;
}

/* Round trip a -> b -> a of a 1 kHz sine; returns the SNR against the ideal sine delayed by the
 * stages' exact delay, over the middle of the signal (edges excluded). */
static double round_trip_snr(int a, int b, double seconds, uint64_t seed, size_t *n_out) {
  size_t n = (size_t)(seconds * a);
  float *x = malloc(n * sizeof *x);
  size_t cap = n + 64;
  float *y = malloc(cap * sizeof *y);
  float *ideal = malloc(cap * sizeof *ideal);
  cr_assert(x && y && ideal);
  th_sine(x, n, 1000, a, 0.5);
  int err = 1;
  parley__resampler *up = parley__resampler_new(a, b, QUALITY, &err);
  cr_assert_not_null(up);
  cr_assert_eq(err, 0);
  parley__resampler *down = parley__resampler_new(b, a, QUALITY, &err);
  cr_assert_not_null(down);
  size_t m = run_chunked(up, down, x, n, y, cap, seed);
  double delay = parley__resampler_delay_samples_exact(up) * a / b + parley__resampler_delay_samples_exact(down);
  delayed_sine(ideal, m, 1000, a, 0.5, delay);
  size_t skip = (size_t)delay + (size_t)(a / 50); /* filter warm-up: delay plus 20 ms */
  size_t tail = (size_t)(a / 50);
  cr_assert_gt(m, skip + tail + 1000);
  double snr = th_snr_db(ideal + skip, y + skip, m - skip - tail);
  if (n_out) *n_out = m;
  parley__resampler_free(up);
  parley__resampler_free(down);
  free(x);
  free(y);
  free(ideal);
  return snr;
}

Test(resampler, sine_round_trip_44k1_48k_snr_60db_irregular_chunks) {
  size_t m = 0;
  double snr = round_trip_snr(44100, 48000, 1.5, 7, &m);
  fprintf(stderr, "resampler: 44.1k->48k->44.1k q%d 1 kHz sine SNR %.1f dB\n", QUALITY, snr);
  cr_expect_geq(snr, 60.0, "SNR %.1f dB", snr);
  /* Every input instant yields its output: count = n exactly up to the fractional phase. */
  size_t n = (size_t)(1.5 * 44100);
  cr_expect_leq(labs((long)m - (long)n), 2, "round trip gave %zu samples for %zu", m, n);
}

Test(resampler, output_count_follows_rate_ratio) {
  for (size_t i = 0; i < NRATES; i++) {
    for (size_t j = 0; j < NRATES; j++) {
      int a = rates[i], b = rates[j];
      size_t n = (size_t)a; /* one second */
      float *x = calloc(n, sizeof *x);
      size_t cap = (size_t)b + 64;
      float *y = malloc(cap * sizeof *y);
      cr_assert(x && y);
      th_noise(x, n, 3, 0.5);
      parley__resampler *r = parley__resampler_new(a, b, QUALITY, NULL);
      cr_assert_not_null(r);
      size_t m = run_chunked(r, NULL, x, n, y, cap, 11 + i * 5 + j);
      cr_expect_leq(labs((long)m - (long)b), 2, "%d -> %d: %zu samples from one second", a, b, m);
      parley__resampler_free(r);
      free(x);
      free(y);
    }
  }
}

Test(resampler, every_pair_round_trips) {
  for (size_t i = 0; i < NRATES; i++) {
    for (size_t j = 0; j < NRATES; j++) {
      if (i == j) continue;
      double snr = round_trip_snr(rates[i], rates[j], 0.5, 100 + i * 5 + j, NULL);
      fprintf(stderr, "resampler: %5d -> %5d -> %5d SNR %.1f dB\n", rates[i], rates[j], rates[i], snr);
      cr_expect_geq(snr, 60.0, "%d -> %d -> %d: SNR %.1f dB", rates[i], rates[j], rates[i], snr);
    }
  }
}

Test(resampler, same_rate_is_exact_copy) {
  float x[1000], y[1001];
  th_noise(x, 1000, 5, 0.9);
  parley__resampler *r = parley__resampler_new(48000, 48000, QUALITY, NULL);
  cr_assert_not_null(r);
  cr_expect_eq(parley__resampler_delay_samples(r), 0);
  size_t m = run_chunked(r, NULL, x, 1000, y, 1001, 9);
  cr_assert_eq(m, 1000);
  cr_expect_arr_eq(x, y, sizeof x);
  parley__resampler_free(r);
}

Test(resampler, rejects_bad_rates_and_quality) {
  const int bad[] = {0, -1, -48000, 999, 384001};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int err = 0;
    cr_expect_null(parley__resampler_new(bad[i], 48000, QUALITY, &err));
    cr_expect_eq(err, PARLEY_EINVAL);
    err = 0;
    cr_expect_null(parley__resampler_new(48000, bad[i], QUALITY, &err));
    cr_expect_eq(err, PARLEY_EINVAL);
  }
  int err = 0;
  cr_expect_null(parley__resampler_new(16000, 48000, -1, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__resampler_new(16000, 48000, 11, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__resampler_free(NULL);
}

Test(resampler, rejects_bad_process_arguments) {
  parley__resampler *r = parley__resampler_new(16000, 48000, QUALITY, NULL);
  cr_assert_not_null(r);
  float in[160] = {0}, out[600];
  cr_expect_eq(parley__resampler_process(NULL, in, 160, out, 600), PARLEY_EINVAL);
  cr_expect_eq(parley__resampler_process(r, NULL, 160, out, 600), PARLEY_EINVAL);
  cr_expect_eq(parley__resampler_process(r, in, 160, NULL, 600), PARLEY_EINVAL);
  cr_expect_eq(parley__resampler_process(r, in, PARLEY__RESAMPLER_MAX_IN_SAMPLES + 1, out, 600), PARLEY_EINVAL);
  cr_expect_eq(parley__resampler_process(r, in, 0, out, 0), 0);
  parley__resampler_free(r);
}

/* ENOSPC consumes nothing: a stream processed with retries after ENOSPC equals one processed with
 * ample room. */
Test(resampler, enospc_loses_nothing) {
  enum { N = 4800 };
  static float x[N], ref[N * 2], y[N * 2];
  th_noise(x, N, 21, 0.5);
  parley__resampler *a = parley__resampler_new(48000, 44100, QUALITY, NULL);
  parley__resampler *b = parley__resampler_new(48000, 44100, QUALITY, NULL);
  cr_assert(a && b);
  size_t na = 0, nb = 0, refusals = 0;
  for (size_t pos = 0; pos < N; pos += 120) {
    int got = parley__resampler_process(a, x + pos, 120, ref + na, sizeof ref / sizeof ref[0] - na);
    cr_assert_geq(got, 0);
    na += (size_t)got;
    size_t need = parley__resampler_max_output(b, 120);
    cr_assert_geq(need, 111);
    int r1 = parley__resampler_process(b, x + pos, 120, y + nb, need - 1);
    cr_assert_eq(r1, PARLEY_ENOSPC);
    refusals++;
    int r2 = parley__resampler_process(b, x + pos, 120, y + nb, need);
    cr_assert_geq(r2, 0);
    nb += (size_t)r2;
  }
  cr_expect_eq(refusals, N / 120);
  cr_assert_eq(na, nb);
  cr_expect_arr_eq(ref, y, na * sizeof(float));
  parley__resampler_free(a);
  parley__resampler_free(b);
}

Test(resampler, reset_restarts_the_stream) {
  enum { N = 2000 };
  static float x[N], y1[N * 6 + 8], y2[N * 6 + 8];
  th_noise(x, N, 31, 0.5);
  parley__resampler *r = parley__resampler_new(8000, 48000, QUALITY, NULL);
  cr_assert_not_null(r);
  int n1 = parley__resampler_process(r, x, N, y1, sizeof y1 / sizeof y1[0]);
  parley__resampler_reset(r);
  int n2 = parley__resampler_process(r, x, N, y2, sizeof y2 / sizeof y2[0]);
  cr_assert_gt(n1, 0);
  cr_assert_eq(n1, n2);
  cr_expect_arr_eq(y1, y2, (size_t)n1 * sizeof(float));
  parley__resampler_free(r);
}

/* A sum of tones with seeded random frequencies and phases, all below 0.25 * the lower rate: the same
 * band-limited signal can be sampled exactly at either rate, and its autocorrelation has one sharp
 * peak, so cross-correlating the stage's output with the signal sampled at the output rate finds the
 * stage's true delay. */
enum { TONES = 24 };
static void multitone(float *x, size_t n, int rate_hz, const double *freq, const double *phase) {
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < TONES; k++) s += sin(2 * PI * freq[k] * (double)i / rate_hz + phase[k]);
    x[i] = (float)(s / TONES);
  }
}

Test(resampler, reported_delay_matches_cross_correlation) {
  for (size_t i = 0; i < NRATES; i++) {
    for (size_t j = 0; j < NRATES; j++) {
      if (i == j) continue;
      int a = rates[i], b = rates[j];
      int lo = a < b ? a : b;
      double freq[TONES], phase[TONES];
      parley__rng rng;
      parley__rng_seed(&rng, 1000 + i * 5 + j);
      for (int k = 0; k < TONES; k++) {
        freq[k] = 50 + parley__rng_uniform(&rng) * (0.25 * lo - 50);
        phase[k] = parley__rng_uniform(&rng) * 2 * PI;
      }
      size_t n_in = (size_t)a / 4, n_ref = (size_t)b / 4; /* 250 ms */
      float *x = malloc(n_in * sizeof *x), *ref = malloc(n_ref * sizeof *ref);
      size_t cap = n_ref + 64;
      float *y = malloc(cap * sizeof *y);
      cr_assert(x && ref && y);
      multitone(x, n_in, a, freq, phase);
      multitone(ref, n_ref, b, freq, phase);
      parley__resampler *r = parley__resampler_new(a, b, QUALITY, NULL);
      cr_assert_not_null(r);
      size_t m = run_chunked(r, NULL, x, n_in, y, cap, 77 + i + j);
      int reported = parley__resampler_delay_samples(r);
      long max_lag = 2 * reported + 50;
      size_t span = m - (size_t)max_lag;
      double peak = 0;
      long found = th_best_lag(ref, y, span, max_lag, &peak);
      fprintf(stderr, "resampler: %5d -> %5d delay reported %d (exact %.2f), measured %ld (peak %.3f)\n",
              a, b, reported, parley__resampler_delay_samples_exact(r), found, peak);
      cr_expect_gt(peak, 0.8, "%d -> %d: weak correlation peak %.3f", a, b, peak);
      cr_expect_leq(labs(found - reported), 1, "%d -> %d: reported %d, measured %ld", a, b, reported, found);
      parley__resampler_free(r);
      free(x);
      free(ref);
      free(y);
    }
  }
}

/* Rates only audio files use (the file device converts them to 48 kHz): the same 60 dB round trip. */
Test(resampler, file_rates_round_trip_through_48k) {
  const int file_rates[] = {11025, 22050, 24000, 88200, 96000};
  for (size_t i = 0; i < sizeof file_rates / sizeof *file_rates; i++) {
    double snr = round_trip_snr(file_rates[i], 48000, 0.5, 300 + i, NULL);
    cr_expect_geq(snr, 60.0, "%d -> 48000 -> %d: SNR %.1f dB", file_rates[i], file_rates[i], snr);
  }
}
