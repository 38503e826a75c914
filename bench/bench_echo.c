/* bench_echo.c: `parley-bench echo`: how much echo the capture side removes in rooms like real ones,
 * and what it leaves of the near-end talker (issue "Echo cancellation in real rooms").
 *
 * Each room is a seeded statistical impulse response: a direct path 2 ms after the loudspeaker, then
 * exponentially decaying noise (a tap every 4 samples with random sign and size) reaching -60 dB at
 * RT60, and an optional bulk delay before it all (a sound card's or an OS mixer's buffering). Cases:
 * RT60 0.2, 0.4, 0.8 s; 100 and 150 ms of bulk delay at RT60 0.4 s; a loudspeaker driven 6 dB into soft
 * clipping (tanh) at RT60 0.4 s. The far end is speech_a, the near-end talker speech_b (both looped),
 * the echo at the microphone 4.5 dB above the talker (a laptop), plus a -70 dBFS noise floor.
 *
 * Timeline (20 s at 48 kHz, 10 ms frames, reference and capture perfectly aligned as the engine's
 * echo stage sees them when the device reports no extra delay): 0-8 s far end only (erle_db over 4-8
 * s: 10 log10 of microphone over output energy), 8-12 s double talk (near_corr_dt: the output's
 * correlation with the clean talker, pooled over 125 ms pieces each at its best lag within 40 ms (400
 * ms end to end: the receiver's time-scaling moves the lag within a second; half-second pieces read
 * 0.67 where these read 0.82), pauses skipped; near_level_dt_db: the talker's level
 * in the output against the clean talker, by least squares; dt_echo_return_db: what is left of the
 * output after taking that talker out, against the echo at the microphone), 12-16 s far end only again
 * (erle_after_dt_db over 13-16 s: does the canceller hold after double talk), 16-20 s near end only
 * (near_corr_near_only).
 *
 * Rows: "parley" is the engine's echo stage (engine/echo.h) with the engine's defaults, in 10 ms
 * blocks: speexdsp's canceller with a 300 ms filter placed by the echo delay estimator within a 500 ms
 * tail, the double-talk-aware residual echo suppressor, and speexdsp's preprocessor (spectral residual
 * echo and noise suppression). An erle_db above ~90 means the output was all zeros. --impl NAME runs
 * one row.
 * "speexdsp" calls the same library directly in the textbook way, with a tail covering the room's
 * RT60 plus its bulk delay (up to 1 s): what the library gives when it is told the room. "webrtc-ap" is
 * WebRTC's audio processing module 0.3 (bench/webrtc_ap.cc; when built with it) as browsers configure
 * it. These rows are measured on the stage's output before the encoder.
 *
 * "parley-e2e" is the whole call, through the public API: engine A (the far talker) calls engine B over
 * loopback, both in PARLEY_AUDIO_APP_CALLBACK with this thread as their sound cards at 10 ms deadlines
 * (real time, 22 s per room); B's microphone hears what B's loudspeaker played one period earlier
 * through the room, plus B's talker, and the figures are taken on what A hears (Opus, DTX, jitter
 * buffer and time-scaling included; lags searched up to 400 ms). "parley-e2e-off" is the same call with
 * B's echo cancellation off, in the first room (or the one --room names): the reference for
 * near_corr_near_only. Not timed. */
#define _GNU_SOURCE /* clock_nanosleep */
#include <math.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"
#include "bench/bench.h"
#include "engine/echo.h"
#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/xcorr.h"

#define RATE 48000
#define FRAME 480
#define SECONDS 20
#define TOTAL (RATE * SECONDS)
#define TAP_STEP 4            /* one reverberant tap every 4 samples */
#define ECHO_OVER_NEAR_DB 4.5 /* a laptop's loudspeaker into its own microphone */
#define E2E_MAX_LAG (RATE * 2 / 5) /* what A hears lags B's microphone by the call's latency */

