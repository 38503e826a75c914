/* ice_gather.c: host address enumeration for ICE (see ice_gather.h). Stateless; control thread. */
#define _DEFAULT_SOURCE
#include "transport/ice_gather.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/socket.h>

#include "parley/parley.h"

static bool wanted(const parley__ice_gather_opts *o, const parley__netaddr *a) {
  if (a->family == PARLEY__NETADDR_V4 && !o->ipv4) return false;
  if (a->family == PARLEY__NETADDR_V6 && !o->ipv6) return false;
  if (parley__netaddr_is_link_local(a)) return false;
  if (parley__netaddr_is_loopback(a) && !o->loopback) return false;
  return true;
}

int parley__ice_gather_host_addrs(const parley__ice_gather_opts *opts, parley__netaddr *out, size_t max) {
  if (!opts || (!out && max > 0)) return PARLEY_EINVAL;
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0) return errno == ENOMEM ? PARLEY_ENOMEM : PARLEY_ENETWORK;
  size_t n = 0;
  /* Two passes so IPv6 comes first (RFC 8421 prefers it in local preference order). */
  for (int pass = 0; pass < 2; pass++) {
    uint8_t fam = pass == 0 ? PARLEY__NETADDR_V6 : PARLEY__NETADDR_V4;
    for (struct ifaddrs *i = list; i && n < max; i = i->ifa_next) {
      if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
      parley__netaddr a;
      if (parley__netaddr_from_sockaddr(&a, i->ifa_addr) != 0 || a.family != fam) continue;
      a.port = 0;
      if (!wanted(opts, &a)) continue;
      bool dup = false;
      for (size_t k = 0; k < n && !dup; k++) dup = parley__netaddr_equal(&out[k], &a);
      if (!dup) out[n++] = a;
    }
  }
  freeifaddrs(list);
  return (int)n;
}
