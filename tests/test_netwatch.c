/* test_netwatch.c: rtnetlink address notifications (transport/netwatch.c, and the socket engine/
 * network_change.c opens). Crafted messages built with the kernel's own uapi layouts and macros
 * (linux/netlink.h, linux/rtnetlink.h: an independent statement of the format); then what a kernel
 * really sends when the test adds and deletes an address on a veth in a network namespace it creates
 * (unshare: the namespace goes with the test process). The namespace part skips without root. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "parley/parley.h"
#include "transport/netwatch.h"

/* ---- crafted messages ---- */

typedef struct msgbuf {
  uint8_t b[1024];
  size_t len;
} msgbuf;

/* Starts a message; returns its header's offset. */
static size_t begin(msgbuf *m, uint16_t type) {
  size_t at = m->len;
  struct nlmsghdr h = {.nlmsg_len = NLMSG_HDRLEN, .nlmsg_type = type};
  memcpy(m->b + at, &h, sizeof h);
  m->len += NLMSG_HDRLEN;
  return at;
}

static void put(msgbuf *m, const void *p, size_t n) {
  memcpy(m->b + m->len, p, n);
  m->len += NLMSG_ALIGN(n);
}

static void attr(msgbuf *m, uint16_t type, const void *data, size_t n) {
  struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(n), .rta_type = type};
  memcpy(m->b + m->len, &a, sizeof a);
  memcpy(m->b + m->len + RTA_LENGTH(0), data, n);
  m->len += RTA_SPACE(n);
}

static void end(msgbuf *m, size_t at) {
  struct nlmsghdr h;
  memcpy(&h, m->b + at, sizeof h);
  h.nlmsg_len = (uint32_t)(m->len - at);
  memcpy(m->b + at, &h, sizeof h);
}

static void addr_msg(msgbuf *m, uint16_t type, int family, int ifindex, uint8_t flags) {
  size_t at = begin(m, type);
  struct ifaddrmsg ifa = {.ifa_family = (uint8_t)family, .ifa_prefixlen = 24, .ifa_flags = flags,
                          .ifa_index = (uint32_t)ifindex};
  put(m, &ifa, sizeof ifa);
  (void)at;
}

static parley__netaddr v4(const char *s) {
  parley__netaddr a;
  cr_assert_eq(parley__netaddr_from_ip(&a, s, 0), 0);
  return a;
}

Test(netwatch, crafted_messages) {
  msgbuf m = {.len = 0};
  /* A point-to-point IPv4 address: IFA_ADDRESS is the far end, IFA_LOCAL ours. */
  size_t at = m.len;
  addr_msg(&m, RTM_NEWADDR, AF_INET, 3, 0);
  uint8_t peer4[4] = {10, 1, 2, 3}, local4[4] = {10, 9, 9, 9};
  attr(&m, IFA_ADDRESS, peer4, 4);
  attr(&m, IFA_LOCAL, local4, 4);
  end(&m, at);
  /* A link message in between: skipped. */
  at = begin(&m, RTM_NEWLINK);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 3};
  put(&m, &ifi, sizeof ifi);
  end(&m, at);
  /* An IPv6 address deleted, its 32-bit flags in IFA_FLAGS saying tentative. */
  at = m.len;
  addr_msg(&m, RTM_DELADDR, AF_INET6, 7, 0);
  uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
  attr(&m, IFA_ADDRESS, v6, 16);
  uint32_t fl = IFA_F_TENTATIVE;
  attr(&m, IFA_FLAGS, &fl, 4);
  end(&m, at);
  /* An address of another family (AF_PACKET-like): not ours. */
  at = m.len;
  addr_msg(&m, RTM_NEWADDR, AF_UNIX, 2, 0);
  attr(&m, IFA_ADDRESS, peer4, 4);
  end(&m, at);
  at = begin(&m, NLMSG_DONE);
  end(&m, at);

  parley__netwatch_change ch[4];
  cr_assert_eq(parley__netwatch_parse(m.b, m.len, ch, 4), 2);
  cr_expect_eq(ch[0].kind, PARLEY__NETWATCH_ADDED);
  cr_expect_eq(ch[0].ifindex, 3);
  cr_expect(!ch[0].tentative);
  parley__netaddr want = v4("10.9.9.9");
  cr_expect(parley__netaddr_equal(&ch[0].addr, &want), "IFA_LOCAL, not the peer's IFA_ADDRESS");
  cr_expect_eq(ch[1].kind, PARLEY__NETWATCH_REMOVED);
  cr_expect_eq(ch[1].ifindex, 7);
  cr_expect(ch[1].tentative, "IFA_FLAGS' tentative bit");
  parley__netaddr want6;
  cr_assert_eq(parley__netaddr_from_ip(&want6, "2001:db8::1", 0), 0);
  cr_expect(parley__netaddr_equal(&ch[1].addr, &want6));

  /* More changes than room: counted, the first stored. */
  cr_expect_eq(parley__netwatch_parse(m.b, m.len, ch, 1), 2);
  cr_expect_eq(parley__netwatch_parse(m.b, m.len, NULL, 0), 2);
  /* A length past the datagram, or shorter than a header: malformed. */
  cr_expect_eq(parley__netwatch_parse(m.b, m.len - 20, ch, 4), PARLEY_EPARSE); /* into the fourth message */
  msgbuf bad = m;
  struct nlmsghdr h;
  memcpy(&h, bad.b, sizeof h);
  h.nlmsg_len = 8;
  memcpy(bad.b, &h, sizeof h);
  cr_expect_eq(parley__netwatch_parse(bad.b, bad.len, ch, 4), PARLEY_EPARSE);
  /* An attribute claiming more than its message: the message has no address, skipped. */
  msgbuf cut = {.len = 0};
  at = cut.len;
  addr_msg(&cut, RTM_NEWADDR, AF_INET, 1, 0);
  attr(&cut, IFA_LOCAL, local4, 4);
  end(&cut, at);
  struct rtattr ra;
  memcpy(&ra, cut.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifaddrmsg)), sizeof ra);
  ra.rta_len = 200;
  memcpy(cut.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifaddrmsg)), &ra, sizeof ra);
  cr_expect_eq(parley__netwatch_parse(cut.b, cut.len, ch, 4), 0);
  cr_expect_eq(parley__netwatch_parse(NULL, 4, ch, 4), PARLEY_EINVAL);
  cr_expect_eq(parley__netwatch_parse(m.b, m.len, NULL, 4), PARLEY_EINVAL);
  cr_expect_eq(parley__netwatch_parse(m.b, 0, ch, 4), 0);
}

