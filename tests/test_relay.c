/* test_relay.c: the relay core in simulated time: exact forwarding with per-direction delay and intact
 * payloads, loss ratio within binomial bounds, blackout windows drop exactly the datagrams received in
 * them (relative to the relay's start), duplicates and reordering counted per direction, the delivery
 * queue bound, delay statistics, determinism by seed, and argument checking. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "parley/parley.h"
#include "sim/relay.h"

#define FRAME_US 20000

static parley__relay *make(const parley__relay_config *cfg, int64_t start_us) {
  int err = 1;
  parley__relay *r = parley__relay_new(cfg, start_us, &err);
  cr_assert_not_null(r, "create failed: %d", err);
  cr_assert_eq(err, 0);
  return r;
}

static parley__relay_config base_cfg(void) {
  parley__relay_config c;
  memset(&c, 0, sizeof c);
  c.seed = 42;
  c.max_queued = 4096;
  c.max_datagram = 1500;
  return c;
}

static void fill(uint8_t *buf, size_t len, uint32_t tag) {
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(tag * 31u + i);
}

/* Pops everything due by now_us, checking payloads against fill(); counts per direction. */
typedef struct sink {
  int n[2];
  uint32_t tags[2][8192];
  int64_t at_us[2][8192];
} sink;

static void drain(parley__relay *r, int64_t now_us, sink *s) {
  uint8_t buf[1500];
  for (int guard = 0; guard < 100000; guard++) {
    parley__relay_dir dir;
    int n = parley__relay_pop_due(r, now_us, &dir, buf, sizeof buf);
    if (n == PARLEY_EAGAIN) return;
    cr_assert_geq(n, 4);
    uint32_t tag;
    memcpy(&tag, buf, 4);
    uint8_t want[1500];
    fill(want, (size_t)n, tag);
    cr_assert_eq(memcmp(buf + 4, want + 4, (size_t)n - 4), 0, "payload corrupted");
    if (s && s->n[dir] < 8192) {
      s->tags[dir][s->n[dir]] = tag;
      s->at_us[dir][s->n[dir]] = now_us;
      s->n[dir]++;
    }
  }
  cr_assert_fail("drain did not finish");
}

static int send_one(parley__relay *r, parley__relay_dir dir, uint32_t tag, size_t len, int64_t now_us) {
  uint8_t buf[1500];
  fill(buf, len, tag);
  memcpy(buf, &tag, 4);
  return parley__relay_receive(r, dir, buf, len, now_us);
}

/* Steps simulated time to each due time exactly, so forward times equal due times. */
static void run_until(parley__relay *r, int64_t end_us, sink *s) {
  for (int guard = 0; guard < 1000000; guard++) {
    int64_t due = parley__relay_next_due_us(r);
    if (due > end_us) return;
    drain(r, due, s);
  }
  cr_assert_fail("run_until did not finish");
}

Test(relay, forwards_both_ways_with_per_direction_delay) {
  parley__relay_config c = base_cfg();
  c.impair[PARLEY__RELAY_A2B].base_delay_us = 20000;
  c.impair[PARLEY__RELAY_B2A].base_delay_us = 35000;
  const int64_t t0 = 7000000;
  parley__relay *r = make(&c, t0);
  static sink s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < 200; i++) {
    int64_t now = t0 + (int64_t)i * FRAME_US;
    run_until(r, now, &s);
    cr_assert_eq(send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 160, now), 1);
    cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, (uint32_t)(1000 + i), 80 + (size_t)i, now), 1);
  }
  run_until(r, INT64_MAX - 1, &s);
  cr_assert_eq(parley__relay_queued(r), 0);
  cr_assert_eq(s.n[0], 200);
  cr_assert_eq(s.n[1], 200);
  for (int i = 0; i < 200; i++) {
    cr_assert_eq(s.tags[0][i], (uint32_t)i);
    cr_assert_eq(s.at_us[0][i], t0 + (int64_t)i * FRAME_US + 20000);
    cr_assert_eq(s.tags[1][i], (uint32_t)(1000 + i));
    cr_assert_eq(s.at_us[1][i], t0 + (int64_t)i * FRAME_US + 35000);
  }
  parley__relay_dir_stats a, b;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  parley__relay_get_stats(r, PARLEY__RELAY_B2A, &b);
  cr_assert_eq(a.received, 200);
  cr_assert_eq(a.forwarded, 200);
  cr_assert_eq(a.dropped + a.dropped_full + a.duplicated + a.reordered, 0);
  cr_assert_eq(a.bytes_in, 200 * 160);
  cr_assert_eq(a.bytes_out, 200 * 160);
  cr_assert_eq(a.max_delay_us, 20000);
  cr_assert_float_eq(a.mean_delay_us, 20000.0, 1e-6);
  cr_assert_eq(a.max_late_us, 0);
  /* 80 + 81 + ... + 279 */
  cr_assert_eq(b.bytes_in, 200 * 80 + 199 * 200 / 2);
  cr_assert_eq(b.bytes_out, b.bytes_in);
  cr_assert_eq(b.max_delay_us, 35000);
  cr_assert_float_eq(b.mean_delay_us, 35000.0, 1e-6);
  parley__relay_free(r);
}

