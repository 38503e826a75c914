/* test_relay_udp.c: the relay's socket loop over real UDP on loopback, run in a thread (every wait and
 * loop bounded). Datagrams go A -> B and back with sources rewritten to the relay, 100 % loss drops
 * everything, a blackout window drops exactly the datagrams received in it, foreign sources are
 * ignored, a relay without a forward address learns both peers (meeting point), IPv6 (::1) works, delays and duplicates pass through on the real clock, the loop stops
 * cleanly and frees its port, and bad addresses/configs are refused.
 *
 * Synchronisation without timing assumptions: loopback UDP queues a datagram at the receiver during
 * sendto, and one relay step reads side A before side B and sends in arrival order. So when A receives
 * a marker that B sent after A's datagrams, the relay has already received (and, with zero delay,
 * forwarded) all of A's datagrams. Time-dependent impairments use a test clock the test moves. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "sim/relay_udp.h"

#define MARKER 0xFFFFFFFFu

/* ---- a clock the test thread sets and the relay thread reads ---- */
static _Atomic int64_t test_now_us;
static int64_t test_clock_now(void *ctx) {
  (void)ctx;
  return atomic_load(&test_now_us);
}
static const parley__clock TEST_CLOCK = {test_clock_now, NULL};

/* ---- the relay thread ---- */
typedef struct runner {
  parley__relay_udp *u;
  pthread_t th;
  atomic_int stop;
  int steps;
  int last_err;
} runner;

static void *run_relay(void *arg) {
  runner *r = arg;
  /* Bounded: 5 ms waits, at most 4000 steps (~20 s if idle). */
  for (r->steps = 0; r->steps < 4000 && !atomic_load(&r->stop); r->steps++) {
    int n = parley__relay_udp_step(r->u, 5000);
    if (n < 0) {
      r->last_err = n;
      break;
    }
  }
  return NULL;
}

static void start(runner *r, parley__relay_udp *u) {
  memset(r, 0, sizeof *r);
  r->u = u;
  cr_assert_eq(pthread_create(&r->th, NULL, run_relay, r), 0);
}

static void stop(runner *r) {
  atomic_store(&r->stop, 1);
  cr_assert_eq(pthread_join(r->th, NULL), 0);
  cr_assert_eq(r->last_err, 0);
  cr_assert_lt(r->steps, 4000, "relay loop hit its bound");
}

/* ---- peers ---- */
static socklen_t alen(const struct sockaddr_storage *a) {
  return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* A UDP socket bound to ip:0; *addr gets the actual address. Returns -1 if the address is unusable. */
static int peer(const char *ip_port, struct sockaddr_storage *addr) {
  cr_assert_eq(parley__relay_udp_parse_addr(ip_port, addr), 0);
  int fd = socket(addr->ss_family, SOCK_DGRAM, 0);
  cr_assert_geq(fd, 0);
  if (bind(fd, (struct sockaddr *)addr, alen(addr)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t l = sizeof *addr;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &l), 0);
  return fd;
}

static void send_tag(int fd, const struct sockaddr_storage *to, uint32_t tag, size_t len) {
  uint8_t buf[512];
  cr_assert_leq(len, sizeof buf);
  memset(buf, (int)(tag & 0xff), len);
  memcpy(buf, &tag, 4);
  cr_assert_eq(sendto(fd, buf, len, 0, (const struct sockaddr *)to, alen(to)), (ssize_t)len);
}

/* Receives one datagram within 5 s (fails otherwise); returns its tag, *from gets the source. */
static uint32_t recv_tag(int fd, struct sockaddr_storage *from) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  cr_assert_eq(poll(&p, 1, 5000), 1, "nothing arrived within 5 s");
  uint8_t buf[512];
  struct sockaddr_storage tmp;
  socklen_t l = sizeof tmp;
  ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)(from ? from : &tmp), &l);
  cr_assert_geq(n, 4);
  uint32_t tag;
  memcpy(&tag, buf, 4);
  return tag;
}

/* Collects what is already queued on fd without waiting. */
static int drain_now(int fd, uint32_t *tags, int cap) {
  int n = 0;
  for (int i = 0; i < 100000; i++) {
    uint8_t buf[512];
    ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0) break;
    if (got >= 4 && n < cap) memcpy(&tags[n++], buf, 4);
  }
  return n;
}

