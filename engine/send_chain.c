/* send_chain.c: the capture half of a call (see pipeline.h). Owns its resampler, echo canceller and
 * Opus encoder, and every buffer they need, allocated at create. process() runs on the audio thread and
 * is real-time safe. */
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "engine/pipeline.h"
#include "base/thread_check.h"
#include "engine/resampler.h"
#include "engine/sample_fifo.h"
#include "parley/parley.h"

#define ECHO_BLOCK_MAX (PARLEY__ENGINE_RATE_HZ / 100) /* 10 ms */

struct parley__send_chain {
  parley__owner owner; /* debug builds: the audio thread */
  parley__resampler *resampler; /* NULL when the device runs at 48 kHz */
  parley__echo *echo;
  parley__encoder *encoder;
  size_t device_frame;  /* samples per device frame */
  size_t engine_frame;  /* samples per 48 kHz Opus frame (packet_ms) */
  size_t echo_block;    /* samples per canceller/preprocessor block: 10 ms, or the frame if shorter */
  uint32_t timestamp;   /* RTP timestamp of the next frame */
  bool in_dtx;          /* the previous frame was not transmitted */
  parley__sample_fifo fifo; /* 48 kHz samples waiting to make a whole frame */
  float *resampled;     /* resampler output for one device frame */
  size_t resampled_cap;
  float *frame;         /* one engine frame, processed in place */
  parley__send_stats stats;
  parley__send_delays delays; /* fixed at create */
};

void parley__send_config_init(parley__send_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->device_rate_hz = PARLEY__ENGINE_RATE_HZ;
  cfg->frame_ms = 20;
  cfg->resampler_quality = PARLEY__RESAMPLER_QUALITY_DEFAULT;
  parley__echo_config_init(&cfg->echo);
  parley__encoder_config_init(&cfg->opus);
}

parley__send_chain *parley__send_chain_new(const parley__send_config *cfg, int *err) {
  int e = PARLEY_EINVAL;
  parley__send_chain *s = NULL;
  int packet_ms = cfg && cfg->packet_ms ? cfg->packet_ms : cfg ? cfg->frame_ms : 0;
  if (!cfg || !parley__device_rate_supported(cfg->device_rate_hz) ||
      (cfg->frame_ms != 5 && cfg->frame_ms != 10 && cfg->frame_ms != 20) ||
      !parley__opus_frame_ms_ok(packet_ms))
    goto fail;
  e = PARLEY_ENOMEM;
  s = calloc(1, sizeof *s);
  if (!s) goto fail;
  s->device_frame = (size_t)cfg->device_rate_hz * (size_t)cfg->frame_ms / 1000;
  s->engine_frame = (size_t)PARLEY__ENGINE_RATE_HZ * (size_t)packet_ms / 1000;
  s->echo_block = s->engine_frame < ECHO_BLOCK_MAX ? s->engine_frame : ECHO_BLOCK_MAX;
  s->timestamp = cfg->first_timestamp;
  s->in_dtx = true; /* so the first packet carries the marker */

  if (cfg->device_rate_hz != PARLEY__ENGINE_RATE_HZ) {
    s->resampler = parley__resampler_new(cfg->device_rate_hz, PARLEY__ENGINE_RATE_HZ,
                                         cfg->resampler_quality, &e);
    if (!s->resampler) goto fail;
  }
  parley__echo_config ec = cfg->echo;
  ec.rate_hz = PARLEY__ENGINE_RATE_HZ;
  /* The canceller and preprocessor run on blocks of 10 ms, or of the frame when it is shorter: the
   * preprocessor outputs each block one block late, so 20 ms frames pay 10 ms there instead of 20,
   * and 5 ms frames pay 5. */
  ec.frame_samples = (int)s->echo_block;
  if (!(s->echo = parley__echo_new(&ec, &e))) goto fail;
  parley__encoder_config oc = cfg->opus;
  oc.rate_hz = PARLEY__ENGINE_RATE_HZ;
  oc.channels = 1;
  oc.frame_ms = packet_ms;
  if (!(s->encoder = parley__encoder_new(&oc, &e))) goto fail;

  e = PARLEY_ENOMEM;
  s->resampled_cap = s->resampler ? parley__resampler_max_output(s->resampler, s->device_frame) + 16
                                  : s->device_frame;
  s->fifo.cap = s->resampled_cap + s->engine_frame;
  s->resampled = malloc(s->resampled_cap * sizeof(float));
  s->fifo.buf = malloc(s->fifo.cap * sizeof(float));
  s->frame = malloc(s->engine_frame * sizeof(float));
  if (!s->resampled || !s->fifo.buf || !s->frame) goto fail;

  s->delays.echo_samples = parley__echo_delay_samples(s->echo);
  s->delays.lookahead_samples = parley__encoder_lookahead_samples(s->encoder);
  s->delays.resampler_samples = s->resampler ? parley__resampler_delay_samples(s->resampler) : 0;
  s->stats.delay_samples = s->delays.echo_samples + s->delays.lookahead_samples + s->delays.resampler_samples;
  if (err) *err = 0;
  return s;
fail:
  parley__send_chain_free(s);
  if (err) *err = e;
  return NULL;
}

