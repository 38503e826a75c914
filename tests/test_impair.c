/* test_impair.c: the network impairment model's statistics, windows, trace replay and determinism. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "parley/parley.h"
#include "sim/impair.h"

#define N_STAT 100000
#define FRAME_US 20000

static parley__impair *make(const parley__impair_config *c, uint64_t seed) {
  int err = 1;
  parley__impair *im = parley__impair_new(c, seed, &err);
  cr_assert_not_null(im, "create failed: %d", err);
  cr_assert_eq(err, 0);
  return im;
}

Test(impair, clean_is_base_delay_in_order) {
  parley__impair_config c = {.base_delay_us = 40000};
  parley__impair *im = make(&c, 1);
  parley__impair_verdict v;
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(parley__impair_packet(im, (int64_t)i * FRAME_US, 100, &v), 1);
    cr_assert_eq(v.deliver_us[0], (int64_t)i * FRAME_US + 40000);
  }
  parley__impair_free(im);
}

Test(impair, random_loss_rate_within_bounds) {
  parley__impair_config c = {.loss_pct = 5.0};
  parley__impair *im = make(&c, 7);
  parley__impair_verdict v;
  int lost = 0;
  for (int i = 0; i < N_STAT; i++) lost += parley__impair_packet(im, (int64_t)i * FRAME_US, 100, &v) == 0;
  /* Binomial sd = sqrt(n p (1-p)) = 68.9 packets; allow 5 sd. */
  double sd = sqrt(N_STAT * 0.05 * 0.95);
  cr_expect(fabs(lost - N_STAT * 0.05) < 5 * sd, "lost %d", lost);
  parley__impair_stats st;
  parley__impair_get_stats(im, &st);
  cr_expect_eq(st.dropped, (uint64_t)lost);
  cr_expect_eq(st.packets, (uint64_t)N_STAT);
  parley__impair_free(im);
}

Test(impair, gilbert_elliott_mean_loss_and_burst_length) {
  parley__impair_config c = {.ge_enabled = true};
  cr_assert_eq(parley__impair_ge_from_mean(5.0, 3.0, &c.ge), 0);
  parley__impair *im = make(&c, 11);
  parley__impair_verdict v;
  int lost = 0, bursts = 0;
  bool prev_lost = false;
  for (int i = 0; i < N_STAT; i++) {
    bool l = parley__impair_packet(im, (int64_t)i * FRAME_US, 100, &v) == 0;
    lost += l;
    if (l && !prev_lost) bursts++;
    prev_lost = l;
  }
  double rate = (double)lost / N_STAT, burst = (double)lost / bursts;
  /* Bursty loss has a larger variance than Bernoulli: ~5000 losses in ~1700 bursts; the burst count
   * has sd ~ sqrt(1700) = 41, so 10 % on the rate and on the mean length is > 4 sd. */
  cr_expect(fabs(rate - 0.05) < 0.005, "rate %f", rate);
  cr_expect(fabs(burst - 3.0) < 0.3, "burst %f", burst);
  parley__impair_free(im);
}