static int same(const struct sockaddr_storage *x, const struct sockaddr_storage *y) {
  return memcmp(x, y, alen(x)) == 0;
}

typedef struct setup {
  int fa, fb;
  struct sockaddr_storage a, b, relay_a, relay_b;
  parley__relay_udp *u;
} setup;

/* Peers A and B on host, relay in between with cfg's impairments (addresses filled in here). */
static bool make_setup(setup *s, const char *host_any_port, parley__relay_udp_config *cfg,
                       const parley__clock *clock) {
  s->fa = peer(host_any_port, &s->a);
  if (s->fa < 0) return false;
  s->fb = peer(host_any_port, &s->b);
  cr_assert_geq(s->fb, 0);
  cr_assert_eq(parley__relay_udp_parse_addr(host_any_port, &cfg->listen), 0);
  cfg->forward = s->b;
  if (cfg->relay.max_queued == 0) cfg->relay.max_queued = 1024;
  if (cfg->relay.max_datagram == 0) cfg->relay.max_datagram = 1500;
  int err = 1;
  s->u = parley__relay_udp_new(cfg, clock, &err);
  cr_assert_not_null(s->u, "relay create: %d", err);
  cr_assert_eq(parley__relay_udp_listen_addr(s->u, &s->relay_a), 0);
  cr_assert_eq(parley__relay_udp_forward_local_addr(s->u, &s->relay_b), 0);
  return true;
}

static void free_setup(setup *s) {
  parley__relay_udp_free(s->u);
  close(s->fa);
  close(s->fb);
}

/* B sends a marker to the relay; A waits for it (see the file comment). */
static void sync_marker(setup *s) {
  send_tag(s->fb, &s->relay_b, MARKER, 8);
  for (int i = 0; i < 10000; i++) {
    if (recv_tag(s->fa, NULL) == MARKER) return;
  }
  cr_assert_fail("marker never came back");
}

static void ping_pong(const char *host) {
  atomic_store(&test_now_us, 1000000);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  setup s;
  if (!make_setup(&s, host, &cfg, &TEST_CLOCK)) cr_skip_test("%s not available", host);
  runner r;
  start(&r, s.u);
  for (uint32_t i = 0; i < 100; i++) {
    send_tag(s.fa, &s.relay_a, i, 20 + i);
    struct sockaddr_storage from;
    cr_assert_eq(recv_tag(s.fb, &from), i);
    cr_assert(same(&from, &s.relay_b), "B sees the relay's forward socket as the source");
    send_tag(s.fb, &from, 1000 + i, 40);
    cr_assert_eq(recv_tag(s.fa, &from), 1000 + i);
    cr_assert(same(&from, &s.relay_a), "A sees the relay's listen socket as the source");
  }
  stop(&r);
  parley__relay_dir_stats ab, ba;
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_A2B, &ab);
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_B2A, &ba);
  cr_assert_eq(ab.received, 100);
  cr_assert_eq(ab.forwarded, 100);
  cr_assert_eq(ab.bytes_out, 100 * 20 + 99 * 100 / 2);
  cr_assert_eq(ba.forwarded, 100);
  parley__relay_udp_stats us;
  parley__relay_udp_get_stats(s.u, &us);
  cr_assert_eq(us.peer_a_known, 1);
  cr_assert_eq(us.foreign + us.send_errors + us.undeliverable, 0);

  /* Stopped cleanly: after free the listen port is free to bind again. */
  struct sockaddr_storage again = s.relay_a;
  free_setup(&s);
  int fd = socket(again.ss_family, SOCK_DGRAM, 0);
  cr_assert_eq(bind(fd, (struct sockaddr *)&again, alen(&again)), 0, "port still held: errno %d", errno);
  close(fd);
}

Test(relay_udp, relays_both_ways_ipv4) { ping_pong("127.0.0.1:0"); }

Test(relay_udp, relays_both_ways_ipv6) { ping_pong("[::1]:0"); }

