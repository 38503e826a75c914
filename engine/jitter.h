/* jitter.h: the adaptive jitter buffer for one inbound RTP stream (one SSRC at a time), NetEq-style:
 * it decides, whenever the receive chain's queue of decoded samples runs low, what to add to it.
 *
 * put() stores a packet (payload copied into a pool preallocated at create); get() says what to add
 * next: a packet's payload (possibly to be shortened or lengthened by time-scaling), the NEXT packet's
 * payload for in-band FEC recovery of missing audio, concealment (PLC), expansion while a late packet
 * may still come, silence (the sender is in DTX), or nothing yet (still buffering). It never decodes.
 *
 * Threads: put(), get(), stats and reset are called on ONE thread, the audio thread: the pipeline
 * moves packets from the network ring onto the audio thread before calling put(). No locks inside.
 * Real-time: put(), get(), get_stats() and reset() never allocate, lock, block or log; only
 * parley__jitter_new / parley__jitter_free allocate.
 *
 * Timestamps are a clock (RFC 3550), not frame indices. Each packet covers [ts, ts + duration) in
 * samples at clock_hz, its duration read from the payload (config packet_samples, for Opus the TOC:
 * 2.5 to 120 ms, changing at will). The play position play_ts is a sample position on the sender's
 * clock: any first timestamp, any step between packets (a short first frame, DTX gaps of any length),
 * 32-bit wrap. A packet starting within a few samples of play_ts (less than the shortest Opus frame),
 * or overlapping it, is the next audio: it plays, and play_ts moves to its end; overlap only adds a
 * little delay that time-scaling sheds. A packet is late only when it ends at or before play_ts.
 * Timestamp jumps (a sender restarting its encoder): a packet newer in sequence but older in time than
 * the newest, or arriving far earlier than the network ever delivered (EARLY_JUMP_US), or far later
 * (resync_ms), restarts the stream's timeline at once; a run of late packets lasting a second does too.
 *
 * Delay model: a packet's relative transit r = arrival - media time of its timestamp; a window of
 * recent r values gives two targets: the low target (the accel_target_pct quantile) where the delay is
 * steered, and the wait limit (the wait_late_pct quantile, counting only the packets that arrived after
 * a later one: waiting past the low target while a later packet is here saves only those; a delay
 * spike's in-order burst does not raise it). The chain asks whenever its queue holds
 * less than one device tick (tick_samples) and says how much is still queued, so the buffer knows the
 * play time of play_ts to the sample. The decision offset d = now - media time of play_ts (the packet
 * there is on time iff its r <= d). Missing audio at play_ts is waited for by EXPAND (stretch the
 * previous audio up to the next tick: concealment, but the packet is played when it comes) while d is
 * below the wait limit, or while nothing later has arrived either (then everything is late, as in a
 * delay spike, up to max_delay_ms), and then given up: the expansion already played stands in for it
 * and the rest is CONCEALed, FEC-recovered from the next packet, or skipped when far above target. At
 * or above the low target missing audio whose FEC the next packet carries (config has_fec) is not
 * waited for: FEC at once. Above the low target a packet is played accelerated (shortened by pitch
 * periods, up to half its duration, 3/4 when three nominal frames above it), below it, when the next
 * packet is not here yet, stretched. In DTX silence is shortened or lengthened directly.
 * The low target's quantile trades delay against waiting: every packet that misses it is waited for
 * with at least one tick of expansion, so its default (5 %) keeps concealment on jittery paths low
 * (`parley-bench quality`). */
#ifndef PARLEY_ENGINE_JITTER_H
#define PARLEY_ENGINE_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__jitter parley__jitter;

/* Zero fields take the default in brackets. */
typedef struct parley__jitter_config {
  uint32_t clock_hz;                 /* RTP clock [48000] */
  uint32_t frame_samples;            /* nominal packet duration at clock_hz: the duration of a packet
                                      * when packet_samples is NULL, and the unit of concealment when no
                                      * packet has been played yet [960 = 20 ms] */
  uint32_t max_packet_samples;       /* longer packets are refused [clock_hz * 120 ms] */
  size_t max_payload_bytes;          /* larger payloads are rejected [1500] */
  uint32_t capacity_packets;         /* pool size [128] */
  uint32_t window_packets;           /* relative-transit history [500, max 4096] */
  uint32_t min_delay_ms;             /* target floor above the fastest recent packet [0] */
  uint32_t max_delay_ms;             /* target ceiling above the fastest recent packet [1000] */
  uint32_t resync_ms;                /* transit jump (later than ever) that means a timestamp jump [3000] */
  double wait_late_pct;              /* late share of the window the wait limit leaves out, among the
                                      * packets that arrived after a later one [1.0] */
  double accel_target_pct;           /* share of the window above the low target [5; >= wait_late_pct] */
  uint32_t tick_samples;             /* device tick at clock_hz [frame_samples / 2] */
  /* The duration of a payload in samples at clock_hz (e.g. parley__packet_samples_48k for Opus), or
   * <= 0 when it cannot be read: put() refuses such a packet (counted in malformed). NULL [every
   * packet lasts frame_samples]. Called by put() on the audio thread: must be real-time safe. */
  int (*packet_samples)(const uint8_t *payload, size_t payload_bytes);
  /* Whether a payload carries in-band FEC for the audio before it (e.g. parley__packet_has_fec), or
   * NULL [no FEC is assumed]. Called by put() on the audio thread: must be real-time safe. When the
   * packet after missing audio is here and has FEC, a buffer at or above its low target recovers the
   * audio from it at once instead of waiting (expanding) for a packet that may be lost. */
  bool (*has_fec)(const uint8_t *payload, size_t payload_bytes);
} parley__jitter_config;

