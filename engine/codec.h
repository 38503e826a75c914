/* codec.h: the Opus stage (libopus 1.3.1). One encoder per outgoing stream, one decoder per incoming
 * stream. The encoder codes exactly one frame (10 or 20 ms) per call; the decoder takes packets of any
 * legal duration.
 *
 * Threads: an encoder or decoder belongs to one thread at a time (the audio thread in the engine);
 * create and free happen off the audio path. The only exceptions are the encoder's rate/loss setters,
 * which store into atomics and may be called from any thread (e.g. the network thread on RTCP); the
 * encoder applies them at the start of its next encode.
 * Real-time: encode, decode, conceal, recover_fec, the setters and the getters never allocate, lock,
 * block, log or make system calls. All libopus state is allocated once at create.
 * Samples are float in [-1, 1]; stereo is interleaved (L R L R ...). Counts are per channel.
 */
#ifndef PARLEY_ENGINE_CODEC_H
#define PARLEY_ENGINE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest packet one 5, 10 or 20 ms Opus frame can produce: 1275 bytes of frame plus the TOC byte
 * (RFC 6716, section 3.2.1). Output buffers for parley__encoder_encode must be at least this big; with
 * 40 and 60 ms frames libopus lowers the bitrate to fit (far above any voice rate). */
#define PARLEY__OPUS_MAX_PACKET 1276

typedef struct parley__encoder_config {
  int rate_hz;            /* 8000, 12000, 16000, 24000 or 48000; default 48000 */
  int channels;           /* 1 or 2; default 1 */
  int frame_ms;           /* 5, 10, 20, 40 or 60; default 20 */
  int bitrate_bps;        /* 6000 .. 510000 (whole stream); default 32000 */
  int complexity;         /* 0 .. 10; default 9 (see codec.c for why) */
  bool inband_fec;        /* SILK in-band FEC (LBRR); default on */
  int expected_loss_pct;  /* 0 .. 100, OPUS_SET_PACKET_LOSS_PERC hint; default 10 */
  bool dtx;               /* discontinuous transmission; default on */
  bool low_delay;         /* application RESTRICTED_LOWDELAY instead of VOIP: CELT only, 2.5 ms
                           * lookahead instead of 6.5; no SILK, so inband_fec and dtx do nothing;
                           * default off */
} parley__encoder_config;

typedef struct parley__encoder parley__encoder;
typedef struct parley__decoder parley__decoder;

/* Fills cfg with the defaults above. Any thread. NULL is ignored. */
void parley__encoder_config_init(parley__encoder_config *cfg);

/* Creates an encoder with application VOIP (RESTRICTED_LOWDELAY with cfg->low_delay). cfg is borrowed (copied). Returns NULL and sets *err
 * (PARLEY_EINVAL for a bad config, PARLEY_ENOMEM, PARLEY_ECODEC) on failure; *err = 0 on success.
 * err may be NULL. Not real-time safe (allocates). */
parley__encoder *parley__encoder_new(const parley__encoder_config *cfg, int *err);
/* NULL is ignored. Not real-time safe. */
void parley__encoder_free(parley__encoder *e);

/* Encodes exactly one frame: pcm holds frame_samples * channels interleaved floats (borrowed).
 * out (borrowed) receives the packet; out_cap must be >= PARLEY__OPUS_MAX_PACKET.
 * Returns:
 *   > 0  bytes in out: send this packet;
 *   0    do not transmit: a DTX frame. Either libopus produced 2 bytes or less (its documented "need
 *        not be transmitted" case; a 1-byte packet decodes exactly like a lost one), or it is a
 *        comfort-noise update arriving sooner than 400 ms after the previous one (libopus 1.3.1
 *        sends them every 200 ms with 10 ms frames). The receiver conceals the gap. So in silence
 *        the caller sends at most one packet per 400 ms, after a hangover of a few hundred ms;
 *   < 0  PARLEY_EINVAL (NULL), PARLEY_ENOSPC (out_cap too small) or PARLEY_ECODEC.
 * Owning thread, real-time safe. */
int parley__encoder_encode(parley__encoder *e, const float *pcm, uint8_t *out, size_t out_cap);

/* Loss hint for the FEC budget, e.g. from RTCP receiver reports. pct 0..100, else PARLEY_EINVAL.
 * Any thread, real-time safe (applied at the next encode). */