Test(relay_udp, loss_100_drops_everything) {
  atomic_store(&test_now_us, 0);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.relay.impair[PARLEY__RELAY_A2B].loss_pct = 100.0;
  setup s;
  cr_assert(make_setup(&s, "127.0.0.1:0", &cfg, &TEST_CLOCK));
  runner r;
  start(&r, s.u);
  for (uint32_t i = 0; i < 50; i++) send_tag(s.fa, &s.relay_a, i, 100);
  sync_marker(&s); /* b2a is clean, and A is known from its (dropped) datagrams */
  stop(&r);
  uint32_t tags[64];
  cr_assert_eq(drain_now(s.fb, tags, 64), 0, "a datagram got through 100 %% loss");
  parley__relay_dir_stats ab;
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_A2B, &ab);
  cr_assert_eq(ab.received, 50);
  cr_assert_eq(ab.dropped, 50);
  cr_assert_eq(ab.forwarded, 0);
  free_setup(&s);
}

Test(relay_udp, blackout_window_drops_exactly_inside) {
  const int64_t t0 = 10000000;
  atomic_store(&test_now_us, t0);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  parley__impair_config *ab = &cfg.relay.impair[PARLEY__RELAY_A2B];
  ab->n_blackouts = 1;
  ab->blackouts[0] = (parley__impair_blackout){.start_us = 1000000, .length_us = 1000000};
  setup s;
  cr_assert(make_setup(&s, "127.0.0.1:0", &cfg, &TEST_CLOCK));
  runner r;
  start(&r, s.u);
  /* Relay time 0.5 s (before), 1.0 s (window opens), 1.999999 s (inside), 2.0 s (closed again). */
  const int64_t phase_us[4] = {500000, 1000000, 1999999, 2000000};
  for (int p = 0; p < 4; p++) {
    atomic_store(&test_now_us, t0 + phase_us[p]);
    for (uint32_t i = 0; i < 10; i++) send_tag(s.fa, &s.relay_a, (uint32_t)p * 10 + i, 60);
    sync_marker(&s);
  }
  stop(&r);
  uint32_t tags[64];
  int n = drain_now(s.fb, tags, 64);
  cr_assert_eq(n, 20);
  for (int i = 0; i < 10; i++) {
    cr_assert_eq(tags[i], (uint32_t)i);
    cr_assert_eq(tags[10 + i], (uint32_t)(30 + i));
  }
  parley__relay_dir_stats st;
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_A2B, &st);
  cr_assert_eq(st.dropped, 20);
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_B2A, &st);
  cr_assert_eq(st.dropped, 0); /* the window is a2b only: markers passed */
  cr_assert_eq(st.forwarded, 4);
  free_setup(&s);
}

Test(relay_udp, ignores_foreign_sources) {
  atomic_store(&test_now_us, 0);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  setup s;
  cr_assert(make_setup(&s, "127.0.0.1:0", &cfg, &TEST_CLOCK));
  struct sockaddr_storage c_addr;
  int fc = peer("127.0.0.1:0", &c_addr);
  cr_assert_geq(fc, 0);
  runner r;
  start(&r, s.u);
  send_tag(s.fa, &s.relay_a, 1, 10);
  cr_assert_eq(recv_tag(s.fb, NULL), 1);
  for (uint32_t i = 0; i < 5; i++) send_tag(fc, &s.relay_a, 100 + i, 10);
  sync_marker(&s); /* the reply still goes to A */
  stop(&r);
  uint32_t tags[8];
  cr_assert_eq(drain_now(s.fb, tags, 8), 0);
  cr_assert_eq(drain_now(fc, tags, 8), 0);
  parley__relay_udp_stats us;
  parley__relay_udp_get_stats(s.u, &us);
  cr_assert_eq(us.foreign, 5);
  close(fc);
  free_setup(&s);
}

/* Meeting point (no forward address): A and B both send to the listen address; the first source is A,
 * the next B, and each hears the other from the listen address. What A sends before B is known cannot
 * be delivered (unless B's first datagram is read in the same step); a third source is foreign. */