typedef enum parley__jitter_kind {
  PARLEY__JITTER_NOTHING = 0, /* buffering: nothing to play yet (before the first packet is due) */
  PARLEY__JITTER_PACKET,      /* decode payload */
  PARLEY__JITTER_FEC,         /* audio is missing before the next packet; payload is that packet's:
                               * decode its FEC for the missing span (span_samples) */
  PARLEY__JITTER_CONCEAL,     /* missing audio: run the decoder's PLC */
  PARLEY__JITTER_SILENCE,     /* sender in DTX: play comfort noise / silence, not PLC */
  PARLEY__JITTER_EXPAND,      /* audio not here yet: continue the previous audio for out_samples
                               * (concealment); the packet is still to come */
} parley__jitter_kind;

typedef struct parley__jitter_frame {
  parley__jitter_kind kind;
  const uint8_t *payload; /* PACKET/FEC: borrowed, owned by the buffer, valid until the next get() */
  size_t payload_bytes;
  uint32_t timestamp; /* RTP timestamp of the audio this action stands for (FEC: the missing span's) */
  uint16_t seq;       /* PACKET/FEC: the packet's sequence number */
  bool marker;
  uint32_t ssrc;
  bool reset; /* the stream was reset (SSRC change or resync) since the previous get(): reset the decoder */
  /* out_samples: what this action adds to the output queue: for PACKET the decoded packet (its
   * duration) before time-scaling; for FEC the LAST out_samples of the span_samples that the FEC
   * decode rebuilds (the start of the span was already covered by expansion); for the others exactly
   * this many. timescale_samples (PACKET only): < 0 accelerate: remove up to -timescale_samples (one
   * pitch lag, parley__timescale_accelerate); > 0 stretch: insert up to that many
   * (parley__timescale_stretch); 0 play as decoded. The next call's queued_samples tells the buffer
   * what was actually done. */
  uint32_t out_samples;
  uint32_t span_samples;
  int32_t timescale_samples;
} parley__jitter_frame;

typedef struct parley__jitter_stats {
  /* Delays are playout offsets above the fastest packet in the window (the buffering that packet
   * would see): current is the play offset including the queued samples of the last packet played
   * (a wait for missing audio leaves it alone), target is the low target. */
  double current_delay_ms;
  double target_delay_ms;
  double jitter_ms;        /* RFC 3550 interarrival jitter estimate */
  uint64_t packets_in;     /* accepted by put() (not duplicates, not rejected) */
  uint64_t packets_out;    /* played as PACKET */
  uint64_t late;           /* arrived after their play time (or went stale): dropped */
  uint64_t duplicates;     /* dropped */
  uint64_t malformed;      /* refused: packet_samples could not read a duration, or it was too long */
  uint64_t concealed;      /* CONCEAL actions (loss or lateness) */
  uint64_t concealed_samples; /* samples of them */
  uint64_t fec_recoveries; /* FEC actions */
  uint64_t silence;        /* SILENCE actions, and CONCEAL or EXPAND actions given while waiting in a
                            * gap that the next packet showed was DTX (recounted then) */
  uint64_t overflow;       /* dropped because the pool was full or the packet was too far ahead */
  uint64_t resyncs;        /* timestamp jumps */
  uint64_t ssrc_changes;
  uint64_t expands;            /* EXPAND actions (less those recounted as DTX silence) */
  uint64_t expand_samples;     /* samples of EXPAND asked for (likewise) */
  uint64_t played_after_expand; /* packets played after their audio was waited for (saved from lateness) */
  uint64_t accelerated;        /* packets played with an accelerate request */
  uint64_t stretched;          /* packets played with a stretch request */
} parley__jitter_stats;

/* Creates a buffer; cfg may be NULL for all defaults. Allocates the whole pool. Returns NULL and sets
 * *err (PARLEY_EINVAL for a bad config, PARLEY_ENOMEM) on failure. Not real-time. */
parley__jitter *parley__jitter_new(const parley__jitter_config *cfg, int *err);
void parley__jitter_free(parley__jitter *j);

/* Stores one packet that arrived at now_us; the payload (1..max_payload_bytes bytes) is copied.
 * Returns 0 if stored, PARLEY_EINVAL (bad arguments, payload too large), or a positive reason it was
 * dropped and counted: PARLEY__JITTER_DROP_DUPLICATE, _LATE, _OVERFLOW or _MALFORMED. A new SSRC resets
 * the buffer first (counted in ssrc_changes). Audio thread, real-time safe. */
enum {
  PARLEY__JITTER_DROP_DUPLICATE = 1,
  PARLEY__JITTER_DROP_LATE = 2,
  PARLEY__JITTER_DROP_OVERFLOW = 3,
  PARLEY__JITTER_DROP_MALFORMED = 4,
};
int parley__jitter_put(parley__jitter *j, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
                       const uint8_t *payload, size_t payload_bytes, int64_t now_us);

/* Call on the device clock (now_us) whenever the output queue holds fewer than tick_samples;
 * queued_samples = decoded samples still queued ahead of what this call adds. Fills *out; returns 0 or
 * PARLEY_EINVAL. Every action adds at least one sample. Audio thread, real-time safe. */
int parley__jitter_get(parley__jitter *j, int64_t now_us, uint32_t queued_samples, parley__jitter_frame *out);

/* Forgets the stream (packets, timing history, counters stay). Audio thread, real-time safe. */
void parley__jitter_reset(parley__jitter *j);

void parley__jitter_get_stats(const parley__jitter *j, parley__jitter_stats *out);

#endif
