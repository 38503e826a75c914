/* udp.h: non-blocking UDP sockets bound to a given local address, send/receive with the peer address,
 * OS errors surfaced (ECONNREFUSED from ICMP port-unreachable is how the liveness monitor learns a peer
 * has gone), and a small bounded poll helper for tests and tools.
 *
 * Threads: a socket belongs to one thread at a time (the network thread). These functions make system
 * calls: never call them on the audio thread. Nothing here blocks except parley__udp_poll, for at most
 * its timeout. */
#ifndef PARLEY_TRANSPORT_UDP_H
#define PARLEY_TRANSPORT_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "transport/netaddr.h"

typedef struct parley__udp {
  int fd;                /* -1 when closed */
  parley__netaddr local; /* bound address with the actual port (ephemeral resolved) */
} parley__udp;

/* What went wrong on a failed send/recv. */
typedef struct parley__udp_error {
  int sys_errno;          /* errno as reported by the OS (ECONNREFUSED, EHOSTUNREACH, ...) */
  parley__netaddr peer;   /* the destination the error is about when the OS says (family 0 if not) */
} parley__udp_error;

/* Opens a non-blocking UDP socket bound to `bind_addr` (port 0 = ephemeral; IPv6 sockets are v6-only).
 * ICMP errors are requested so that an unreachable peer is reported. 0, PARLEY_EINVAL or
 * PARLEY_ENETWORK. On failure s->fd is -1. */
int parley__udp_open(parley__udp *s, const parley__netaddr *bind_addr);
/* Closes; safe on a closed or zeroed-then-failed socket. */
void parley__udp_close(parley__udp *s);

/* Sends one datagram. Returns len, PARLEY_EAGAIN (socket buffer full: the datagram is dropped, as a
 * network would), PARLEY_EINVAL, or PARLEY_ENETWORK with *err filled (err may be NULL). An ICMP error
 * about an earlier datagram does not fail the send: recv reports it, once, with the peer it concerns. */
int parley__udp_send(parley__udp *s, const parley__netaddr *dst, const void *buf, size_t len,
                     parley__udp_error *err);
/* Receives one datagram into buf (cap bytes; a longer datagram is truncated and reported as
 * PARLEY_ENOSPC after being consumed). Returns the byte count with *src filled, PARLEY_EAGAIN when
 * nothing is pending, or PARLEY_ENETWORK with *err filled: a queued ICMP error (e.g. ECONNREFUSED with
 * err->peer = the unreachable destination). err may be NULL. */
int parley__udp_recv(parley__udp *s, void *buf, size_t cap, parley__netaddr *src,
                     parley__udp_error *err);

/* Waits up to timeout_ms (0 = just check, capped at 10000) for any of n sockets to become readable
 * or to have an error pending. Bit i of *ready is set for socks[i] (n <= 32). Returns the number ready
 * (0 on timeout) or PARLEY_EINVAL / PARLEY_ENETWORK. */
int parley__udp_poll(parley__udp *const *socks, size_t n, int timeout_ms, uint32_t *ready);

#endif
