/* recv_chain.c: the playout half of a call (see pipeline.h). Owns its jitter buffer, Opus decoder and
 * output resampler and every buffer they need, allocated at create. put() and process() run on the
 * audio thread and are real-time safe. */
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "engine/resampler.h"
#include "engine/sample_fifo.h"
#include "parley/parley.h"

struct parley__recv_chain {
  parley__jitter *jitter;
  parley__decoder *decoder;
  parley__resampler *resampler; /* NULL when the device runs at 48 kHz */
  parley__echo *echo;           /* borrowed: the send chain's canceller, fed what we play */
  size_t device_frame;
  size_t engine_frame;
  parley__sample_fifo fifo;     /* device-rate samples waiting to be played */
  float *frame;                 /* one decoded 48 kHz frame */
  float *resampled;
  size_t resampled_cap;
  parley__recv_stats stats;
  parley__recv_delays delays; /* fixed at create */
};

static bool rate_ok(int hz) {
  return hz == 8000 || hz == 16000 || hz == 32000 || hz == 44100 || hz == 48000;
}

void parley__recv_config_init(parley__recv_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->device_rate_hz = PARLEY__ENGINE_RATE_HZ;
  cfg->frame_ms = 20;
  cfg->resampler_quality = PARLEY__RESAMPLER_QUALITY_DEFAULT;
}

parley__recv_chain *parley__recv_chain_new(const parley__recv_config *cfg, int *err) {
  int e = PARLEY_EINVAL;
  parley__recv_chain *r = NULL;
  if (!cfg || !rate_ok(cfg->device_rate_hz) || (cfg->frame_ms != 10 && cfg->frame_ms != 20)) goto fail;
  e = PARLEY_ENOMEM;
  if (!(r = calloc(1, sizeof *r))) goto fail;
  r->device_frame = (size_t)cfg->device_rate_hz * (size_t)cfg->frame_ms / 1000;
  r->engine_frame = (size_t)PARLEY__ENGINE_RATE_HZ * (size_t)cfg->frame_ms / 1000;

  parley__jitter_config jc = cfg->jitter;
  jc.clock_hz = PARLEY__ENGINE_RATE_HZ;
  jc.frame_samples = (uint32_t)r->engine_frame;
  if (!(r->jitter = parley__jitter_new(&jc, &e))) goto fail;
  if (!(r->decoder = parley__decoder_new(PARLEY__ENGINE_RATE_HZ, 1, (int)r->engine_frame, &e))) goto fail;
  if (cfg->device_rate_hz != PARLEY__ENGINE_RATE_HZ) {
    r->resampler = parley__resampler_new(PARLEY__ENGINE_RATE_HZ, cfg->device_rate_hz,
                                         cfg->resampler_quality, &e);
    if (!r->resampler) goto fail;
  }
  e = PARLEY_ENOMEM;
  r->resampled_cap = r->resampler ? parley__resampler_max_output(r->resampler, r->engine_frame) + 16
                                  : r->engine_frame;
  r->fifo.cap = r->resampled_cap + 2 * r->device_frame;
  r->fifo.buf = malloc(r->fifo.cap * sizeof(float));
  r->frame = malloc(r->engine_frame * sizeof(float));
  r->resampled = malloc(r->resampled_cap * sizeof(float));
  if (!r->fifo.buf || !r->frame || !r->resampled) goto fail;
  r->stats.delay_samples = r->resampler ? (int)((int64_t)parley__resampler_delay_samples(r->resampler) *
                                                PARLEY__ENGINE_RATE_HZ / cfg->device_rate_hz)
                                        : 0;
  r->delays.resampler_samples = r->stats.delay_samples;
  r->delays.jitter_min_samples = (int)((int64_t)jc.min_delay_ms * PARLEY__ENGINE_RATE_HZ / 1000);
  if (err) *err = 0;
  return r;
fail:
  parley__recv_chain_free(r);
  if (err) *err = e;
  return NULL;
}

