/* codec.c: the Opus stage (see codec.h). Owns one libopus encoder or decoder per object, allocated
 * once at create (opus_encoder_create / opus_decoder_create); per-frame calls only run libopus, which
 * works on the stack, so they are real-time safe.
 *
 * Threads: each object belongs to one thread. The encoder's loss and bitrate setters may come from any
 * thread: they publish into atomics that the owning thread drains at the start of the next encode, so
 * the OpusEncoder itself is only ever touched by its owner.
 *
 * Default complexity 9: in libopus 1.3.1 the SILK layer, which carries speech in VOIP mode at these
 * rates, uses its most thorough settings from complexity 8 up, and the float build runs its signal
 * analysis from 7. On speech 8, 9 and 10 give the same bytes, quality and CPU, and lower settings trade a
 * little quality for CPU (`parley-bench stages` times the encoder): 9 keeps full speech quality, and the
 * steps below it are the cheap knob if a device runs short of CPU.
 */
#include "engine/codec.h"

#include <opus/opus.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define MAX_INPUT_PACKET 65535

struct parley__encoder {
  OpusEncoder *opus;
  int channels;
  int frame_samples;
  int lookahead_samples;
  int frame_ms;
  bool in_dtx_run;      /* the last frames were DTX (skipped or comfort-noise updates) */
  int since_update_ms;  /* time since the last comfort-noise update we let through */
  atomic_int pending_loss_pct;    /* -1: nothing pending */
  atomic_int pending_bitrate_bps; /* 0: nothing pending */
};

struct parley__decoder {
  OpusDecoder *opus;
  int rate_hz;
  int channels;
  int max_samples; /* PARLEY__OPUS_MAX_FRAME_MS at rate_hz */
  int quantum;     /* 2.5 ms at rate_hz: libopus conceals in multiples of it */
  float *scratch;  /* max_samples * channels: concealment and FEC spans that are not whole quanta */
};

static bool rate_ok(int rate_hz) {
  return rate_hz == 8000 || rate_hz == 12000 || rate_hz == 16000 || rate_hz == 24000 ||
         rate_hz == 48000;
}

static bool bitrate_ok(int bps) { return bps >= 6000 && bps <= 510000; }

static void set_err(int *err, int v) {
  if (err) *err = v;
}

void parley__encoder_config_init(parley__encoder_config *cfg) {
  if (!cfg) return;
  cfg->rate_hz = 48000;
  cfg->channels = 1;
  cfg->frame_ms = 20;
  cfg->bitrate_bps = 32000;
  cfg->complexity = 9;
  cfg->inband_fec = true;
  /* libopus codes no LBRR at all with a 0% hint, so FEC needs a nonzero guess until RTCP reports. */
  cfg->expected_loss_pct = 10;
  cfg->dtx = true;
  cfg->low_delay = false;
}

static bool config_ok(const parley__encoder_config *c) {
  return rate_ok(c->rate_hz) && (c->channels == 1 || c->channels == 2) &&
         parley__opus_frame_ms_ok(c->frame_ms) && bitrate_ok(c->bitrate_bps) &&
         c->complexity >= 0 && c->complexity <= 10 && c->expected_loss_pct >= 0 &&
         c->expected_loss_pct <= 100;
}