int parley__encoder_set_expected_loss(parley__encoder *e, int pct);
/* Target bitrate, 6000..510000 bit/s, else PARLEY_EINVAL. Any thread, real-time safe (applied at the
 * next encode). */
int parley__encoder_set_bitrate(parley__encoder *e, int bitrate_bps);

/* The encoder's algorithmic delay (OPUS_GET_LOOKAHEAD), in samples per channel at rate_hz: decoded
 * audio lags the input by this much (312 at 48 kHz for VOIP). Any thread after create. */
int parley__encoder_lookahead_samples(const parley__encoder *e);
/* Samples per channel in one frame (rate_hz * frame_ms / 1000). Any thread after create. */
int parley__encoder_frame_samples(const parley__encoder *e);
/* Whether the last encoded frame was DTX (skipped or a comfort-noise update; OPUS_GET_IN_DTX).
 * Owning thread, real-time safe. */
bool parley__encoder_in_dtx(parley__encoder *e);

/* The frame lengths the encoder codes, each sent as one packet: 5, 10, 20, 40 and 60 ms (2.5 ms is not
 * offered; longer packets would take several frames). */
static inline bool parley__opus_frame_ms_ok(int ms) {
  return ms == 5 || ms == 10 || ms == 20 || ms == 40 || ms == 60;
}

/* Longest Opus packet (RFC 6716, 3.2.5: up to 120 ms of frames). */
#define PARLEY__OPUS_MAX_FRAME_MS 120

/* Creates a decoder for packets of any legal duration (2.5 to 120 ms, changing at will). rate_hz as
 * for the encoder, channels 1 or 2. Returns NULL and sets *err (PARLEY_EINVAL, PARLEY_ENOMEM,
 * PARLEY_ECODEC) on failure; *err = 0 on success. err may be NULL. Not real-time safe. */
parley__decoder *parley__decoder_new(int rate_hz, int channels, int *err);
/* NULL is ignored. Not real-time safe. */
void parley__decoder_free(parley__decoder *d);
/* Forgets the stream (a new SSRC, a timestamp jump): the next frame decodes as if from a fresh
 * decoder. Owning thread, real-time safe. */
void parley__decoder_reset(parley__decoder *d);
/* Samples per channel of the longest packet (120 ms at rate_hz): the pcm capacity every call needs. */
int parley__decoder_max_samples(const parley__decoder *d);

/* Decodes one received packet (pkt/len borrowed) into pcm (max_samples * channels floats, borrowed).
 * Returns the packet's duration in samples per channel, or PARLEY_EINVAL (NULL pointers, len 0 or
 * > 65535), PARLEY_ECODEC (malformed packet; decoder state untouched). On error pcm is unspecified;
 * conceal instead. Owning thread, real-time safe. */
int parley__decoder_decode(parley__decoder *d, const uint8_t *pkt, size_t len, float *pcm);
/* Packet loss concealment for n missing samples per channel (1..max_samples; including audio skipped
 * by the sender's DTX). Returns n or a negative error. Owning thread, real-time safe. */
int parley__decoder_conceal(parley__decoder *d, int n, float *pcm);
/* Rebuilds the n samples per channel just before next_pkt (1..max_samples) from next_pkt's in-band
 * FEC (LBRR) data; what the FEC does not cover (a span longer than next_pkt's frames, or no FEC data:
 * see parley__packet_has_fec) is concealed, so this is never worse than parley__decoder_conceal.
 * Afterwards decode next_pkt normally. Returns n or an error as for decode. Owning thread, real-time
 * safe. */
int parley__decoder_recover_fec(parley__decoder *d, const uint8_t *next_pkt, size_t len, int n, float *pcm);

/* The duration of an Opus packet in samples at 48 kHz (RFC 6716, 3.1-3.2: TOC and frame count), or
 * PARLEY_EINVAL / PARLEY_ECODEC for no packet, malformed framing or more than 120 ms. Any thread,
 * real-time safe, pure. */
int parley__packet_samples_48k(const uint8_t *pkt, size_t len);

/* Whether pkt carries in-band FEC for the frame before it: the SILK LBRR flag of its first Opus frame,
 * read from the packet header bits (RFC 6716, sections 4.2.3 and 4.2.4). false for CELT-only and
 * malformed packets. Any thread, real-time safe, pure. */
bool parley__packet_has_fec(const uint8_t *pkt, size_t len);

#endif
