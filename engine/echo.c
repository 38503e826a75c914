/* echo.c: capture-side echo cancellation and preprocessing (see echo.h). Owns the speexdsp echo and
 * preprocessor states, the delay estimator, the residual echo suppressor, the far-end reference ring
 * and the work frames, all allocated in parley__echo_new; the per-frame calls (audio thread) only
 * convert, copy, do arithmetic and call into speexdsp (which works in place on preallocated state), so
 * they are real-time safe.
 *
 * Alignment is by absolute stream position, not by "what is in the buffer now": playback advances
 * far_written, capture advances near_pos, and capture sample k reads reference sample k - delay from
 * the ring if it is still there. A late or bursty playback call therefore never shifts the alignment;
 * it only makes some reference samples missing (treated as silence and counted).
 */
#include "engine/echo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include "base/thread_check.h"
#include "engine/echo_delay.h"
#include "engine/echo_suppress.h"
#include "parley/parley.h"

struct parley__echo {
  parley__owner owner; /* debug builds: the audio thread (playback and capture) */
  parley__echo_config cfg;
  SpeexEchoState *aec;             /* NULL when cfg.aec is off */
  SpeexPreprocessState *pp;        /* NULL when nothing in the preprocessor is enabled */
  float *ref_ring;                 /* far-end history, ref_cap samples */
  size_t ref_cap;
  uint64_t far_written;            /* playback samples recorded since create/reset */
  uint64_t near_pos;               /* capture samples processed since create/reset */
  uint64_t delay_samples;          /* far_delay_ms in samples */
  parley__echo_delay *est;         /* echo delay estimator; NULL when the filter covers the whole tail */
  uint64_t shift;                  /* where the filter starts after delay_samples (from est) */
  uint64_t max_shift;              /* tail - filter, in samples */
  bool placed;                     /* the estimator has placed the filter once */
  float *far_raw, *near_raw;       /* one frame each: the estimator's inputs */
  parley__echo_suppress sup;       /* residual echo suppressor (cfg.residual_echo_suppression) */
  int far_quiet_frames;            /* frames since the reference last carried sound */
  int far_span_frames;             /* frames the filter and a reverberant tail span */
  bool echo_found;                 /* the filter has recently taken real echo out (see echo_gate) */
  int found_frames_left;           /* far-active frames without such evidence before echo_found ends */
  int found_hold_frames;           /* what found_frames_left restarts from: ECHO_FOUND_HOLD_MS of frames */
  double reduction_db;             /* the filter's average reduction over heard far-active frames */
  float gate_mix;                  /* weight of the canceller's output against the microphone, 0..1 */
  spx_int16_t *near16, *far16, *out16; /* one frame each */
  double in_energy, out_energy;    /* smoothed per-frame energies for the ERLE estimate */
  double smooth;                   /* smoothing weight of the newest frame */
  bool was_speech;                 /* VAD hysteresis state */
  parley__echo_stats stats;
};

/* Speech-probability thresholds (percent) for the VAD: start above the first, stay above the second.
 * They are speexdsp's own defaults for its VAD; we apply them ourselves to the probability the
 * preprocessor computes anyway, because turning speexdsp's VAD on prints a warning to stderr inside
 * the host application. */
#define VAD_START_PCT 35
#define VAD_CONTINUE_PCT 20

#define ECHO_FOUND_HOLD_MS 10000 /* how long echo once found is assumed (see echo_gate) */

void parley__echo_config_init(parley__echo_config *cfg) {
  if (!cfg) return;
  *cfg = (parley__echo_config){
      .rate_hz = 48000,
      .frame_samples = 480,
      .tail_ms = 500,
      .filter_ms = 300,
      .far_delay_ms = 0,
      .aec = true,
      .residual_echo_suppression = true,
      .echo_suppress_db = -40,
      .echo_suppress_active_db = -15,
      .noise_suppression = true,
      .noise_suppress_db = -15,
      .vad = true,
      .agc = false,
  };
}

static bool db_ok(int db) { return db >= -90 && db <= -1; }

