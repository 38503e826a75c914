/* pipeline.h: the two audio chains of one call, composed of the engine's stages.
 *
 * Send chain:    capture (device rate) -> resample to 48 kHz -> echo cancel + preprocess -> Opus encode
 *                -> packets (payload, RTP timestamp at 48 kHz, marker).
 * Receive chain: packets -> jitter buffer -> Opus decode / FEC / PLC / DTX silence -> far-end reference
 *                for the echo canceller -> resample to device rate -> playout. The chain keeps a queue
 *                of decoded 48 kHz samples and asks the jitter buffer (parley__jitter_get) whenever the
 *                queue holds less than one device frame; decoded packets may be accelerated or
 *                stretched and gaps waited out by expansion (engine/timescale), so packets of any Opus
 *                duration (2.5 to 120 ms, changing mid-stream, on any timestamp grid) play on frame_ms
 *                ticks.
 *
 * Threads: both chains belong to the audio thread. Packets reach the receive chain from the network
 * thread through an SPSC ring owned by the caller, which calls put() on the audio thread.
 * Real-time: process() and put() never allocate, lock, block, log or make system calls; new() allocates
 * everything. Each device frame is frame_ms long at device_rate_hz (8, 16, 32, 44.1 or 48 kHz).
 */
#ifndef PARLEY_ENGINE_PIPELINE_H
#define PARLEY_ENGINE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/codec.h"
#include "engine/echo.h"
#include "engine/jitter.h"

#define PARLEY__ENGINE_RATE_HZ 48000
/* A device frame may yield up to this many packets: four with 5 ms packets on a 20 ms frame, and one
 * more when resampler wobble completes an extra frame. */
#define PARLEY__SEND_MAX_PACKETS 5

typedef struct parley__send_config {
  int device_rate_hz;          /* capture rate [48000] */
  int frame_ms;                /* device frame: 5, 10 or 20 [20] */
  int packet_ms;               /* Opus frame and packet: 5, 10, 20, 40 or 60 [0: frame_ms] */
  int resampler_quality;       /* speexdsp quality 0..10 [PARLEY__RESAMPLER_QUALITY_DEFAULT] */
  parley__echo_config echo;    /* rate_hz and frame_samples (blocks of 10 ms or the frame) are set by the chain */
  parley__encoder_config opus; /* rate_hz and frame_ms are set by the chain */
  uint32_t first_timestamp;    /* RTP timestamp of the first frame (random in a call) [0] */
} parley__send_config;

typedef struct parley__send_packet {
  uint8_t data[PARLEY__OPUS_MAX_PACKET];
  size_t len;
  uint32_t timestamp; /* RTP timestamp at 48 kHz of the frame's first sample */
  bool marker;        /* first packet after a DTX pause (RFC 7587: the start of a talkspurt) */
  bool voice;         /* the preprocessor's VAD for this frame */
} parley__send_packet;

typedef struct parley__send_stats {
  uint64_t frames;       /* engine frames encoded */
  uint64_t packets;      /* packets produced (frames the encoder said to transmit) */
  uint64_t dtx_frames;   /* frames not transmitted (DTX) */
  uint64_t voice_frames; /* frames the VAD called speech */
  uint64_t bytes;        /* payload bytes produced */
  int delay_samples;     /* resampler + preprocessor + Opus lookahead, at 48 kHz */
} parley__send_stats;

typedef struct parley__send_chain parley__send_chain;

void parley__send_config_init(parley__send_config *cfg);
/* cfg is copied. NULL and *err (PARLEY_EINVAL, PARLEY_ENOMEM, PARLEY_ECODEC, PARLEY_EDSP) on failure. */
parley__send_chain *parley__send_chain_new(const parley__send_config *cfg, int *err);
void parley__send_chain_free(parley__send_chain *s);
/* Samples in one device frame (device_rate_hz * frame_ms / 1000). */
size_t parley__send_chain_device_frame(const parley__send_chain *s);
/* The packet length to send (parley__opus_frame_ms_ok) for the peer's a=ptime and a=maxptime (0: not
 * said): ptime when we code it, else the nearest we do (the shorter on a tie); our frame_ms when there
 * is no ptime; never over maxptime, or 5 ms when even that is. */
int parley__send_packet_ms(int frame_ms, int ptime_ms, int maxptime_ms);
/* Processes one device frame of capture (borrowed) and writes 0..PARLEY__SEND_MAX_PACKETS packets to
 * out (out_cap >= PARLEY__SEND_MAX_PACKETS). Returns the packet count or PARLEY_EINVAL/ENOSPC/ECODEC.
 * Audio thread, real-time safe. */
int parley__send_chain_process(parley__send_chain *s, const float *capture, parley__send_packet *out,
                               size_t out_cap);