typedef struct room_case {
  const char *name;
  double rt60_s;
  int bulk_ms;
  bool clip; /* loudspeaker 6 dB into tanh */
} room_case;

static const room_case CASES[] = {
    {"rt60_0.2", 0.2, 0, false},       {"rt60_0.4", 0.4, 0, false},       {"rt60_0.8", 0.8, 0, false},
    {"bulk_100ms", 0.4, 100, false},   {"bulk_150ms", 0.4, 150, false},   {"clip_6db", 0.4, 0, true},
};

typedef struct sparse_ir {
  size_t n;
  size_t *lag;
  float *gain;
} sparse_ir;

static int ir_make(sparse_ir *h, const room_case *c, uint64_t seed) {
  size_t bulk = (size_t)c->bulk_ms * RATE / 1000, len = (size_t)(c->rt60_s * RATE);
  size_t cap = 1 + len / TAP_STEP;
  h->lag = malloc(cap * sizeof *h->lag);
  h->gain = malloc(cap * sizeof *h->gain);
  if (!h->lag || !h->gain) return -1;
  parley__rng rng;
  parley__rng_seed(&rng, seed);
  h->n = 0;
  size_t direct = bulk + RATE * 2 / 1000;
  h->lag[h->n] = direct;
  h->gain[h->n++] = 1.0f;
  for (size_t t = TAP_STEP; t < len; t += TAP_STEP) {
    double env = exp(-6.908 * (double)t / (c->rt60_s * RATE)); /* -60 dB at RT60 */
    double u = 2 * parley__rng_uniform(&rng) - 1;
    h->lag[h->n] = direct + t;
    h->gain[h->n++] = (float)(0.35 * u * env);
  }
  return 0;
}

static void ir_free(sparse_ir *h) {
  free(h->lag);
  free(h->gain);
}

/* y = h * x (x and y n samples; y zeroed first). */
static void convolve(const sparse_ir *h, const float *x, float *y, size_t n) {
  memset(y, 0, n * sizeof *y);
  for (size_t k = 0; k < h->n; k++) {
    size_t lag = h->lag[k];
    float g = h->gain[k];
    for (size_t i = lag; i < n; i++) y[i] += g * x[i - lag];
  }
}

static double energy(const float *x, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) e += (double)x[i] * x[i];
  return e;
}

static float *looped(const float *clip, size_t n_clip, size_t from, size_t to) {
  float *x = calloc(TOTAL, sizeof *x);
  if (!x) return NULL;
  for (size_t i = from; i < to; i++) x[i] = clip[(i - from) % n_clip];
  return x;
}

/* One canceller run over the whole timeline: out = cancel(mic) with far as the reference. */
typedef void (*canceller_fn)(const room_case *c, const float *far, const float *mic, float *out);

static void run_parley(const room_case *c, const float *far, const float *mic, float *out) {
  (void)c;
  parley__echo_config ec;
  parley__echo_config_init(&ec);
  parley__echo *e = parley__echo_new(&ec, NULL);
  if (!e) {
    memset(out, 0, TOTAL * sizeof *out);
    return;
  }
  bool voice;
  for (size_t i = 0; i + FRAME <= TOTAL; i += FRAME) {
    parley__echo_playback(e, far + i, FRAME);
    parley__echo_capture(e, mic + i, out + i, &voice);
  }
  parley__echo_free(e);
}

