#define _GNU_SOURCE
/* test_echo_call.c: echo cancellation end to end, through the public API. Two engines on 127.0.0.1
 * with PARLEY_AUDIO_APP_CALLBACK; this thread is both sound cards, calling parley_engine_process once
 * per 10 ms period, so each engine's capture and playout are sample-locked as on real hardware. A talks
 * (the speech clip); B's loudspeaker is coupled into B's microphone through a statistical room (a bulk
 * delay of 100 ms, as an OS mixer's buffering adds, then a direct path and exponentially decaying noise
 * with RT60 0.4 s), and nobody talks at B. Whatever A hears back is its own voice echoed by B's room.
 * With B's echo cancellation on, that echo must be far below what comes back with it off: the canceller
 * is fed B's real playout and aligned with B's real capture through the engine's threads and rings, and
 * must find the bulk delay itself. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/parley.h"
#include "tests/audio_helpers.h"
#include "tests/call_helpers.h"

#define RATE 48000
#define FRAME 480 /* 10 ms */
#define SECONDS 9
#define FRAMES (SECONDS * RATE / FRAME)
#define MEASURE_FROM_S 5 /* delay found (1-2 s), the filter placed and converged (~3 s) by then */
#define BULK_MS 100
#define RT60_S 0.4
#define TAP_STEP 8 /* one reverberant tap every 8 samples keeps the room cheap enough for real time */
#define ROOM_TAPS (1 + 19200 / TAP_STEP) /* RT60_S * RATE */

/* A sparse statistical room: the direct path BULK_MS + 2 ms after the loudspeaker at -15 dB, then a
 * tap every TAP_STEP samples of random sign and size under an envelope reaching -60 dB at RT60_S; the
 * echo comes out about 3 dB under the loudspeaker signal (louder, it clips the microphone, and no
 * linear canceller follows a clipped echo). Seeded, so every run hears the same room. */
typedef struct room {
  size_t lag[ROOM_TAPS];
  float gain[ROOM_TAPS];
  float hist[RATE]; /* circular, longer than the response */
  size_t pos;
} room;

static void room_init(room *r) {
  memset(r, 0, sizeof *r);
  unsigned long long s = 0x9e3779b97f4a7c15ull;
  size_t direct = RATE * (BULK_MS + 2) / 1000;
  r->lag[0] = direct;
  r->gain[0] = 0.18f;
  for (int i = 1; i < ROOM_TAPS; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = 2 * ((double)(s >> 11) / 9007199254740992.0) - 1;
    size_t t = (size_t)i * TAP_STEP;
    r->lag[i] = direct + t;
    r->gain[i] = (float)(0.09 * u * exp(-6.908 * (double)t / (RT60_S * RATE)));
  }
}

/* mic = the room's response to the loudspeaker signal spk (n samples). */
static void room_run(room *r, const float *spk, float *mic, size_t n) {
  const size_t len = sizeof r->hist / sizeof r->hist[0];
  for (size_t i = 0; i < n; i++) {
    r->hist[r->pos] = spk[i];
    float y = 0;
    for (int k = 0; k < ROOM_TAPS; k++) y += r->gain[k] * r->hist[(r->pos + len - r->lag[k]) % len];
    mic[i] = y;
    r->pos = (r->pos + 1) % len;
  }
}

static void sleep_until(struct timespec *t, long add_ns) {
  t->tv_nsec += add_ns;
  while (t->tv_nsec >= 1000000000L) {
    t->tv_nsec -= 1000000000L;
    t->tv_sec++;
  }
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL);
}

/* Energies from MEASURE_FROM_S on: what B played (A's voice at B's loudspeaker), what reached B's
 * microphone (the echo) and what A heard back. */
typedef struct echo_run {
  double b_played, b_mic, a_heard;
} echo_run;

static echo_run run_call(bool b_aec) {
  parley_engine_config ca, cb;
  parley_engine_config_init(&ca);
  ca.loopback_candidates = true;
  ca.ipv6 = false;
  ca.audio = PARLEY_AUDIO_APP_CALLBACK;
  ca.frame_ms = 10;
  cb = ca;
  cb.echo_cancellation = b_aec;
  parley_engine *ea, *eb;
  cr_assert_eq(parley_engine_new(&ca, &ea), 0);
  cr_assert_eq(parley_engine_new(&cb, &eb), 0);
  parley_call *a, *b;
  cr_assert_eq(parley_call_new(ea, &a), 0);
  cr_assert_eq(parley_call_new(eb, &b), 0);
  static char offer[8192], answer[8192];
  th_negotiate(a, b, offer, answer, sizeof offer);

  size_t nx;
  int rate;
  float *speech = th_load_wav("speech_a_48k.wav", &nx, &rate);
  cr_assert_not_null(speech);
  cr_assert_eq(rate, RATE);
  room rm;
  room_init(&rm);
  float spk[FRAME] = {0}, mic[FRAME], heard[FRAME];
  echo_run res = {0};
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  /* One period per iteration at absolute 10 ms deadlines (the network side runs in real time): A's
   * microphone gets the clip (looped); B's loudspeaker output of the last period comes back through the
   * room into B's microphone, one period later, as a sound card's would. */
  for (int i = 0; i < FRAMES; i++) {
    const float *talk = speech + ((size_t)i * FRAME) % (nx - FRAME);
    cr_assert_eq(parley_engine_process(ea, talk, heard, FRAME), 0);
    room_run(&rm, spk, mic, FRAME);
    cr_assert_eq(parley_engine_process(eb, mic, spk, FRAME), 0);
    if (i >= MEASURE_FROM_S * RATE / FRAME) {
      for (int k = 0; k < FRAME; k++) {
        res.b_played += (double)spk[k] * spk[k];
        res.b_mic += (double)mic[k] * mic[k];
        res.a_heard += (double)heard[k] * heard[k];
      }
    }
    sleep_until(&t, 10 * 1000 * 1000L);
  }
  free(speech);
  cr_expect_eq(parley_call_hangup(a), 0);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
  return res;
}

