/* test_mixer.c: the conference mixer. Mix-minus against a double-precision reference, mute and gain,
 * the limiter's bound, smoothness, release and transparency, speaker ranking and its hysteresis,
 * membership changes. Every output lags its input by the limiter's look-ahead (D samples), so
 * references are delayed by D across frames. Everything is seeded and runs in frame steps (no clock). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mixer.h"
#include "base/rng.h"
#include "parley/parley.h"
#include "tests/audio_helpers.h"

#define F 480
#define D PARLEY_MIXER_LIMIT_BLOCK
/* The limiter's ceiling, to float rounding of gain * sample; full scale is 1. */
#define CEILING (PARLEY_MIXER_LIMIT_CEILING * (1.0f + 4 * FLT_EPSILON))

/* Uniform noise with the given RMS in dBFS (uniform in [-a, a] has RMS a / sqrt(3)). */
static void noise_db(float *x, size_t n, unsigned long long seed, double db) {
  th_noise(x, n, seed, pow(10.0, db / 20.0) * sqrt(3.0));
}

/* dst = the reference as heard D samples later: the tail of prev, then the head of cur. */
static void delay_ref(double *dst, const double *prev, const double *cur) {
  for (size_t k = 0; k < F; k++) dst[k] = k < D ? prev[F - D + k] : cur[k - D];
}

/* Checks out[] against a double reference: |out - ref| <= tol per sample. */
static void expect_close(const float *out, const double *ref, size_t n, double tol, const char *what) {
  for (size_t i = 0; i < n; i++) {
    if (fabs((double)out[i] - ref[i]) > tol) {
      cr_expect_fail("%s: sample %zu is %.9g, want %.9g (tol %.3g)", what, i, (double)out[i], ref[i], tol);
      return;
    }
  }
}

Test(mixer, rejects_bad_arguments) {
  cr_expect_null(parley__mixer_new(0, F, 1));
  cr_expect_null(parley__mixer_new(PARLEY_MIXER_MAX_PARTICIPANTS + 1, F, 1));
  cr_expect_null(parley__mixer_new(4, 441, 1));
  cr_expect_null(parley__mixer_new(4, 0, 1));
  cr_expect_null(parley__mixer_new(4, F, 0));
  cr_expect_null(parley__mixer_new(4, F, PARLEY_MIXER_MAX_TOP_K + 1));
  parley__mixer_free(NULL);

  parley__mixer *m = parley__mixer_new(2, 960, 1);
  cr_assert_not_null(m);
  cr_expect_eq(parley__mixer_frame_samples(m), 960);
  float frame[960] = {0};
  uint32_t ids[4];
  cr_expect_eq(parley__mixer_add(NULL, 1), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_add(m, 7), 0);
  cr_expect_eq(parley__mixer_add(m, 7), PARLEY_EINVAL); /* duplicate */
  cr_expect_eq(parley__mixer_add(m, 0), 0);              /* id 0 is a valid id */
  cr_expect_eq(parley__mixer_add(m, 9), PARLEY_EFULL);
  cr_expect_eq(parley__mixer_count(m), 2);
  cr_expect_eq(parley__mixer_remove(m, 9), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_remove(NULL, 7), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_set_gain(m, 9, 1.0f), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_set_gain(m, 7, NAN), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_set_gain(m, 7, -0.5f), PARLEY_ERANGE);
  cr_expect_eq(parley__mixer_set_gain(m, 7, INFINITY), PARLEY_ERANGE);
  cr_expect_eq(parley__mixer_set_gain(m, 7, PARLEY_MIXER_MAX_GAIN * 2), PARLEY_ERANGE);
  cr_expect_eq(parley__mixer_set_gain(NULL, 7, 1.0f), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_set_mute(m, 9, true), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_set_mute(NULL, 7, true), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_put(m, 9, frame, true), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_put(m, 7, NULL, true), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_put(NULL, 7, frame, true), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_run(NULL), PARLEY_EINVAL);
  cr_expect_null(parley__mixer_minus(m, 9));
  cr_expect_null(parley__mixer_minus(NULL, 7));
  cr_expect_null(parley__mixer_full(NULL));
  cr_expect_eq(parley__mixer_speakers(m, NULL, 1), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_speakers(NULL, ids, 4), PARLEY_EINVAL);
  cr_expect_eq(parley__mixer_speakers(m, NULL, 0), 0);
  float lvl;
  cr_expect_eq(parley__mixer_level_db(m, 9, &lvl), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_level_db(m, 7, NULL), PARLEY_EINVAL);

  /* Non-finite input samples do not poison the mix. */
  frame[0] = NAN;
  frame[1] = INFINITY;
  frame[2] = 0.25f;
  cr_expect_eq(parley__mixer_put(m, 7, frame, false), 0);
  cr_expect_eq(parley__mixer_run(m), 0);
  const float *full = parley__mixer_full(m);
  const float *minus0 = parley__mixer_minus(m, 0);
  for (size_t i = 0; i < 960; i++) {
    cr_assert(isfinite(full[i]) && isfinite(minus0[i]), "sample %zu not finite", i);
    cr_assert(fabsf(full[i]) <= 1.0f);
  }
  /* NaN became 0, the infinity a finite full-scale peak that the limiter turns down (0.25 with it). */
  cr_expect_eq(full[D + 0], 0.0f);
  cr_expect(full[D + 1] > 0.9f && full[D + 2] > 0.0f && full[D + 2] < 0.25f, "%g %g", (double)full[D + 1],
            (double)full[D + 2]);
  parley__mixer_free(m);
}

