/* test_timescale.c: the WSOLA time-scaling stage on signals with known answers: a sine keeps its
 * frequency when shortened or lengthened and the cut equals its period; speech stretched then
 * accelerated comes back; splices make no clicks; expansion continues a periodic signal; a cut takes
 * as many whole periods as allowed; near-silence is cut by the most allowed without a step. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio_helpers.h"
#include "engine/timescale.h"
#include "parley/parley.h"

#define RATE 48000
#define FRAME 960

static parley__timescale *new_ts_max(size_t max_frame) {
  int err = 1;
  parley__timescale *ts = parley__timescale_new(max_frame, &err);
  cr_assert_not_null(ts);
  cr_assert_eq(err, 0);
  return ts;
}

static parley__timescale *new_ts(void) { return new_ts_max(FRAME); }

/* Upward zero crossings per second. */
static double crossing_hz(const float *x, size_t n) {
  size_t c = 0;
  for (size_t i = 1; i < n; i++) c += x[i - 1] < 0.0f && x[i] >= 0.0f;
  return (double)c * RATE / (double)n;
}

static float max_step(const float *x, size_t n) {
  float m = 0;
  for (size_t i = 1; i < n; i++) m = fmaxf(m, fabsf(x[i] - x[i - 1]));
  return m;
}

/* Runs a 220 Hz sine through accelerate (dir < 0) or stretch (dir > 0) frame by frame. */
static void sine_scaled(int dir) {
  enum { FRAMES = 100 };
  const double f = 220.0, period = RATE / f;
  float *x = malloc(FRAMES * FRAME * sizeof *x), *y = malloc(FRAMES * 2 * FRAME * sizeof *y);
  cr_assert(x && y);
  th_sine(x, FRAMES * FRAME, f, RATE, 0.5);
  parley__timescale *ts = new_ts();
  size_t out = 0;
  for (int k = 0; k < FRAMES; k++) {
    int m = dir < 0 ? parley__timescale_accelerate(ts, x + k * FRAME, FRAME, 240, y + out)
                    : parley__timescale_stretch(ts, x + k * FRAME, FRAME, 240, y + out);
    cr_assert_gt(m, 0);
    double changed = fabs((double)m - FRAME);
    /* The only lag in [120, 240] that matches a 220 Hz sine is its period, 218.2 samples. */
    cr_assert(fabs(changed - period) <= 1.0, "frame %d: changed by %.0f samples, period %.1f", k, changed, period);
    out += (size_t)m;
  }
  double r = fabs((double)out / (FRAMES * FRAME) - 1.0);
  cr_expect(fabs(r - period / FRAME) < 0.002, "length changed by %.4f, expected %.4f", r, period / FRAME);
  double hz = crossing_hz(y, out);
  cr_expect(fabs(hz - f) / f < 0.01, "frequency %.2f Hz after scaling, %.0f before", hz, f);
  float step_in = max_step(x, FRAMES * FRAME), step_out = max_step(y, out);
  cr_expect_leq(step_out, 1.05f * step_in, "largest sample step %.4f vs %.4f in the input", step_out, step_in);
  parley__timescale_free(ts);
  free(x);
  free(y);
}

Test(timescale, accelerated_sine_keeps_frequency_and_loses_whole_periods) { sine_scaled(-1); }
Test(timescale, stretched_sine_keeps_frequency_and_gains_whole_periods) { sine_scaled(1); }

Test(timescale, accelerate_cuts_as_many_whole_periods_as_allowed) {
  /* 200 Hz: period 240 samples. Allowed 600, the cut is two whole periods (480), not one, and not a
   * lag beside a period that a smooth sine would also match fairly well. */
  float x[FRAME], y[FRAME];
  th_sine(x, FRAME, 200.0, RATE, 0.5);
  parley__timescale *ts = new_ts();
  int m = parley__timescale_accelerate(ts, x, FRAME, 600, y);
  cr_expect_eq(m, FRAME - 480, "cut %d samples", FRAME - m);
  /* Whole periods out: the output is the sine itself, continuous through the splice. */
  float ref[FRAME];
  th_sine(ref, FRAME, 200.0, RATE, 0.5);
  cr_expect_geq(th_xcorr_at(ref, y, (size_t)m, 0), 0.999);
  cr_expect_leq(max_step(y, (size_t)m), 1.01f * max_step(x, FRAME));
  parley__timescale_free(ts);
}

