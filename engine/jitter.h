/* jitter.h: the adaptive jitter buffer for one inbound RTP stream (one SSRC at a time).
 *
 * put() stores a packet (payload copied into a pool preallocated at create); get() is called once per
 * frame tick and says what to play for that tick: a packet's payload, the NEXT packet's payload for
 * in-band FEC recovery of a missing frame, concealment (PLC), silence (the sender is in DTX), or
 * nothing yet (still buffering). The buffer never decodes.
 *
 * Threads: put() and get() (and stats/reset) are called on ONE thread, the audio thread: the pipeline
 * moves packets from the network ring onto the audio thread before calling put(). No locks inside.
 * Real-time: put(), get(), get_stats() and reset() never allocate, lock, block or log; only
 * parley__jitter_new / parley__jitter_free allocate.
 *
 * Model: each packet carries one frame of frame_samples at clock_hz. The buffer measures each packet's
 * relative transit r = arrival - media time of its timestamp, and keeps a window of recent r values.
 * Playing frame ts at time now means a buffering delay now - mediatime(ts); a packet is on time iff
 * its r is at most that. The target delay is the smallest that keeps the expected late share under
 * late_target_pct over the window; the actual delay moves in whole frames: it grows at once (hold the
 * play position while concealing a missing frame, or in silence), and shrinks one frame at a time,
 * freely in silence or on a frame that is missing anyway, otherwise by dropping one frame at most every
 * talk_shrink_interval_ms.
 *
 * Timescaled playout (get_timescaled(), NetEq-style), for a chain that keeps an output queue of decoded
 * samples and runs engine/timescale: the chain asks whenever its queue holds less than one device tick
 * (tick_samples), and says how much is still queued, so the buffer knows the play time of the next
 * frame's first sample to the sample. A frame's decision offset d = now - media time (the packet is
 * there iff its transit r <= d) and its play offset is d + queued. Two targets from the transit window:
 * the low target (the accel_target_pct quantile) where the delay is steered, and the wait limit (the
 * wait_late_pct quantile). A missing frame is waited for by EXPAND (stretch the previous audio up to
 * the next tick: concealment, but the packet is played when it comes, not lost) while d is below the
 * wait limit, or while no later packet has arrived either (then everything is late, as in a delay
 * spike, up to max_delay_ms), and then given up: the expansion already played stands in for it (a
 * whole frame of it: skipped; less: CONCEAL the rest, or FEC). At or above the low target a missing
 * frame whose FEC the next packet carries (config has_fec) is not waited for: FEC at once. Above the
 * low target a frame is played accelerated (shortened by pitch periods, up to half a frame, 3/4 when
 * three frames above it: the delay shrinks during talk without dropping audio), below it, when the
 * next packet is not here yet, stretched. In DTX silence is shortened or lengthened directly.
 * The low target's quantile trades delay against waiting: every frame that misses it is waited for
 * with at least one tick of expansion, so its default (5 %) keeps the concealment on jittery paths
 * within about a point of whole-frame playout (`parley-bench quality`). */
#ifndef PARLEY_ENGINE_JITTER_H
#define PARLEY_ENGINE_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__jitter parley__jitter;

/* Zero fields take the default in brackets. */
typedef struct parley__jitter_config {
  uint32_t clock_hz;                 /* RTP clock [48000] */
  uint32_t frame_samples;            /* samples per packet at clock_hz [960 = 20 ms] */
  size_t max_payload_bytes;          /* larger payloads are rejected [1500] */
  uint32_t capacity_packets;         /* pool size; also bounds the delay [128] */
  uint32_t window_packets;           /* relative-transit history [500, max 4096] */
  double late_target_pct;            /* get(): late share of the window the target may leave out [2.0] */
  uint32_t min_delay_ms;             /* target floor above the fastest recent packet [0] */
  uint32_t max_delay_ms;             /* target ceiling above the fastest recent packet [1000] */
  uint32_t resync_ms;                /* transit jump that means a timestamp jump [3000] */
  uint32_t talk_shrink_interval_ms;  /* get(): min spacing of frame drops during talk [500] */
  /* Timescaled playout only: */
  double wait_late_pct;              /* late share of the window the wait limit leaves out [1.0] */
  double accel_target_pct;           /* share of the window above the low target [5; >= wait_late_pct] */
  uint32_t tick_samples;             /* device tick at clock_hz [frame_samples / 2] */
  /* Whether a payload carries in-band FEC for the frame before it (e.g. parley__packet_has_fec), or
   * NULL [no FEC is assumed]. Called by put() on the audio thread: must be real-time safe. When the
   * packet after a missing frame is here and has FEC, a timescaled buffer at or above its low target
   * recovers the frame from it at once instead of waiting (expanding) for a packet that may be lost. */
  bool (*has_fec)(const uint8_t *payload, size_t payload_bytes);
} parley__jitter_config;

typedef enum parley__jitter_kind {
  PARLEY__JITTER_NOTHING = 0, /* buffering: nothing to play yet (before the first packet is due) */
  PARLEY__JITTER_PACKET,      /* decode payload */
  PARLEY__JITTER_FEC,         /* this frame is missing; payload is the next packet's: decode its FEC */
  PARLEY__JITTER_CONCEAL,     /* missing frame: run the decoder's PLC */
  PARLEY__JITTER_SILENCE,     /* sender in DTX: play comfort noise / silence, not PLC */
  PARLEY__JITTER_EXPAND,      /* timescaled only: frame not here yet: continue the previous audio for
                               * out_samples (concealment); the frame is still to come */
} parley__jitter_kind;