/* N participants with random gains (some missing their frame), amplitudes small enough that no sum can
 * reach the limiter's ceiling: full = sum of gained inputs, minus_i = that sum without i, per sample. */
static void check_mix_minus(size_t n, uint64_t seed) {
  parley__mixer *m = parley__mixer_new(n, F, 3);
  cr_assert_not_null(m);
  parley__rng rng;
  parley__rng_seed(&rng, seed);
  uint32_t *id = malloc(n * sizeof *id);
  float *gain = malloc(n * sizeof *gain);
  float *x = malloc(n * F * sizeof *x);
  bool *present = malloc(n * sizeof *present);
  double *ref_full = malloc(F * sizeof *ref_full);
  double *ref = malloc(F * sizeof *ref);
  double *heard = malloc(F * sizeof *heard);
  double *prev = calloc((n + 1) * F, sizeof *prev); /* last frame's reference per listener, n = full */
  cr_assert(id && gain && x && present && ref_full && ref && heard && prev);
  /* Max |sum| <= n * amp * max gain = 0.45 < ceiling. */
  const double max_gain = 1.5, amp = 0.45 / ((double)n * max_gain);
  for (size_t i = 0; i < n; i++) {
    id[i] = 1000u + (uint32_t)i * 7919u; /* scattered ids exercise the id table */
    cr_assert_eq(parley__mixer_add(m, id[i]), 0);
    gain[i] = (float)(0.25 + parley__rng_uniform(&rng) * (max_gain - 0.25));
    cr_assert_eq(parley__mixer_set_gain(m, id[i], gain[i]), 0);
  }
  for (int frame = 0; frame < 6; frame++) {
    double abs_total = 0;
    for (size_t i = 0; i < n; i++) {
      present[i] = (frame + i) % 4 != 3 || n == 1; /* some inputs missing -> silence */
      float *xi = x + i * F;
      for (size_t k = 0; k < F; k++) xi[k] = (float)(amp * (2 * parley__rng_uniform(&rng) - 1));
      if (present[i]) cr_assert_eq(parley__mixer_put(m, id[i], xi, true), 0);
    }
    cr_assert_geq(parley__mixer_run(m), 0);
    for (size_t k = 0; k < F; k++) {
      double s = 0;
      for (size_t i = 0; i < n; i++)
        if (present[i]) {
          double v = (double)(gain[i] * x[i * F + k]);
          s += v;
          abs_total += fabs(v);
        }
      ref_full[k] = s;
    }
    /* Float summation of n terms then one subtraction: error well under (n + 2) ulps of the total. */
    /* (Frames carry similar totals, so this frame's bound covers the delayed tail of the last.) */
    double tol = (double)(n + 2) * FLT_EPSILON * (abs_total / F + amp) + 1e-12;
    delay_ref(heard, prev + n * F, ref_full);
    expect_close(parley__mixer_full(m), heard, F, tol, "full");
    memcpy(prev + n * F, ref_full, F * sizeof *ref_full);
    for (size_t i = 0; i < n; i++) {
      for (size_t k = 0; k < F; k++)
        ref[k] = ref_full[k] - (present[i] ? (double)(gain[i] * x[i * F + k]) : 0.0);
      delay_ref(heard, prev + i * F, ref);
      expect_close(parley__mixer_minus(m, id[i]), heard, F, tol, "minus");
      memcpy(prev + i * F, ref, F * sizeof *ref);
    }
    if (n == 1) { /* alone: hears exact silence */
      const float *o = parley__mixer_minus(m, id[0]);
      for (size_t k = 0; k < F; k++) cr_assert_eq(o[k], 0.0f);
    }
  }
  free(id);
  free(gain);
  free(x);
  free(present);
  free(ref_full);
  free(ref);
  free(heard);
  free(prev);
  parley__mixer_free(m);
}

Test(mixer, mix_minus_exact) {
  const size_t ns[] = {1, 2, 3, 10, 50};
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) check_mix_minus(ns[t], 0xC0FFEE + t);
}