Test(relay_udp, meeting_point_learns_both_peers) {
  atomic_store(&test_now_us, 0);
  struct sockaddr_storage a, b, c, relay;
  int fa = peer("127.0.0.1:0", &a), fb = peer("127.0.0.1:0", &b), fc = peer("127.0.0.1:0", &c);
  cr_assert(fa >= 0 && fb >= 0 && fc >= 0);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg); /* forward: AF_UNSPEC */
  cr_assert_eq(parley__relay_udp_parse_addr("127.0.0.1:0", &cfg.listen), 0);
  cfg.relay.max_queued = 64;
  cfg.relay.max_datagram = 1500;
  int err = 1;
  parley__relay_udp *u = parley__relay_udp_new(&cfg, &TEST_CLOCK, &err);
  cr_assert_not_null(u, "relay create: %d", err);
  cr_assert_eq(parley__relay_udp_listen_addr(u, &relay), 0);
  runner r;
  start(&r, u);
  send_tag(fa, &relay, 1, 10); /* A learned; B unknown: undeliverable unless B's first comes in the same step */
  struct sockaddr_storage from;
  int got_first = 0;
  for (uint32_t i = 0; i < 20; i++) {
    send_tag(fb, &relay, 100 + i, 20); /* B learned on the first */
    cr_assert_eq(recv_tag(fa, &from), 100 + i);
    cr_assert(same(&from, &relay), "A hears B from the listen address");
    send_tag(fa, &relay, 200 + i, 30);
    uint32_t t = recv_tag(fb, &from);
    if (i == 0 && t == 1) {
      got_first = 1;
      t = recv_tag(fb, &from);
    }
    cr_assert_eq(t, 200 + i);
    cr_assert(same(&from, &relay), "B hears A from the listen address");
  }
  send_tag(fc, &relay, 300, 10);
  send_tag(fb, &relay, MARKER, 8); /* after C's datagram on the same socket */
  cr_assert_eq(recv_tag(fa, NULL), MARKER);
  stop(&r);
  uint32_t tags[8];
  cr_assert_eq(drain_now(fb, tags, 8), 0, "nothing more reached B");
  cr_assert_eq(drain_now(fc, tags, 8), 0, "nothing reached C");
  parley__relay_udp_stats us;
  parley__relay_udp_get_stats(u, &us);
  cr_expect_eq(us.peer_a_known, 1);
  cr_expect_eq(us.peer_b_known, 1);
  cr_expect_eq(us.undeliverable + (uint64_t)got_first, 1, "A's first datagram: delivered or counted");
  cr_expect_eq(us.foreign, 1);
  parley__relay_dir_stats ab, ba;
  parley__relay_get_stats(parley__relay_udp_core(u), PARLEY__RELAY_A2B, &ab);
  parley__relay_get_stats(parley__relay_udp_core(u), PARLEY__RELAY_B2A, &ba);
  cr_expect_eq(ab.received, 21);
  cr_expect_eq(ba.received, 21);
  parley__relay_udp_free(u);
  close(fa);
  close(fb);
  close(fc);
}

Test(relay_udp, delay_and_duplicates_on_the_real_clock) {
  parley__clock mono = parley__clock_monotonic();
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  parley__impair_config *ab = &cfg.relay.impair[PARLEY__RELAY_A2B];
  ab->base_delay_us = 3000;
  ab->jitter_sd_us = 1000;
  ab->dup_pct = 50.0;
  ab->dup_gap_us = 500;
  cfg.relay.seed = 9;
  setup s;
  cr_assert(make_setup(&s, "127.0.0.1:0", &cfg, &mono));
  runner r;
  start(&r, s.u);
  for (uint32_t i = 0; i < 20; i++) send_tag(s.fa, &s.relay_a, i, 50);
  bool seen[20] = {0};
  int distinct = 0, total = 0;
  for (int guard = 0; guard < 100 && distinct < 20; guard++) {
    uint32_t t = recv_tag(s.fb, NULL);
    cr_assert_lt(t, 20);
    total++;
    if (!seen[t]) distinct++;
    seen[t] = true;
  }
  cr_assert_eq(distinct, 20);
  stop(&r);
  uint32_t tags[64];
  total += drain_now(s.fb, tags, 64);
  parley__relay_dir_stats st;
  parley__relay_get_stats(parley__relay_udp_core(s.u), PARLEY__RELAY_A2B, &st);
  cr_assert_eq((uint64_t)total, st.forwarded);
  cr_assert_gt(st.duplicated, 0);
  cr_assert_geq(st.forwarded, 20);
  cr_assert_leq(st.forwarded, 20 + st.duplicated);
  cr_assert_geq(st.max_delay_us, 3000); /* the schedule (not wall-clock) includes the base delay */
  free_setup(&s);
}

