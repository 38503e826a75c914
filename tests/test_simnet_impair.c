/* test_simnet_impair.c: the simnet fate adapter over the shared impairment model: the simnet delivers
 * exactly what a standalone model with the same config and seed decides, each direction has its own
 * model, blackout windows drop by send time, other pairs pass untouched, bad arguments are refused. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "parley/parley.h"
#include "sim/simnet_impair.h"

#define FRAME_US 20000

typedef struct rx_log {
  int n;
  int64_t at_us[4096];
  uint32_t tag[4096];
} rx_log;

static void on_rx(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                  const uint8_t *data, size_t len, int64_t now_us) {
  (void)net;
  (void)from;
  (void)to;
  rx_log *log = ctx;
  if (log->n < 4096 && len >= 4) {
    memcpy(&log->tag[log->n], data, 4);
    log->at_us[log->n] = now_us;
    log->n++;
  }
}

static struct sockaddr_storage A, B, C;

static parley__simnet *make_net(rx_log *la, rx_log *lb, rx_log *lc) {
  cr_assert_eq(parley__simnet_addr4(&A, "127.0.0.1", 6000), 0);
  cr_assert_eq(parley__simnet_addr4(&B, "127.0.0.1", 6001), 0);
  cr_assert_eq(parley__simnet_addr4(&C, "127.0.0.3", 6000), 0);
  int err = 1;
  parley__simnet *net = parley__simnet_new(4, 8192, 256, 99, &err);
  cr_assert_not_null(net, "%d", err);
  cr_assert_geq(parley__simnet_add_endpoint(net, (struct sockaddr *)&A, on_rx, NULL, la), 0);
  cr_assert_geq(parley__simnet_add_endpoint(net, (struct sockaddr *)&B, on_rx, NULL, lb), 0);
  cr_assert_geq(parley__simnet_add_endpoint(net, (struct sockaddr *)&C, on_rx, NULL, lc), 0);
  return net;
}

static void send_tag(parley__simnet *net, struct sockaddr_storage *from, struct sockaddr_storage *to,
                     uint32_t tag, int64_t now_us) {
  uint8_t buf[100] = {0};
  memcpy(buf, &tag, 4);
  cr_assert_eq(parley__simnet_send(net, (struct sockaddr *)from, (struct sockaddr *)to, buf, sizeof buf, now_us), 0);
}

/* Sorted multiset comparison of delivery times: the simnet orders by time, the model by send. */
static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

Test(simnet_impair, matches_standalone_model) {
  static rx_log la, lb, lc;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  parley__simnet *net = make_net(&la, &lb, &lc);
  parley__impair_config c = {.base_delay_us = 30000, .jitter_sd_us = 8000, .loss_pct = 10.0, .dup_pct = 5.0,
                             .dup_gap_us = 1000};
  int err = 1;
  parley__simnet_impair *si =
      parley__simnet_impair_new((struct sockaddr *)&A, (struct sockaddr *)&B, &c, NULL, 1234, &err);
  cr_assert_not_null(si, "%d", err);
  parley__simnet_impair_attach(si, net);

  parley__impair *ref = parley__impair_new(&c, 1234, &err);
  cr_assert_not_null(ref);
  static int64_t want[4096];
  int n_want = 0;
  for (int i = 0; i < 1000; i++) {
    int64_t t = (int64_t)i * FRAME_US;
    send_tag(net, &A, &B, (uint32_t)i, t);
    parley__impair_verdict v;
    int n = parley__impair_packet(ref, t, 100, &v);
    for (int k = 0; k < n; k++) want[n_want++] = v.deliver_us[k];
    cr_assert_geq(parley__simnet_deliver_until(net, t), 0);
  }
  cr_assert_geq(parley__simnet_deliver_until(net, INT64_MAX / 2), 0);
  cr_assert_eq(lb.n, n_want, "simnet %d, model %d", lb.n, n_want);
  /* Jitter reorders, so compare the delivery times as sets. */
  qsort(want, (size_t)n_want, sizeof want[0], cmp_i64);
  for (int i = 0; i < lb.n; i++) cr_assert_eq(lb.at_us[i], want[i], "delivery %d", i);
  /* Losses and duplicates really happened (so the comparison covered them). */
  parley__impair_stats st;
  parley__simnet_impair_get_stats(si, 0, &st);
  cr_assert_eq(st.packets, 1000);
  cr_assert_gt(st.dropped, 50);
  cr_assert_gt(st.duplicated, 10);
  cr_assert_eq(lb.n, 1000 - (int)st.dropped + (int)st.duplicated);
  parley__impair_free(ref);
  parley__simnet_free(net);
  parley__simnet_impair_free(si);
}