Test(mixer, muted_participant_absent_everywhere) {
  enum { N = 4 };
  parley__mixer *m = parley__mixer_new(N, F, 2);
  cr_assert_not_null(m);
  float x[N][F];
  double ref[F], heard[F], prev[N + 1][F] = {{0}};
  for (uint32_t i = 0; i < N; i++) {
    cr_assert_eq(parley__mixer_add(m, i + 1), 0);
    /* The one to be muted is loud; the rest stay below the ceiling together. */
    th_noise(x[i], F, 77 + i, i == 2 ? 0.9 : 0.1);
  }
  cr_assert_eq(parley__mixer_set_mute(m, 3, true), 0);
  for (int round = 0; round < 2; round++) {
    for (uint32_t i = 0; i < N; i++) cr_assert_eq(parley__mixer_put(m, i + 1, x[i], true), 0);
    cr_assert_geq(parley__mixer_run(m), 0);
    bool muted = round == 0;
    for (uint32_t listener = 0; listener <= N; listener++) { /* listener N = the full mix */
      for (size_t k = 0; k < F; k++) {
        double s = 0;
        for (uint32_t j = 0; j < N; j++)
          if (j != listener && !(muted && j == 2)) s += x[j][k];
        ref[k] = s;
      }
      delay_ref(heard, prev[listener], ref);
      memcpy(prev[listener], ref, sizeof ref);
      const float *out = listener == N ? parley__mixer_full(m) : parley__mixer_minus(m, listener + 1);
      if (muted) {
        expect_close(out, heard, F, 1e-6, "muted mix");
        continue;
      }
      /* Unmuted, the loud one pushes sums past the ceiling: the limiter scales them by a gain in (0, 1]. */
      double peak = 0;
      for (size_t k = 0; k < F; k++) {
        cr_assert(fabsf(out[k]) <= CEILING, "listener %u sample %zu: %g", listener, k, (double)out[k]);
        cr_assert(out[k] * heard[k] >= 0 && fabs(out[k]) <= fabs(heard[k]) + 1e-6,
                  "listener %u sample %zu: %g for %g", listener, k, (double)out[k], heard[k]);
        peak = fmax(peak, fabs(heard[k]));
      }
      if (listener != 2) cr_expect_gt(peak, 0.8, "the unmuted one is in the mix");
    }
    /* While muted, the muted one hears exactly the full mix (it is in nobody's sum). */
    if (muted) cr_expect_arr_eq(parley__mixer_minus(m, 3), parley__mixer_full(m), F * sizeof(float));
    uint32_t ids[N];
    int ns = parley__mixer_speakers(m, ids, N);
    for (int r = 0; r < ns && muted; r++) cr_expect_neq(ids[r], 3, "muted participant ranked");
    cr_assert_eq(parley__mixer_set_mute(m, 3, false), 0);
  }
  parley__mixer_free(m);
}

Test(mixer, gains_apply) {
  parley__mixer *m = parley__mixer_new(2, F, 1);
  cr_assert_not_null(m);
  cr_assert_eq(parley__mixer_add(m, 10), 0);
  cr_assert_eq(parley__mixer_add(m, 20), 0);
  float x[F];
  th_sine(x, F, 440.0, 48000, 0.2);
  const float gains[] = {1.0f, 0.5f, 2.0f, 0.0f, 1.75f};
  for (size_t g = 0; g < sizeof gains / sizeof gains[0]; g++) {
    cr_assert_eq(parley__mixer_set_gain(m, 10, gains[g]), 0);
    cr_assert_eq(parley__mixer_put(m, 10, x, true), 0);
    cr_assert_geq(parley__mixer_run(m), 0);
    const float *heard = parley__mixer_minus(m, 20);
    const float *own = parley__mixer_minus(m, 10);
    /* One source below the ceiling: the listener hears exactly gain * x, D samples late (the last
     * frame's tail first), the speaker hears nothing. */
    float before = g > 0 ? gains[g - 1] : 0.0f;
    for (size_t k = 0; k < F; k++) {
      float want = k < D ? before * x[F - D + k] : gains[g] * x[k - D];
      cr_assert_eq(heard[k], want, "gain %g sample %zu", (double)gains[g], k);
      cr_assert_eq(own[k], 0.0f);
    }
    double want_db = 20 * log10(gains[g] * th_rms(x, F - D) + 1e-12);
    if (gains[g] > 0)
      cr_expect_float_eq(20 * log10(th_rms(heard + D, F - D)), want_db, 1e-3);
  }
  parley__mixer_free(m);
}

/* Changes between put and run take effect at that run: a gain or mute set after the put, a second put
 * replacing the first, a removal. Each case on a fresh mixer; outputs checked from D on (the frame,
 * delayed) against the sum of what the slots hold at run time. */