void parley__recv_chain_free(parley__recv_chain *r) {
  if (!r) return;
  parley__jitter_free(r->jitter);
  parley__decoder_free(r->decoder);
  parley__resampler_free(r->resampler);
  free(r->fifo.buf);
  free(r->frame);
  free(r->resampled);
  free(r);
}

size_t parley__recv_chain_device_frame(const parley__recv_chain *r) { return r->device_frame; }
void parley__recv_chain_link_echo(parley__recv_chain *r, parley__echo *echo) {
  if (r) r->echo = echo;
}

int parley__recv_chain_put(parley__recv_chain *r, uint16_t seq, uint32_t timestamp, uint32_t ssrc,
                           bool marker, const uint8_t *payload, size_t len, int64_t arrival_us) {
  if (!r) return PARLEY_EINVAL;
  return parley__jitter_put(r->jitter, seq, timestamp, ssrc, marker, payload, len, arrival_us);
}

/* Makes the 48 kHz frame this tick plays, from what the jitter buffer says. */
static void make_frame(parley__recv_chain *r, const parley__jitter_frame *jf) {
  int rc = 0;
  if (jf->reset) parley__decoder_reset(r->decoder);
  switch (jf->kind) {
  case PARLEY__JITTER_PACKET:
    rc = parley__decoder_decode(r->decoder, jf->payload, jf->payload_bytes, r->frame);
    if (rc >= 0) {
      r->stats.decoded++;
      return;
    }
    r->stats.decode_errors++;
    break; /* conceal below */
  case PARLEY__JITTER_FEC:
    rc = parley__decoder_recover_fec(r->decoder, jf->payload, jf->payload_bytes, r->frame);
    if (rc >= 0) {
      r->stats.fec_recovered++;
      return;
    }
    r->stats.decode_errors++;
    break;
  case PARLEY__JITTER_SILENCE:
    /* The sender left this frame out in DTX: Opus's concealment of a DTX gap is its comfort noise. */
    if (parley__decoder_conceal(r->decoder, r->frame) < 0) memset(r->frame, 0, r->engine_frame * sizeof(float));
    return;
  case PARLEY__JITTER_CONCEAL:
    break;
  case PARLEY__JITTER_NOTHING:
  default:
    memset(r->frame, 0, r->engine_frame * sizeof(float));
    r->stats.buffering++;
    return;
  }
  if (parley__decoder_conceal(r->decoder, r->frame) < 0) memset(r->frame, 0, r->engine_frame * sizeof(float));
}

int parley__recv_chain_process(parley__recv_chain *r, int64_t now_us, float *out) {
  if (!r || !out) return PARLEY_EINVAL;
  parley__jitter_frame jf;
  int rc = parley__jitter_get(r->jitter, now_us, &jf);
  if (rc < 0) return rc;
  make_frame(r, &jf);
  if (r->echo) parley__echo_playback(r->echo, r->frame, r->engine_frame);

  const float *dev = r->frame;
  size_t n = r->engine_frame;
  if (r->resampler) {
    int m = parley__resampler_process(r->resampler, r->frame, r->engine_frame, r->resampled,
                                      r->resampled_cap);
    if (m < 0) return m;
    dev = r->resampled;
    n = (size_t)m;
  }
  parley__sample_fifo_push(&r->fifo, dev, n);
  if (parley__sample_fifo_pop(&r->fifo, out, r->device_frame) != 0) {
    /* The resampler came up a few samples short this tick: play what we have, then silence. */
    size_t have = r->fifo.len;
    memcpy(out, r->fifo.buf, have * sizeof(float));
    memset(out + have, 0, (r->device_frame - have) * sizeof(float));
    r->fifo.len = 0;
    r->stats.underrun_samples += r->device_frame - have;
  }
  r->stats.frames++;
  return 0;
}

void parley__recv_chain_stats(const parley__recv_chain *r, parley__recv_stats *out) {
  if (!r || !out) return;
  *out = r->stats;
  parley__jitter_get_stats(r->jitter, &out->jitter);
}

void parley__recv_chain_delays(const parley__recv_chain *r, parley__recv_delays *out) {
  if (!out) return;
  if (r) *out = r->delays;
  else memset(out, 0, sizeof *out);
}
