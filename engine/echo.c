/* echo.c: capture-side echo cancellation and preprocessing (see echo.h). Owns the speexdsp echo and
 * preprocessor states, the far-end reference ring and the int16 work frames, all allocated in
 * parley__echo_new; the per-frame calls only convert, copy and call into speexdsp (which works in
 * place on preallocated state), so they are real-time safe.
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

void parley__echo_config_init(parley__echo_config *cfg) {
  if (!cfg) return;
  *cfg = (parley__echo_config){
      .rate_hz = 48000,
      .frame_samples = 480,
      .tail_ms = 200,
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
  if (c->tail_ms < 10 || c->tail_ms > 1000) return false;
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
    bad |= speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, e->aec);
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
  e->delay_samples = (uint64_t)cfg->far_delay_ms * (uint64_t)cfg->rate_hz / 1000;
  /* Room for the alignment delay, one frame, and a second of playback running ahead of capture. */
  e->ref_cap = (size_t)e->delay_samples + frame + (size_t)cfg->rate_hz;
  e->ref_ring = calloc(e->ref_cap, sizeof *e->ref_ring);
  e->near16 = calloc(frame, sizeof *e->near16);
  e->far16 = calloc(frame, sizeof *e->far16);
  e->out16 = calloc(frame, sizeof *e->out16);
  *err = PARLEY_ENOMEM;
  if (!e->ref_ring || !e->near16 || !e->far16 || !e->out16) goto fail;
  *err = PARLEY_EDSP;
  if (cfg->aec) {
    int taps = cfg->tail_ms * (cfg->rate_hz / 1000);
    e->aec = speex_echo_state_init(cfg->frame_samples, taps);
    if (!e->aec) goto fail;
    spx_int32_t rate = cfg->rate_hz;
    if (speex_echo_ctl(e->aec, SPEEX_ECHO_SET_SAMPLING_RATE, &rate) != 0) goto fail;
  }
  if (needs_preprocessor(cfg)) {
    e->pp = speex_preprocess_state_init(cfg->frame_samples, cfg->rate_hz);
    if (!e->pp || setup_preprocessor(e) != 0) goto fail;
  }
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

/* Fills far16 with the reference for capture samples near_pos .. near_pos + frame. */
static void gather_reference(parley__echo *e) {
  size_t frame = (size_t)e->cfg.frame_samples;
  for (size_t i = 0; i < frame; i++) {
    uint64_t k = e->near_pos + i;
    float v = 0;
    if (k >= e->delay_samples) {
      uint64_t j = k - e->delay_samples;
      if (j < e->far_written && e->far_written - j <= e->ref_cap)
        v = e->ref_ring[j % e->ref_cap];
      else
        e->stats.ref_missing_samples++;
    }
    e->far16[i] = to_i16(v);
  }
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
    gather_reference(e);
    speex_echo_cancellation(e->aec, e->near16, e->far16, e->out16);
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
  memset(e->ref_ring, 0, e->ref_cap * sizeof *e->ref_ring);
  e->far_written = 0;
  e->near_pos = 0;
  e->in_energy = e->out_energy = 0;
  e->was_speech = false;
  memset(&e->stats, 0, sizeof e->stats);
}

int parley__echo_frame_samples(const parley__echo *e) { return e ? e->cfg.frame_samples : 0; }
int parley__echo_delay_samples(const parley__echo *e) { return e && e->pp ? e->cfg.frame_samples : 0; }