Test(mixer, changes_after_put_apply_at_run) {
  enum { N = 3 };
  static float x[N][F], again[F];
  for (int i = 0; i < N; i++) th_noise(x[i], F, 300 + (unsigned)i, 0.1);
  th_noise(again, F, 399, 0.1);
  for (int c = 0; c < 5; c++) {
    parley__mixer *m = parley__mixer_new(N, F, 2);
    cr_assert_not_null(m);
    double gain[N] = {1, 1, 1};
    const float *src[N] = {x[0], x[1], x[2]};
    bool present[N] = {true, true, true};
    for (uint32_t i = 0; i < N; i++) cr_assert_eq(parley__mixer_add(m, i), 0);
    if (c == 4) cr_assert_eq(parley__mixer_set_mute(m, 2, true), 0); /* muted at put, unmuted after */
    for (uint32_t i = 0; i < N; i++) cr_assert_eq(parley__mixer_put(m, i, x[i], true), 0);
    switch (c) {
    case 0:
      cr_assert_eq(parley__mixer_set_gain(m, 1, 0.5f), 0);
      gain[1] = 0.5;
      break;
    case 1:
      cr_assert_eq(parley__mixer_set_mute(m, 2, true), 0);
      gain[2] = 0;
      break;
    case 2:
      cr_assert_eq(parley__mixer_put(m, 0, again, true), 0);
      src[0] = again;
      break;
    case 3:
      cr_assert_eq(parley__mixer_remove(m, 1), 0);
      present[1] = false;
      break;
    case 4:
      cr_assert_eq(parley__mixer_set_mute(m, 2, false), 0);
      break;
    }
    cr_assert_geq(parley__mixer_run(m), 0);
    for (int listener = 0; listener <= N; listener++) { /* N = the full mix */
      if (listener < N && !present[listener]) continue;
      const float *out = listener == N ? parley__mixer_full(m) : parley__mixer_minus(m, (uint32_t)listener);
      for (size_t k = D; k < F; k++) {
        double want = 0;
        for (int j = 0; j < N; j++)
          if (j != listener && present[j]) want += (double)(float)(gain[j] * src[j][k - D]);
        cr_assert(fabs(out[k] - want) < 1e-6, "case %d listener %d sample %zu: %g, want %g", c, listener, k,
                  (double)out[k], want);
      }
    }
    parley__mixer_free(m);
  }
}

/* Effective limiter gain of each output sample: out / the delayed exact sum (NAN where the sum is too
 * small for the ratio to mean anything). */
static void gains_of(double *g, const float *out, const double *heard) {
  for (size_t k = 0; k < F; k++) g[k] = fabs(heard[k]) > 1e-3 ? (double)out[k] / heard[k] : NAN;
}

/* Three participants play a tone riding on a DC offset (so no sample of the sum is near zero, and the
 * gain shows on every sample). Frames 0-3 are quiet (sum peak 0.3); the level jumps 1280-fold (gains 16,
 * amplitude x80) at frame 4's start, a frame boundary, and again mid-frame from quiet in frame 14;
 * from frame 20 on it is quiet again for the release. Checked on the full mix and every mix-minus. */
