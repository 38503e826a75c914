/* netwatch.h: the host's address changes as Linux rtnetlink reports them (RTM_NEWADDR, RTM_DELADDR on a
 * NETLINK_ROUTE socket subscribed to the IPv4 and IPv6 address groups), parsed sans-IO: the caller owns
 * the socket (engine/network_change.c) and hands each datagram it read to parley__netwatch_parse. So
 * tests feed crafted messages as well as what a kernel sent.
 *
 * Pure: no allocation, no system calls; any thread. */
#ifndef PARLEY_TRANSPORT_NETWATCH_H
#define PARLEY_TRANSPORT_NETWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/netaddr.h"

typedef enum parley__netwatch_kind {
  PARLEY__NETWATCH_ADDED = 1, /* RTM_NEWADDR: an address appeared, or its flags changed (DAD done) */
  PARLEY__NETWATCH_REMOVED,   /* RTM_DELADDR */
} parley__netwatch_kind;

typedef struct parley__netwatch_change {
  parley__netwatch_kind kind;
  int ifindex;
  bool tentative;        /* IPv6 duplicate address detection not finished (or failed): not bindable yet */
  parley__netaddr addr;  /* the local address (IFA_LOCAL, else IFA_ADDRESS), port 0 */
} parley__netwatch_change;

/* Parses one datagram from the socket: a run of netlink messages. Address messages of family IPv4 or
 * IPv6 fill out[0..max) in order; further ones are counted, not stored; other message types (NLMSG_DONE,
 * NLMSG_ERROR, links, routes) are skipped. Returns the count of address changes, or PARLEY_EPARSE when
 * a message's length is impossible (what came before it is still in out), PARLEY_EINVAL for NULL
 * arguments. */
int parley__netwatch_parse(const uint8_t *buf, size_t len, parley__netwatch_change *out, size_t max);

#endif