Test(impair, ge_from_mean_rejects_bad_input) {
  parley__impair_ge ge;
  cr_expect_eq(parley__impair_ge_from_mean(0.0, 2.0, &ge), PARLEY_EINVAL);
  cr_expect_eq(parley__impair_ge_from_mean(100.0, 2.0, &ge), PARLEY_EINVAL);
  cr_expect_eq(parley__impair_ge_from_mean(5.0, 0.5, &ge), PARLEY_EINVAL);
  cr_expect_eq(parley__impair_ge_from_mean(5.0, 2.0, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__impair_ge_from_mean(90.0, 1.0, &ge), PARLEY_EINVAL); /* p_gb would be 9 */
}

Test(impair, jitter_sd_and_floor) {
  parley__impair_config c = {.base_delay_us = 50000, .jitter_sd_us = 30000};
  parley__impair *im = make(&c, 3);
  parley__impair_verdict v;
  double sum = 0, sum2 = 0;
  int reordered = 0;
  int64_t prev = INT64_MIN;
  for (int i = 0; i < N_STAT; i++) {
    int64_t send = (int64_t)i * FRAME_US;
    cr_assert_eq(parley__impair_packet(im, send, 100, &v), 1);
    double d = (double)(v.deliver_us[0] - send);
    cr_assert(d >= 50000.0);
    sum += d;
    sum2 += d * d;
    reordered += v.deliver_us[0] < prev;
    prev = v.deliver_us[0];
  }
  double mean = sum / N_STAT, sd = sqrt(sum2 / N_STAT - mean * mean);
  cr_expect(fabs(sd - 30000.0) < 0.05 * 30000.0, "sd %f", sd);
  cr_expect(fabs(mean - 110000.0) < 2000.0, "mean %f", mean);
  cr_expect(reordered > 1000, "30 ms jitter on 20 ms spacing must reorder (%d)", reordered);
  parley__impair_free(im);

  c.monotonic = true;
  im = make(&c, 3);
  prev = INT64_MIN;
  for (int i = 0; i < 10000; i++) {
    parley__impair_packet(im, (int64_t)i * FRAME_US, 100, &v);
    cr_assert(v.deliver_us[0] >= prev);
    prev = v.deliver_us[0];
  }
  parley__impair_free(im);
}

Test(impair, blackout_drops_exactly_the_window) {
  parley__impair_config c = {.n_blackouts = 1, .blackouts = {{.start_us = 1000000, .length_us = 500000}}};
  parley__impair *im = make(&c, 5);
  parley__impair_verdict v;
  for (int64_t t = 0; t < 3000000; t += 1000) {
    int n = parley__impair_packet(im, t, 100, &v);
    bool inside = t >= 1000000 && t < 1500000;
    cr_assert_eq(n, inside ? 0 : 1, "t=%lld", (long long)t);
  }
  parley__impair_free(im);
}

Test(impair, reorder_and_duplicate_rates) {
  parley__impair_config c = {.reorder_pct = 5.0, .reorder_hold_us = 50000, .dup_pct = 2.0, .dup_gap_us = 1000};
  parley__impair *im = make(&c, 9);
  parley__impair_verdict v;
  int held = 0, dups = 0;
  for (int i = 0; i < N_STAT; i++) {
    int64_t send = (int64_t)i * FRAME_US;
    int n = parley__impair_packet(im, send, 100, &v);
    cr_assert(n == 1 || n == 2);
    held += v.deliver_us[0] - send == 50000;
    if (n == 2) {
      dups++;
      cr_assert_eq(v.deliver_us[1], v.deliver_us[0] + 1000);
    }
  }
  cr_expect(fabs(held - 5000.0) < 5 * sqrt(N_STAT * 0.05 * 0.95), "held %d", held);
  cr_expect(fabs(dups - 2000.0) < 5 * sqrt(N_STAT * 0.02 * 0.98), "dups %d", dups);
  parley__impair_free(im);
}

Test(impair, spike_drains_at_line_rate) {
  parley__impair_config c = {.base_delay_us = 10000,
                             .n_spikes = 1,
                             .spikes = {{.start_us = 1000000, .peak_us = 300000, .drain = 1.0}}};
  parley__impair *im = make(&c, 2);
  parley__impair_verdict v;
  for (int i = 0; i < 200; i++) {
    int64_t send = (int64_t)i * FRAME_US;
    parley__impair_packet(im, send, 100, &v);
    int64_t expect = 10000;
    if (send >= 1000000 && send < 1300000) expect += 300000 - (send - 1000000);
    cr_assert_eq(v.deliver_us[0] - send, expect, "send %lld", (long long)send);
  }
  parley__impair_free(im);
}

Test(impair, rate_limit_queues) {
  /* 1000 B/s, 100 B packets every 20 ms: each takes 100 ms to serialize, so delivery i is at
   * 100 ms * (i + 1) (queue grows). */
  parley__impair_config c = {.rate_bytes_per_s = 1000.0};
  parley__impair *im = make(&c, 2);
  parley__impair_verdict v;
  for (int i = 0; i < 50; i++) {
    parley__impair_packet(im, (int64_t)i * FRAME_US, 100, &v);
    cr_assert_eq(v.deliver_us[0], (int64_t)(i + 1) * 100000);
  }
  parley__impair_free(im);
}

static const char *TRACE = "# time_ms delay_ms lost\n"
                           "0 10 0\n"
                           "100 50 0\n"
                           "\n"
                           "200 0 1   # outage\n"
                           "300 5 0\n";

static void check_trace(parley__impair *im) {
  parley__impair_verdict v;
  for (int64_t t = 0; t < 400000; t += 10000) {
    int n = parley__impair_packet(im, t, 100, &v);
    if (t >= 200000 && t < 300000) {
      cr_assert_eq(n, 0);
      continue;
    }
    cr_assert_eq(n, 1);
    int64_t d = t < 100000 ? 10000 : t < 200000 ? 50000 : 5000;
    cr_assert_eq(v.deliver_us[0] - t, d, "t %lld", (long long)t);
  }
}

Test(impair, trace_replay_from_string_and_file) {
  parley__impair_config c = {.trace_text = TRACE};
  parley__impair *im = make(&c, 1);
  check_trace(im);
  parley__impair_free(im);

  char path[] = "/tmp/parley_trace_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(TRACE, f);
  fclose(f);
  parley__impair_config cf = {.trace_path = path};
  im = make(&cf, 1);
  check_trace(im);
  parley__impair_free(im);
  unlink(path);
}

Test(impair, deterministic_for_a_seed) {
  parley__impair_config c = {.base_delay_us = 20000, .jitter_sd_us = 15000, .loss_pct = 3, .dup_pct = 1, .reorder_pct = 2,
                             .reorder_hold_us = 30000};
  parley__impair *a = make(&c, 42), *b = make(&c, 42), *d = make(&c, 43);
  parley__impair_verdict va, vb, vd;
  int differ = 0;
  for (int i = 0; i < 10000; i++) {
    int64_t t = (int64_t)i * FRAME_US;
    int na = parley__impair_packet(a, t, 100, &va), nb = parley__impair_packet(b, t, 100, &vb);
    int nd = parley__impair_packet(d, t, 100, &vd);
    cr_assert_eq(na, nb);
    for (int k = 0; k < na; k++) cr_assert_eq(va.deliver_us[k], vb.deliver_us[k]);
    differ += na != nd || (na > 0 && va.deliver_us[0] != vd.deliver_us[0]);
  }
  cr_expect(differ > 5000, "another seed must give another run");
  parley__impair_free(a);
  parley__impair_free(b);
  parley__impair_free(d);
}

Test(impair, bad_config_rejected) {
  int err = 0;
  cr_expect_null(parley__impair_new(NULL, 1, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__impair_config bad[] = {
      {.base_delay_us = -1},
      {.jitter_sd_us = -5},
      {.loss_pct = 101},
      {.loss_pct = NAN},
      {.reorder_pct = -1},
      {.dup_pct = 200},
      {.rate_bytes_per_s = -1},
      {.ge_enabled = true, .ge = {.p_good_to_bad = 1.5}},
      {.n_spikes = PARLEY__IMPAIR_MAX_SPIKES + 1},
      {.n_blackouts = -1},
      {.n_blackouts = 1, .blackouts = {{.start_us = 0, .length_us = -1}}},
      {.trace_text = "0 1 0", .trace_path = "/x"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err = 0;
    cr_expect_null(parley__impair_new(&bad[i], 1, &err), "config %zu accepted", i);
    cr_expect_eq(err, PARLEY_EINVAL, "config %zu", i);
  }
  const char *bad_traces[] = {"0 1", "0 1 2", "x 1 0", "10 1 0\n5 1 0", "0 -1 0", "0 1 0 extra"};
  for (size_t i = 0; i < sizeof bad_traces / sizeof bad_traces[0]; i++) {
    parley__impair_config c = {.trace_text = bad_traces[i]};
    err = 0;
    cr_expect_null(parley__impair_new(&c, 1, &err), "trace %zu accepted", i);
    cr_expect_eq(err, PARLEY_EPARSE, "trace %zu", i);
  }
  parley__impair_config missing = {.trace_path = "/nonexistent/parley/trace.txt"};
  cr_expect_null(parley__impair_new(&missing, 1, &err));
  cr_expect_eq(err, PARLEY_EIO);
  parley__impair_verdict v;
  cr_expect_eq(parley__impair_packet(NULL, 0, 0, &v), PARLEY_EINVAL);
}
