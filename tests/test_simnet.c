/* test_simnet.c: the simulated network: ordering, stability for equal times, delay/jitter bounds, loss
 * rate, determinism by seed, cut/restore, duplicates through a custom fate, ICMP-like bounces, echo
 * from inside a callback, capacity limits, IPv6. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "parley/parley.h"
#include "sim/simnet.h"

typedef struct rx_log {
  int n;
  int64_t at_us[4096];
  uint32_t tag[4096];
  int errors;
  int last_errno;
  int64_t error_at_us;
  int echo; /* echo every datagram back to its sender */
} rx_log;

static void on_rx(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                  const uint8_t *data, size_t len, int64_t now_us) {
  rx_log *log = ctx;
  if (log->n < 4096) {
    uint32_t tag = 0;
    if (len >= 4) memcpy(&tag, data, 4);
    log->at_us[log->n] = now_us;
    log->tag[log->n] = tag;
    log->n++;
  }
  if (log->echo) parley__simnet_send(net, to, from, data, len, now_us);
}

static void on_err(void *ctx, parley__simnet *net, const struct sockaddr *dest, int errno_value,
                   int64_t now_us) {
  (void)net;
  (void)dest;
  rx_log *log = ctx;
  log->errors++;
  log->last_errno = errno_value;
  log->error_at_us = now_us;
}

static struct sockaddr_storage A, B, C;

static void addrs(void) {
  cr_assert_eq(parley__simnet_addr4(&A, "127.0.0.1", 5000), 0);
  cr_assert_eq(parley__simnet_addr4(&B, "127.0.0.1", 5001), 0);
  cr_assert_eq(parley__simnet_addr4(&C, "127.0.0.2", 5000), 0);
}

#define SA(x) ((const struct sockaddr *)&(x))

static int send_tag(parley__simnet *net, const struct sockaddr_storage *from,
                    const struct sockaddr_storage *to, uint32_t tag, int64_t now_us) {
  return parley__simnet_send(net, SA(*from), SA(*to), &tag, sizeof tag, now_us);
}

Test(simnet, rejects_bad_arguments) {
  addrs();
  int err = 0;
  cr_expect_null(parley__simnet_new(0, 8, 100, 1, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__simnet_new(2, 0, 100, 1, &err));
  cr_expect_null(parley__simnet_new(2, 8, 0, 1, &err));
  parley__simnet *net = parley__simnet_new(2, 8, 16, 1, &err);
  cr_assert_not_null(net);
  cr_expect_eq(err, 0);
  cr_expect_geq(parley__simnet_add_endpoint(net, SA(A), on_rx, NULL, NULL), 0);
  cr_expect_eq(parley__simnet_add_endpoint(net, SA(A), on_rx, NULL, NULL), PARLEY_EINVAL);
  cr_expect_geq(parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, NULL), 0);
  cr_expect_eq(parley__simnet_add_endpoint(net, SA(C), on_rx, NULL, NULL), PARLEY_EFULL);
  struct sockaddr_storage bad;
  memset(&bad, 0, sizeof bad);
  bad.ss_family = AF_UNIX;
  uint8_t big[17] = {0};
  cr_expect_eq(parley__simnet_send(net, SA(A), SA(bad), big, 4, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__simnet_send(net, SA(A), SA(B), big, sizeof big, 0), PARLEY_ENOSPC);
  cr_expect_eq(parley__simnet_send(net, SA(A), SA(B), NULL, 4, 0), PARLEY_EINVAL);
  parley__simnet_link link = {.delay_us = -1};
  cr_expect_eq(parley__simnet_set_link(net, &link), PARLEY_EINVAL);
  link = (parley__simnet_link){.loss_prob = 1.5};
  cr_expect_eq(parley__simnet_set_link(net, &link), PARLEY_EINVAL);
  cr_expect_eq(parley__simnet_remove_endpoint(net, 7), PARLEY_EINVAL);
  cr_expect_eq(parley__simnet_deliver_until(NULL, 0), PARLEY_EINVAL);
  parley__simnet_free(net);
  parley__simnet_free(NULL);
}

Test(simnet, fixed_delay_delivers_in_time_order) {
  addrs();
  static rx_log log;
  memset(&log, 0, sizeof log);
  parley__simnet *net = parley__simnet_new(4, 64, 64, 1, NULL);
  cr_assert_not_null(net);
  parley__simnet_add_endpoint(net, SA(A), NULL, NULL, NULL);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &log);
  parley__simnet_link link = {.delay_us = 5000};
  cr_assert_eq(parley__simnet_set_link(net, &link), 0);
  cr_expect_eq(parley__simnet_next_delivery_us(net), INT64_MAX);
  for (uint32_t i = 0; i < 3; i++) cr_assert_eq(send_tag(net, &A, &B, i, (int64_t)i * 10000), 0);
  cr_expect_eq(parley__simnet_in_flight(net), 3);
  cr_expect_eq(parley__simnet_next_delivery_us(net), 5000);
  cr_expect_eq(parley__simnet_deliver_until(net, 4999), 0);
  cr_expect_eq(parley__simnet_deliver_until(net, 5000), 1);
  cr_expect_eq(parley__simnet_next_delivery_us(net), 15000);
  cr_expect_eq(parley__simnet_deliver_until(net, 100000), 2);
  cr_assert_eq(log.n, 3);
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(log.tag[i], (uint32_t)i);
    cr_expect_eq(log.at_us[i], i * 10000 + 5000);
  }
  parley__simnet_free(net);
}