static void run_speexdsp(const room_case *c, const float *far, const float *mic, float *out) {
  int tail_ms = (int)(c->rt60_s * 1000) + c->bulk_ms;
  if (tail_ms > 1000) tail_ms = 1000;
  SpeexEchoState *st = speex_echo_state_init(FRAME, RATE * tail_ms / 1000);
  SpeexPreprocessState *pp = speex_preprocess_state_init(FRAME, RATE);
  int rate = RATE;
  speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, st);
  spx_int16_t in[FRAME], ref[FRAME], e[FRAME];
  for (size_t i = 0; i + FRAME <= TOTAL; i += FRAME) {
    for (int k = 0; k < FRAME; k++) {
      float m = mic[i + k] * 32767.0f, f = far[i + k] * 32767.0f;
      in[k] = (spx_int16_t)(m > 32767 ? 32767 : m < -32768 ? -32768 : m);
      ref[k] = (spx_int16_t)(f > 32767 ? 32767 : f < -32768 ? -32768 : f);
    }
    speex_echo_cancellation(st, in, ref, e);
    speex_preprocess_run(pp, e);
    for (int k = 0; k < FRAME; k++) out[i + k] = (float)e[k] / 32768.0f;
  }
  speex_preprocess_state_destroy(pp);
  speex_echo_state_destroy(st);
}

#ifdef PARLEY_HAVE_WEBRTC_AP
int bench_webrtc_ap_run(const float *far, const float *mic, float *out, size_t total, int rate, int frame);

static void run_webrtc_ap(const room_case *c, const float *far, const float *mic, float *out) {
  (void)c;
  if (bench_webrtc_ap_run(far, mic, out, TOTAL, RATE, FRAME) != 0) memset(out, 0, TOTAL * sizeof *out);
}
#endif

typedef struct verdict {
  double erle_db, erle_after_dt_db, dt_echo_return_db, near_corr_dt, near_level_dt_db, near_corr_near_only;
} verdict;

#define S(sec) ((size_t)(sec) * RATE)

/* How the near-end talker comes out in out over [from, to): in pieces of PIECE samples (125 ms), each
 * at its own best lag in 0..max_lag (time-scaling in a jitter buffer moves the lag within a segment;
 * pieces where the talker is silent are skipped). Returns the pooled correlation; *gain: the
 * least-squares gain of near in out; *residual: what is left of out after taking gain * near out;
 * *lag_out: the median lag. */
#define PIECE (RATE / 8)
#define MAX_PIECES 40 /* a 4 s segment */
static double near_fit(const float *near, const float *out, size_t from, size_t to, long max_lag, double *gain,
                       double *residual, long *lag_out) {
  double xy = 0, xx = 0, yy = 0;
  long lags[MAX_PIECES];
  size_t n_lags = 0;
  typedef struct {
    size_t at;
    long lag;
  } piece;
  piece pcs[MAX_PIECES];
  for (size_t p = from; p + PIECE <= to && n_lags < MAX_PIECES; p += PIECE) {
    if (energy(near + p, PIECE) < 1e-4 * PIECE) continue; /* under -40 dBFS: a pause */
    double peak = 0;
    long lag = parley__xcorr_best_lag(near + p, PIECE, out + p, PIECE + (size_t)max_lag, max_lag, &peak);
    if (lag < 0) lag = 0;
    pcs[n_lags] = (piece){p, lag};
    lags[n_lags++] = lag;
    for (size_t i = 0; i < PIECE; i++) {
      double x = near[p + i], y = out[p + i + (size_t)lag];
      xy += x * y;
      xx += x * x;
      yy += y * y;
    }
  }
  *gain = xx > 0 ? xy / xx : 0;
  if (residual) {
    double r2 = 0;
    for (size_t k = 0; k < n_lags; k++)
      for (size_t i = 0; i < PIECE; i++) {
        double r = out[pcs[k].at + i + (size_t)pcs[k].lag] - *gain * near[pcs[k].at + i];
        r2 += r * r;
      }
    *residual = r2;
  }
  if (lag_out) { /* median, by insertion sort */
    for (size_t a = 1; a < n_lags; a++)
      for (size_t b = a; b > 0 && lags[b - 1] > lags[b]; b--) {
        long t = lags[b];
        lags[b] = lags[b - 1];
        lags[b - 1] = t;
      }
    *lag_out = n_lags ? lags[n_lags / 2] : 0;
  }
  return xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0;
}

