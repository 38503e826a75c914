/* echo.h: the capture-side echo stage: acoustic echo canceller (speexdsp MDF) placed by an echo delay
 * estimator (echo_delay.h), a double-talk-aware residual echo suppressor (echo_suppress.h), then the
 * speexdsp preprocessor (its own spectral residual echo suppression, noise suppression, VAD, optional
 * AGC).
 *
 * The stage sees two streams at the same rate: what the speaker played (the far-end reference, handed
 * over with parley__echo_playback) and what the microphone picked up (processed frame by frame with
 * parley__echo_capture). The reference is kept in a circular buffer owned by the object and aligned to
 * the capture by stream position: capture sample k is cancelled against playback sample
 * k - far_delay - start, where far_delay = far_delay_ms of samples (what the caller knows: output
 * buffering, device latency) and start (0..tail_ms - filter_ms) is where the delay estimator found the
 * echo to begin, less 50 ms. The adaptive filter then models filter_ms of echo path from there: the
 * stage covers echo paths up to tail_ms (bulk delay included) with a filter that converges as fast as
 * a filter_ms one. The filter moves only when the echo's onset leaves it or 40 ms of it are wasted
 * before the onset, and after its first placement only while it does not cancel (each move costs a
 * re-convergence). Reference samples that are not there yet count
 * as silence (stats.ref_missing_samples).
 * Until the filter shows that there is echo (it takes several dB out of what the far end's talk
 * brings back; no echo at all with a headset, or a file as microphone), the stage passes the
 * microphone through unchanged but for noise suppression: the linear filter, the residual suppressor
 * and the preprocessor's echo suppression would otherwise take from a near talker they cannot tell
 * from echo. stats.echo_found says which.
 *
 * Threads: create/free on any thread (they allocate; NOT real-time safe). playback, capture, stats and
 * reset are called by one thread (the audio thread) and are real-time safe: no allocation, locks or
 * system calls.
 */
#ifndef PARLEY_ENGINE_ECHO_H
#define PARLEY_ENGINE_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__echo parley__echo;

typedef struct parley__echo_config {
  int rate_hz;          /* 48000 (engine rate) or 16000 */
  int frame_samples;    /* 5, 10 or 20 ms: 240/480/960 at 48 kHz, 80/160/320 at 16 kHz */
  int tail_ms;          /* longest echo path covered, bulk delay included, 10..2000; default 500 */
  int filter_ms;        /* adaptive filter length, 10..1000 (at most tail_ms); default 300. When shorter
                         * than tail_ms, a delay estimator (echo_delay.h) places it where the echo
                         * starts, up to tail_ms - filter_ms after the reference */
  int far_delay_ms;     /* reference-to-capture alignment delay, 0..1000; default 0 */
  bool aec;             /* run the echo canceller; default true */
  bool residual_echo_suppression; /* the suppressor and the preprocessor take out what the canceller
                                   * left (needs aec); true */
  int echo_suppress_db;         /* residual echo attenuation (both), -90..-1; default -40 */
  int echo_suppress_active_db;  /* the same while the near end talks, -90..-1; default -15 */
  bool noise_suppression;       /* default true */
  int noise_suppress_db;        /* maximum noise attenuation, -90..-1; default -15 */
  bool vad;             /* voice activity detection from the preprocessor's speech probability; default
                         * true (if false, capture reports voice=true) */
  bool agc;             /* automatic gain control; default false */
} parley__echo_config;

typedef struct parley__echo_stats {
  uint64_t frames;              /* capture frames processed */
  uint64_t ref_missing_samples; /* reference samples that had not been played (or were overwritten) when needed */
  bool last_voice;              /* VAD decision of the last frame */
  int64_t filter_start_samples; /* where the adaptive filter starts after the reference: far_delay plus
                                 * the delay estimator's placement */
  /* 10*log10(input energy / output energy), each smoothed over ~1 s of frames: an ERLE estimate while
   * only the far end talks (near-end speech and noise drag it towards 0). */
  double erle_db;
  bool echo_found;              /* the canceller is acting on echo it found (see the top) */
} parley__echo_stats;

/* Fills *cfg with the defaults above (48 kHz, 480-sample frames). */
void parley__echo_config_init(parley__echo_config *cfg);

/* Creates the stage from *cfg (copied). Returns NULL and sets *err (when non-NULL) to PARLEY_EINVAL for
 * a bad configuration, PARLEY_ENOMEM or PARLEY_EDSP on failure; *err = 0 on success. Not real-time safe. */
parley__echo *parley__echo_new(const parley__echo_config *cfg, int *err);
/* NULL is ignored. Not real-time safe. */
void parley__echo_free(parley__echo *e);

/* Records n samples (borrowed, copied) that were just sent to the speaker, any n. If more than the
 * buffer holds (far_delay + 1 s) arrive before captures consume them, the oldest are forgotten.
 * Returns 0 or PARLEY_EINVAL (NULL e, or NULL far with n > 0). Audio thread, real-time safe. */
int parley__echo_playback(parley__echo *e, const float *far, size_t n);

/* Processes one capture frame: near and out hold frame_samples samples (borrowed; they may be the
 * same buffer). Samples are clipped to [-1, 1]. *voice (when non-NULL) gets the VAD decision.
 * Returns 0 or PARLEY_EINVAL. Audio thread, real-time safe. */
int parley__echo_capture(parley__echo *e, const float *near, float *out, bool *voice);

/* Copies the statistics. Audio thread (or any thread while the stage is idle), real-time safe. */
void parley__echo_stats_get(const parley__echo *e, parley__echo_stats *st);

/* Forgets the adapted echo path, the reference history and the statistics (e.g. after a device change);
 * stream positions restart at 0. The preprocessor's noise estimate is kept (it re-adapts by itself and
 * speexdsp has no allocation-free way to clear it). Audio thread, real-time safe. */
void parley__echo_reset(parley__echo *e);

int parley__echo_frame_samples(const parley__echo *e);
/* The delay the stage adds to the capture stream, in samples: speexdsp's preprocessor overlaps
 * consecutive frames and so outputs each frame one frame late (frame_samples); 0 when the preprocessor
 * is not used (aec alone, or nothing enabled). Real-time safe. */
int parley__echo_delay_samples(const parley__echo *e);

#endif