Test(mixer, limiter_step_is_bounded_and_smooth) {
  enum { N = 3, FRAMES = 140, OUTS = N + 1 };
  const double quiet = 0.05, loud = 4.0;
  const double C = PARLEY_MIXER_LIMIT_CEILING;
  /* Attack: a boundary gain may drop from 1 to near 0 across one block. Release: R per block. */
  const double r_block = pow(10.0, PARLEY_MIXER_LIMIT_RELEASE_DB_S * D / 48000.0 / 20.0);
  cr_assert_lt(CEILING, 1.0f, "outputs stay within [-1, 1]");
  parley__mixer *m = parley__mixer_new(N, F, 1);
  cr_assert_not_null(m);
  for (uint32_t i = 0; i < N; i++) cr_assert_eq(parley__mixer_add(m, i), 0);
  static float x[N][F];
  double ref[OUTS][F], prev[OUTS][F] = {{0}}, heard[F], g[F], last_g[OUTS];
  for (int o = 0; o < OUTS; o++) last_g[o] = 1.0;
  int quiet_again = -1; /* first frame after the loud part where every output is transparent again */
  for (int f = 0; f < FRAMES; f++) {
    for (uint32_t i = 0; i < N; i++) {
      for (size_t k = 0; k < F; k++) {
        bool is_loud = (f >= 4 && f < 10) || (f >= 14 && f < 20 && !(f == 14 && k < 200));
        double a = is_loud ? loud : quiet;
        double t = (double)(f * F + (int)k) / 48000.0;
        x[i][k] = (float)(a * (1.5 + 0.5 * sin(2 * 3.141592653589793 * 300.0 * t + i)));
      }
      cr_assert_eq(parley__mixer_set_gain(m, i, f >= 4 && f < 20 ? 16.0f : 1.0f), 0);
      cr_assert_eq(parley__mixer_put(m, i, x[i], true), 0);
    }
    cr_assert_geq(parley__mixer_run(m), 0);
    bool all_transparent = true;
    for (int o = 0; o < OUTS; o++) {
      for (size_t k = 0; k < F; k++) {
        double s = 0;
        for (int j = 0; j < N; j++)
          if (j != o) s += (double)((f >= 4 && f < 20 ? 16.0f : 1.0f) * x[j][k]);
        ref[o][k] = s;
      }
      delay_ref(heard, prev[o], ref[o]);
      memcpy(prev[o], ref[o], sizeof ref[o]);
      const float *out = o == N ? parley__mixer_full(m) : parley__mixer_minus(m, (uint32_t)o);
      gains_of(g, out, heard);
      double peak = 0;
      for (size_t k = 0; k < F; k++) {
        cr_assert(fabsf(out[k]) <= CEILING, "frame %d out %d sample %zu: |%g| > ceiling", f, o, k,
                  (double)out[k]);
        if (isnan(g[k])) continue; /* the silence before the first frame */
        cr_assert(g[k] >= 0 && g[k] <= 1 + 1e-6, "frame %d out %d sample %zu: gain %g", f, o, k, g[k]);
        /* Smooth: a fall of at most 1 / D per sample, a rise of at most the release per block. */
        cr_assert(g[k] >= last_g[o] - 1.0 / D - 1e-5 && g[k] <= last_g[o] * (1 + (r_block - 1) / D) + 1e-5,
                  "frame %d out %d sample %zu: gain %g after %g", f, o, k, g[k], last_g[o]);
        last_g[o] = g[k];
        peak = fmax(peak, fabs(out[k]));
        if (fabs((double)out[k] - heard[k]) > 1e-6) all_transparent = false;
      }
      /* Not over-squashed: while loud, the output peaks close to the ceiling. */
      if ((f >= 5 && f < 10) || (f >= 15 && f < 20))
        cr_expect_gt(peak, 0.9 * C, "frame %d out %d peak %g", f, o, peak);
      /* Transparent before the first step, up to the look-ahead: the first loud sample reaches the
       * output at D, and the gain may start falling one block before it. */
      if (f < 4) cr_expect(all_transparent, "frame %d out %d altered while quiet", f, o);
    }
    if (f >= 20 && quiet_again < 0 && all_transparent) quiet_again = f;
  }
  /* Release: the full mix's gain fell to about C / 384 (three loud inputs peaking at 16 * 4 * 2), -52 dB;
   * rising 60 dB/s, it is back to 1 after about 0.86 s = 86 frames. */
  double loud_peak = N * 16 * loud * 2.0;
  double release_frames = 20 * log10(loud_peak / C) / PARLEY_MIXER_LIMIT_RELEASE_DB_S * 100.0;
  cr_assert_geq(quiet_again, 0, "the gain never came back to 1");
  cr_expect(quiet_again - 20 >= release_frames * 0.8 && quiet_again - 20 <= release_frames * 1.6 + 2,
            "transparent again after %d frames, want about %.0f", quiet_again - 20, release_frames);
  parley__mixer_free(m);
}

/* Forty loud, correlated inputs (sums reach about +-30): every output stays under the ceiling, each
 * sample is the exact sum scaled by a gain in (0, 1], and the loud part does drive the limiter. */
Test(mixer, limiter_bounds_many_loud_inputs) {
  enum { N = 40, FRAMES = 6 };
  parley__mixer *m = parley__mixer_new(N, F, 4);
  cr_assert_not_null(m);
  static float x[N][F];
  static double prev[N + 1][F];
  double ref[F], heard[F];
  size_t n_limited = 0;
  for (uint32_t i = 0; i < N; i++) cr_assert_eq(parley__mixer_add(m, i), 0);
  for (int f = 0; f < FRAMES; f++) {
    for (uint32_t i = 0; i < N; i++) {
      th_noise(x[i], F, 1000u * (unsigned)f + i, 0.3);
      for (size_t k = 0; k < F; k++) x[i][k] += 0.6f * sinf(2.0f * 3.14159265f * 3.0f * (float)k / F);
      cr_assert_eq(parley__mixer_put(m, i, x[i], true), 0);
    }
    cr_assert_geq(parley__mixer_run(m), 0);
    for (uint32_t listener = 0; listener <= N; listener++) {
      const float *out = listener == N ? parley__mixer_full(m) : parley__mixer_minus(m, listener);
      for (size_t k = 0; k < F; k++) {
        ref[k] = 0;
        for (uint32_t j = 0; j < N; j++)
          if (j != listener) ref[k] += x[j][k];
      }
      delay_ref(heard, prev[listener], ref);
      memcpy(prev[listener], ref, sizeof ref);
      for (size_t k = 0; k < F; k++) {
        cr_assert(fabsf(out[k]) <= CEILING, "|out| > ceiling: %g", (double)out[k]);
        cr_assert(out[k] * heard[k] >= 0 && fabs(out[k]) <= fabs(heard[k]) * (1 + 1e-6) + 1e-6,
                  "out %g for sum %g", (double)out[k], heard[k]);
        if (fabs(heard[k]) > 2.0) n_limited++;
      }
    }
  }
  cr_assert_gt(n_limited, (size_t)(N + 1) * F * FRAMES / 4, "the test must drive the limiter hard");
  parley__mixer_free(m);
}