static bool config_ok(const parley__echo_config *c) {
  if (c->rate_hz != 48000 && c->rate_hz != 16000) return false;
  int per_5ms = c->rate_hz / 200;
  if (c->frame_samples != per_5ms && c->frame_samples != 2 * per_5ms && c->frame_samples != 4 * per_5ms)
    return false;
  if (c->tail_ms < 10 || c->tail_ms > 2000) return false;
  if (c->filter_ms < 10 || c->filter_ms > 1000) return false;
  if (c->far_delay_ms < 0 || c->far_delay_ms > 1000) return false;
  if (!db_ok(c->echo_suppress_db) || !db_ok(c->echo_suppress_active_db) || !db_ok(c->noise_suppress_db))
    return false;
  return true;
}

static bool needs_preprocessor(const parley__echo_config *c) {
  return (c->aec && c->residual_echo_suppression) || c->noise_suppression || c->vad || c->agc;
}

static int setup_preprocessor(parley__echo *e) {
  const parley__echo_config *c = &e->cfg;
  SpeexPreprocessState *pp = e->pp;
  spx_int32_t on = 1, off = 0, v;
  int bad = 0;
  bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_DENOISE, c->noise_suppression ? &on : &off);
  v = c->noise_suppress_db;
  bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &v);
  /* No SPEEX_PREPROCESS_SET_VAD: it is off by default, and any call to it prints (see VAD_START_PCT). */
  bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_AGC, c->agc ? &on : &off);
  bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_DEREVERB, &off);
  if (c->aec && c->residual_echo_suppression) {
    /* The echo state is linked once the canceller finds echo (echo_gate). */
    bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, NULL);
    v = c->echo_suppress_db;
    bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &v);
    v = c->echo_suppress_active_db;
    bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, &v);
  }
  return bad ? PARLEY_EDSP : 0;
}

parley__echo *parley__echo_new(const parley__echo_config *cfg, int *err) {
  int dummy;
  if (!err) err = &dummy;
  if (!cfg || !config_ok(cfg)) {
    *err = PARLEY_EINVAL;
    return NULL;
  }
  parley__echo *e = calloc(1, sizeof *e);
  if (!e) {
    *err = PARLEY_ENOMEM;
    return NULL;
  }
  e->cfg = *cfg;
  size_t frame = (size_t)cfg->frame_samples;
  if (e->cfg.filter_ms > e->cfg.tail_ms) e->cfg.filter_ms = e->cfg.tail_ms;
  e->delay_samples = (uint64_t)cfg->far_delay_ms * (uint64_t)cfg->rate_hz / 1000;
  e->max_shift = (uint64_t)(e->cfg.tail_ms - e->cfg.filter_ms) * (uint64_t)cfg->rate_hz / 1000;
  /* Room for the alignment delay, the tail, one frame, and a second of playback running ahead of capture. */
  e->ref_cap = (size_t)e->delay_samples + (size_t)e->max_shift + frame + (size_t)cfg->rate_hz;
  e->ref_ring = calloc(e->ref_cap, sizeof *e->ref_ring);
  e->near16 = calloc(frame, sizeof *e->near16);
  e->far16 = calloc(frame, sizeof *e->far16);
  e->out16 = calloc(frame, sizeof *e->out16);
  *err = PARLEY_ENOMEM;
  if (!e->ref_ring || !e->near16 || !e->far16 || !e->out16) goto fail;
  *err = PARLEY_EDSP;
  if (cfg->aec && e->max_shift > 0) {
    e->est = parley__echo_delay_new(cfg->rate_hz, e->cfg.tail_ms);
    e->far_raw = calloc(frame, sizeof *e->far_raw);
    e->near_raw = calloc(frame, sizeof *e->near_raw);
    *err = PARLEY_ENOMEM;
    if (!e->est || !e->far_raw || !e->near_raw) goto fail;
    *err = PARLEY_EDSP;
  }
  if (cfg->aec) {
    int taps = e->cfg.filter_ms * (cfg->rate_hz / 1000);
    e->aec = speex_echo_state_init(cfg->frame_samples, taps);
    if (!e->aec) goto fail;
    spx_int32_t rate = cfg->rate_hz;
    if (speex_echo_ctl(e->aec, SPEEX_ECHO_SET_SAMPLING_RATE, &rate) != 0) goto fail;
  }
  if (needs_preprocessor(cfg)) {
    e->pp = speex_preprocess_state_init(cfg->frame_samples, cfg->rate_hz);
    if (!e->pp || setup_preprocessor(e) != 0) goto fail;
  }
  parley__echo_suppress_init(&e->sup, cfg->rate_hz, frame, cfg->echo_suppress_db);
  /* The echo lasts the filter's length and then a reverberant tail: 1 s more. */
  e->far_span_frames = (int)(((size_t)e->cfg.filter_ms + 1000) * (size_t)cfg->rate_hz / 1000 / frame);
  e->found_hold_frames = (int)((size_t)ECHO_FOUND_HOLD_MS * (size_t)cfg->rate_hz / 1000 / frame);
  e->far_quiet_frames = e->far_span_frames;
  e->smooth = (double)frame / cfg->rate_hz; /* ~1 s time constant */
  *err = 0;
  return e;
fail:
  parley__echo_free(e);
  return NULL;
}

