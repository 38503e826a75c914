/* recv_chain.c: the playout half of a call (see pipeline.h). Owns its jitter buffer, Opus decoder and
 * output resampler, and in timescaled mode the time-scaling stage and the queue of decoded samples,
 * with every buffer they need, allocated at create. put() and process() run on the audio thread and
 * are real-time safe. */
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "engine/pipeline.h"
#include "base/thread_check.h"
#include "engine/resampler.h"
#include "engine/sample_fifo.h"
#include "engine/timescale.h"
#include "parley/parley.h"

struct parley__recv_chain {
  parley__owner owner; /* debug builds: the audio thread */
  parley__jitter *jitter;
  parley__decoder *decoder;
  parley__resampler *resampler; /* NULL when the device runs at 48 kHz */
  parley__echo *echo;           /* borrowed: the send chain's canceller, fed what we play */
  size_t device_frame;
  size_t engine_frame;
  parley__sample_fifo fifo;     /* device-rate samples waiting to be played */
  float *frame;                 /* one 48 kHz device frame */
  float *resampled;
  size_t resampled_cap;
  parley__timescale *ts;
  size_t max_packet;         /* samples of the longest packet (120 ms) at 48 kHz */
  parley__sample_fifo queue; /* decoded 48 kHz samples not yet played */
  float *pcm;                /* one decoded packet */
  float *work;               /* one action's output (a stretched packet at most) */
  bool after_gap;            /* the last action was expansion or concealment: merge the next packet */
  parley__recv_stats stats;
  parley__recv_delays delays; /* fixed at create */
};

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
  if (!cfg || !parley__device_rate_supported(cfg->device_rate_hz) ||
      (cfg->frame_ms != 5 && cfg->frame_ms != 10 && cfg->frame_ms != 20))
    goto fail;
  e = PARLEY_ENOMEM;
  if (!(r = calloc(1, sizeof *r))) goto fail;
  r->device_frame = (size_t)cfg->device_rate_hz * (size_t)cfg->frame_ms / 1000;
  r->engine_frame = (size_t)PARLEY__ENGINE_RATE_HZ * (size_t)cfg->frame_ms / 1000;

  parley__jitter_config jc = cfg->jitter;
  jc.clock_hz = PARLEY__ENGINE_RATE_HZ;
  jc.frame_samples = (uint32_t)r->engine_frame;
  jc.tick_samples = (uint32_t)r->engine_frame;
  jc.packet_samples = parley__packet_samples_48k;
  jc.has_fec = parley__packet_has_fec;
  if (!(r->jitter = parley__jitter_new(&jc, &e))) goto fail;
  if (!(r->decoder = parley__decoder_new(PARLEY__ENGINE_RATE_HZ, 1, &e))) goto fail;
  r->max_packet = (size_t)parley__decoder_max_samples(r->decoder);
  if (!(r->ts = parley__timescale_new(r->max_packet, &e))) goto fail;
  e = PARLEY_ENOMEM;
  size_t work_cap = r->max_packet + r->max_packet / 2;
  r->queue.cap = work_cap + r->engine_frame;
  r->queue.buf = malloc(r->queue.cap * sizeof(float));
  r->pcm = malloc(r->max_packet * sizeof(float));
  r->work = malloc(work_cap * sizeof(float));
  if (!r->queue.buf || !r->pcm || !r->work) goto fail;
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
  parley__timescale_free(r->ts);
  free(r->queue.buf);
  free(r->pcm);
  free(r->work);
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

/* Concealment (PLC; in DTX, Opus's concealment of the gap is its comfort noise) of n samples into pcm. */
static void conceal(parley__recv_chain *r, size_t n, float *pcm) {
  if (parley__decoder_conceal(r->decoder, (int)n, pcm) < 0) memset(pcm, 0, n * sizeof(float));
}

/* Decodes a PACKET into r->pcm, or the last n samples of an FEC span; conceals on failure. Returns
 * the samples made and whether they came from the packet. */