/* out lags the microphone by up to max_lag (the stage's own delay; end to end, the call's). */
static void judge(const float *mic, const float *echo, const float *near, const float *out, long max_lag,
                  verdict *v) {
  double g, residual;
  long lag;
  v->near_corr_dt = near_fit(near, out, S(8), S(12), max_lag, &g, &residual, &lag);
  v->near_level_dt_db = 20 * log10(fabs(g) + 1e-12);
  v->dt_echo_return_db = 10 * log10(residual / (energy(echo + S(8), S(4)) + 1e-12));
  v->near_corr_near_only = near_fit(near, out, S(16), S(20) - (size_t)max_lag, max_lag, &g, NULL, NULL);
  v->erle_db = 10 * log10(energy(mic + S(4), S(4)) / (energy(out + S(4) + lag, S(4)) + 1e-12));
  v->erle_after_dt_db = 10 * log10(energy(mic + S(13), S(3)) / (energy(out + S(13) + lag, S(3)) + 1e-12));
}

/* ---- end to end: two engines, B in the room ---- */

static void sleep_until(struct timespec *t, long add_ns) {
  t->tv_nsec += add_ns;
  while (t->tv_nsec >= 1000000000L) {
    t->tv_nsec -= 1000000000L;
    t->tv_sec++;
  }
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL);
}

static int negotiate(parley_call *a, parley_call *b) {
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  if (parley_call_create_offer(a, offer, sizeof offer) < 0 || parley_call_set_local_description(a, offer) < 0 ||
      parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se) < 0 ||
      parley_call_create_answer(b, answer, sizeof answer) < 0 || parley_call_set_local_description(b, answer) < 0 ||
      parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se) < 0)
    return -1;
  return parley_call_start(a) < 0 || parley_call_start(b) < 0 ? -1 : 0;
}

static bool e2e_no_dtx; /* --no-dtx */

#define E2E_LEAD_S 2 /* periods run before the timeline: ICE connects, the jitter buffers settle */

/* A (the far talker) calls B over loopback; both engines in PARLEY_AUDIO_APP_CALLBACK, this thread
 * their sound cards at 10 ms deadlines (real time: the network threads are). A's microphone gets `far`;
 * B's gets what B's loudspeaker played one period earlier (tanh'd when the room clips) through the room
 * h scaled by g, plus `near` and the noise floor. Fills out (what A hears), mic and echo (B's). -1 if
 * the call could not be set up. */
static int run_e2e(const room_case *c, const sparse_ir *h, double g, bool aec, const float *far,
                   const float *near, float *out, float *mic, float *echo, float *played) {
  parley_engine_config ca;
  parley_engine_config_init(&ca);
  ca.audio = PARLEY_AUDIO_APP_CALLBACK;
  ca.frame_ms = 10;
  ca.loopback_candidates = true;
  ca.ipv6 = false;
  ca.echo_cancellation = false; /* A hears no echo: only B's stage is measured */
  ca.opus_dtx = !e2e_no_dtx;
  parley_engine_config cb = ca;
  cb.echo_cancellation = aec;
  parley_engine *ea = NULL, *eb = NULL;
  parley_call *a = NULL, *b = NULL;
  memset(played, 0, (TOTAL + FRAME) * sizeof *played);
  float zero[FRAME] = {0}, sink[FRAME];
  int rc = -1;
  if (parley_engine_new(&ca, &ea) < 0 || parley_engine_new(&cb, &eb) < 0 ||
      parley_call_new(ea, &a) < 0 || parley_call_new(eb, &b) < 0 || negotiate(a, b) < 0)
    goto out;
  parley__rng noise;
  parley__rng_seed(&noise, 77);
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  for (int k = 0; k < E2E_LEAD_S * RATE / FRAME; k++) {
    (void)parley_engine_process(ea, zero, sink, FRAME);
    (void)parley_engine_process(eb, zero, sink, FRAME);
    sleep_until(&t, 10 * 1000 * 1000L);
  }
  for (size_t n0 = 0; n0 + FRAME <= TOTAL; n0 += FRAME) {
    (void)parley_engine_process(ea, far + n0, out + n0, FRAME);
    float *e = echo + n0;
    memset(e, 0, FRAME * sizeof *e);
    for (size_t k = 0; k < h->n; k++) {
      size_t lag = h->lag[k];
      if (lag >= n0 + FRAME) continue;
      size_t i0 = lag > n0 ? lag - n0 : 0;
      float gk = (float)g * h->gain[k];
      for (size_t i = i0; i < FRAME; i++) e[i] += gk * played[n0 + i - lag];
    }
    for (size_t i = 0; i < FRAME; i++)
      mic[n0 + i] = e[i] + near[n0 + i] + (float)(3.16e-4 * (2 * parley__rng_uniform(&noise) - 1));
    (void)parley_engine_process(eb, mic + n0, played + n0 + FRAME, FRAME); /* plays next period */
    if (c->clip)
      for (size_t i = 0; i < FRAME; i++) played[n0 + FRAME + i] = tanhf(2.0f * played[n0 + FRAME + i]) / 2.0f;
    sleep_until(&t, 10 * 1000 * 1000L);
  }
  rc = 0;
out:
  if (a) (void)parley_call_hangup(a);
  parley_call_free(a);
  parley_call_free(b);
  parley_engine_free(ea);
  parley_engine_free(eb);
  return rc;
}