void parley__echo_free(parley__echo *e) {
  if (!e) return;
  if (e->pp) speex_preprocess_state_destroy(e->pp);
  if (e->aec) speex_echo_state_destroy(e->aec);
  parley__echo_delay_free(e->est);
  free(e->far_raw);
  free(e->near_raw);
  free(e->ref_ring);
  free(e->near16);
  free(e->far16);
  free(e->out16);
  free(e);
}

int parley__echo_playback(parley__echo *e, const float *far, size_t n) {
  if (!e || (!far && n > 0)) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&e->owner, "parley__echo_playback (the audio thread's)");
  /* Only the newest ref_cap samples can ever be read again. */
  size_t skip = n > e->ref_cap ? n - e->ref_cap : 0;
  uint64_t pos = e->far_written + skip;
  for (size_t i = skip; i < n; i++, pos++) e->ref_ring[pos % e->ref_cap] = far[i];
  e->far_written += n;
  return 0;
}

static spx_int16_t to_i16(float x) {
  float v = x * 32768.0f;
  if (!(v == v)) return 0; /* NaN */
  if (v >= 32767.0f) return 32767;
  if (v <= -32768.0f) return -32768;
  return (spx_int16_t)lrintf(v);
}

/* The reference sample for capture position k, `delay` samples back; missing ones are silence. */
static float reference_at(parley__echo *e, uint64_t k, uint64_t delay, bool count) {
  if (k < delay) return 0;
  uint64_t j = k - delay;
  if (j < e->far_written && e->far_written - j <= e->ref_cap) return e->ref_ring[j % e->ref_cap];
  if (count) e->stats.ref_missing_samples++;
  return 0;
}

/* The filter's echo return (echo_suppress.h's leak) below which it is cancelling: -10 dB. */
#define FILTER_WORKS_DB (-10.0)

/* Feeds the delay estimator this frame and moves the filter to its estimate: the filter starts 50 ms
 * before the echo's onset (so the direct path is inside it), within 0..max_shift. */
