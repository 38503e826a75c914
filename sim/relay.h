/* relay.h: the sans-clock core of a two-sided UDP relay with impairments (parley-netsim). Datagrams
 * received on side A travel a -> b, those received on side B travel b -> a; each direction has its own
 * parley__impair model (sim/impair.h), which decides when (and whether, and how many times) the
 * datagram is forwarded. Scheduled copies wait in one bounded delivery queue ordered by (due time,
 * arrival order). The caller owns all I/O and the clock: it feeds receive(now_us), asks next_due_us
 * for how long it may sleep, and pops due datagrams to send them out (sim/relay_udp.h does this
 * over real sockets).
 *
 * The impairment timeline (blackouts, spikes, trace) is relative to start_us given at create.
 *
 * Ownership: the relay owns its models and its queue storage (max_queued * max_datagram bytes, all
 * allocated at create). Threads: one thread at a time. receive / pop_due / next_due_us never allocate,
 * lock, block or make system calls. */
#ifndef PARLEY_SIM_RELAY_H
#define PARLEY_SIM_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "sim/impair.h"

#define PARLEY__RELAY_MAX_DATAGRAM 65536

typedef enum parley__relay_dir {
  PARLEY__RELAY_A2B = 0, /* received on side A, forwarded to B */
  PARLEY__RELAY_B2A = 1,
} parley__relay_dir;

typedef struct parley__relay_config {
  parley__impair_config impair[2]; /* indexed by parley__relay_dir; copied at create */
  uint64_t seed;                   /* a2b model seeded with seed, b2a with a value derived from it */
  size_t max_queued;               /* datagram copies waiting, both directions together (>= 1) */
  size_t max_datagram;             /* largest datagram accepted, bytes (1 .. PARLEY__RELAY_MAX_DATAGRAM) */
} parley__relay_config;

typedef struct parley__relay_dir_stats {
  uint64_t received;      /* datagrams given to receive() */
  uint64_t forwarded;     /* copies popped for sending (duplicates included) */
  uint64_t dropped;       /* dropped by the impairment model (loss, blackout, trace) or oversized */
  uint64_t dropped_full;  /* copies dropped because the delivery queue was full */
  uint64_t duplicated;    /* extra copies scheduled by the model */
  uint64_t reordered;     /* forwarded after a datagram received later in the same direction */
  uint64_t bytes_in;      /* payload bytes received */
  uint64_t bytes_out;     /* payload bytes forwarded */
  double mean_delay_us;   /* mean scheduled delay (due - received) of forwarded copies */
  int64_t max_delay_us;   /* largest scheduled delay of a forwarded copy */
  int64_t max_late_us;    /* largest (pop time - due time): how late the caller forwarded */
} parley__relay_dir_stats;

typedef struct parley__relay parley__relay;

/* Validates cfg (PARLEY_EINVAL: zero sizes or a bad impair config; PARLEY_EPARSE / PARLEY_EIO from
 * a trace; PARLEY_ENOMEM) and creates the relay, with the impairment timeline starting at start_us.
 * NULL and *err on failure. Not real-time. */
parley__relay *parley__relay_new(const parley__relay_config *cfg, int64_t start_us, int *err);
void parley__relay_free(parley__relay *r); /* NULL ignored */

/* A datagram of len bytes (copied) was received on the side that makes it travel `dir`, at now_us
 * (non-decreasing across calls). Returns the copies queued (0: dropped by the model or queue full),
 * PARLEY_ENOSPC (len > max_datagram; counted as received and dropped) or PARLEY_EINVAL. */
int parley__relay_receive(parley__relay *r, parley__relay_dir dir, const void *data, size_t len, int64_t now_us);

/* Due time of the earliest queued copy, or INT64_MAX when the queue is empty. */
int64_t parley__relay_next_due_us(const parley__relay *r);

/* Removes the earliest copy due at or before now_us: copies it into buf (cap bytes), sets *dir and
 * returns its length. PARLEY_EAGAIN when nothing is due; PARLEY_ENOSPC if cap is too small (the copy
 * stays queued); PARLEY_EINVAL on NULL arguments. The copy counts as forwarded. */
int parley__relay_pop_due(parley__relay *r, int64_t now_us, parley__relay_dir *dir, void *buf, size_t cap);

/* Copies currently queued. */
size_t parley__relay_queued(const parley__relay *r);

/* Statistics of one direction (zeroed for NULL r or a bad dir). */
void parley__relay_get_stats(const parley__relay *r, parley__relay_dir dir, parley__relay_dir_stats *out);

#endif