/* Runs one frame where participant ids[i] plays noise at db[i] (NAN = no frame) with VAD voice[i]. */
static int step(parley__mixer *m, const uint32_t *ids, const double *db, const bool *voice, size_t n,
                unsigned long long seed) {
  float x[F];
  for (size_t i = 0; i < n; i++) {
    if (isnan(db[i])) continue;
    noise_db(x, F, seed * 131 + i, db[i]);
    cr_assert_eq(parley__mixer_put(m, ids[i], x, voice[i]), 0);
  }
  int rc = parley__mixer_run(m);
  cr_assert_geq(rc, 0);
  return rc;
}

Test(mixer, ranking_orders_by_level) {
  parley__mixer *m = parley__mixer_new(8, F, 3);
  cr_assert_not_null(m);
  const uint32_t ids[] = {11, 22, 33};
  double db[] = {-30, -10, -20};
  const bool voice[] = {true, true, true};
  for (int i = 0; i < 3; i++) cr_assert_eq(parley__mixer_add(m, ids[i]), 0);
  for (int f = 0; f < 50; f++) step(m, ids, db, voice, 3, (unsigned)f);
  uint32_t got[4] = {0};
  cr_assert_eq(parley__mixer_speakers(m, got, 4), 3);
  cr_expect_eq(got[0], 22);
  cr_expect_eq(got[1], 33);
  cr_expect_eq(got[2], 11);
  cr_expect_eq(parley__mixer_speakers(m, got, 1), 1, "cap truncates to the loudest");
  cr_expect_eq(got[0], 22);
  /* Measured levels track the inputs. */
  for (int i = 0; i < 3; i++) {
    float lvl;
    cr_assert_eq(parley__mixer_level_db(m, ids[i], &lvl), 0);
    cr_expect_float_eq(lvl, db[i], 0.5);
  }
  /* The quietest becomes the loudest: after a bounded time it moves to the top, in order. */
  db[0] = 0;
  int moved = -1;
  for (int f = 0; f < 100 && moved < 0; f++) {
    step(m, ids, db, voice, 3, 100u + (unsigned)f);
    cr_assert_eq(parley__mixer_speakers(m, got, 4), 3);
    if (got[0] == 11) moved = f;
  }
  cr_expect(moved >= 0 && moved < 60, "loud speaker reached the top after %d frames", moved);
  cr_expect_eq(got[1], 22);
  cr_expect_eq(got[2], 33);
  parley__mixer_free(m);
}

Test(mixer, vad_false_noise_not_ranked_above_talker) {
  parley__mixer *m = parley__mixer_new(4, F, 2);
  cr_assert_not_null(m);
  const uint32_t ids[] = {1, 2, 3};
  /* 2 is a loud noisy room with VAD false; 1 talks quietly; 3 is silent. */
  const double db[] = {-35, -15, NAN};
  const bool voice[] = {true, false, false};
  for (int i = 0; i < 3; i++) cr_assert_eq(parley__mixer_add(m, ids[i]), 0);
  for (int f = 0; f < 100; f++) {
    step(m, ids, db, voice, 3, (unsigned)f);
    uint32_t got[3];
    int n = parley__mixer_speakers(m, got, 3);
    cr_assert_eq(n, 1, "frame %d: %d speakers", f, n);
    cr_assert_eq(got[0], 1);
  }
  float l1, l2;
  parley__mixer_level_db(m, 1, &l1);
  parley__mixer_level_db(m, 2, &l2);
  cr_expect_gt(l2, l1 + 10, "the noise really is louder");
  parley__mixer_free(m);
}

/* Two talkers whose levels alternate around each other; counts top-1 changes and level crossings. */
static void alternate(int period, double half_gap_db, int frames, int *flips, int *crossings) {
  parley__mixer *m = parley__mixer_new(2, F, 1);
  cr_assert_not_null(m);
  const uint32_t ids[] = {5, 6};
  const bool voice[] = {true, true};
  cr_assert_eq(parley__mixer_add(m, 5), 0);
  cr_assert_eq(parley__mixer_add(m, 6), 0);
  uint32_t top = 0, got;
  int prev_sign = 0;
  *flips = *crossings = 0;
  for (int f = 0; f < frames; f++) {
    double s = (f / period) % 2 ? 1 : -1;
    double db[] = {-20 + s * half_gap_db, -20 - s * half_gap_db};
    step(m, ids, db, voice, 2, (unsigned)f);
    cr_assert_eq(parley__mixer_speakers(m, &got, 1), 1);
    if (f > 0 && got != top) (*flips)++;
    top = got;
    float a, b;
    parley__mixer_level_db(m, 5, &a);
    parley__mixer_level_db(m, 6, &b);
    int sign = a > b ? 1 : -1;
    if (prev_sign != 0 && sign != prev_sign) (*crossings)++;
    prev_sign = sign;
  }
  parley__mixer_free(m);
}