/* ---- a kernel's messages ---- */

/* Reads notifications for up to 2 s until one of `kind` for `want` arrives. */
static bool wait_for(int fd, parley__netwatch_kind kind, const parley__netaddr *want, int ifindex) {
  for (int i = 0; i < 100; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0) return false;
    uint8_t buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) continue;
    parley__netwatch_change ch[16];
    int m = parley__netwatch_parse(buf, (size_t)n, ch, 16);
    cr_assert_geq(m, 0, "the kernel's datagram parses");
    for (int k = 0; k < m && k < 16; k++)
      if (ch[k].kind == kind && ch[k].ifindex == ifindex && parley__netaddr_equal(&ch[k].addr, want)) return true;
  }
  return false;
}

Test(netwatch, real_address_changes_in_a_namespace, .timeout = 30) {
  if (geteuid() != 0) cr_skip_test("needs root for a network namespace");
  if (unshare(CLONE_NEWNET) != 0) cr_skip_test("unshare(CLONE_NEWNET) failed: no network namespaces");
  if (system("ip link add nw0 type veth peer name nw1 && ip link set nw0 up && ip link set nw1 up") != 0)
    cr_skip_test("no veth pair in the namespace");
  int fd = parley__netwatch_open();
  cr_assert_geq(fd, 0, "the engine's rtnetlink socket opens");
  int ifindex = (int)if_nametoindex("nw0");
  cr_assert_gt(ifindex, 0);
  parley__netaddr a = v4("10.88.0.1"), b = v4("10.88.1.1");
  cr_assert_eq(system("ip addr add 10.88.0.1/24 dev nw0"), 0);
  cr_expect(wait_for(fd, PARLEY__NETWATCH_ADDED, &a, ifindex), "RTM_NEWADDR for 10.88.0.1 on nw0");
  cr_assert_eq(system("ip addr add 10.88.1.1/24 dev nw0 && ip addr del 10.88.0.1/24 dev nw0"), 0);
  cr_expect(wait_for(fd, PARLEY__NETWATCH_REMOVED, &a, ifindex), "RTM_DELADDR for 10.88.0.1");
  /* The add came first: it was read past while waiting for the delete, so add b again elsewhere. */
  int if1 = (int)if_nametoindex("nw1");
  cr_assert_eq(system("ip addr add 10.88.1.1/24 dev nw1"), 0);
  cr_expect(wait_for(fd, PARLEY__NETWATCH_ADDED, &b, if1), "RTM_NEWADDR for 10.88.1.1 on nw1");
  close(fd);
}