Test(simnet, equal_times_keep_send_order) {
  addrs();
  static rx_log log;
  memset(&log, 0, sizeof log);
  parley__simnet *net = parley__simnet_new(4, 256, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &log);
  for (uint32_t i = 0; i < 200; i++) send_tag(net, &A, &B, i, 1000);
  cr_expect_eq(parley__simnet_deliver_until(net, 1000), 200);
  cr_assert_eq(log.n, 200);
  for (int i = 0; i < 200; i++) cr_expect_eq(log.tag[i], (uint32_t)i);
  parley__simnet_free(net);
}

/* Runs 2000 jittered datagrams through a net seeded with seed; returns the delivery log. */
static void jitter_run(uint64_t seed, rx_log *log) {
  memset(log, 0, sizeof *log);
  parley__simnet *net = parley__simnet_new(4, 4096, 16, seed, NULL);
  cr_assert_not_null(net);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, log);
  parley__simnet_link link = {.delay_us = 40000, .jitter_us = 150000, .loss_prob = 0.0};
  parley__simnet_set_link(net, &link);
  for (uint32_t i = 0; i < 2000; i++) send_tag(net, &A, &B, i, (int64_t)i * 20000);
  int64_t last = INT64_MIN;
  while (parley__simnet_next_delivery_us(net) != INT64_MAX) {
    int64_t t = parley__simnet_next_delivery_us(net);
    cr_assert_geq(t, last); /* delivery times never go backwards */
    last = t;
    parley__simnet_deliver_until(net, t);
  }
  parley__simnet_free(net);
}

Test(simnet, jitter_stays_in_bounds_reorders_and_is_seeded) {
  addrs();
  static rx_log a, b, c;
  jitter_run(7, &a);
  jitter_run(7, &b);
  jitter_run(8, &c);
  cr_assert_eq(a.n, 2000);
  int reordered = 0, differs = 0;
  double sum_delay = 0;
  for (int i = 0; i < a.n; i++) {
    int64_t delay = a.at_us[i] - (int64_t)a.tag[i] * 20000;
    cr_expect(delay >= 40000 && delay <= 190000, "delay %lld out of bounds", (long long)delay);
    sum_delay += (double)delay;
    if (i > 0 && a.tag[i] < a.tag[i - 1]) reordered++;
    cr_expect_eq(a.tag[i], b.tag[i]);
    cr_expect_eq(a.at_us[i], b.at_us[i]);
    if (a.at_us[i] != c.at_us[i] || a.tag[i] != c.tag[i]) differs++;
  }
  /* Uniform 0..150 ms on top of 40 ms: mean 115 ms (std of the mean ~1 ms). */
  cr_expect(sum_delay / a.n > 110000 && sum_delay / a.n < 120000, "mean %f", sum_delay / a.n);
  cr_expect_gt(reordered, 100); /* 150 ms of jitter on a 20 ms cadence reorders a lot */
  cr_expect_gt(differs, 0);
}

Test(simnet, loss_rate_matches_probability) {
  addrs();
  parley__simnet *net = parley__simnet_new(4, 16, 16, 99, NULL);
  static rx_log log;
  memset(&log, 0, sizeof log);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &log);
  parley__simnet_link link = {.delay_us = 1000, .loss_prob = 0.2};
  parley__simnet_set_link(net, &link);
  int delivered = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    send_tag(net, &A, &B, (uint32_t)i, (int64_t)i * 10);
    delivered += parley__simnet_deliver_until(net, (int64_t)i * 10 + 1000);
  }
  delivered += parley__simnet_deliver_until(net, INT64_MAX);
  parley__simnet_stats st;
  parley__simnet_get_stats(net, &st);
  cr_expect_eq(st.sent, (uint64_t)n);
  cr_expect_eq(st.delivered + st.dropped_fate, (uint64_t)n);
  double loss = 1.0 - (double)delivered / n;
  /* Binomial std dev sqrt(0.2 * 0.8 / 20000) = 0.0028: allow 4.5 sigma. */
  cr_expect(loss > 0.1875 && loss < 0.2125, "loss %f", loss);
  parley__simnet_free(net);
}