Test(timescale, near_silent_frame_is_cut_by_the_most_allowed_without_a_step) {
  /* After a second of loud audio, a frame of faint noise (-40 dB under it) is near-silent: it has no
   * period to match, but a crossfade there is not heard, so the whole allowance goes. The same noise
   * at the speech level is left alone (no match, no cut). */
  enum { LOUD = RATE };
  float *loud = malloc(LOUD * sizeof *loud);
  cr_assert_not_null(loud);
  th_noise(loud, LOUD, 3, 0.3);
  parley__timescale *ts = new_ts();
  parley__timescale_played(ts, loud, LOUD);
  float faint[FRAME], y[FRAME];
  th_noise(faint, FRAME, 11, 0.003);
  cr_expect(parley__timescale_is_quiet(ts, faint, FRAME));
  cr_expect_not(parley__timescale_is_quiet(ts, loud, FRAME));
  int m = parley__timescale_accelerate(ts, faint, FRAME, 480, y);
  cr_expect_eq(m, FRAME - 480, "cut %d samples of near-silence", FRAME - m);
  /* The crossfade joins two pieces of the same faint noise: no step beyond the noise's own, and the
   * level stays that of the noise. */
  cr_expect_leq(max_step(y, (size_t)m), max_step(faint, FRAME) + 0.001f, "step %.5f vs %.5f", max_step(y, (size_t)m),
                max_step(faint, FRAME));
  cr_expect_leq(th_rms(y, (size_t)m), 1.2 * th_rms(faint, FRAME));
  cr_expect_eq(memcmp(y + 240, faint + 480 + 240, (size_t)(m - 240) * sizeof *y), 0, "after the fade: the frame's end");
  cr_expect_eq(parley__timescale_accelerate(ts, loud, FRAME, 480, y), FRAME, "loud noise: no cut");
  /* The level tracked decays: after 10 s of near-silence the faint frame is the level, not quiet. */
  for (int k = 0; k < 500; k++) parley__timescale_played(ts, faint, FRAME);
  cr_expect_not(parley__timescale_is_quiet(ts, faint, FRAME));
  parley__timescale_free(ts);
  free(loud);
}

Test(timescale, noise_is_left_alone) {
  float x[FRAME], y[2 * FRAME];
  th_noise(x, FRAME, 7, 0.5);
  parley__timescale *ts = new_ts();
  cr_expect_eq(parley__timescale_accelerate(ts, x, FRAME, 480, y), FRAME, "no periodicity: no cut");
  cr_expect_eq(memcmp(x, y, sizeof x), 0);
  cr_expect_eq(parley__timescale_stretch(ts, x, FRAME, 480, y), FRAME);
  parley__timescale_free(ts);
}