typedef struct parley__jitter_frame {
  parley__jitter_kind kind;
  const uint8_t *payload; /* PACKET/FEC: borrowed, owned by the buffer, valid until the next get() */
  size_t payload_bytes;
  uint32_t timestamp; /* RTP timestamp of the frame this tick plays (for FEC: the missing frame's) */
  uint16_t seq;       /* PACKET/FEC: the packet's sequence number */
  bool marker;
  uint32_t ssrc;
  bool reset; /* the stream was reset (SSRC change or resync) since the previous get(): reset the decoder */
  /* Timescaled playout only. out_samples: what this action adds to the output queue; for PACKET and
   * FEC the decoded frame (frame_samples) before time-scaling, for the others exactly this many.
   * timescale_samples (PACKET only): < 0 accelerate: remove up to -timescale_samples (one pitch lag,
   * parley__timescale_accelerate); > 0 stretch: insert up to that many (parley__timescale_stretch);
   * 0 play as decoded. The next call's queued_samples tells the buffer what was actually done. */
  uint32_t out_samples;
  int32_t timescale_samples;
} parley__jitter_frame;

typedef struct parley__jitter_stats {
  /* Delays are playout offsets above the fastest packet in the window (the buffering that packet
   * would see): current is where the play position is, target where the quantile says it should be
   * (timescaled: the play offset including the queued samples of the last frame played, not of a
   * wait for a missing one, and the low target). */
  double current_delay_ms;
  double target_delay_ms;
  double jitter_ms;        /* RFC 3550 interarrival jitter estimate */
  uint64_t packets_in;     /* accepted by put() (not duplicates, not rejected) */
  uint64_t packets_out;    /* played as PACKET */
  uint64_t late;           /* arrived after their play time (or went stale): dropped */
  uint64_t duplicates;     /* dropped */
  uint64_t concealed;      /* CONCEAL frames (loss or lateness) */
  uint64_t fec_recoveries; /* FEC frames */
  uint64_t silence;        /* SILENCE frames, and frames given out as CONCEAL or EXPAND while waiting
                            * in a gap that the next packet showed was DTX (recounted then) */
  uint64_t shrink_drops;   /* frames dropped to shrink the delay during talk */
  uint64_t overflow;       /* dropped because the pool was full or the packet was too far ahead */
  uint64_t resyncs;        /* timestamp jumps */
  uint64_t ssrc_changes;
  /* Timescaled playout. */
  uint64_t expands;            /* EXPAND actions (less those recounted as DTX silence) */
  uint64_t expand_samples;     /* samples of EXPAND asked for (likewise) */
  uint64_t played_after_expand; /* packets played after their frame was expanded (saved from lateness) */
  uint64_t accelerated;        /* packets played with an accelerate request */
  uint64_t stretched;          /* packets played with a stretch request */
} parley__jitter_stats;

/* Creates a buffer; cfg may be NULL for all defaults. Allocates the whole pool. Returns NULL and sets
 * *err (PARLEY_EINVAL for a bad config, PARLEY_ENOMEM) on failure. Not real-time. */
parley__jitter *parley__jitter_new(const parley__jitter_config *cfg, int *err);
void parley__jitter_free(parley__jitter *j);

/* Stores one packet that arrived at now_us; the payload (1..max_payload_bytes bytes) is copied.
 * Returns 0 if stored, PARLEY_EINVAL (bad arguments, payload too large), or a positive reason it was
 * dropped and counted: PARLEY__JITTER_DROP_DUPLICATE, _LATE or _OVERFLOW. A new SSRC resets the buffer
 * first (counted in ssrc_changes). Audio thread, real-time safe. */
enum { PARLEY__JITTER_DROP_DUPLICATE = 1, PARLEY__JITTER_DROP_LATE = 2, PARLEY__JITTER_DROP_OVERFLOW = 3 };
int parley__jitter_put(parley__jitter *j, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
                       const uint8_t *payload, size_t payload_bytes, int64_t now_us);

/* One frame tick at now_us (call every frame_samples / clock_hz seconds). Fills *out; returns 0 or
 * PARLEY_EINVAL. Audio thread, real-time safe. */
int parley__jitter_get(parley__jitter *j, int64_t now_us, parley__jitter_frame *out);

/* Timescaled playout: call on the device clock (now_us) whenever the output queue holds fewer than
 * tick_samples; queued_samples = decoded samples still queued ahead of what this call adds. Fills *out
 * (kind, out_samples, timescale_samples, payload as for get()); returns 0 or PARLEY_EINVAL. Do not
 * mix with get() on one buffer. Audio thread, real-time safe. */
int parley__jitter_get_timescaled(parley__jitter *j, int64_t now_us, uint32_t queued_samples,
                                  parley__jitter_frame *out);

/* Forgets the stream (packets, timing history, counters stay). Audio thread, real-time safe. */
void parley__jitter_reset(parley__jitter *j);

void parley__jitter_get_stats(const parley__jitter *j, parley__jitter_stats *out);

#endif