static void track_delay(parley__echo *e, const float *near) {
  size_t frame = (size_t)e->cfg.frame_samples;
  for (size_t i = 0; i < frame; i++) {
    e->far_raw[i] = reference_at(e, e->near_pos + i, e->delay_samples, false);
    e->near_raw[i] = near[i];
  }
  parley__echo_delay_update(e->est, e->far_raw, e->near_raw, frame);
  long onset = parley__echo_delay_get(e->est);
  if (onset < 0) return;
  long margin = e->cfg.rate_hz / 20; /* 50 ms: the estimate jitters, and a long tail drags it late */
  uint64_t want = onset > margin ? (uint64_t)(onset - margin) : 0;
  if (want > e->max_shift) want = e->max_shift;
  /* Moving the filter costs a re-convergence, with echo getting through meanwhile: move only when the
   * onset left it (an earlier echo) or more than 40 ms of it sits before the onset (a later one; the
   * estimate jitters by a few blocks), and after the first placement only while the filter does not
   * cancel (a peak of the speech's own rhythm can move the estimate under a filter that works). */
  uint64_t slack = (uint64_t)e->cfg.rate_hz / 25;
  bool moved = (want < e->shift && (uint64_t)onset < e->shift) || want > e->shift + slack;
  if (moved && (!e->placed || e->sup.leak_db > FILTER_WORKS_DB)) {
    e->placed = true;
    e->shift = want;
    /* What the filter learnt belongs to the old placement; speexdsp adapts faster from scratch than
     * from a filter that is wrong everywhere (its step size follows its own estimate of how well it
     * does). The reset only clears preallocated state. */
    speex_echo_state_reset(e->aec);
  }
  e->stats.filter_start_samples = (int64_t)(e->delay_samples + e->shift);
}

/* Echo is there when the filter takes it out: over blocks the far end talked into and the microphone
 * heard something in (above -60 dBFS), the output's level below the microphone's, in dB and averaged
 * over ~200 ms of such blocks, exceeds 4 dB. An uncorrelated near talker cannot be predicted from the
 * reference, so a filter adapting on one (a headset, a file as microphone) takes a block's worth out
 * now and then, never for long: that average peaked at 1.8 dB in test_echo's no-echo cases, while a
 * room's echo passes 4 dB within 0.4 s (2.7-3 s behind 100-150 ms of bulk delay, where the filter is
 * placed first). The evidence holds for 10 s of far-end activity, which spans the near-end pauses
 * that show it again in long double talk. */
#define ECHO_FOUND_DB 4.0
#define ECHO_FOUND_RATE 0.05
#define ECHO_FOUND_FLOOR 1073.0 /* -60 dBFS per sample, int16 units squared */
/* Without echo the canceller, the suppressor and the preprocessor's echo suppression leave the
 * microphone alone (the filter keeps adapting); the switch is a crossfade over one block. */
static void echo_gate(parley__echo *e, double ein, bool far_active) {
  size_t frame = (size_t)e->cfg.frame_samples;
  double eout = 0;
  for (size_t i = 0; i < frame; i++) eout += (double)e->out16[i] * e->out16[i];
  bool was = e->echo_found, heard = far_active && ein > ECHO_FOUND_FLOOR * (double)frame;
  if (heard) {
    double r = 10 * log10(ein / (eout + 1));
    r = r < -10 ? -10 : r > 30 ? 30 : r; /* one odd block moves the average a little, never far */
    e->reduction_db += ECHO_FOUND_RATE * (r - e->reduction_db);
  }
  if (heard && e->reduction_db > ECHO_FOUND_DB) {
    e->echo_found = true;
    e->found_frames_left = e->found_hold_frames;
  } else if (far_active && e->echo_found && --e->found_frames_left <= 0) {
    e->echo_found = false;
  }
  e->stats.echo_found = e->echo_found;
  if (e->pp && e->cfg.residual_echo_suppression && e->echo_found != was)
    speex_preprocess_ctl(e->pp, SPEEX_PREPROCESS_SET_ECHO_STATE, e->echo_found ? e->aec : NULL);
}

static void echo_mix(parley__echo *e) {
  size_t frame = (size_t)e->cfg.frame_samples;
  float from = e->gate_mix, to = e->echo_found ? 1.0f : 0.0f;
  if (from == 1.0f && to == 1.0f) return;
  for (size_t i = 0; i < frame; i++) {
    float w = from + (to - from) * (float)(i + 1) / (float)frame;
    e->out16[i] = (spx_int16_t)lrintf(w * e->out16[i] + (1 - w) * e->near16[i]);
  }
  e->gate_mix = to;
}

/* Fills far16 with the reference for capture samples near_pos .. near_pos + frame; follows whether
 * any of it carried sound (above -70 dBFS) within the filter's span. */