Test(timescale, speech_stretched_then_accelerated_matches_original) {
  size_t n = 0;
  int rate = 0;
  float *x = th_load_wav("speech_a_48k.wav", &n, &rate);
  cr_assert_not_null(x);
  cr_assert_eq(rate, RATE);
  parley__timescale *ts = new_ts_max(2 * FRAME);
  float s[2 * FRAME], y[2 * FRAME];
  size_t frames = n / FRAME, stretched = 0, restored = 0;
  double corr_sum = 0;
  float step_in = 0, step_out = 0;
  for (size_t k = 0; k < frames; k++) {
    const float *f = x + k * FRAME;
    if (th_rms(f, FRAME) < 0.01) continue; /* pauses */
    int m = parley__timescale_stretch(ts, f, FRAME, 480, s);
    cr_assert_geq(m, FRAME);
    step_in = fmaxf(step_in, max_step(f, FRAME));
    step_out = fmaxf(step_out, max_step(s, (size_t)m));
    if (m == FRAME) continue;
    stretched++;
    int back = parley__timescale_accelerate(ts, s, (size_t)m, (size_t)(m - FRAME), y);
    cr_assert_geq(back, FRAME);
    step_out = fmaxf(step_out, max_step(y, (size_t)back));
    if (back != FRAME) continue;
    restored++;
    corr_sum += th_xcorr_at(f, y, FRAME, 0);
  }
  cr_expect_gt(stretched, frames / 4, "%zu of %zu frames stretched", stretched, frames);
  cr_expect_gt(restored, stretched * 3 / 4, "%zu of %zu stretched frames restored exactly", restored, stretched);
  double mean = restored ? corr_sum / (double)restored : 0;
  cr_expect_geq(mean, 0.95, "mean correlation with the original %.3f", mean);
  cr_expect_leq(step_out, 1.2f * step_in, "no clicks: largest step %.3f vs %.3f in the speech", step_out, step_in);
  parley__timescale_free(ts);
  free(x);
}

Test(timescale, expand_continues_a_periodic_signal_then_fades) {
  enum { HISTN = 1920, EXP = 4800 };
  float x[HISTN + EXP], e[EXP];
  th_sine(x, HISTN + EXP, 200.0, RATE, 0.5);
  parley__timescale *ts = new_ts();
  parley__timescale_played(ts, x, HISTN);
  for (size_t k = 0; k < EXP; k += 480) {
    cr_assert_eq(parley__timescale_expand(ts, e + k, 480), 480);
    parley__timescale_played(ts, e + k, 480);
  }
  /* 200 Hz has period 240: the first 20 ms continue the sine exactly (phase and level). */
  cr_expect_geq(th_xcorr_at(x + HISTN, e, 960, 0), 0.999);
  cr_expect(fabsf(e[0] - x[HISTN]) < 0.01f, "join: %.4f vs %.4f", e[0], x[HISTN]);
  cr_expect_lt(th_rms(e + EXP - 480, 480), 0.5 * th_rms(e, 480), "a long expansion fades");
  /* Merging a frame with the opposite phase goes without a step. */
  float f[FRAME];
  th_sine(f, FRAME, 200.0, RATE, -0.5);
  float before = e[EXP - 1];
  parley__timescale_merge(ts, f, FRAME);
  cr_expect_leq(fabsf(f[0] - before), 0.05f, "merge join step");
  cr_expect_leq(max_step(f, FRAME), 1.1f * max_step(x, 960) + 0.01f);
  parley__timescale_free(ts);
}

Test(timescale, rejects_bad_arguments) {
  int err = 0;
  cr_expect_null(parley__timescale_new(100, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__timescale *ts = new_ts();
  float x[2 * FRAME] = {0}, y[4 * FRAME];
  cr_expect_eq(parley__timescale_accelerate(ts, x, 2 * FRAME, 240, y), PARLEY_EINVAL);
  cr_expect_eq(parley__timescale_accelerate(ts, x, FRAME, 240, x), PARLEY_EINVAL);
  cr_expect_eq(parley__timescale_accelerate(NULL, x, FRAME, 240, y), PARLEY_EINVAL);
  cr_expect_eq(parley__timescale_stretch(ts, NULL, FRAME, 240, y), PARLEY_EINVAL);
  cr_expect_eq(parley__timescale_expand(ts, NULL, 10), PARLEY_EINVAL);
  cr_expect_eq(parley__timescale_expand(ts, y, 2 * FRAME), PARLEY_EINVAL);
  /* Tiny frames fit no lag: passed through. */
  cr_expect_eq(parley__timescale_accelerate(ts, x, 200, 240, y), 200);
  parley__timescale_free(ts);
}