parley__encoder *parley__encoder_new(const parley__encoder_config *cfg, int *err) {
  if (!cfg || !config_ok(cfg)) {
    set_err(err, PARLEY_EINVAL);
    return NULL;
  }
  parley__encoder *e = calloc(1, sizeof *e);
  if (!e) {
    set_err(err, PARLEY_ENOMEM);
    return NULL;
  }
  int oerr = OPUS_OK;
  e->opus = opus_encoder_create(cfg->rate_hz, cfg->channels,
                                cfg->low_delay ? OPUS_APPLICATION_RESTRICTED_LOWDELAY : OPUS_APPLICATION_VOIP, &oerr);
  if (!e->opus || oerr != OPUS_OK) {
    free(e);
    set_err(err, oerr == OPUS_ALLOC_FAIL ? PARLEY_ENOMEM : PARLEY_ECODEC);
    return NULL;
  }
  int la = 0;
  if (opus_encoder_ctl(e->opus, OPUS_SET_BITRATE(cfg->bitrate_bps)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_SET_COMPLEXITY(cfg->complexity)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_SET_INBAND_FEC(cfg->inband_fec ? 1 : 0)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_SET_PACKET_LOSS_PERC(cfg->expected_loss_pct)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_SET_DTX(cfg->dtx ? 1 : 0)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK ||
      opus_encoder_ctl(e->opus, OPUS_GET_LOOKAHEAD(&la)) != OPUS_OK) {
    opus_encoder_destroy(e->opus);
    free(e);
    set_err(err, PARLEY_ECODEC);
    return NULL;
  }
  e->channels = cfg->channels;
  e->frame_samples = cfg->rate_hz / 1000 * cfg->frame_ms;
  e->lookahead_samples = la;
  e->frame_ms = cfg->frame_ms;
  atomic_init(&e->pending_loss_pct, -1);
  atomic_init(&e->pending_bitrate_bps, 0);
  set_err(err, 0);
  return e;
}

void parley__encoder_free(parley__encoder *e) {
  if (!e) return;
  opus_encoder_destroy(e->opus);
  free(e);
}

/* Applies settings published by other threads. A failing ctl cannot happen for validated values;
 * it would leave the previous setting in force, which is harmless. */
static void apply_pending(parley__encoder *e) {
  int loss = atomic_exchange_explicit(&e->pending_loss_pct, -1, memory_order_acquire);
  if (loss >= 0) (void)opus_encoder_ctl(e->opus, OPUS_SET_PACKET_LOSS_PERC(loss));
  int bps = atomic_exchange_explicit(&e->pending_bitrate_bps, 0, memory_order_acquire);
  if (bps > 0) (void)opus_encoder_ctl(e->opus, OPUS_SET_BITRATE(bps));
}

/* Decides whether the packet just encoded goes on the wire (its length) or not (0).
 * libopus: "If the return value is 2 bytes or less, then the packet does not need to be transmitted
 * (DTX)"; a 1-byte packet decodes exactly as a lost one. During DTX, SILK also emits a comfort-noise
 * update every 20 frames (SILK's MAX_CONSECUTIVE_DTX counts frames, not time): every 400 ms with
 * 20 ms frames, but every 200 ms with 10 ms frames. We keep the first update of each DTX run and then at most one per 400 ms,
 * so both frame sizes cost the same in silence; a dropped update only makes the receiver conceal
 * with slightly older noise parameters, as after any loss. */
static int dtx_filter(parley__encoder *e, opus_int32 n) {
  opus_int32 in_dtx = 0;
  if (opus_encoder_ctl(e->opus, OPUS_GET_IN_DTX(&in_dtx)) != OPUS_OK) in_dtx = 0;
  if (!in_dtx) {
    e->in_dtx_run = false;
    return n <= 2 ? 0 : (int)n;
  }
  if (!e->in_dtx_run) {
    e->in_dtx_run = true;
    e->since_update_ms = 0;
  } else if (e->since_update_ms < INT32_MAX / 2) {
    e->since_update_ms += e->frame_ms;
  }
  if (n <= 2) return 0;
  if (e->since_update_ms != 0 && e->since_update_ms < 400) return 0;
  e->since_update_ms = 0;
  return (int)n;
}

int parley__encoder_encode(parley__encoder *e, const float *pcm, uint8_t *out, size_t out_cap) {
  if (!e || !pcm || !out) return PARLEY_EINVAL;
  if (out_cap < PARLEY__OPUS_MAX_PACKET) return PARLEY_ENOSPC;
  apply_pending(e);
  opus_int32 n =
      opus_encode_float(e->opus, pcm, e->frame_samples, out, (opus_int32)PARLEY__OPUS_MAX_PACKET);
  if (n == OPUS_BUFFER_TOO_SMALL) return PARLEY_ENOSPC;
  if (n < 0) return PARLEY_ECODEC;
  return dtx_filter(e, n);
}

int parley__encoder_set_expected_loss(parley__encoder *e, int pct) {
  if (!e || pct < 0 || pct > 100) return PARLEY_EINVAL;
  atomic_store_explicit(&e->pending_loss_pct, pct, memory_order_release);
  return 0;
}

int parley__encoder_set_bitrate(parley__encoder *e, int bitrate_bps) {
  if (!e || !bitrate_ok(bitrate_bps)) return PARLEY_EINVAL;
  atomic_store_explicit(&e->pending_bitrate_bps, bitrate_bps, memory_order_release);
  return 0;
}

int parley__encoder_lookahead_samples(const parley__encoder *e) {
  return e ? e->lookahead_samples : PARLEY_EINVAL;
}

int parley__encoder_frame_samples(const parley__encoder *e) {
  return e ? e->frame_samples : PARLEY_EINVAL;
}

bool parley__encoder_in_dtx(parley__encoder *e) {
  if (!e) return false;
  opus_int32 v = 0;
  if (opus_encoder_ctl(e->opus, OPUS_GET_IN_DTX(&v)) != OPUS_OK) return false;
  return v != 0;
}

parley__decoder *parley__decoder_new(int rate_hz, int channels, int *err) {
  if (!rate_ok(rate_hz) || (channels != 1 && channels != 2)) {
    set_err(err, PARLEY_EINVAL);
    return NULL;
  }
  parley__decoder *d = calloc(1, sizeof *d);
  if (!d) {
    set_err(err, PARLEY_ENOMEM);
    return NULL;
  }
  d->rate_hz = rate_hz;
  d->channels = channels;
  d->max_samples = rate_hz / 1000 * PARLEY__OPUS_MAX_FRAME_MS;
  d->quantum = rate_hz / 400;
  d->scratch = malloc((size_t)d->max_samples * (size_t)channels * sizeof(float));
  int oerr = OPUS_OK;
  d->opus = d->scratch ? opus_decoder_create(rate_hz, channels, &oerr) : NULL;
  if (!d->opus || oerr != OPUS_OK) {
    set_err(err, !d->scratch || oerr == OPUS_ALLOC_FAIL ? PARLEY_ENOMEM : PARLEY_ECODEC);
    free(d->scratch);
    free(d);
    return NULL;
  }
  set_err(err, 0);
  return d;
}

void parley__decoder_free(parley__decoder *d) {
  if (!d) return;
  opus_decoder_destroy(d->opus);
  free(d->scratch);
  free(d);
}

void parley__decoder_reset(parley__decoder *d) {
  if (d) opus_decoder_ctl(d->opus, OPUS_RESET_STATE);
}

int parley__decoder_max_samples(const parley__decoder *d) { return d ? d->max_samples : PARLEY_EINVAL; }

/* Samples per channel in pkt at rate_hz, or PARLEY_ECODEC when its framing is malformed (RFC 6716,
 * 3.4) or it lasts more than 120 ms. opus_packet_parse checks the whole frame layout; the duration
 * helpers alone do not. */
static int packet_samples(const uint8_t *pkt, size_t len, int rate_hz) {
  if (!pkt || len == 0 || len > MAX_INPUT_PACKET) return PARLEY_EINVAL;
  const unsigned char *frames[48];
  opus_int16 sizes[48];
  unsigned char toc = 0;
  int payload_offset = 0;
  int nframes = opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, &payload_offset);
  if (nframes < 1) return PARLEY_ECODEC;
  int n = nframes * opus_packet_get_samples_per_frame(pkt, rate_hz);
  return n <= rate_hz / 1000 * PARLEY__OPUS_MAX_FRAME_MS ? n : PARLEY_ECODEC;
}