static void gather_reference(parley__echo *e) {
  size_t frame = (size_t)e->cfg.frame_samples;
  double energy = 0;
  for (size_t i = 0; i < frame; i++) {
    e->far16[i] = to_i16(reference_at(e, e->near_pos + i, e->delay_samples + e->shift, true));
    energy += (double)e->far16[i] * e->far16[i];
  }
  if (energy > 100.0 * (double)frame) e->far_quiet_frames = 0;
  else if (e->far_quiet_frames < e->far_span_frames) e->far_quiet_frames++;
}

int parley__echo_capture(parley__echo *e, const float *near, float *out, bool *voice) {
  if (!e || !near || !out) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&e->owner, "parley__echo_capture (the audio thread's)");
  size_t frame = (size_t)e->cfg.frame_samples;
  double ein = 0, eout = 0;
  for (size_t i = 0; i < frame; i++) {
    e->near16[i] = to_i16(near[i]);
    ein += (double)e->near16[i] * e->near16[i];
  }
  spx_int16_t *res = e->near16;
  if (e->aec) {
    if (e->est) track_delay(e, near);
    gather_reference(e);
    speex_echo_cancellation(e->aec, e->near16, e->far16, e->out16);
    bool far_active = e->far_quiet_frames < e->far_span_frames;
    echo_gate(e, ein, far_active);
    /* Run without residual suppression too: track_delay reads its leak (how well the filter does). */
    parley__echo_suppress_run(&e->sup, e->near16, e->out16, far_active,
                              e->cfg.residual_echo_suppression && e->echo_found);
    echo_mix(e);
    res = e->out16;
  }
  bool vad = true;
  if (e->pp) {
    speex_preprocess_run(e->pp, res);
    if (e->cfg.vad) {
      spx_int32_t prob = 0;
      speex_preprocess_ctl(e->pp, SPEEX_PREPROCESS_GET_PROB, &prob);
      vad = prob > VAD_START_PCT || (e->was_speech && prob > VAD_CONTINUE_PCT);
      e->was_speech = vad;
    }
  }
  for (size_t i = 0; i < frame; i++) {
    out[i] = (float)res[i] * (1.0f / 32768.0f);
    eout += (double)res[i] * res[i];
  }
  e->near_pos += frame;
  e->in_energy += e->smooth * (ein - e->in_energy);
  e->out_energy += e->smooth * (eout - e->out_energy);
  e->stats.frames++;
  e->stats.last_voice = vad;
  e->stats.erle_db = 10 * log10((e->in_energy + 1e-3) / (e->out_energy + 1e-3));
  if (voice) *voice = vad;
  return 0;
}

void parley__echo_stats_get(const parley__echo *e, parley__echo_stats *st) {
  if (!st) return;
  if (!e) {
    memset(st, 0, sizeof *st);
    return;
  }
  *st = e->stats;
}

void parley__echo_reset(parley__echo *e) {
  if (!e) return;
  if (e->aec) speex_echo_state_reset(e->aec);
  parley__echo_delay_reset(e->est);
  parley__echo_suppress_reset(&e->sup);
  e->far_quiet_frames = e->far_span_frames;
  e->echo_found = false;
  e->found_frames_left = 0;
  e->reduction_db = 0;
  e->gate_mix = 0;
  if (e->pp && e->cfg.residual_echo_suppression)
    speex_preprocess_ctl(e->pp, SPEEX_PREPROCESS_SET_ECHO_STATE, NULL);
  e->shift = 0;
  e->placed = false;
  memset(e->ref_ring, 0, e->ref_cap * sizeof *e->ref_ring);
  e->far_written = 0;
  e->near_pos = 0;
  e->in_energy = e->out_energy = 0;
  e->was_speech = false;
  memset(&e->stats, 0, sizeof e->stats);
}

int parley__echo_frame_samples(const parley__echo *e) { return e ? e->cfg.frame_samples : 0; }
int parley__echo_delay_samples(const parley__echo *e) { return e && e->pp ? e->cfg.frame_samples : 0; }
