/* simnet.h: an in-memory UDP-like network in simulated time, for tests and benches. Endpoints are
 * addresses (IPv4 or IPv6 struct sockaddr) with a receive callback; send() decides each datagram's fate
 * at once (dropped, or delivered at one or more times: duplicates are allowed) and queues it;
 * deliver_until() hands due datagrams to their endpoints in delivery-time order (equal times: send
 * order). The fate is pluggable: the shared impairment model (sim/impair.h) plugs in through
 * parley__simnet_set_fate; the built-in fate is a fixed delay plus uniform jitter plus seeded random loss.
 * cut() drops everything sent until restore() (datagrams already in flight still arrive, as they would
 * beyond a broken link); block() does the same for one direction of one address pair. A datagram for an address with no endpoint bounces as ECONNREFUSED to the
 * sender's error callback at the time it would have arrived (ICMP port unreachable).
 *
 * Fixed capacity (queue slots and datagram size set at create), deterministic for a given seed and
 * call sequence. Single-threaded; nothing reads the clock. Not real-time code, but send and deliver
 * never allocate. Callbacks run inside deliver_until and may call send (and cut/restore). */
#ifndef PARLEY_SIM_SIMNET_H
#define PARLEY_SIM_SIMNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/rng.h"

typedef struct parley__simnet parley__simnet;

#define PARLEY__SIMNET_MAX_COPIES 4

/* What happens to one datagram: copies == 0 drops it; otherwise it arrives once per deliver_at_us entry
 * (times before now are treated as now). */
typedef struct parley__simnet_fate {
  int copies;
  int64_t deliver_at_us[PARLEY__SIMNET_MAX_COPIES];
} parley__simnet_fate;

/* Decides a datagram's fate. from/to/now_us describe the send; out is zeroed before the call. */
typedef void (*parley__simnet_fate_fn)(void *ctx, const struct sockaddr *from, const struct sockaddr *to,
                                       size_t len, int64_t now_us, parley__simnet_fate *out);

/* A datagram arrives: data is borrowed for the call. now_us is the delivery time. */
typedef void (*parley__simnet_recv_fn)(void *ctx, parley__simnet *net, const struct sockaddr *from,
                                       const struct sockaddr *to, const uint8_t *data, size_t len,
                                       int64_t now_us);
/* A datagram this endpoint sent bounced: errno_value (ECONNREFUSED), dest is where it was going. */
typedef void (*parley__simnet_error_fn)(void *ctx, parley__simnet *net, const struct sockaddr *dest,
                                        int errno_value, int64_t now_us);

/* The built-in fate: each datagram is lost with probability loss_prob, otherwise delivered after
 * delay_us + U[0, jitter_us] (independently per datagram, so jitter reorders). */
typedef struct parley__simnet_link {
  int64_t delay_us;
  int64_t jitter_us;
  double loss_prob;
} parley__simnet_link;

typedef struct parley__simnet_stats {
  uint64_t sent;         /* send() calls accepted */
  uint64_t delivered;    /* datagrams handed to a receive callback */
  uint64_t dropped_fate; /* dropped by the fate (loss) */
  uint64_t dropped_cut;  /* dropped because the network was cut */
  uint64_t dropped_full; /* copies dropped because the queue was full */
  uint64_t unreachable;  /* arrived at an address with no endpoint */
} parley__simnet_stats;

/* max_endpoints >= 1, max_queued >= 1 datagram copies in flight, max_datagram >= 1 bytes. The link
 * starts as delay 0, jitter 0, no loss. NULL and *err = PARLEY_EINVAL / PARLEY_ENOMEM on failure. */
parley__simnet *parley__simnet_new(size_t max_endpoints, size_t max_queued, size_t max_datagram,
                                   uint64_t seed, int *err);
void parley__simnet_free(parley__simnet *net); /* NULL ignored */

/* Registers an endpoint at addr (AF_INET or AF_INET6; copied). recv may be NULL (datagrams vanish),
 * on_error may be NULL; ctx is borrowed. Returns the endpoint id (>= 0), PARLEY_EINVAL (bad address,
 * address already taken) or PARLEY_EFULL. */
int parley__simnet_add_endpoint(parley__simnet *net, const struct sockaddr *addr,
                                parley__simnet_recv_fn recv, parley__simnet_error_fn on_error, void *ctx);
/* Removes an endpoint (its process died): later datagrams to it bounce. 0 or PARLEY_EINVAL. */
int parley__simnet_remove_endpoint(parley__simnet *net, int id);

/* Sends len bytes (copied) from -> to at now_us. Returns 0 when the datagram was accepted (even if its
 * fate drops it: like UDP, the sender cannot tell), PARLEY_ENOSPC (len > max_datagram), PARLEY_EFULL
 * (no queue slot for any copy), PARLEY_EINVAL (NULL or non-IP address). */
int parley__simnet_send(parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                        const void *data, size_t len, int64_t now_us);

/* Replaces the built-in fate (fn NULL restores it). ctx is borrowed. */
void parley__simnet_set_fate(parley__simnet *net, parley__simnet_fate_fn fn, void *ctx);
/* Sets the built-in fate's parameters: 0, or PARLEY_EINVAL (negative times, loss outside [0, 1]). */
int parley__simnet_set_link(parley__simnet *net, const parley__simnet_link *link);
/* The net's rng (seeded at create), for fates that want to share it. */
parley__rng *parley__simnet_rng(parley__simnet *net);

/* Whole-network cut: every datagram sent while cut is dropped (counted in dropped_cut). */
void parley__simnet_cut(parley__simnet *net);
void parley__simnet_restore(parley__simnet *net);
int parley__simnet_is_cut(const parley__simnet *net);
/* Cuts one path in one direction: datagrams sent from -> to (exact addresses) are dropped while
 * blocked (counted in dropped_cut); blocked = 0 lifts it. At most PARLEY__SIMNET_MAX_BLOCKS pairs.
 * 0, PARLEY_EINVAL (bad address, or unblocking a pair that is not blocked) or PARLEY_EFULL. */
#define PARLEY__SIMNET_MAX_BLOCKS 32
int parley__simnet_block(parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                         int blocked);

/* Earliest pending delivery time, or INT64_MAX if nothing is in flight. */
int64_t parley__simnet_next_delivery_us(const parley__simnet *net);
/* Delivers every datagram due at or before now_us, in (time, send order) order, including ones sent
 * by callbacks during the call that fall due by now_us (at most 1,000,000 per call, so a zero-delay
 * ping-pong cannot spin forever). Returns how many were handled, or PARLEY_EINVAL. */
int parley__simnet_deliver_until(parley__simnet *net, int64_t now_us);
/* Datagram copies in flight. */
size_t parley__simnet_in_flight(const parley__simnet *net);
void parley__simnet_get_stats(const parley__simnet *net, parley__simnet_stats *out);

/* Helpers: fill an IPv4 sockaddr from a dotted quad and a port: 0 or PARLEY_EINVAL. Same-address test
 * (family, address, port; IPv6 scope and flow ignored). */
int parley__simnet_addr4(struct sockaddr_storage *out, const char *ip, uint16_t port);
int parley__simnet_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