Test(relay_udp, parse_addr) {
  struct sockaddr_storage a;
  cr_assert_eq(parley__relay_udp_parse_addr("127.0.0.1:5004", &a), 0);
  cr_assert_eq(a.ss_family, AF_INET);
  cr_assert_eq(ntohs(((struct sockaddr_in *)&a)->sin_port), 5004);
  cr_assert_eq(parley__relay_udp_parse_addr("9000", &a), 0);
  cr_assert_eq(ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr), 0x7f000001u);
  cr_assert_eq(parley__relay_udp_parse_addr("[::1]:65535", &a), 0);
  cr_assert_eq(a.ss_family, AF_INET6);
  cr_assert_eq(ntohs(((struct sockaddr_in6 *)&a)->sin6_port), 65535);
  char buf[64];
  cr_assert_eq(parley__relay_udp_format_addr((struct sockaddr *)&a, buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "[::1]:65535");
  cr_assert_eq(parley__relay_udp_format_addr((struct sockaddr *)&a, buf, 5), PARLEY_ENOSPC);
  const char *bad[] = {"", ":5000", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:50x0", "::1:5000",
                       "[::1]5000", "[127.0.0.1]:5000", "[]:1", "abc", "1.2.3.4:-1", "127.0.0.1:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int e = parley__relay_udp_parse_addr(bad[i], &a);
    cr_assert(e == PARLEY_EINVAL || e == PARLEY_ENOTFOUND, "'%s' accepted", bad[i]);
  }
  cr_assert_eq(parley__relay_udp_parse_addr(NULL, &a), PARLEY_EINVAL);
}

Test(relay_udp, bad_configs) {
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.relay.max_queued = 16;
  cfg.relay.max_datagram = 1500;
  int err = 0;
  cr_assert_null(parley__relay_udp_new(&cfg, &TEST_CLOCK, &err)); /* no addresses */
  cr_assert_eq(err, PARLEY_EINVAL);
  /* Listen on a port someone holds. */
  struct sockaddr_storage held;
  int fd = peer("127.0.0.1:0", &held);
  cfg.listen = held;
  cr_assert_eq(parley__relay_udp_parse_addr("127.0.0.1:9", &cfg.forward), 0);
  err = 0;
  cr_assert_null(parley__relay_udp_new(&cfg, &TEST_CLOCK, &err));
  cr_assert_eq(err, PARLEY_ENETWORK);
  close(fd);
  cr_assert_eq(parley__relay_udp_parse_addr("127.0.0.1:0", &cfg.listen), 0);
  cfg.relay.impair[PARLEY__RELAY_A2B].dup_pct = 200.0;
  err = 0;
  cr_assert_null(parley__relay_udp_new(&cfg, &TEST_CLOCK, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  cfg.relay.impair[PARLEY__RELAY_A2B].dup_pct = 0.0;
  cr_assert_null(parley__relay_udp_new(&cfg, NULL, &err));
  cr_assert_eq(parley__relay_udp_step(NULL, 0), PARLEY_EINVAL);
  parley__relay_udp_free(NULL);
}

/* new_realtime: the relay keeps the monotonic clock itself (its now lies between two readings of
 * CLOCK_MONOTONIC taken around it) and relays on it. */
static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

Test(relay_udp, realtime_relay_runs_on_the_monotonic_clock) {
  cr_expect_eq(parley__relay_udp_now(NULL), 0);
  cr_expect_null(parley__relay_udp_new_realtime(NULL, NULL));
  struct sockaddr_storage a, b, relay;
  int fa = peer("127.0.0.1:0", &a), fb = peer("127.0.0.1:0", &b);
  cr_assert(fa >= 0 && fb >= 0);
  parley__relay_udp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cr_assert_eq(parley__relay_udp_parse_addr("127.0.0.1:0", &cfg.listen), 0);
  cfg.forward = b;
  cfg.relay.max_queued = 64;
  cfg.relay.max_datagram = 1500;
  int err = 1;
  parley__relay_udp *u = parley__relay_udp_new_realtime(&cfg, &err);
  cr_assert_not_null(u, "relay create: %d", err);
  int64_t before = mono_us(), now = parley__relay_udp_now(u), after = mono_us();
  cr_expect(before <= now && now <= after, "%lld not in [%lld, %lld]", (long long)now, (long long)before,
            (long long)after);
  cr_assert_eq(parley__relay_udp_listen_addr(u, &relay), 0);
  runner r;
  start(&r, u);
  send_tag(fa, &relay, 7, 16);
  cr_expect_eq(recv_tag(fb, NULL), 7);
  stop(&r);
  parley__relay_udp_free(u);
  close(fa);
  close(fb);
}
