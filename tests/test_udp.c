/* test_udp.c: UDP sockets on loopback (send/recv with source address, ephemeral ports, IPv6 when the
 * host has ::1, ICMP port-unreachable reported as ECONNREFUSED with the peer, also when forged by a raw
 * socket in a network namespace of the test's own), the poll helper, the
 * address helpers and host address gathering. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "parley/parley.h"
#include "transport/ice_gather.h"
#include "transport/netaddr.h"
#include "transport/udp.h"

static bool open_loopback(parley__udp *s, const char *ip) {
  parley__netaddr a;
  cr_assert_eq(parley__netaddr_from_ip(&a, ip, 0), 0);
  return parley__udp_open(s, &a) == 0;
}

/* Waits (bounded) for one datagram on s. */
static int recv_bounded(parley__udp *s, void *buf, size_t cap, parley__netaddr *src, parley__udp_error *err) {
  for (int i = 0; i < 50; i++) {
    uint32_t ready = 0;
    parley__udp *socks[1] = {s};
    (void)parley__udp_poll(socks, 1, 20, &ready);
    int n = parley__udp_recv(s, buf, cap, src, err);
    if (n != PARLEY_EAGAIN) return n;
  }
  return PARLEY_EAGAIN;
}

static void round_trip(const char *ip) {
  parley__udp a, b;
  if (!open_loopback(&a, ip)) {
    cr_log_warn("no %s on this host: skipped", ip);
    return;
  }
  cr_assert(open_loopback(&b, ip));
  cr_expect_neq(a.local.port, 0, "ephemeral port resolved");
  cr_expect_neq(a.local.port, b.local.port);
  const char msg[] = "hello parley";
  cr_assert_eq(parley__udp_send(&a, &b.local, msg, sizeof msg, NULL), (int)sizeof msg);
  char buf[64];
  parley__netaddr src;
  int n = recv_bounded(&b, buf, sizeof buf, &src, NULL);
  cr_assert_eq(n, (int)sizeof msg);
  cr_expect_eq(memcmp(buf, msg, sizeof msg), 0);
  cr_expect(parley__netaddr_equal(&src, &a.local), "source is the sender's bound address");
  cr_expect_eq(parley__udp_recv(&b, buf, sizeof buf, &src, NULL), PARLEY_EAGAIN, "queue now empty");
  parley__udp_close(&a);
  parley__udp_close(&b);
  parley__udp_close(&b); /* idempotent */
}

Test(udp, ipv4_round_trip) { round_trip("127.0.0.1"); }
Test(udp, ipv6_round_trip_if_available) { round_trip("::1"); }

Test(udp, refused_peer_is_reported) {
  parley__udp a, gone;
  cr_assert(open_loopback(&a, "127.0.0.1"));
  cr_assert(open_loopback(&gone, "127.0.0.1"));
  parley__netaddr dead = gone.local;
  parley__udp_close(&gone); /* nobody listens on dead's port now */
  cr_assert_eq(parley__udp_send(&a, &dead, "x", 1, NULL), 1);
  char buf[16];
  parley__netaddr src;
  parley__udp_error err;
  memset(&err, 0, sizeof err);
  int n = recv_bounded(&a, buf, sizeof buf, &src, &err);
  cr_assert_eq(n, PARLEY_ENETWORK);
  cr_expect_eq(err.sys_errno, ECONNREFUSED);
  cr_expect(parley__netaddr_equal(&err.peer, &dead), "the error names the unreachable peer");
  parley__udp_close(&a);
}

/* An ICMP error pending on the socket must neither swallow the next datagram (Linux fails the next send
 * with the pending error) nor be reported twice, and it must name the peer it is about. */
Test(udp, pending_icmp_error_costs_no_datagram_and_is_reported_once) {
  parley__udp a, b, gone;
  cr_assert(open_loopback(&a, "127.0.0.1"));
  cr_assert(open_loopback(&b, "127.0.0.1"));
  cr_assert(open_loopback(&gone, "127.0.0.1"));
  parley__netaddr dead = gone.local;
  parley__udp_close(&gone);
  cr_assert_eq(parley__udp_send(&a, &dead, "x", 1, NULL), 1);
  struct pollfd pfd = {.fd = a.fd, .events = 0};
  cr_assert_eq(poll(&pfd, 1, 1000), 1, "the ICMP error arrived");
  cr_assert(pfd.revents & POLLERR);
  parley__udp_error err;
  memset(&err, 0, sizeof err);
  cr_expect_eq(parley__udp_send(&a, &b.local, "y", 1, &err), 1, "errno %d", err.sys_errno);
  char buf[16];
  parley__netaddr src;
  cr_expect_eq(recv_bounded(&b, buf, sizeof buf, &src, NULL), 1, "the datagram to b was sent");
  memset(&err, 0, sizeof err);
  cr_assert_eq(recv_bounded(&a, buf, sizeof buf, &src, &err), PARLEY_ENETWORK);
  cr_expect_eq(err.sys_errno, ECONNREFUSED);
  cr_expect(parley__netaddr_equal(&err.peer, &dead), "about the dead peer, not b");
  cr_expect_eq(parley__udp_recv(&a, buf, sizeof buf, &src, &err), PARLEY_EAGAIN, "reported once");
  parley__udp_close(&a);
  parley__udp_close(&b);
}

