/* netwatch.c: rtnetlink address notifications parsed into parley__netwatch_change (see netwatch.h).
 * Stateless and pure: it reads only the bytes it is given. The field layouts are the kernel's uapi
 * headers' (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h); memcpy keeps unaligned input safe. */
#include "transport/netwatch.h"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include "parley/parley.h"

/* One RTM_NEWADDR / RTM_DELADDR payload (ifaddrmsg + attributes) into *c. false: not IPv4/IPv6 or no
 * address attribute. */
static bool parse_addr(const uint8_t *p, size_t len, parley__netwatch_change *c) {
  struct ifaddrmsg ifa;
  if (len < sizeof ifa) return false;
  memcpy(&ifa, p, sizeof ifa);
  if (ifa.ifa_family != AF_INET && ifa.ifa_family != AF_INET6) return false;
  size_t alen = ifa.ifa_family == AF_INET ? 4 : 16;
  uint32_t flags = ifa.ifa_flags;
  const uint8_t *local = NULL, *address = NULL;
  size_t off = NLMSG_ALIGN(sizeof ifa);
  for (int guard = 0; guard < 64 && off + sizeof(struct rtattr) <= len; guard++) {
    struct rtattr rta;
    memcpy(&rta, p + off, sizeof rta);
    if (rta.rta_len < sizeof rta || rta.rta_len > len - off) break;
    const uint8_t *data = p + off + RTA_LENGTH(0);
    size_t dlen = rta.rta_len - RTA_LENGTH(0);
    if (rta.rta_type == IFA_LOCAL && dlen == alen) local = data;
    else if (rta.rta_type == IFA_ADDRESS && dlen == alen) address = data;
    else if (rta.rta_type == IFA_FLAGS && dlen == 4) memcpy(&flags, data, 4); /* the full 32-bit flags */
    off += RTA_ALIGN(rta.rta_len);
  }
  /* IFA_LOCAL is our end of a point-to-point link, where IFA_ADDRESS is the peer's. */
  const uint8_t *ip = local ? local : address;
  if (!ip) return false;
  memset(c, 0, sizeof *c);
  c->ifindex = (int)ifa.ifa_index;
  c->tentative = (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) != 0;
  c->addr.family = ifa.ifa_family == AF_INET ? PARLEY__NETADDR_V4 : PARLEY__NETADDR_V6;
  memcpy(c->addr.ip, ip, alen);
  return true;
}

int parley__netwatch_parse(const uint8_t *buf, size_t len, parley__netwatch_change *out, size_t max) {
  if ((!buf && len) || (!out && max)) return PARLEY_EINVAL;
  int n = 0;
  size_t off = 0;
  /* Each message is at least a header long, so a datagram holds at most len / 16 of them. */
  while (off + sizeof(struct nlmsghdr) <= len) {
    struct nlmsghdr h;
    memcpy(&h, buf + off, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off) return PARLEY_EPARSE;
    if (h.nlmsg_type == RTM_NEWADDR || h.nlmsg_type == RTM_DELADDR) {
      parley__netwatch_change c;
      if (parse_addr(buf + off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN, &c)) {
        c.kind = h.nlmsg_type == RTM_NEWADDR ? PARLEY__NETWATCH_ADDED : PARLEY__NETWATCH_REMOVED;
        if ((size_t)n < max) out[n] = c;
        n++;
      }
    }
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step > len - off) break;
    off += step;
  }
  return n;
}