static double db(double num, double den) { return 10 * log10((num + 1e-12) / (den + 1e-12)); }

Test(echo_call, process_rejects_bad_input_and_wrong_mode) {
  parley_engine_config c;
  parley_engine_config_init(&c);
  c.audio = PARLEY_AUDIO_APP_CALLBACK;
  c.frame_ms = 10;
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&c, &e), 0);
  float buf[FRAME] = {0};
  cr_expect_eq(parley_engine_process(NULL, buf, buf, FRAME), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_process(e, buf, NULL, FRAME), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_process(e, buf, buf, FRAME - 1), PARLEY_EINVAL, "not one period");
  cr_expect_eq(parley_engine_process(e, buf, buf, 2 * FRAME), PARLEY_EINVAL, "not one period");
  for (int k = 0; k < FRAME; k++) buf[k] = 1.0f;
  cr_expect_eq(parley_engine_process(e, NULL, buf, FRAME), 0, "NULL capture is silence");
  for (int k = 0; k < FRAME; k++) cr_assert_eq(buf[k], 0.0f, "no call: the playout is silence");
  cr_expect_eq(parley_engine_push_capture(e, buf, FRAME), PARLEY_ESTATE);
  parley_engine_free(e);
  parley_engine_config bad = c;
  bad.echo_tail_ms = 5;
  cr_expect_eq(parley_engine_new(&bad, &e), PARLEY_EINVAL, "echo tail under 10 ms");
  bad.echo_tail_ms = 2001;
  cr_expect_eq(parley_engine_new(&bad, &e), PARLEY_EINVAL, "echo tail over 2 s");
  bad = c;
  bad.echo_delay_ms = -1;
  cr_expect_eq(parley_engine_new(&bad, &e), PARLEY_EINVAL, "negative echo delay");
  bad.echo_delay_ms = 1001;
  cr_expect_eq(parley_engine_new(&bad, &e), PARLEY_EINVAL, "echo delay over 1 s");
  cr_assert_eq(parley_engine_new(&c, &e), 0);
  cr_expect_eq(parley_engine_pull_playout(e, buf, FRAME), PARLEY_ESTATE);
  parley_engine_free(e);
  c.audio = PARLEY_AUDIO_APP;
  cr_assert_eq(parley_engine_new(&c, &e), 0);
  cr_expect_eq(parley_engine_process(e, buf, buf, FRAME), PARLEY_ESTATE, "ring app audio has no process");
  parley_engine_free(e);
}

Test(echo_call, b_cancels_its_room_echo_of_a, .timeout = 60) {
  echo_run off = run_call(false), on = run_call(true);
  cr_log_info("AEC off: B played %.2f, B's mic %.2f, A heard back %.4f", off.b_played, off.b_mic, off.a_heard);
  cr_log_info("AEC on:  B played %.2f, B's mic %.2f, A heard back %.4f", on.b_played, on.b_mic, on.a_heard);
  /* The call carried A's voice to B, and the room echoed it in both runs alike. */
  cr_assert_gt(off.b_played, 1.0, "B played A's speech");
  cr_assert_gt(on.b_played, 1.0, "B played A's speech");
  cr_expect_lt(fabs(db(on.b_mic, off.b_mic)), 3.0, "the room echo differs between runs: %.1f dB", db(on.b_mic, off.b_mic));
  /* Without cancellation the echo goes back to A (noise suppression leaves speech-like echo alone). */
  double leak_off = db(off.a_heard, off.b_mic), leak_on = db(on.a_heard, on.b_mic);
  cr_log_info("echo returned to A relative to B's microphone: off %.1f dB, on %.1f dB", leak_off, leak_on);
  cr_expect_gt(leak_off, -10.0, "without AEC the echo should come back: %.1f dB", leak_off);
  /* With it, at least 20 dB less comes back (measured 24.9 .. 43.7 dB over runs; parley-bench echo
   * holds issue 14's 25 dB goal for steady state). */
  cr_expect_gt(leak_off - leak_on, 20.0, "echo returned with AEC %.1f dB, without %.1f dB", leak_on, leak_off);
}
