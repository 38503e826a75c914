/* impair.h: the one seeded network impairment model. The jitter bench, the transport's in-memory
 * simulated network and the UDP relay tool all feed packets through it, so "30 ms jitter" means the
 * same thing everywhere.
 *
 * Per packet, given its send time, the model decides: dropped, delivered once, or delivered twice
 * (duplicate). All impairments are optional and compose, applied in this order:
 *   blackout (drop) -> trace loss (drop) -> Gilbert-Elliott loss -> random loss ->
 *   rate limit (serialization queue, from the send time) -> delay = base + trace delay + jitter
 *   + spike + reorder hold -> monotonic clamp (optional) -> duplication.
 *
 * Ownership: parley__impair owns a copy of everything in its config (trace included).
 * Threads: one thread at a time per model. parley__impair_new parses and allocates (not real-time);
 * parley__impair_packet does not allocate, lock or block. Deterministic for a (config, seed) pair. */
#ifndef PARLEY_SIM_IMPAIR_H
#define PARLEY_SIM_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__IMPAIR_MAX_SPIKES 16
#define PARLEY__IMPAIR_MAX_BLACKOUTS 16

/* Gilbert-Elliott two-state loss: each packet first moves the chain (good->bad with p_good_to_bad,
 * bad->good with p_bad_to_good), then is lost with the state's loss probability. All in [0, 1]. */
typedef struct parley__impair_ge {
  double p_good_to_bad;
  double p_bad_to_good;
  double loss_good;
  double loss_bad;
} parley__impair_ge;

/* A delay spike (Wi-Fi stall): a packet sent at t in [start, start + peak / drain) gets extra delay
 * peak - (t - start) * drain. drain 1.0 (or 0 = default 1.0) is line rate: everything sent during the
 * stall arrives together at start + peak, then the queue is gone. */
typedef struct parley__impair_spike {
  int64_t start_us;
  int64_t peak_us;
  double drain;
} parley__impair_spike;

/* Everything sent in [start, start + length) is dropped. */
typedef struct parley__impair_blackout {
  int64_t start_us;
  int64_t length_us;
} parley__impair_blackout;

/* One trace line: from time_us on (until the next point), extra path delay delay_us, and packets
 * sent are lost if lost. Points are replayed by send time; before the first point nothing applies. */
typedef struct parley__impair_trace_point {
  int64_t time_us;
  int64_t delay_us;
  bool lost;
} parley__impair_trace_point;

/* All fields optional (zero = off). Percentages are in [0, 100]. */
typedef struct parley__impair_config {
  int64_t base_delay_us;
  /* Gaussian jitter: the extra delay is N(2 sd, sd) floored at 0, so delay >= base and the measured
   * deviation is within ~3 % of jitter_sd_us (the floor clips 2.3 % of draws). It reorders packets
   * unless monotonic is set, which clamps each delivery to be no earlier than the previous one. */
  int64_t jitter_sd_us;
  bool monotonic;
  double loss_pct;
  bool ge_enabled;
  parley__impair_ge ge;
  /* Explicit reordering: with this probability a packet is held back an extra reorder_hold_us. */
  double reorder_pct;
  int64_t reorder_hold_us;
  /* Duplication: the copy arrives dup_gap_us after the original. */
  double dup_pct;
  int64_t dup_gap_us;
  /* Serialization at rate_bytes_per_s (0 = unlimited); packets queue behind each other. */
  double rate_bytes_per_s;
  int n_spikes;
  parley__impair_spike spikes[PARLEY__IMPAIR_MAX_SPIKES];
  int n_blackouts;
  parley__impair_blackout blackouts[PARLEY__IMPAIR_MAX_BLACKOUTS];
  /* Trace text: lines "time_ms delay_ms lost" (lost 0/1; '#' starts a comment; blank lines skipped;
   * times non-decreasing). Either inline text or a file path (not both). Copied at create. */
  const char *trace_text;
  const char *trace_path;
} parley__impair_config;

typedef struct parley__impair parley__impair;

/* Up to two deliveries per packet, in time order. */
typedef struct parley__impair_verdict {
  int n_deliveries; /* 0 = dropped, 1, or 2 (duplicate) */
  int64_t deliver_us[2];
} parley__impair_verdict;

typedef struct parley__impair_stats {
  uint64_t packets;
  uint64_t dropped;
  uint64_t duplicated;
  uint64_t reordered; /* held back by the explicit reorder rule */
} parley__impair_stats;

/* Fills a GE config (loss_good 0, loss_bad 1) whose stationary loss is mean_loss_pct (0 < x < 100) and
 * whose mean burst length is mean_burst_packets (>= 1). Returns 0 or PARLEY_EINVAL. Any thread. */
int parley__impair_ge_from_mean(double mean_loss_pct, double mean_burst_packets, parley__impair_ge *out);

/* Validates cfg (PARLEY_EINVAL: negative times, probabilities out of range, too many spikes or
 * blackouts, both trace sources; PARLEY_EPARSE: bad trace; PARLEY_EIO: unreadable trace file;
 * PARLEY_ENOMEM) and creates a model seeded with seed. Returns NULL and sets *err (if err) on failure.
 * Not real-time. cfg is copied; the caller keeps it. */
parley__impair *parley__impair_new(const parley__impair_config *cfg, uint64_t seed, int *err);
void parley__impair_free(parley__impair *im);

/* Decides the fate of one packet of `bytes` bytes sent at send_us. Send times should be
 * non-decreasing (the rate limiter and the monotonic clamp assume it). Returns the number of
 * deliveries (0, 1, 2) or PARLEY_EINVAL. Real-time safe. */
int parley__impair_packet(parley__impair *im, int64_t send_us, size_t bytes, parley__impair_verdict *out);

void parley__impair_get_stats(const parley__impair *im, parley__impair_stats *out);

#endif
