/* app_callback.c: an app that owns the audio clock. With PARLEY_AUDIO_APP_CALLBACK the engine opens no
 * device: the app's own audio callback calls parley_engine_process() once per period with the captured
 * samples and gets back the samples to play, so capture and playout stay sample-locked (the echo
 * canceller's path never moves) and nothing waits in a ring between the app and the engine.
 *
 * Here one loop paced by the monotonic clock stands in for a sound card and drives two engines in one
 * process: the talker captures a 440 Hz tone, the listener captures silence, and they call each other
 * over loopback UDP (ICE + SDES-SRTP). The callback also measures how much of the listener's playout is
 * the talker's tone.
 *
 *   app_callback
 *
 * Exits 0 when the listener played the tone (half a second of playout that is mostly 440 Hz).
 * Bounded: about 6 s. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "example_util.h"

#define RATE_HZ 48000
#define FRAME_MS 20
#define PERIOD (RATE_HZ * FRAME_MS / 1000) /* samples per period: 960 */
#define TONE_HZ 440.0
#define BLOCK (RATE_HZ / 10) /* analysis block: 100 ms, a whole number of tone cycles */

static const double two_pi = 6.283185307179586;

typedef struct app {
  parley_engine *talker, *listener;
  /* State of the audio callback: touched only by the thread that runs it. */
  double phase;                                   /* of the talker's tone */
  float capture[PERIOD], talker_out[PERIOD], heard[PERIOD];
  double re, im, energy;                          /* Goertzel-style tone correlation over one block */
  size_t block_pos;
  size_t index;                                   /* sample index within the block, for the reference */
  int tone_blocks;                                /* blocks of the listener's playout that were the tone */
  int errors;                                     /* parley_engine_process failures */
  atomic_int listener_started;                    /* set by the dispatch thread: track-started */
} app;

/* The audio callback: what a sound card (JACK, ALSA, CoreAudio ...) would call once per period. It
 * follows the real-time rules: no allocation, lock, blocking, logging or system call, and
 * parley_engine_process is real-time safe. */
static void audio_callback(app *a) {
  for (int i = 0; i < PERIOD; i++) {
    a->capture[i] = (float)(0.3 * sin(a->phase));
    a->phase = fmod(a->phase + two_pi * TONE_HZ / RATE_HZ, two_pi);
  }
  if (parley_engine_process(a->talker, a->capture, a->talker_out, PERIOD) < 0) a->errors++;
  if (parley_engine_process(a->listener, NULL, a->heard, PERIOD) < 0) a->errors++; /* NULL: silence */

  /* How much of the listener's playout is a 440 Hz tone: its correlation with a 440 Hz sine and cosine
   * over a 100 ms block, as a share of the block's energy (1.0 for a pure tone at any phase). */
  for (int i = 0; i < PERIOD; i++) {
    double w = two_pi * TONE_HZ * (double)a->index++ / RATE_HZ;
    a->re += a->heard[i] * cos(w);
    a->im += a->heard[i] * sin(w);
    a->energy += (double)a->heard[i] * a->heard[i];
    if (++a->block_pos == BLOCK) {
      double tone = 2.0 * (a->re * a->re + a->im * a->im) / BLOCK; /* energy at 440 Hz */
      double rms = sqrt(a->energy / BLOCK);
      if (rms > 0.02 && tone > 0.8 * a->energy) a->tone_blocks++;
      a->re = a->im = a->energy = 0;
      a->block_pos = a->index = 0;
    }
  }
}

static void on_track_started(const parley_event *ev, void *user) {
  (void)ev;
  atomic_store(&((app *)user)->listener_started, 1); /* on the dispatch thread */
}

int main(void) {
  static app a; /* static: the buffers are larger than a comfortable stack frame */
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_APP_CALLBACK;
  cfg.device_rate_hz = RATE_HZ;
  cfg.frame_ms = FRAME_MS;
  cfg.loopback_candidates = true; /* stay on 127.0.0.1 */
  cfg.ipv6 = false;
  parley_engine_config talker_cfg = cfg;
  talker_cfg.noise_suppression = false; /* a steady tone is what a noise suppressor removes */
  if (check(parley_engine_new(&talker_cfg, &a.talker), "talker") < 0 ||
      check(parley_engine_new(&cfg, &a.listener), "listener") < 0)
    return 1;

  parley_call *tc, *lc;
  if (check(parley_call_new(a.talker, &tc), "call") < 0 || check(parley_call_new(a.listener, &lc), "call") < 0)
    return 1;
  int id = parley_call_on(lc, PARLEY_EVENT_TRACK_STARTED, on_track_started, &a);
  if (negotiate(tc, lc) < 0) /* in an app, the SDPs travel over its signalling channel */
    return 1;

  /* The app's audio clock: one callback every 20 ms on absolute deadlines, for at most 6 s, until the
   * listener has played half a second of the tone. Nothing moves until the app calls: before ICE
   * connects the engines simply send nothing. */
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (int period = 0; period < 6000 / FRAME_MS && a.tone_blocks < 5; period++) {
    next.tv_nsec += FRAME_MS * 1000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    audio_callback(&a);
  }

  parley_call_stats st;
  parley_call_get_stats(lc, &st);
  printf("listener: track-started %s, %llu packets received, %d x 100 ms of tone played, %d errors\n",
         atomic_load(&a.listener_started) ? "yes" : "no", (unsigned long long)st.packets_received, a.tone_blocks,
         a.errors);
  parley_call_hangup(tc);
  parley_call_off(lc, id);
  parley_call_free(tc);
  parley_call_free(lc);
  parley_engine_free(a.talker);
  parley_engine_free(a.listener);
  int ok = atomic_load(&a.listener_started) && a.tone_blocks >= 5 && a.errors == 0;
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