Test(simnet_impair, directions_have_their_own_models) {
  static rx_log la, lb, lc;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  parley__simnet *net = make_net(&la, &lb, &lc);
  parley__impair_config a2b = {.loss_pct = 100.0};
  parley__impair_config b2a = {.base_delay_us = 45000};
  int err;
  parley__simnet_impair *si =
      parley__simnet_impair_new((struct sockaddr *)&A, (struct sockaddr *)&B, &a2b, &b2a, 5, &err);
  cr_assert_not_null(si);
  parley__simnet_impair_attach(si, net);
  for (int i = 0; i < 100; i++) {
    send_tag(net, &A, &B, (uint32_t)i, (int64_t)i * FRAME_US);
    send_tag(net, &B, &A, (uint32_t)i, (int64_t)i * FRAME_US);
  }
  cr_assert_geq(parley__simnet_deliver_until(net, 10 * 1000000), 0);
  cr_assert_eq(lb.n, 0);
  cr_assert_eq(la.n, 100);
  for (int i = 0; i < 100; i++) {
    cr_assert_eq(la.tag[i], (uint32_t)i);
    cr_assert_eq(la.at_us[i], (int64_t)i * FRAME_US + 45000);
  }
  parley__impair_stats s0, s1;
  parley__simnet_impair_get_stats(si, 0, &s0);
  parley__simnet_impair_get_stats(si, 1, &s1);
  cr_assert_eq(s0.dropped, 100);
  cr_assert_eq(s1.dropped, 0);
  cr_assert_eq(s1.packets, 100);
  parley__simnet_free(net);
  parley__simnet_impair_free(si);
}

Test(simnet_impair, blackout_by_send_time_and_other_pairs_untouched) {
  static rx_log la, lb, lc;
  memset(&lb, 0, sizeof lb);
  memset(&lc, 0, sizeof lc);
  parley__simnet *net = make_net(&la, &lb, &lc);
  parley__impair_config a2b = {.base_delay_us = 10000, .n_blackouts = 1,
                               .blackouts = {{.start_us = 1000000, .length_us = 500000}}};
  int err;
  parley__simnet_impair *si =
      parley__simnet_impair_new((struct sockaddr *)&A, (struct sockaddr *)&B, &a2b, NULL, 5, &err);
  cr_assert_not_null(si);
  parley__simnet_impair_attach(si, net);
  for (int i = 0; i < 100; i++) {
    send_tag(net, &A, &B, (uint32_t)i, (int64_t)i * FRAME_US);
    send_tag(net, &A, &C, (uint32_t)i, (int64_t)i * FRAME_US);
  }
  cr_assert_geq(parley__simnet_deliver_until(net, 10 * 1000000), 0);
  /* Sends at 1.00 s .. 1.48 s (frames 50..74) fall in [1.0, 1.5). */
  cr_assert_eq(lb.n, 75);
  for (int i = 0; i < lb.n; i++) {
    uint32_t t = lb.tag[i];
    cr_assert(t < 50 || t >= 75, "tag %u in blackout delivered", t);
  }
  cr_assert_eq(lc.n, 100);
  for (int i = 0; i < 100; i++) cr_assert_eq(lc.at_us[i], (int64_t)i * FRAME_US);
  parley__simnet_free(net);
  parley__simnet_impair_free(si);
}

Test(simnet_impair, bad_arguments) {
  struct sockaddr_storage a, b;
  cr_assert_eq(parley__simnet_addr4(&a, "127.0.0.1", 1), 0);
  cr_assert_eq(parley__simnet_addr4(&b, "127.0.0.1", 2), 0);
  int err = 0;
  cr_assert_null(parley__simnet_impair_new(NULL, (struct sockaddr *)&b, NULL, NULL, 1, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  err = 0;
  cr_assert_null(parley__simnet_impair_new((struct sockaddr *)&a, (struct sockaddr *)&a, NULL, NULL, 1, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  parley__impair_config bad = {.loss_pct = 101.0};
  err = 0;
  cr_assert_null(parley__simnet_impair_new((struct sockaddr *)&a, (struct sockaddr *)&b, NULL, &bad, 1, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  struct sockaddr_storage unix_addr;
  memset(&unix_addr, 0, sizeof unix_addr);
  unix_addr.ss_family = AF_UNIX;
  err = 0;
  cr_assert_null(parley__simnet_impair_new((struct sockaddr *)&unix_addr, (struct sockaddr *)&b, NULL, NULL, 1, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  parley__simnet_impair_free(NULL);
}