int parley__packet_samples_48k(const uint8_t *pkt, size_t len) { return packet_samples(pkt, len, 48000); }

int parley__decoder_decode(parley__decoder *d, const uint8_t *pkt, size_t len, float *pcm) {
  if (!d || !pkt || !pcm || len == 0 || len > MAX_INPUT_PACKET) return PARLEY_EINVAL;
  /* Check the packet before decoding so a malformed one leaves the decoder untouched. */
  int dur = packet_samples(pkt, len, d->rate_hz);
  if (dur < 0) return dur;
  int n = opus_decode_float(d->opus, pkt, (opus_int32)len, pcm, dur, 0);
  if (n == OPUS_BAD_ARG) return PARLEY_EINVAL;
  return n == dur ? n : PARLEY_ECODEC; /* never hand a short frame to the caller */
}

/* Runs libopus on a whole number of quanta covering n samples (PLC, or FEC from pkt when fec) and
 * writes n of them to pcm: the first n for concealment, the last n for FEC (the audio just before
 * pkt). */
static int decode_span(parley__decoder *d, const uint8_t *pkt, size_t len, int n, float *pcm, bool fec) {
  int whole = (n + d->quantum - 1) / d->quantum * d->quantum;
  float *dst = whole == n ? pcm : d->scratch;
  int got = opus_decode_float(d->opus, fec ? pkt : NULL, fec ? (opus_int32)len : 0, dst, whole, fec ? 1 : 0);
  if (got == OPUS_BAD_ARG) return PARLEY_EINVAL;
  if (got != whole) return PARLEY_ECODEC;
  if (dst != pcm) {
    size_t skip = fec ? (size_t)(whole - n) * (size_t)d->channels : 0;
    memcpy(pcm, dst + skip, (size_t)n * (size_t)d->channels * sizeof(float));
  }
  return n;
}