void parley__send_chain_free(parley__send_chain *s) {
  if (!s) return;
  parley__resampler_free(s->resampler);
  parley__echo_free(s->echo);
  parley__encoder_free(s->encoder);
  free(s->resampled);
  free(s->fifo.buf);
  free(s->frame);
  free(s);
}

size_t parley__send_chain_device_frame(const parley__send_chain *s) { return s->device_frame; }
parley__echo *parley__send_chain_echo(parley__send_chain *s) { return s->echo; }

int parley__send_packet_ms(int frame_ms, int ptime_ms, int maxptime_ms) {
  static const int coded[] = {5, 10, 20, 40, 60};
  int want = ptime_ms > 0 ? ptime_ms : frame_ms, best = coded[0];
  for (size_t i = 1; i < sizeof coded / sizeof coded[0]; i++) {
    if (maxptime_ms > 0 && coded[i] > maxptime_ms) break;
    if (abs(coded[i] - want) < abs(best - want)) best = coded[i];
  }
  return best;
}

int parley__send_chain_set_expected_loss(parley__send_chain *s, int pct) {
  return s ? parley__encoder_set_expected_loss(s->encoder, pct) : PARLEY_EINVAL;
}

int parley__loss_hint_update(double *tracked, double fraction_lost) {
  if (!tracked) return PARLEY_EINVAL;
  double f = fraction_lost < 0 ? 0 : fraction_lost > 1 ? 1 : fraction_lost;
  *tracked = f >= *tracked ? f : *tracked + (f - *tracked) / 5;
  int pct = (int)(*tracked * 100.0 + 0.5);
  return pct > PARLEY__LOSS_HINT_MAX_PCT ? PARLEY__LOSS_HINT_MAX_PCT : pct;
}

/* Echo-cancels and encodes the frame in s->frame; writes a packet to out unless DTX. Returns 1 if a
 * packet was written, 0 if not, or a negative error. */
static int encode_frame(parley__send_chain *s, parley__send_packet *out) {
  bool voice = false; /* any block voiced */
  for (size_t off = 0; off < s->engine_frame; off += s->echo_block) {
    bool v = false;
    int rc = parley__echo_capture(s->echo, s->frame + off, s->frame + off, &v);
    if (rc < 0) return rc;
    voice = voice || v;
  }
  int n = parley__encoder_encode(s->encoder, s->frame, out->data, sizeof out->data);
  if (n < 0) return n;
  uint32_t ts = s->timestamp;
  s->timestamp += (uint32_t)s->engine_frame;
  s->stats.frames++;
  if (voice) s->stats.voice_frames++;
  if (n == 0) {
    s->stats.dtx_frames++;
    s->in_dtx = true;
    return 0;
  }
  /* A comfort-noise update sent during DTX is not a talkspurt: it keeps the pause going and carries no
   * marker (RFC 7587: the marker starts a talkspurt, and receivers read it as "talk resumes"). */
  bool comfort_noise = parley__encoder_in_dtx(s->encoder);
  out->len = (size_t)n;
  out->timestamp = ts;
  out->marker = s->in_dtx && !comfort_noise;
  out->voice = voice;
  s->in_dtx = comfort_noise;
  s->stats.packets++;
  s->stats.bytes += (uint64_t)n;
  return 1;
}

int parley__send_chain_process(parley__send_chain *s, const float *capture, parley__send_packet *out,
                               size_t out_cap) {
  if (!s || !capture || !out) return PARLEY_EINVAL;
  if (out_cap < PARLEY__SEND_MAX_PACKETS) return PARLEY_ENOSPC;
  PARLEY__OWNER_CHECK(&s->owner, "parley__send_chain_process (the audio thread's)");
  const float *in48 = capture;
  size_t n48 = s->device_frame;
  if (s->resampler) {
    int n = parley__resampler_process(s->resampler, capture, s->device_frame, s->resampled,
                                      s->resampled_cap);
    if (n < 0) return n;
    in48 = s->resampled;
    n48 = (size_t)n;
  }
  parley__sample_fifo_push(&s->fifo, in48, n48);
  int packets = 0;
  while (packets < PARLEY__SEND_MAX_PACKETS &&
         parley__sample_fifo_pop(&s->fifo, s->frame, s->engine_frame) == 0) {
    int rc = encode_frame(s, &out[packets]);
    if (rc < 0) return rc;
    packets += rc;
  }
  return packets;
}

void parley__send_chain_stats(const parley__send_chain *s, parley__send_stats *out) {
  if (s && out) *out = s->stats;
}

void parley__send_chain_delays(const parley__send_chain *s, parley__send_delays *out) {
  if (!out) return;
  if (s) *out = s->delays;
  else memset(out, 0, sizeof *out);
}