Test(relay, loss_ratio_within_binomial_bounds) {
  parley__relay_config c = base_cfg();
  c.impair[PARLEY__RELAY_A2B].loss_pct = 20.0;
  parley__relay *r = make(&c, 0);
  const int n = 20000;
  int queued = 0;
  for (int i = 0; i < n; i++) {
    int64_t now = (int64_t)i * FRAME_US;
    run_until(r, now, NULL);
    int q = send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 100, now);
    cr_assert(q == 0 || q == 1);
    queued += q;
    cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, (uint32_t)i, 100, now), 1); /* b2a is clean */
  }
  run_until(r, INT64_MAX - 1, NULL);
  parley__relay_dir_stats a, b;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  parley__relay_get_stats(r, PARLEY__RELAY_B2A, &b);
  double sd = sqrt(n * 0.2 * 0.8); /* 56.6 */
  cr_expect(fabs((double)a.dropped - n * 0.2) < 5 * sd, "dropped %llu", (unsigned long long)a.dropped);
  cr_assert_eq(a.received, (uint64_t)n);
  cr_assert_eq(a.forwarded, (uint64_t)queued);
  cr_assert_eq(a.forwarded + a.dropped, (uint64_t)n);
  cr_assert_eq(b.dropped, 0);
  cr_assert_eq(b.forwarded, (uint64_t)n);
  parley__relay_free(r);
}

Test(relay, blackout_drops_exactly_the_window_relative_to_start) {
  parley__relay_config c = base_cfg();
  parley__impair_config *ab = &c.impair[PARLEY__RELAY_A2B];
  ab->base_delay_us = 5000;
  ab->n_blackouts = 2;
  ab->blackouts[0] = (parley__impair_blackout){.start_us = 1000000, .length_us = 500000};
  ab->blackouts[1] = (parley__impair_blackout){.start_us = 3000000, .length_us = 1};
  const int64_t t0 = 123456789;
  parley__relay *r = make(&c, t0);
  static sink s;
  memset(&s, 0, sizeof s);
  /* One datagram per ms for 4 s: window 1 is receive times [1000, 1500) ms, window 2 is 3000 ms. */
  for (int i = 0; i < 4000; i++) {
    int64_t now = t0 + (int64_t)i * 1000;
    run_until(r, now, &s);
    int q = send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 20, now);
    bool in_window = (i >= 1000 && i < 1500) || i == 3000;
    cr_assert_eq(q, in_window ? 0 : 1, "datagram at %d ms: %d", i, q);
    cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, (uint32_t)i, 20, now), 1);
  }
  run_until(r, INT64_MAX - 1, &s);
  cr_assert_eq(s.n[0], 4000 - 501);
  cr_assert_eq(s.n[1], 4000);
  for (int k = 0; k < s.n[0]; k++) {
    uint32_t t = s.tags[0][k];
    cr_assert(!((t >= 1000 && t < 1500) || t == 3000), "tag %u from a blackout was forwarded", t);
  }
  parley__relay_dir_stats a;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  cr_assert_eq(a.dropped, 501);
  parley__relay_free(r);
}

