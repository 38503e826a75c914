/* relay_udp.h: the relay core (sim/relay.h) over real UDP sockets: the I/O loop behind
 * parley-netsim, as a function tests can drive in-process on loopback.
 *
 * Shape (a NAT-less middlebox): one socket listens at `listen` and faces peer A; A's address is learned
 * from the first datagram that arrives there, and datagrams from any other source are ignored
 * (counted). A second socket is connected to `forward` (peer B), so only B's datagrams are read from it.
 * A -> relay -> B is direction a2b; B's replies come back through the connected socket and go out of the
 * listen socket to A (b2a). B sees the relay's second socket as its peer. IPv4 and IPv6.
 * Meeting point (forward left AF_UNSPEC): no second socket; both peers send to `listen`, the first
 * source is A and the first other one B (later sources are foreign), and each hears the other from
 * the listen address. Two peers that were each told the other is at the listen address (their ICE
 * candidates rewritten to it) then reach each other through the relay without either knowing the
 * other's real address in advance.
 *
 * Threads: one thread at a time per relay (create, steps, free). Not real-time code: step makes system
 * calls (poll, recvfrom, sendto) and reads the clock; it never allocates (buffers come from create).
 * Ownership: the relay owns its sockets (closed by free) and copies its config; the clock is borrowed
 * and must outlive the relay (new_realtime: the relay's own). */
#ifndef PARLEY_SIM_RELAY_UDP_H
#define PARLEY_SIM_RELAY_UDP_H

#include <stdint.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "sim/relay.h"

typedef struct parley__relay_udp_config {
  struct sockaddr_storage listen;  /* side A: bound here (port 0 picks a free port) */
  struct sockaddr_storage forward; /* peer B; AF_UNSPEC (zeroed): learn B too (meeting point) */
  parley__relay_config relay;      /* impairments, seed, queue bound, max datagram */
} parley__relay_udp_config;

typedef struct parley__relay_udp_stats {
  uint64_t foreign;       /* datagrams on the listen socket from a source other than the learned A */
  uint64_t undeliverable; /* copies due before their peer was learned (dropped) */
  uint64_t send_errors;   /* sendto failures (full socket buffer, ICMP unreachable), datagram dropped */
  uint64_t recv_errors;   /* receive failures other than "nothing pending" (e.g. ECONNREFUSED from B) */
  int peer_a_known;       /* 1 once A was learned */
  int peer_b_known;       /* 1 once B is known (always with a forward address) */
} parley__relay_udp_stats;

typedef struct parley__relay_udp parley__relay_udp;

/* Parses "HOST:PORT", "[IPV6]:PORT" or "PORT" (HOST then defaults to 127.0.0.1) into out. HOST may be
 * a numeric address or a name (resolved with getaddrinfo: may block; first UDP result wins); an IPv6
 * literal needs the brackets. PORT is 0..65535. 0 or PARLEY_EINVAL / PARLEY_ENOTFOUND (name did not
 * resolve). Any thread. */
int parley__relay_udp_parse_addr(const char *text, struct sockaddr_storage *out);

/* Formats addr as "IP:PORT" or "[IP6]:PORT" into buf (NUL-terminated). 0 or PARLEY_EINVAL / ENOSPC. */
int parley__relay_udp_format_addr(const struct sockaddr *addr, char *buf, size_t cap);

/* Creates the relay: validates cfg, binds the listen socket, connects the forward socket, and starts
 * the impairment timeline at the clock's current time. clock is borrowed. NULL and *err on failure:
 * PARLEY_EINVAL, PARLEY_ENOMEM, PARLEY_ENETWORK (socket, bind or connect failed; errno is kept), or a
 * relay_new error (bad impairment, trace). Not real-time. */
parley__relay_udp *parley__relay_udp_new(const parley__relay_udp_config *cfg, const parley__clock *clock,
                                         int *err);
void parley__relay_udp_free(parley__relay_udp *u); /* closes the sockets; NULL ignored */

/* parley__relay_udp_new on the monotonic system clock, which the relay keeps itself: for programs
 * that run a relay in real time (parley-netsim, parley-call) and need no clock of their own.
 * parley__relay_udp_now reads the relay's clock (microseconds; 0 for NULL), so such a program can
 * time its loop on the relay's timeline. */
parley__relay_udp *parley__relay_udp_new_realtime(const parley__relay_udp_config *cfg, int *err);
int64_t parley__relay_udp_now(const parley__relay_udp *u);

/* One bounded iteration: waits (ppoll) at most max_wait_us (less if a forward falls due sooner; 0 =
 * no wait), reads what is pending (at most 256 datagrams per socket), then sends every copy that is
 * due. Returns the datagrams read plus sent (>= 0), 0 when interrupted by a signal (EINTR), or
 * PARLEY_EINVAL / PARLEY_ENETWORK (poll failed). */
int parley__relay_udp_step(parley__relay_udp *u, int64_t max_wait_us);

/* Actual local addresses: the listen socket (what A sends to) and the forward socket (what B sees as
 * the relay). 0 or PARLEY_EINVAL / PARLEY_ENETWORK. */
int parley__relay_udp_listen_addr(const parley__relay_udp *u, struct sockaddr_storage *out);
int parley__relay_udp_forward_local_addr(const parley__relay_udp *u, struct sockaddr_storage *out);

/* The relay core (for its per-direction stats) and the I/O counters. */
const parley__relay *parley__relay_udp_core(const parley__relay_udp *u);
void parley__relay_udp_get_stats(const parley__relay_udp *u, parley__relay_udp_stats *out);

#endif