/* The echo canceller, for linking the receive chain's far-end reference. Borrowed. */
parley__echo *parley__send_chain_echo(parley__send_chain *s);
/* Sets the encoder's loss hint (from RTCP). Any thread. */
int parley__send_chain_set_expected_loss(parley__send_chain *s, int pct);
/* The loss hint for the encoder's in-band FEC, from the receiver's reports of our stream: it rises at
 * once to a report's loss and falls slowly (each report takes it a fifth of the way down), so FEC is
 * still there when the next burst comes. *tracked is the state (a fraction; start it at the config's
 * expected loss). Returns the hint in percent, 0..PARLEY__LOSS_HINT_MAX_PCT. Pure. */
#define PARLEY__LOSS_HINT_MAX_PCT 50 /* beyond this FEC's bits are better spent on the signal itself */
int parley__loss_hint_update(double *tracked, double fraction_lost);
void parley__send_chain_stats(const parley__send_chain *s, parley__send_stats *out);

/* The send chain's fixed algorithmic delays, in 48 kHz samples, fixed at create: any thread may read
 * them while the audio thread runs the chain. */
typedef struct parley__send_delays {
  int resampler_samples; /* capture resampler (0 at 48 kHz) */
  int echo_samples;      /* echo canceller / preprocessor (parley__echo_delay_samples) */
  int lookahead_samples; /* Opus encoder lookahead (parley__encoder_lookahead_samples) */
} parley__send_delays;
/* Copies them into *out (zeroed for NULL s). Any thread, real-time safe. */
void parley__send_chain_delays(const parley__send_chain *s, parley__send_delays *out);

typedef struct parley__recv_config {
  int device_rate_hz;           /* playout rate [48000] */
  int frame_ms;                 /* 5, 10 or 20 [20]: one jitter tick per device frame */
  int resampler_quality;        /* [PARLEY__RESAMPLER_QUALITY_DEFAULT] */
  parley__jitter_config jitter; /* clock_hz, frame_samples, tick_samples, packet_samples, has_fec:
                                 * set by the chain */
} parley__recv_config;

typedef struct parley__recv_stats {
  parley__jitter_stats jitter; /* also says which frames were concealment and which DTX silence */
  uint64_t frames;        /* device frames produced */
  uint64_t decoded;       /* packets decoded */
  uint64_t fec_recovered; /* spans rebuilt from the next packet's FEC */
  uint64_t buffering;     /* frames before the stream started (silence) */
  uint64_t decode_errors; /* undecodable packets (concealed instead) */
  uint64_t underrun_samples; /* samples of silence inserted because the resampler fell short */
  int delay_samples;      /* resampler delay at 48 kHz (the jitter delay is in jitter stats) */
  /* Time-scaled playout (48 kHz samples). */
  uint64_t expand_samples;    /* played by expansion while waiting for a packet (concealment); a
                               * wait the next packet shows was a DTX pause counts as silence instead */
  uint64_t removed_samples;   /* taken out of decoded frames by accelerate */
  uint64_t inserted_samples;  /* added to decoded frames by stretch */
  size_t queued_samples;      /* decoded samples waiting to be played now */
} parley__recv_stats;

typedef struct parley__recv_chain parley__recv_chain;

void parley__recv_config_init(parley__recv_config *cfg);
parley__recv_chain *parley__recv_chain_new(const parley__recv_config *cfg, int *err);
void parley__recv_chain_free(parley__recv_chain *r);
size_t parley__recv_chain_device_frame(const parley__recv_chain *r);
/* Feeds the echo canceller of a send chain with what this chain plays (at 48 kHz, before the output
 * resampler). echo is borrowed and must outlive the link; NULL unlinks. Audio thread. */
void parley__recv_chain_link_echo(parley__recv_chain *r, parley__echo *echo);
/* One received RTP packet (payload borrowed, copied) that arrived at arrival_us. Returns as
 * parley__jitter_put. Audio thread, real-time safe. */
int parley__recv_chain_put(parley__recv_chain *r, uint16_t seq, uint32_t timestamp, uint32_t ssrc,
                           bool marker, const uint8_t *payload, size_t len, int64_t arrival_us);
/* Produces one device frame of playout into out (device_frame samples, borrowed). Call once per
 * frame_ms. Returns 0 or PARLEY_EINVAL. Audio thread, real-time safe. */
int parley__recv_chain_process(parley__recv_chain *r, int64_t now_us, float *out);
void parley__recv_chain_stats(const parley__recv_chain *r, parley__recv_stats *out);

/* The receive chain's fixed delays, in 48 kHz samples, fixed at create (any thread may read them). The
 * jitter buffer's floor is its configured min_delay above the fastest packet; on top of it the packet
 * waits for the next frame tick (up to one device period, counted with the device). */
typedef struct parley__recv_delays {
  int jitter_min_samples; /* jitter buffer min_delay_ms */
  int resampler_samples;  /* playout resampler (0 at 48 kHz) */
} parley__recv_delays;
/* Copies them into *out (zeroed for NULL r). Any thread, real-time safe. */
void parley__recv_chain_delays(const parley__recv_chain *r, parley__recv_delays *out);

#endif