Test(relay, duplicates_and_reordering_counted_per_direction) {
  parley__relay_config c = base_cfg();
  /* a2b: every datagram duplicated 3 ms later. */
  c.impair[PARLEY__RELAY_A2B].dup_pct = 100.0;
  c.impair[PARLEY__RELAY_A2B].dup_gap_us = 3000;
  /* b2a: a trace adds 200 ms to datagrams received in [100, 120) ms: with 10 ms spacing, the two
   * received at 100 and 110 ms are overtaken by later ones, nothing else. */
  c.impair[PARLEY__RELAY_B2A].trace_text = "0 0 0\n100 200 0\n120 0 0\n";
  parley__relay *r = make(&c, 0);
  static sink s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < 50; i++) {
    int64_t now = (int64_t)i * 10000;
    run_until(r, now, &s);
    cr_assert_eq(send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 40, now), 2);
    cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, (uint32_t)i, 40, now), 1);
  }
  run_until(r, INT64_MAX - 1, &s);
  parley__relay_dir_stats a, b;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  parley__relay_get_stats(r, PARLEY__RELAY_B2A, &b);
  cr_assert_eq(a.received, 50);
  cr_assert_eq(a.duplicated, 50);
  cr_assert_eq(a.forwarded, 100);
  cr_assert_eq(a.reordered, 0); /* a copy is not a reordering */
  cr_assert_eq(a.max_delay_us, 3000);
  cr_assert_float_eq(a.mean_delay_us, 1500.0, 1e-6);
  cr_assert_eq(b.duplicated, 0);
  cr_assert_eq(b.forwarded, 50);
  cr_assert_eq(b.reordered, 2);
  cr_assert_eq(b.max_delay_us, 200000);
  cr_assert_float_eq(b.mean_delay_us, 2 * 200000.0 / 50, 1e-6);
  /* Order: 0..9, 12..29, then 10 at 300 ms (ties go to the earlier arrival), 30, 11 at 310 ms, 31. */
  cr_assert_eq(s.tags[1][27], 29);
  cr_assert_eq(s.tags[1][28], 10);
  cr_assert_eq(s.at_us[1][28], 300000);
  cr_assert_eq(s.tags[1][29], 30);
  cr_assert_eq(s.tags[1][30], 11);
  cr_assert_eq(s.at_us[1][30], 310000);
  cr_assert_eq(s.tags[1][31], 31);
  parley__relay_free(r);
}

Test(relay, queue_is_bounded) {
  parley__relay_config c = base_cfg();
  c.max_queued = 8;
  c.impair[PARLEY__RELAY_A2B].base_delay_us = 1000000;
  c.impair[PARLEY__RELAY_B2A].base_delay_us = 1000000;
  parley__relay *r = make(&c, 0);
  int queued = 0;
  for (int i = 0; i < 10; i++) queued += send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 100, i);
  for (int i = 0; i < 10; i++) queued += send_one(r, PARLEY__RELAY_B2A, (uint32_t)i, 100, 10 + i);
  cr_assert_eq(queued, 8);
  cr_assert_eq(parley__relay_queued(r), 8);
  parley__relay_dir_stats a, b;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  parley__relay_get_stats(r, PARLEY__RELAY_B2A, &b);
  cr_assert_eq(a.dropped_full, 2);
  cr_assert_eq(b.dropped_full, 10);
  cr_assert_eq(a.dropped, 0);
  /* Nothing is due before 1 s; then everything queued comes out and the slots are reusable. */
  uint8_t buf[1500];
  parley__relay_dir dir;
  cr_assert_eq(parley__relay_pop_due(r, 999999, &dir, buf, sizeof buf), PARLEY_EAGAIN);
  cr_assert_eq(parley__relay_next_due_us(r), 1000000);
  static sink s;
  memset(&s, 0, sizeof s);
  drain(r, 2000000, &s);
  cr_assert_eq(s.n[0], 8);
  for (int i = 0; i < 8; i++) cr_assert_eq(s.tags[0][i], (uint32_t)i);
  cr_assert_eq(parley__relay_queued(r), 0);
  cr_assert_eq(parley__relay_next_due_us(r), INT64_MAX);
  for (int i = 0; i < 8; i++) cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, 99, 100, 2000000), 1);
  cr_assert_eq(send_one(r, PARLEY__RELAY_B2A, 99, 100, 2000000), 0);
  parley__relay_free(r);
}