int parley__decoder_conceal(parley__decoder *d, int n, float *pcm) {
  if (!d || !pcm || n < 1 || n > d->max_samples) return PARLEY_EINVAL;
  return decode_span(d, NULL, 0, n, pcm, false);
}

int parley__decoder_recover_fec(parley__decoder *d, const uint8_t *next_pkt, size_t len, int n, float *pcm) {
  if (!d || !next_pkt || !pcm || len == 0 || len > MAX_INPUT_PACKET || n < 1 || n > d->max_samples)
    return PARLEY_EINVAL;
  int dur = packet_samples(next_pkt, len, d->rate_hz);
  if (dur < 0) return dur;
  /* libopus conceals whatever part of the span the LBRR data does not cover (all of it when the span
   * is shorter than next_pkt's frames). */
  return decode_span(d, next_pkt, len, n, pcm, true);
}

bool parley__packet_has_fec(const uint8_t *pkt, size_t len) {
  if (!pkt || len < 2 || len > MAX_INPUT_PACKET) return false;
  /* TOC config 0..11 is SILK-only, 12..15 hybrid, 16..31 CELT-only (RFC 6716, 3.1). CELT frames
   * have no LBRR. */
  int config = pkt[0] >> 3;
  if (config >= 16) return false;
  const unsigned char *frames[48];
  opus_int16 sizes[48];
  unsigned char toc = 0;
  int payload_offset = 0;
  int nframes = opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, &payload_offset);
  if (nframes < 1 || sizes[0] < 1) return false;
  /* SILK frames inside this Opus frame: 1 for 10/20 ms, 2 for 40 ms, 3 for 60 ms. */
  int per_frame_48k = opus_packet_get_samples_per_frame(pkt, 48000);
  int silk_frames = per_frame_48k > 960 ? per_frame_48k / 960 : 1;
  /* The SILK header opens the range-coded stream: per channel, silk_frames VAD flags and then one
   * LBRR flag, mid channel first, then side (RFC 6716, 4.2.3-4.2.4). Each is coded with probability
   * 1/2, and such symbols at the very start of a range-coded stream are exactly its leading bits. */
  unsigned first = frames[0][0];
  int mid_lbrr_bit = 7 - silk_frames;
  bool lbrr = (first >> mid_lbrr_bit) & 1u;
  if (opus_packet_get_nb_channels(pkt) == 2) {
    int side_lbrr_bit = mid_lbrr_bit - (silk_frames + 1);
    if (side_lbrr_bit >= 0) lbrr = lbrr || ((first >> side_lbrr_bit) & 1u);
  }
  return lbrr;
}