Test(mixer, hysteresis_near_equal_speakers_do_not_flicker) {
  int flips, crossings;
  /* +-1 dB swapping every frame, every 5 frames, every 20 frames. */
  const int periods[] = {1, 5, 20};
  for (int p = 0; p < 3; p++) {
    alternate(periods[p], 1.0, 1000, &flips, &crossings);
    cr_expect_gt(crossings, 20, "period %d: levels must cross often for the test to mean anything (%d)",
                 periods[p], crossings);
    cr_expect_leq(flips, 2, "period %d: top-1 flipped %d times over %d level crossings", periods[p], flips,
                  crossings);
  }
  /* Brief big leads (+-4 dB for 5 frames = 50 ms) are shorter than the hold: still no flicker. */
  alternate(5, 4.0, 1000, &flips, &crossings);
  cr_expect_gt(crossings, 20);
  cr_expect_leq(flips, 2, "brief leads flipped top-1 %d times", flips);
}

Test(mixer, louder_new_speaker_takes_over_and_silence_leaves) {
  parley__mixer *m = parley__mixer_new(4, F, 1);
  cr_assert_not_null(m);
  const uint32_t ids[] = {1, 2};
  double db[] = {-30, NAN};
  bool voice[] = {true, false};
  cr_assert_eq(parley__mixer_add(m, 1), 0);
  cr_assert_eq(parley__mixer_add(m, 2), 0);
  uint32_t got = 0;
  cr_assert_eq(step(m, ids, db, voice, 2, 0), 1, "first speaker appears: ranking changed");
  for (int f = 1; f < 100; f++) cr_assert_eq(step(m, ids, db, voice, 2, (unsigned)f), 0);
  cr_assert_eq(parley__mixer_speakers(m, &got, 1), 1);
  cr_assert_eq(got, 1);
  uint64_t epoch = parley__mixer_speakers_epoch(m);
  /* 2 starts talking 20 dB louder: not at once (hysteresis), but within hold + attack. */
  db[1] = -10;
  voice[1] = true;
  int took = -1;
  for (int f = 0; f < 200 && took < 0; f++) {
    int rc = step(m, ids, db, voice, 2, 200u + (unsigned)f);
    parley__mixer_speakers(m, &got, 1);
    if (got == 2) {
      took = f;
      cr_expect_eq(rc, 1, "run reports the change");
    } else {
      cr_expect_eq(rc, 0);
    }
  }
  const int hold = (PARLEY_MIXER_RANK_HOLD_MS * 48 + F - 1) / F;
  cr_expect(took >= hold - 1 && took <= hold + 10, "takeover after %d frames (hold %d)", took, hold);
  cr_expect_eq(parley__mixer_speakers_epoch(m), epoch + 1);
  /* 2 goes silent (VAD false): 1, still talking, is back on top within the VAD hangover (it may win
   * earlier by out-levelling 2's decaying level for the hold time). */
  db[1] = NAN;
  voice[1] = false;
  const int hangover = (PARLEY_MIXER_VAD_HANGOVER_MS * 48 + F - 1) / F;
  int back = -1;
  for (int f = 0; f < 200 && back < 0; f++) {
    step(m, ids, db, voice, 2, 500u + (unsigned)f);
    parley__mixer_speakers(m, &got, 1);
    if (got == 1) back = f;
  }
  cr_expect(back >= hold - 1 && back <= hangover + 1, "1 back on top after %d frames", back);
  /* 1 keeps its level but its VAD goes false: it leaves exactly when the hangover runs out. */
  voice[0] = false;
  int left = -1;
  for (int f = 0; f < 200 && left < 0; f++) {
    step(m, ids, db, voice, 2, 900u + (unsigned)f);
    if (parley__mixer_speakers(m, &got, 1) == 0) left = f;
  }
  cr_expect(left >= hangover - 1 && left <= hangover + 1, "left after %d frames (hangover %d)", left,
            hangover);
  parley__mixer_free(m);
}