Test(simnet, cut_drops_new_sends_but_not_in_flight) {
  addrs();
  static rx_log log;
  memset(&log, 0, sizeof log);
  parley__simnet *net = parley__simnet_new(4, 16, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &log);
  parley__simnet_link link = {.delay_us = 50000};
  parley__simnet_set_link(net, &link);
  send_tag(net, &A, &B, 1, 0);
  parley__simnet_cut(net);
  cr_expect(parley__simnet_is_cut(net));
  cr_expect_eq(send_tag(net, &A, &B, 2, 10000), 0); /* accepted, silently lost */
  send_tag(net, &B, &A, 3, 10000);
  parley__simnet_restore(net);
  send_tag(net, &A, &B, 4, 20000);
  parley__simnet_deliver_until(net, INT64_MAX);
  cr_assert_eq(log.n, 2);
  cr_expect_eq(log.tag[0], 1);
  cr_expect_eq(log.at_us[0], 50000);
  cr_expect_eq(log.tag[1], 4);
  parley__simnet_stats st;
  parley__simnet_get_stats(net, &st);
  cr_expect_eq(st.dropped_cut, 2);
  parley__simnet_free(net);
}

/* Custom fate: tag 0 dropped, tag 1 duplicated at +1 ms and +3 ms, others at +2 ms. */
static void dup_fate(void *ctx, const struct sockaddr *from, const struct sockaddr *to, size_t len,
                     int64_t now_us, parley__simnet_fate *out) {
  (void)from;
  (void)to;
  (void)len;
  int *calls = ctx;
  int k = (*calls)++;
  if (k == 0) return;
  if (k == 1) {
    out->copies = 2;
    out->deliver_at_us[0] = now_us + 3000;
    out->deliver_at_us[1] = now_us + 1000;
    return;
  }
  out->copies = 1;
  out->deliver_at_us[0] = now_us + 2000;
}

Test(simnet, custom_fate_drops_and_duplicates) {
  addrs();
  static rx_log log;
  memset(&log, 0, sizeof log);
  int calls = 0;
  parley__simnet *net = parley__simnet_new(4, 16, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &log);
  parley__simnet_set_fate(net, dup_fate, &calls);
  for (uint32_t i = 0; i < 3; i++) send_tag(net, &A, &B, i, 0);
  cr_expect_eq(calls, 3);
  cr_expect_eq(parley__simnet_deliver_until(net, INT64_MAX), 3);
  cr_assert_eq(log.n, 3);
  cr_expect_eq(log.tag[0], 1);
  cr_expect_eq(log.at_us[0], 1000);
  cr_expect_eq(log.tag[1], 2);
  cr_expect_eq(log.at_us[1], 2000);
  cr_expect_eq(log.tag[2], 1);
  cr_expect_eq(log.at_us[2], 3000);
  parley__simnet_set_fate(net, NULL, NULL); /* back to the built-in (no delay) */
  send_tag(net, &A, &B, 9, 5000);
  cr_expect_eq(parley__simnet_next_delivery_us(net), 5000);
  parley__simnet_free(net);
}

Test(simnet, unreachable_port_bounces_econnrefused) {
  addrs();
  static rx_log la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  parley__simnet *net = parley__simnet_new(4, 16, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(A), on_rx, on_err, &la);
  int idb = parley__simnet_add_endpoint(net, SA(B), on_rx, on_err, &lb);
  parley__simnet_link link = {.delay_us = 30000};
  parley__simnet_set_link(net, &link);
  send_tag(net, &A, &B, 1, 0);
  parley__simnet_deliver_until(net, 30000);
  cr_expect_eq(lb.n, 1);
  cr_assert_eq(parley__simnet_remove_endpoint(net, idb), 0);
  send_tag(net, &A, &B, 2, 100000);
  parley__simnet_deliver_until(net, INT64_MAX);
  cr_expect_eq(lb.n, 1);
  cr_expect_eq(la.errors, 1);
  cr_expect_eq(la.last_errno, ECONNREFUSED);
  cr_expect_eq(la.error_at_us, 130000);
  parley__simnet_free(net);
}

