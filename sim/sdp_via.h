/* sdp_via.h: routing a call through a relay (parley-netsim, sim/relay_udp.h) by its description: the
 * candidates, c= line and m= port of an SDP rewritten to the relay's address, the first candidate read
 * back, and numeric HOST:PORT arguments. For the tools (parley-call --via, its rendezvous) and the
 * benches; tests/test_calltool.c tests them.
 *
 * Threads: plain string work on the caller's (borrowed) buffers, any thread; nothing is allocated.
 * Errors are negative PARLEY_E* codes. */
#ifndef PARLEY_SIM_SDP_VIA_H
#define PARLEY_SIM_SDP_VIA_H

#include <stddef.h>

#include "parley/parley.h"

/* Room for a numeric address as text, IPv4 or IPv6, with its NUL (INET6_ADDRSTRLEN). */
#define PARLEY__VIA_IP_MAX 46

/* Copies sdp into out[0..cap) with the connection address and port of every a=candidate line, the
 * c= line and the m=audio port replaced by ip / port (an IPv4 or IPv6 literal, without brackets), so
 * the peer sends to that address (a relay) instead. Returns the length written, PARLEY_EINVAL (NULL,
 * bad ip or port), PARLEY_ENOSPC, or PARLEY_EPARSE (no candidate line to rewrite). CRLF or LF line ends
 * are kept. */
int parley__via_sdp_rewrite(const char *sdp, const char *ip, int port, char *out, size_t cap);

/* Splits "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric addresses; transport/netaddr.h's
 * parley__hostport_split rules: an IPv6 literal needs its brackets, brackets hold only IPv6; a port
 * 0..65535) into ip (without brackets; cap >= PARLEY__VIA_IP_MAX) and *port. 0 or PARLEY_EINVAL. */
int parley__via_split_hostport(const char *text, char *ip, size_t ip_cap, int *port);

/* The address and port of sdp's first UDP a=candidate line with an IPv4 address, else of its first
 * with an IPv6 one: ip (cap >= PARLEY__VIA_IP_MAX) and *port. 0, PARLEY_EINVAL or PARLEY_ENOTFOUND. */
int parley__via_first_candidate(const char *sdp, char *ip, size_t ip_cap, int *port);

#endif