/* A private network namespace for this test's process (Criterion runs each test in a process of its
 * own, so the namespace goes away with it), with its loopback up. false when not permitted. */
static bool private_netns(void) {
  if (unshare(CLONE_NEWNET) != 0) return false;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

/* An off-path attacker's ICMPv6 port unreachable quoting a datagram from -> to (RFC 4443 3.1: unused
 * word, then as much of the invoking packet as fits: here its IPv6 and UDP headers). The kernel fills
 * in the ICMPv6 checksum for raw ICMPv6 sockets (RFC 3542 3.1). */
static void forge_port_unreachable(const parley__netaddr *from, const parley__netaddr *to) {
  uint8_t pkt[8 + 40 + 8];
  memset(pkt, 0, sizeof pkt);
  pkt[0] = 1; /* destination unreachable */
  pkt[1] = 4; /* port unreachable */
  uint8_t *ip = pkt + 8;
  ip[0] = 0x60;
  ip[5] = 8 + 1; /* payload length: the UDP header and one byte */
  ip[6] = IPPROTO_UDP;
  ip[7] = 64;
  memcpy(ip + 8, from->ip, 16);
  memcpy(ip + 24, to->ip, 16);
  uint8_t *udp = ip + 40;
  udp[0] = (uint8_t)(from->port >> 8), udp[1] = (uint8_t)from->port;
  udp[2] = (uint8_t)(to->port >> 8), udp[3] = (uint8_t)to->port;
  udp[5] = 8 + 1;
  int raw = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  cr_assert_geq(raw, 0, "raw ICMPv6 socket: %s", strerror(errno));
  struct sockaddr_storage dst;
  cr_assert_gt(parley__netaddr_to_sockaddr(from, &dst), 0);
  ((struct sockaddr_in6 *)&dst)->sin6_port = 0;
  cr_assert_eq(sendto(raw, pkt, sizeof pkt, 0, (struct sockaddr *)&dst, sizeof(struct sockaddr_in6)),
               (ssize_t)sizeof pkt, "%s", strerror(errno));
  close(raw);
}

/* Why the liveness monitor must not believe one ICMP error: anyone can forge one. Here a raw socket
 * quotes a datagram a -> b that never left while b is alive, and a's socket reports it exactly as it
 * reports a real bounce (ECONNREFUSED about b). */
Test(udp, forged_icmp_port_unreachable_is_indistinguishable) {
  if (!private_netns()) {
    cr_log_warn("no private network namespace (needs CAP_SYS_ADMIN): skipped");
    return;
  }
  parley__udp a, b;
  cr_assert(open_loopback(&a, "::1"));
  cr_assert(open_loopback(&b, "::1"));
  forge_port_unreachable(&a.local, &b.local);
  char buf[16];
  parley__netaddr src;
  parley__udp_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(recv_bounded(&a, buf, sizeof buf, &src, &err), PARLEY_ENETWORK);
  cr_expect_eq(err.sys_errno, ECONNREFUSED);
  cr_expect(parley__netaddr_equal(&err.peer, &b.local), "the error names the (alive) peer");
  /* b is alive all along: a datagram still gets through. */
  cr_assert_eq(parley__udp_send(&a, &b.local, "x", 1, NULL), 1);
  cr_expect_eq(recv_bounded(&b, buf, sizeof buf, &src, NULL), 1);
  parley__udp_close(&a);
  parley__udp_close(&b);
}

Test(udp, truncation_and_bad_arguments) {
  parley__udp a, b;
  cr_assert(open_loopback(&a, "127.0.0.1"));
  cr_assert(open_loopback(&b, "127.0.0.1"));
  char big[100] = {0};
  cr_assert_eq(parley__udp_send(&a, &b.local, big, sizeof big, NULL), 100);
  char small[10];
  parley__netaddr src;
  cr_expect_eq(recv_bounded(&b, small, sizeof small, &src, NULL), PARLEY_ENOSPC);
  parley__netaddr v6;
  cr_assert_eq(parley__netaddr_from_ip(&v6, "::1", 9), 0);
  cr_expect_eq(parley__udp_send(&a, &v6, "x", 1, NULL), PARLEY_EINVAL, "family mismatch");
  cr_expect_eq(parley__udp_send(NULL, &v6, "x", 1, NULL), PARLEY_EINVAL);
  parley__netaddr unset = {0};
  parley__udp c;
  cr_expect_eq(parley__udp_open(&c, &unset), PARLEY_EINVAL);
  cr_expect_eq(c.fd, -1);
  uint32_t ready;
  cr_expect_eq(parley__udp_poll(NULL, 1, 0, &ready), PARLEY_EINVAL);
  parley__udp_close(&a);
  parley__udp_close(&b);
}

Test(udp, poll_reports_the_ready_socket) {
  parley__udp a, b;
  cr_assert(open_loopback(&a, "127.0.0.1"));
  cr_assert(open_loopback(&b, "127.0.0.1"));
  parley__udp *socks[2] = {&a, &b};
  uint32_t ready = 99;
  cr_expect_eq(parley__udp_poll(socks, 2, 0, &ready), 0);
  cr_expect_eq(ready, 0);
  cr_assert_eq(parley__udp_send(&a, &b.local, "p", 1, NULL), 1);
  int r = 0;
  for (int i = 0; i < 50 && r == 0; i++) r = parley__udp_poll(socks, 2, 20, &ready);
  cr_expect_eq(r, 1);
  cr_expect_eq(ready, 2u, "only b (bit 1) is readable");
  parley__udp_close(&a);
  parley__udp_close(&b);
}

Test(netaddr, parse_compare_format) {
  parley__netaddr a, b;
  char s[PARLEY__NETADDR_STRLEN];
  cr_assert_eq(parley__netaddr_from_ip(&a, "192.0.2.7", 3478), 0);
  cr_expect_str_eq(parley__netaddr_str(&a, s, sizeof s), "192.0.2.7:3478");
  cr_assert_eq(parley__netaddr_from_ip(&b, "2001:db8::1", 5), 0);
  cr_expect_str_eq(parley__netaddr_str(&b, s, sizeof s), "[2001:db8::1]:5");
  cr_expect_not(parley__netaddr_equal(&a, &b));
  cr_expect_eq(parley__netaddr_from_ip(&a, "not-an-ip", 1), PARLEY_EPARSE);
  cr_assert_eq(parley__netaddr_from_ip(&a, "fe80::1", 1), 0);
  cr_expect(parley__netaddr_is_link_local(&a));
  cr_assert_eq(parley__netaddr_from_ip(&a, "127.1.2.3", 1), 0);
  cr_expect(parley__netaddr_is_loopback(&a));
  cr_assert_eq(parley__netaddr_from_ip(&a, "::1", 1), 0);
  cr_expect(parley__netaddr_is_loopback(&a));
}

Test(ice_gather, loopback_only_on_request_and_no_link_local) {
  parley__netaddr out[32];
  parley__ice_gather_opts with = {.ipv4 = true, .ipv6 = true, .loopback = true};
  parley__ice_gather_opts without = {.ipv4 = true, .ipv6 = true, .loopback = false};
  int n = parley__ice_gather_host_addrs(&with, out, 32);
  cr_assert_geq(n, 1);
  bool has_lo4 = false;
  for (int i = 0; i < n; i++) {
    cr_expect_not(parley__netaddr_is_link_local(&out[i]));
    cr_expect_eq(out[i].port, 0);
    if (out[i].family == PARLEY__NETADDR_V4 && out[i].ip[0] == 127) has_lo4 = true;
  }
  cr_expect(has_lo4, "127.0.0.1 gathered when loopback is asked for");
  int m = parley__ice_gather_host_addrs(&without, out, 32);
  cr_assert_geq(m, 0);
  for (int i = 0; i < m; i++) cr_expect_not(parley__netaddr_is_loopback(&out[i]));
  parley__ice_gather_opts v4only = {.ipv4 = true, .ipv6 = false, .loopback = true};
  m = parley__ice_gather_host_addrs(&v4only, out, 32);
  for (int i = 0; i < m; i++) cr_expect_eq(out[i].family, PARLEY__NETADDR_V4);
  cr_expect_eq(parley__ice_gather_host_addrs(NULL, out, 32), PARLEY_EINVAL);
}

Test(udp, host_port_split_follows_one_rule) {
  char host[64];
  uint16_t port = 0;
  cr_assert_eq(parley__hostport_split("127.0.0.1:3478", host, sizeof host, &port), 0);
  cr_expect_str_eq(host, "127.0.0.1");
  cr_expect_eq(port, 3478);
  cr_assert_eq(parley__hostport_split("[::1]:0", host, sizeof host, &port), 0);
  cr_expect_str_eq(host, "::1");
  cr_expect_eq(port, 0);
  cr_assert_eq(parley__hostport_split("stun.example:65535", host, sizeof host, &port), 0);
  cr_expect_str_eq(host, "stun.example");
  const char *bad[] = {"::1:3478", "[127.0.0.1]:80", "host", "host:", ":80", "h:65536", "h:8x", "[::1]80",
                       "h:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(parley__hostport_split(bad[i], host, sizeof host, &port), PARLEY_EINVAL, "%s", bad[i]);
  cr_expect_eq(parley__hostport_split("averyveryverylonghostname:1", host, 8, &port), PARLEY_EINVAL);
}