static size_t decode_action(parley__recv_chain *r, const parley__jitter_frame *jf, bool *ok) {
  *ok = true;
  if (jf->kind == PARLEY__JITTER_PACKET) {
    int n = parley__decoder_decode(r->decoder, jf->payload, jf->payload_bytes, r->pcm);
    if (n > 0) {
      r->stats.decoded++;
      return (size_t)n;
    }
  } else {
    int span = (int)jf->span_samples;
    if (span >= (int)jf->out_samples && span <= (int)r->max_packet &&
        parley__decoder_recover_fec(r->decoder, jf->payload, jf->payload_bytes, span, r->work) == span) {
      memcpy(r->pcm, r->work + (span - (int)jf->out_samples), jf->out_samples * sizeof(float));
      r->stats.fec_recovered++;
      return jf->out_samples;
    }
  }
  r->stats.decode_errors++;
  *ok = false;
  size_t n = jf->out_samples < r->max_packet ? jf->out_samples : r->max_packet;
  conceal(r, n, r->pcm);
  return n;
}

/* Carries out one action into r->work; returns the samples made. */
static size_t run_action(parley__recv_chain *r, const parley__jitter_frame *jf) {
  size_t n = jf->out_samples < r->max_packet ? jf->out_samples : r->max_packet;
  if (jf->reset) parley__decoder_reset(r->decoder);
  switch (jf->kind) {
  case PARLEY__JITTER_PACKET:
  case PARLEY__JITTER_FEC: {
    bool ok;
    size_t F = decode_action(r, jf, &ok);
    if (ok && r->after_gap) parley__timescale_merge(r->ts, r->pcm, F);
    r->after_gap = !ok;
    int m = (int)F;
    if (ok && jf->kind == PARLEY__JITTER_PACKET && jf->timescale_samples < 0) {
      m = parley__timescale_accelerate(r->ts, r->pcm, F, (size_t)-jf->timescale_samples, r->work);
      if (m > 0) r->stats.removed_samples += F - (size_t)m;
    } else if (ok && jf->kind == PARLEY__JITTER_PACKET && jf->timescale_samples > 0) {
      m = parley__timescale_stretch(r->ts, r->pcm, F, (size_t)jf->timescale_samples, r->work);
      if (m > 0) r->stats.inserted_samples += (size_t)m - F;
    } else {
      memcpy(r->work, r->pcm, F * sizeof(float));
    }
    if (m <= 0) { /* cannot happen with the sizes fixed at create; play the audio as decoded */
      memcpy(r->work, r->pcm, F * sizeof(float));
      m = (int)F;
    }
    return (size_t)m;
  }
  case PARLEY__JITTER_EXPAND:
    parley__timescale_expand(r->ts, r->work, n);
    r->after_gap = true;
    return n;
  case PARLEY__JITTER_CONCEAL:
  case PARLEY__JITTER_SILENCE:
    conceal(r, n, r->work);
    r->after_gap = true;
    return n;
  case PARLEY__JITTER_NOTHING:
  default:
    memset(r->work, 0, n * sizeof(float));
    return n;
  }
}

/* Fills r->frame (one device frame at 48 kHz) from the queue, asking the jitter buffer as needed. */
static int fill_frame(parley__recv_chain *r, int64_t now_us) {
  bool asked = false, buffering = true;
  for (int guard = 0; r->queue.len < r->engine_frame; guard++) {
    if (guard == 64) return PARLEY_ESTATE; /* every action adds samples: unreachable */
    parley__jitter_frame jf;
    int rc = parley__jitter_get(r->jitter, now_us, (uint32_t)r->queue.len, &jf);
    if (rc < 0) return rc;
    asked = true;
    buffering &= jf.kind == PARLEY__JITTER_NOTHING;
    size_t n = run_action(r, &jf);
    parley__timescale_played(r->ts, r->work, n);
    parley__sample_fifo_push(&r->queue, r->work, n);
  }
  if (asked && buffering) r->stats.buffering++; /* this frame is all pre-stream silence */
  return parley__sample_fifo_pop(&r->queue, r->frame, r->engine_frame) == 0 ? 0 : PARLEY_ESTATE;
}

int parley__recv_chain_process(parley__recv_chain *r, int64_t now_us, float *out) {
  if (!r || !out) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&r->owner, "parley__recv_chain_process (the audio thread's)");
  int rc = fill_frame(r, now_us);
  if (rc < 0) return rc;
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
  out->queued_samples = r->queue.len;
  parley__jitter_get_stats(r->jitter, &out->jitter);
  /* The buffer's count, not ours: it takes back a wait that the next packet showed was DTX silence
   * (out_samples of an EXPAND never exceed a tick, so the two agree otherwise). */
  out->expand_samples = out->jitter.expand_samples;
}

void parley__recv_chain_delays(const parley__recv_chain *r, parley__recv_delays *out) {
  if (!out) return;
  if (r) *out = r->delays;
  else memset(out, 0, sizeof *out);
}