Test(mixer, add_remove_between_frames) {
  parley__mixer *m = parley__mixer_new(3, F, 2);
  cr_assert_not_null(m);
  float a[F], b[F], c[F], d[F];
  th_noise(a, F, 1, 0.1);
  th_noise(b, F, 2, 0.1);
  th_noise(c, F, 3, 0.1);
  th_noise(d, F, 4, 0.1);
  cr_assert_eq(parley__mixer_add(m, 1), 0);
  cr_assert_eq(parley__mixer_add(m, 2), 0);
  cr_assert_eq(parley__mixer_add(m, 3), 0);
  cr_assert_eq(parley__mixer_add(m, 4), PARLEY_EFULL);
  parley__mixer_put(m, 1, a, true);
  parley__mixer_put(m, 2, b, true);
  parley__mixer_put(m, 3, c, true);
  parley__mixer_run(m);
  uint32_t got[3];
  cr_assert_eq(parley__mixer_speakers(m, got, 3), 2);
  uint32_t ranked = got[0];
  uint64_t epoch = parley__mixer_speakers_epoch(m);

  /* Remove a ranked participant between frames: gone from the ranking (epoch bumps) and the mixer. */
  cr_assert_eq(parley__mixer_remove(m, ranked), 0);
  cr_expect_eq(parley__mixer_speakers_epoch(m), epoch + 1);
  int n = parley__mixer_speakers(m, got, 3);
  for (int r = 0; r < n; r++) cr_expect_neq(got[r], ranked);
  cr_expect_null(parley__mixer_minus(m, ranked));
  cr_expect_eq(parley__mixer_remove(m, ranked), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__mixer_count(m), 2);

  /* A newcomer takes the free place; it hears silence until the next run, then the others. */
  cr_assert_eq(parley__mixer_add(m, 4), 0);
  const float *m4 = parley__mixer_minus(m, 4);
  cr_assert_not_null(m4);
  for (size_t k = 0; k < F; k++) cr_assert_eq(m4[k], 0.0f);
  const float *src[5] = {NULL, a, b, c, d};
  for (uint32_t id = 1; id <= 4; id++)
    if (id != ranked) parley__mixer_put(m, id, src[id], true);
  parley__mixer_run(m);
  for (uint32_t listener = 1; listener <= 4; listener++) {
    if (listener == ranked) continue;
    /* Heard D samples late: the first frame's mix of 1-3 (silence for the newcomer), then this one's. */
    double before[F], ref[F], heard[F];
    for (size_t k = 0; k < F; k++) {
      before[k] = ref[k] = 0;
      for (uint32_t j = 1; j <= 4; j++) {
        if (j != ranked && j != listener) ref[k] += src[j][k];
        if (j != 4 && listener != 4 && j != listener) before[k] += src[j][k];
      }
    }
    delay_ref(heard, before, ref);
    expect_close(parley__mixer_minus(m, listener), heard, F, 1e-6, "after add/remove");
  }
  /* The removed id can come back. */
  cr_expect_eq(parley__mixer_add(m, ranked), PARLEY_EFULL);
  cr_assert_eq(parley__mixer_remove(m, 4), 0);
  cr_expect_eq(parley__mixer_add(m, ranked), 0);
  parley__mixer_free(m);
}

/* Random add/remove churn against a shadow set: the id table (with deletion) never loses an id or
 * invents one, and outputs stay exact. */
Test(mixer, membership_churn) {
  enum { MAX = 16, OPS = 3000, ID_SPACE = 40 };
  parley__mixer *m = parley__mixer_new(MAX, F, 2);
  cr_assert_not_null(m);
  bool in[ID_SPACE] = {false};
  size_t count = 0;
  parley__rng rng;
  parley__rng_seed(&rng, 42);
  float x[F];
  for (int op = 0; op < OPS; op++) {
    uint32_t id = parley__rng_below(&rng, ID_SPACE) * 65537u; /* ids that collide in a small table */
    uint32_t k = id / 65537u;
    if (parley__rng_below(&rng, 2)) {
      int rc = parley__mixer_add(m, id);
      int want = in[k] ? PARLEY_EINVAL : count == MAX ? PARLEY_EFULL : 0;
      cr_assert_eq(rc, want, "op %d add %u: %d", op, id, rc);
      if (rc == 0) in[k] = true, count++;
    } else {
      int rc = parley__mixer_remove(m, id);
      cr_assert_eq(rc, in[k] ? 0 : PARLEY_ENOTFOUND, "op %d remove %u", op, id);
      if (rc == 0) in[k] = false, count--;
    }
    cr_assert_eq(parley__mixer_count(m), count);
    if (op % 100 == 0) {
      /* Everyone present plays a constant 0.01 * (k + 1) / MAX: each hears the others' sum. */
      double total = 0;
      for (uint32_t j = 0; j < ID_SPACE; j++) {
        cr_assert_eq(parley__mixer_minus(m, j * 65537u) != NULL, in[j]);
        if (!in[j]) continue;
        for (size_t s = 0; s < F; s++) x[s] = 0.01f * (float)(j + 1) / MAX;
        parley__mixer_put(m, j * 65537u, x, false);
        total += 0.01 * (j + 1) / MAX;
      }
      parley__mixer_run(m);
      for (uint32_t j = 0; j < ID_SPACE; j++) {
        if (!in[j]) continue;
        const float *o = parley__mixer_minus(m, j * 65537u);
        cr_assert(fabs(o[F / 2] - (total - 0.01 * (j + 1) / MAX)) < 1e-6);
      }
    }
  }
  parley__mixer_free(m);
}