Test(simnet, callback_can_reply_within_deliver_until) {
  addrs();
  static rx_log la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  lb.echo = 1;
  parley__simnet *net = parley__simnet_new(4, 16, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(A), on_rx, NULL, &la);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &lb);
  parley__simnet_link link = {.delay_us = 10000};
  parley__simnet_set_link(net, &link);
  send_tag(net, &A, &B, 42, 0);
  cr_expect_eq(parley__simnet_deliver_until(net, 15000), 1); /* the echo is due at 20 ms */
  cr_expect_eq(parley__simnet_deliver_until(net, 20000), 1);
  cr_assert_eq(la.n, 1);
  cr_expect_eq(la.tag[0], 42);
  cr_expect_eq(la.at_us[0], 20000);
  parley__simnet_free(net);
}

Test(simnet, full_queue_reports_efull) {
  addrs();
  parley__simnet *net = parley__simnet_new(2, 4, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(B), NULL, NULL, NULL);
  for (uint32_t i = 0; i < 4; i++) cr_expect_eq(send_tag(net, &A, &B, i, 0), 0);
  cr_expect_eq(send_tag(net, &A, &B, 4, 0), PARLEY_EFULL);
  cr_expect_eq(parley__simnet_deliver_until(net, 0), 4);
  cr_expect_eq(send_tag(net, &A, &B, 5, 0), 0);
  parley__simnet_free(net);
}

Test(simnet, ipv6_endpoints) {
  static rx_log log;
  memset(&log, 0, sizeof log);
  struct sockaddr_storage a6, b6;
  memset(&a6, 0, sizeof a6);
  memset(&b6, 0, sizeof b6);
  struct sockaddr_in6 *x = (struct sockaddr_in6 *)&a6, *y = (struct sockaddr_in6 *)&b6;
  x->sin6_family = y->sin6_family = AF_INET6;
  x->sin6_addr = in6addr_loopback;
  y->sin6_addr = in6addr_loopback;
  x->sin6_port = htons(1000);
  y->sin6_port = htons(1001);
  cr_expect_not(parley__simnet_addr_equal(SA(a6), SA(b6)));
  parley__simnet *net = parley__simnet_new(2, 4, 16, 1, NULL);
  cr_assert_geq(parley__simnet_add_endpoint(net, SA(b6), on_rx, NULL, &log), 0);
  uint32_t tag = 7;
  cr_expect_eq(parley__simnet_send(net, SA(a6), SA(b6), &tag, 4, 0), 0);
  parley__simnet_deliver_until(net, 0);
  cr_expect_eq(log.n, 1);
  cr_expect_eq(log.tag[0], 7);
  parley__simnet_free(net);
}

Test(simnet, block_cuts_one_direction_of_one_path) {
  addrs();
  static rx_log la, lb, lc;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  memset(&lc, 0, sizeof lc);
  parley__simnet *net = parley__simnet_new(4, 16, 16, 1, NULL);
  parley__simnet_add_endpoint(net, SA(A), on_rx, NULL, &la);
  parley__simnet_add_endpoint(net, SA(B), on_rx, NULL, &lb);
  parley__simnet_add_endpoint(net, SA(C), on_rx, NULL, &lc);
  cr_assert_eq(parley__simnet_block(net, SA(A), SA(B), 1), 0);
  cr_expect_eq(parley__simnet_block(net, SA(A), SA(B), 1), 0); /* idempotent */
  send_tag(net, &A, &B, 1, 0); /* blocked */
  send_tag(net, &B, &A, 2, 0); /* other direction flows */
  send_tag(net, &A, &C, 3, 0); /* other path flows */
  parley__simnet_deliver_until(net, 0);
  cr_expect_eq(lb.n, 0);
  cr_expect_eq(la.n, 1);
  cr_expect_eq(lc.n, 1);
  cr_assert_eq(parley__simnet_block(net, SA(A), SA(B), 0), 0);
  cr_expect_eq(parley__simnet_block(net, SA(A), SA(B), 0), PARLEY_EINVAL);
  send_tag(net, &A, &B, 4, 1);
  parley__simnet_deliver_until(net, 1);
  cr_expect_eq(lb.n, 1);
  cr_expect_eq(lb.tag[0], 4);
  parley__simnet_stats st;
  parley__simnet_get_stats(net, &st);
  cr_expect_eq(st.dropped_cut, 1);
  parley__simnet_free(net);
}
