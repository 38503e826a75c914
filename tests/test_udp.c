/* test_udp.c: UDP sockets on loopback (send/recv with source address, ephemeral ports, IPv6 when the
 * host has ::1, ICMP port-unreachable reported as ECONNREFUSED with the peer), the poll helper, the
 * address helpers and host address gathering. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

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