static void report(bench_report *rep, const char *room, const char *impl, const verdict *v) {
  bench_row_begin(rep);
  bench_field_str(rep, "room", room);
  bench_field_str(rep, "impl", impl);
  bench_field_num(rep, "erle_db", v->erle_db, 1);
  bench_field_num(rep, "erle_after_dt_db", v->erle_after_dt_db, 1);
  bench_field_num(rep, "dt_echo_return_db", v->dt_echo_return_db, 1);
  bench_field_num(rep, "near_corr_dt", v->near_corr_dt, 2);
  bench_field_num(rep, "near_level_dt_db", v->near_level_dt_db, 1);
  bench_field_num(rep, "near_corr_near_only", v->near_corr_near_only, 2);
  bench_row_end(rep);
}

static int run_echo(bench_report *rep, int argc, char **argv) {
  const char *only = NULL, *only_room = NULL;
  const parley__cli_opt opts[] = {
      {"room", PARLEY__CLI_STRING, &only_room, "NAME", "only this room (rt60_0.2 ... clip_6db) [all]", 0, 0},
      {"no-dtx", PARLEY__CLI_FLAG, &e2e_no_dtx, NULL, "end to end without Opus DTX (a diagnostic)", 0, 0},
      {"impl", PARLEY__CLI_STRING, &only, "NAME", "only this row: parley, speexdsp, webrtc-ap, parley-e2e or parley-e2e-off [all]", 0, 0},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  size_t na = 0, nb = 0;
  float *a = bench_load_clip("echo", "tests/data/speech_a_48k.wav", &na);
  float *b = bench_load_clip("echo", "tests/data/speech_b_48k.wav", &nb);
  float *far = a ? looped(a, na, 0, S(16)) : NULL;
  float *near = b ? looped(b, nb, S(8), S(20)) : NULL;
  float *spk = malloc(TOTAL * sizeof *spk), *echo = malloc(TOTAL * sizeof *echo);
  float *mic = malloc(TOTAL * sizeof *mic), *out = malloc(TOTAL * sizeof *out);
  float *mic2 = malloc(TOTAL * sizeof *mic2), *echo2 = malloc(TOTAL * sizeof *echo2);
  float *played = malloc((TOTAL + FRAME) * sizeof *played);
  if (!far || !near || !spk || !echo || !mic || !out || !mic2 || !echo2 || !played) return 1;
  for (size_t i = S(12); i < S(16); i++) near[i] = 0; /* 12-16 s: far end alone again */
  static const struct {
    const char *name;
    canceller_fn run;
  } impls[] = {
      {"parley", run_parley},
      {"speexdsp", run_speexdsp},
#ifdef PARLEY_HAVE_WEBRTC_AP
      {"webrtc-ap", run_webrtc_ap},
#endif
  };
  parley__rng noise;
  for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
    const room_case *c = &CASES[ci];
    if (only_room && strcmp(only_room, c->name) != 0) continue;
    sparse_ir h;
    if (ir_make(&h, c, 1000 + ci) < 0) return 1;
    for (size_t i = 0; i < TOTAL; i++) spk[i] = c->clip ? tanhf(2.0f * far[i]) / 2.0f : far[i];
    convolve(&h, spk, echo, TOTAL);
    /* Scale the echo to ECHO_OVER_NEAR_DB above the talker (both measured where they play). */
    double g = sqrt(energy(near + S(8), S(4)) / (energy(echo, S(8)) + 1e-12) * pow(10, ECHO_OVER_NEAR_DB / 10));
    parley__rng_seed(&noise, 77);
    for (size_t i = 0; i < TOTAL; i++) {
      echo[i] = (float)(echo[i] * g);
      mic[i] = echo[i] + near[i] + (float)(3.16e-4 * (2 * parley__rng_uniform(&noise) - 1));
    }
    for (size_t k = 0; k < sizeof impls / sizeof impls[0]; k++) {
      if (only && strcmp(only, impls[k].name) != 0) continue;
      impls[k].run(c, far, mic, out);
      verdict v;
      judge(mic, echo, near, out, RATE / 25, &v);
      report(rep, c->name, impls[k].name, &v);
    }
    /* End to end, on and (in the first room, for the near-end-only reference) off. */
    for (int aec = 1; aec >= (ci == 0 || only_room ? 0 : 1); aec--) {
      const char *name = aec ? "parley-e2e" : "parley-e2e-off";
      if (only && strcmp(only, name) != 0) continue;
      verdict v;
      if (run_e2e(c, &h, g, aec, far, near, out, mic2, echo2, played) < 0) {
        bench_note(rep, "%s %s: the call could not be set up", c->name, name);
        continue;
      }
      judge(mic2, echo2, near, out, E2E_MAX_LAG, &v);
      report(rep, c->name, name, &v);
      if (!aec) continue;
      /* The stage alone on the call's own signals: B's output stream (what it played one period later)
       * as the reference, B's microphone as the capture. Tells the stage from the codec path. */
      run_parley(c, played + FRAME, mic2, out);
      judge(mic2, echo2, near, out, RATE / 25, &v);
      report(rep, c->name, "parley-e2e-stage", &v);
    }
    ir_free(&h);
  }
  bench_note(rep, "20 s per room: far end only 0-8 s (erle_db over 4-8 s), double talk 8-12 s, far end only 12-16 s "
                  "(erle_after_dt_db over 13-16 s), near end only 16-20 s; echo %.1f dB above the talker",
             ECHO_OVER_NEAR_DB);
  bench_note(rep, "goal (issue 14, end to end): erle >= 25 dB, near_corr_dt >= 0.85 with its level within 2 dB, "
                  "near_corr_near_only within 0.03 of cancellation off (parley-e2e rows)");
#ifndef PARLEY_HAVE_WEBRTC_AP
  bench_note(rep, "webrtc-ap rows skipped: built without webrtc-audio-processing (Debian libwebrtc-audio-processing-dev)");
#endif
  free(a);
  free(b);
  free(far);
  free(near);
  free(spk);
  free(echo);
  free(mic);
  free(out);
  free(mic2);
  free(echo2);
  free(played);
  return 0;
}

BENCH_SUITE(echo, "echo",
            "echo removed and near-end talker kept in seeded statistical rooms (RT60 0.2-0.8 s, bulk delay, "
            "clipping): parley's echo stage beside speexdsp told the room and WebRTC's module",
            run_echo)