Test(relay, size_limits) {
  parley__relay_config c = base_cfg();
  c.max_datagram = 64;
  parley__relay *r = make(&c, 0);
  uint8_t big[65] = {0};
  cr_assert_eq(parley__relay_receive(r, PARLEY__RELAY_A2B, big, sizeof big, 0), PARLEY_ENOSPC);
  cr_assert_eq(send_one(r, PARLEY__RELAY_A2B, 5, 64, 0), 1);
  uint8_t small[63];
  parley__relay_dir dir;
  cr_assert_eq(parley__relay_pop_due(r, 0, &dir, small, sizeof small), PARLEY_ENOSPC);
  cr_assert_eq(parley__relay_queued(r), 1); /* still there */
  uint8_t buf[64];
  cr_assert_eq(parley__relay_pop_due(r, 0, &dir, buf, sizeof buf), 64);
  cr_assert_eq(dir, PARLEY__RELAY_A2B);
  parley__relay_dir_stats a;
  parley__relay_get_stats(r, PARLEY__RELAY_A2B, &a);
  cr_assert_eq(a.received, 2);
  cr_assert_eq(a.dropped, 1);
  cr_assert_eq(a.forwarded, 1);
  /* Zero-length datagrams are legal UDP. */
  cr_assert_eq(parley__relay_receive(r, PARLEY__RELAY_B2A, NULL, 0, 1), 1);
  cr_assert_eq(parley__relay_pop_due(r, 1, &dir, buf, sizeof buf), 0);
  cr_assert_eq(dir, PARLEY__RELAY_B2A);
  parley__relay_free(r);
}

Test(relay, deterministic_for_a_seed) {
  int64_t first[2][300];
  for (int run = 0; run < 3; run++) {
    parley__relay_config c = base_cfg();
    c.seed = run < 2 ? 77 : 78;
    c.impair[PARLEY__RELAY_A2B].jitter_sd_us = 10000;
    c.impair[PARLEY__RELAY_A2B].loss_pct = 5.0;
    parley__relay *r = make(&c, 0);
    int64_t got[300];
    for (int i = 0; i < 300; i++) {
      (void)send_one(r, PARLEY__RELAY_A2B, (uint32_t)i, 100, (int64_t)i * FRAME_US);
      got[i] = parley__relay_next_due_us(r);
    }
    if (run < 2) memcpy(first[run], got, sizeof got);
    else cr_assert_neq(memcmp(first[0], got, sizeof got), 0, "another seed gave the same schedule");
    parley__relay_free(r);
  }
  cr_assert_eq(memcmp(first[0], first[1], sizeof first[0]), 0);
}

Test(relay, bad_arguments) {
  int err = 0;
  cr_assert_null(parley__relay_new(NULL, 0, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  parley__relay_config c = base_cfg();
  c.max_queued = 0;
  err = 0;
  cr_assert_null(parley__relay_new(&c, 0, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  c = base_cfg();
  c.max_datagram = PARLEY__RELAY_MAX_DATAGRAM + 1;
  err = 0;
  cr_assert_null(parley__relay_new(&c, 0, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  c = base_cfg();
  c.impair[PARLEY__RELAY_B2A].loss_pct = -1.0;
  err = 0;
  cr_assert_null(parley__relay_new(&c, 0, &err));
  cr_assert_eq(err, PARLEY_EINVAL);
  c = base_cfg();
  c.impair[PARLEY__RELAY_A2B].trace_text = "0 x 0\n";
  err = 0;
  cr_assert_null(parley__relay_new(&c, 0, &err));
  cr_assert_eq(err, PARLEY_EPARSE);
  c = base_cfg();
  c.impair[PARLEY__RELAY_A2B].trace_path = "/nonexistent/trace.txt";
  err = 0;
  cr_assert_null(parley__relay_new(&c, 0, &err));
  cr_assert_eq(err, PARLEY_EIO);

  parley__relay *r = make(&(parley__relay_config){.max_queued = 1, .max_datagram = 16}, 0);
  uint8_t b[16] = {0};
  parley__relay_dir dir;
  cr_assert_eq(parley__relay_receive(NULL, PARLEY__RELAY_A2B, b, 1, 0), PARLEY_EINVAL);
  cr_assert_eq(parley__relay_receive(r, (parley__relay_dir)2, b, 1, 0), PARLEY_EINVAL);
  cr_assert_eq(parley__relay_receive(r, PARLEY__RELAY_A2B, NULL, 1, 0), PARLEY_EINVAL);
  cr_assert_eq(parley__relay_pop_due(r, 0, NULL, b, sizeof b), PARLEY_EINVAL);
  cr_assert_eq(parley__relay_pop_due(NULL, 0, &dir, b, sizeof b), PARLEY_EINVAL);
  cr_assert_eq(parley__relay_pop_due(r, 0, &dir, b, sizeof b), PARLEY_EAGAIN);
  cr_assert_eq(parley__relay_next_due_us(NULL), INT64_MAX);
  parley__relay_dir_stats st;
  parley__relay_get_stats(r, (parley__relay_dir)5, &st);
  cr_assert_eq(st.received, 0);
  parley__relay_free(r);
  parley__relay_free(NULL);
}
