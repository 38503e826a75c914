/* ice_gather.h: lists the host's interface addresses for ICE host candidates (getifaddrs). Kept apart
 * from the agent, which only takes a list of local addresses, so that tests and the simulated network
 * can hand it any addresses they like. Network/control thread; makes system calls and allocates
 * temporarily (inside getifaddrs). */
#ifndef PARLEY_TRANSPORT_ICE_GATHER_H
#define PARLEY_TRANSPORT_ICE_GATHER_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/netaddr.h"

typedef struct parley__ice_gather_opts {
  bool ipv4;          /* include IPv4 addresses */
  bool ipv6;          /* include IPv6 addresses (link-local fe80::/10 always skipped) */
  bool loopback;      /* include 127.0.0.0/8 and ::1 (off in production, on for local tests) */
} parley__ice_gather_opts;

/* Fills out[0..max) with the addresses of interfaces that are up (port 0), IPv6 first then IPv4,
 * duplicates removed. Returns the count (possibly 0), or PARLEY_EINVAL / PARLEY_ENETWORK. */
int parley__ice_gather_host_addrs(const parley__ice_gather_opts *opts, parley__netaddr *out, size_t max);

#endif
