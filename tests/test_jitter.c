/* test_jitter.c: the adaptive jitter buffer in simulated time. Each packet's payload carries its frame
 * index, so what the buffer hands out can be checked against what was sent. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jitter.h"
#include "parley/parley.h"
#include "transport/impair.h"

#define F 960u       /* samples per 20 ms frame at 48 kHz */
#define TICK 20000   /* us */
#define MAXF 20000   /* frames per harness */

typedef struct harness {
  parley__jitter *j;
  uint16_t seq0;
  uint32_t ts0, ssrc;
  int played[MAXF]; /* times frame k was handed out as PACKET */
  int last_played;  /* frame index of the last PACKET, -1 before */
  int n_kind[6];
  bool saw_reset;
  const int *seq_of; /* when set: frame k was sent with sequence number seq0 + seq_of[k] (DTX) */
  parley__jitter_frame f;
} harness;

static harness *h_new(const parley__jitter_config *cfg) {
  harness *h = calloc(1, sizeof *h);
  cr_assert_not_null(h);
  int err = 1;
  h->j = parley__jitter_new(cfg, &err);
  cr_assert_not_null(h->j);
  cr_assert_eq(err, 0);
  h->last_played = -1;
  h->ssrc = 0xabcdef01;
  return h;
}

static void h_free(harness *h) {
  parley__jitter_free(h->j);
  free(h);
}

/* Frame k: seq seq0 + k, timestamp ts0 + k * F (both wrap), payload = k. */
static int h_put(harness *h, int k, int64_t now_us) {
  uint8_t p[8] = {0};
  memcpy(p, &k, sizeof k);
  return parley__jitter_put(h->j, (uint16_t)(h->seq0 + k), h->ts0 + (uint32_t)k * F, h->ssrc, false, p, sizeof p, now_us);
}

/* Checks the frame just handed out: packets come out once each and in order. Returns the kind. */
static parley__jitter_kind h_check(harness *h) {
  h->n_kind[h->f.kind]++;
  h->saw_reset |= h->f.reset;
  if (h->f.kind == PARLEY__JITTER_PACKET || h->f.kind == PARLEY__JITTER_FEC) {
    int k;
    cr_assert_eq(h->f.payload_bytes, 8u);
    memcpy(&k, h->f.payload, sizeof k);
    cr_assert(k >= 0 && k < MAXF);
    cr_assert_eq(h->f.seq, (uint16_t)(h->seq0 + (h->seq_of ? h->seq_of[k] : k)));
    if (h->f.kind == PARLEY__JITTER_PACKET) {
      cr_assert_eq(h->f.timestamp, h->ts0 + (uint32_t)k * F);
      cr_assert_eq(h->played[k], 0, "frame %d played twice", k);
      cr_assert(k > h->last_played, "frame %d after %d", k, h->last_played);
      h->played[k]++;
      h->last_played = k;
    } else {
      /* FEC: the payload is the next packet's; this tick is the frame before it. */
      cr_assert_eq(h->f.timestamp, h->ts0 + (uint32_t)(k - 1) * F);
      cr_assert(k - 1 > h->last_played);
    }
  }
  return h->f.kind;
}

/* One tick; checks that packets come out once each and in order. Returns the kind. */
static parley__jitter_kind h_get(harness *h, int64_t now_us) {
  cr_assert_eq(parley__jitter_get(h->j, now_us, &h->f), 0);
  return h_check(h);
}

static parley__jitter_stats h_stats(harness *h) {
  parley__jitter_stats st;
  parley__jitter_get_stats(h->j, &st);
  return st;
}

typedef struct ev {
  int64_t t;
  int k;
} ev;

static int cmp_ev(const void *a, const void *b) {
  const ev *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->k - y->k;
}

/* Sends frames [from, to), frame k arriving at k * TICK + offset (+ extra[k] if given), ticking every
 * TICK from frame `from`'s send time until extra_ticks after the last; arrivals at or before a tick
 * are put, in arrival order, before that tick's get. */
static void run_stream(harness *h, int from, int to, int64_t offset_us, const int64_t *extra_us, int extra_ticks) {
  static ev evs[MAXF];
  int n = 0;
  for (int k = from; k < to; k++) evs[n++] = (ev){(int64_t)k * TICK + offset_us + (extra_us ? extra_us[k] : 0), k};
  qsort(evs, (size_t)n, sizeof *evs, cmp_ev);
  int e = 0;
  for (int64_t now = (int64_t)from * TICK; now <= (int64_t)(to + extra_ticks) * TICK; now += TICK) {
    for (; e < n && evs[e].t <= now; e++) h_put(h, evs[e].k, evs[e].t);
    h_get(h, now);
  }
}

Test(jitter, in_order_stream_plays_every_frame_once_in_order) {
  harness *h = h_new(NULL);
  run_stream(h, 0, 500, 5000, NULL, 0);
  for (int k = 0; k < 500; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.packets_in, 500u);
  cr_expect_eq(st.packets_out, 500u);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.duplicates, 0u);
  /* Constant transit: the frame plays at the first tick after it arrives (15 ms later). */
  cr_expect(st.current_delay_ms >= 0.0 && st.current_delay_ms < 20.0, "delay %f", st.current_delay_ms);
  cr_expect(h->saw_reset, "the first stream start is reported");
  h_free(h);
}

Test(jitter, reordering_within_target_recovers_order) {
  /* Every even frame arrives 30 ms late, i.e. after its odd successor. */
  static int64_t extra[600];
  for (int k = 0; k < 600; k++) extra[k] = k % 2 == 0 ? 30000 : 0;
  harness *h = h_new(NULL);
  run_stream(h, 0, 600, 5000, extra, 10);
  parley__jitter_stats st = h_stats(h);
  /* The buffer must learn to wait; once it has, nothing is lost. Allow the first few frames. */
  for (int k = 20; k < 600; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  cr_expect(st.late <= 3, "late %llu", (unsigned long long)st.late);
  h_free(h);
}

Test(jitter, duplicates_dropped_and_counted) {
  harness *h = h_new(NULL);
  int dups = 0;
  for (int k = 0; k < 200; k++) {
    int64_t now = (int64_t)k * TICK;
    cr_assert_eq(h_put(h, k, now - 15000), 0);
    /* A copy right away (still buffered) and one of the frame played last tick. */
    if (k % 3 == 0) {
      cr_assert_eq(h_put(h, k, now - 14000), PARLEY__JITTER_DROP_DUPLICATE);
      dups++;
    }
    if (k % 5 == 1) {
      cr_assert_eq(h_put(h, k - 1, now - 1000), PARLEY__JITTER_DROP_DUPLICATE);
      dups++;
    }
    h_get(h, now);
  }
  for (int k = 0; k < 200; k++) cr_assert_eq(h->played[k], 1);
  cr_expect_eq(h_stats(h).duplicates, (uint64_t)dups);
  cr_expect_eq(h_stats(h).packets_in, 200u);
  h_free(h);
}

Test(jitter, late_packet_counted_not_played) {
  harness *h = h_new(NULL);
  for (int k = 0; k < 100; k++) {
    int64_t now = (int64_t)k * TICK;
    if (k != 50) h_put(h, k, now - 15000);
    if (k == 53) cr_assert_eq(h_put(h, 50, now - 1000), PARLEY__JITTER_DROP_LATE);
    h_get(h, now);
  }
  cr_expect_eq(h->played[50], 0);
  for (int k = 0; k < 100; k++) {
    if (k != 50) cr_assert_eq(h->played[k], 1, "frame %d", k);
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.late, 1u);
  cr_expect_eq(st.concealed, 1u, "frame 51 was not there yet at 50's tick: conceal, not FEC");
  h_free(h);
}

Test(jitter, seq_and_timestamp_wrap) {
  harness *h = h_new(NULL);
  h->seq0 = 65530;
  h->ts0 = UINT32_MAX - 3 * F + 1;
  run_stream(h, 0, 100, 5000, NULL, 0);
  for (int k = 0; k < 100; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.resyncs, 0u);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.late, 0u);
  h_free(h);
}

Test(jitter, timestamp_jump_resyncs) {
  harness *h = h_new(NULL);
  run_stream(h, 0, 50, 5000, NULL, 0);
  cr_assert_eq(h->played[49], 1);
  h->saw_reset = false;
  /* The sender's timestamps jump by ~208 s while sequence numbers and real time go on. */
  int64_t t0 = 50 * TICK;
  uint32_t jump = 10000000;
  int resumed = -1;
  for (int i = 0; i < 50; i++) {
    int64_t now = t0 + (int64_t)i * TICK;
    uint8_t p[8] = {0};
    int k = 50 + i;
    memcpy(p, &k, sizeof k);
    parley__jitter_put(h->j, (uint16_t)k, (uint32_t)k * F + jump, h->ssrc, false, p, sizeof p, now - 15000);
    parley__jitter_frame f;
    parley__jitter_get(h->j, now, &f);
    h->saw_reset |= f.reset;
    if (f.kind == PARLEY__JITTER_PACKET && resumed < 0) {
      resumed = i;
      cr_expect_eq(f.timestamp, (uint32_t)k * F + jump);
    }
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.resyncs, 1u);
  cr_expect(h->saw_reset);
  cr_expect(resumed >= 0 && resumed <= 2, "playback resumed after %d ticks", resumed);
  cr_expect_eq(st.packets_out, 100u);
  h_free(h);
}

Test(jitter, paused_timestamps_resync_after_a_late_run) {
  /* The sender stops for 1.5 s and resumes with timestamps that did not advance: to the buffer every
   * packet is 1.5 s late. That is below the jump threshold, so the run of late packets must do it. */
  harness *h = h_new(NULL);
  run_stream(h, 0, 50, 5000, NULL, 0);
  int64_t pause_us = 1500000;
  for (int64_t now = 51 * TICK; now < 50 * TICK + pause_us; now += TICK) h_get(h, now);
  for (int k = 50; k < 250; k++) {
    int64_t now = (int64_t)k * TICK + pause_us;
    h_put(h, k, now - 15000);
    h_get(h, now);
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.resyncs, 1u);
  cr_expect(st.late >= 10 && st.late <= 60, "late %llu", (unsigned long long)st.late);
  for (int k = 150; k < 249; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  h_free(h);
}

Test(jitter, ssrc_change_resets) {
  harness *h = h_new(NULL);
  run_stream(h, 0, 30, 5000, NULL, 0);
  h->saw_reset = false;
  parley__jitter_frame f;
  int played_new = 0;
  for (int i = 0; i < 30; i++) {
    int64_t now = (int64_t)(30 + i) * TICK;
    uint8_t p[8] = {9};
    parley__jitter_put(h->j, (uint16_t)(777 + i), 123456u + (uint32_t)i * F, 0x55, false, p, sizeof p, now - 15000);
    parley__jitter_get(h->j, now, &f);
    if (i == 0) cr_expect(f.reset);
    if (f.kind == PARLEY__JITTER_PACKET) {
      cr_expect_eq(f.ssrc, 0x55u);
      cr_expect_eq(f.seq, (uint16_t)(777 + played_new));
      played_new++;
    }
  }
  cr_expect_eq(played_new, 30);
  cr_expect_eq(h_stats(h).ssrc_changes, 1u);
  h_free(h);
}

Test(jitter, dtx_gap_with_next_packet_buffered_is_silence) {
  /* A 300 ms floor: the packet after a 200 ms DTX gap is buffered before the gap starts playing. */
  parley__jitter_config c = {.min_delay_ms = 300};
  harness *h = h_new(&c);
  /* Frames 0..29 talk; then the sender is quiet for 10 frames: the next sequence number (seq0 + 30)
   * carries frame 40's timestamp, and talk goes on from there. Each arrives 5 ms after sending. */
  int e = 0;
  for (int t = 0; t < 80; t++) {
    int64_t now = (int64_t)t * TICK;
    for (; e < 60; e++) {
      int frame = e < 30 ? e : e + 10;
      int64_t at = (int64_t)frame * TICK + 5000;
      if (at > now) break;
      uint8_t p[8] = {0};
      memcpy(p, &frame, sizeof frame);
      cr_assert_eq(parley__jitter_put(h->j, (uint16_t)e, (uint32_t)frame * F, h->ssrc, e == 30, p, sizeof p, at), 0);
    }
    parley__jitter_get(h->j, now, &h->f);
    h->n_kind[h->f.kind]++;
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.silence, 10u);
  cr_expect_eq(h->n_kind[PARLEY__JITTER_SILENCE], 10);
  cr_expect_eq(st.late, 0u);
  h_free(h);
}

Test(jitter, dtx_gap_in_real_time_is_silence_not_conceal) {
  harness *h = h_new(NULL);
  /* Talk 0..29, DTX with a keep-alive packet every 20 frames (seq consecutive, timestamps jump), talk
   * resumes. Each packet arrives 5 ms after it is sent: nothing is lost. */
  int sched[64], n = 0;
  for (int k = 0; k < 30; k++) sched[n++] = k;
  sched[n++] = 50;
  sched[n++] = 70;
  for (int k = 90; k < 110; k++) sched[n++] = k;
  int idx = 0, silence_after_sid = 0, conceal_after_sid = 0;
  bool sid_seen = false;
  for (int t = 0; t <= 110; t++) { /* the last frame (109) plays at tick 110 */
    int64_t now = (int64_t)t * TICK;
    while (idx < n && sched[idx] <= t - 1) {
      uint8_t p[8] = {0};
      memcpy(p, &sched[idx], sizeof(int));
      parley__jitter_put(h->j, (uint16_t)idx, (uint32_t)sched[idx] * F, h->ssrc, sched[idx] == 90, p, sizeof p,
                         (int64_t)sched[idx] * TICK + 5000);
      idx++;
    }
    parley__jitter_frame f;
    parley__jitter_get(h->j, now, &f);
    if (f.kind == PARLEY__JITTER_PACKET && f.seq == 30) sid_seen = true;
    if (sid_seen && f.timestamp < 90 * F) {
      silence_after_sid += f.kind == PARLEY__JITTER_SILENCE;
      conceal_after_sid += f.kind == PARLEY__JITTER_CONCEAL;
    }
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect(sid_seen);
  cr_expect_eq(conceal_after_sid, 0);
  cr_expect(silence_after_sid >= 35, "silence %d", silence_after_sid);
  /* The ticks before the first keep-alive arrived were handed out as PLC, but the consecutive sequence
   * number proves they were DTX: the statistics say so. */
  cr_expect_eq(st.concealed, 0u, "concealed %llu", (unsigned long long)st.concealed);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.packets_out, (uint64_t)n);
  h_free(h);
}

Test(jitter, single_loss_with_next_present_gives_fec) {
  parley__jitter_config c = {.min_delay_ms = 40};
  harness *h = h_new(&c);
  int fec_tick_ts = -1;
  for (int t = 0; t < 100; t++) {
    int64_t now = (int64_t)t * TICK;
    if (t != 20 && t != 60 && t != 61) h_put(h, t, now - 15000);
    parley__jitter_kind kind = h_get(h, now);
    if (kind == PARLEY__JITTER_FEC && fec_tick_ts < 0) fec_tick_ts = (int)(h->f.timestamp / F);
  }
  parley__jitter_stats st = h_stats(h);
  /* 20 alone: FEC from 21. 60 and 61: 60 conceals (62 is no use), 61 recovers from 62. */
  cr_expect_eq(fec_tick_ts, 20);
  cr_expect_eq(st.fec_recoveries, 2u);
  cr_expect_eq(st.concealed, 1u);
  cr_expect_eq(h->played[21], 1);
  cr_expect_eq(h->played[62], 1);
  h_free(h);
}

Test(jitter, delay_grows_on_jitter_and_shrinks_gradually) {
  harness *h = h_new(NULL);
  parley__impair_config calm = {.base_delay_us = 5000};
  parley__impair_config rough = {.base_delay_us = 5000, .jitter_sd_us = 30000};
  parley__impair *ic = parley__impair_new(&calm, 1, NULL), *ir = parley__impair_new(&rough, 2, NULL);
  cr_assert(ic && ir);
  /* 0-10 s calm, 10-30 s rough, 30-70 s calm. Arrivals are queued and fed in time order. */
  enum { N = 3500 };
  static int64_t at[N];
  for (int k = 0; k < N; k++) {
    parley__impair_verdict v;
    bool r = k >= 500 && k < 1500;
    parley__impair_packet(r ? ir : ic, (int64_t)k * TICK, 80, &v);
    at[k] = v.deliver_us[0];
  }
  double delay_at_start_rough = -1, max_delay = 0, prev = -1;
  int64_t shrink_prev = 0;
  for (int t = 0; t < N + 20; t++) {
    int64_t now = (int64_t)t * TICK;
    for (int k = t - 20 > 0 ? t - 20 : 0; k < N && k <= t; k++) {
      if (at[k] <= now && at[k] > now - TICK) h_put(h, k, at[k]);
    }
    h_get(h, now);
    parley__jitter_stats st = h_stats(h);
    if (t == 650) delay_at_start_rough = st.current_delay_ms;
    if (st.current_delay_ms > max_delay) max_delay = st.current_delay_ms;
    if (t > 1500 && prev >= 0) {
      /* Never shrinks by more than one frame per tick. */
      cr_assert(prev - st.current_delay_ms <= 20.0 + 1e-9, "t %d: %f -> %f", t, prev, st.current_delay_ms);
    }
    if (t >= 1500 && t < 1525) {
      /* Talk-time drops need the excess to persist: not in the first half second. */
      if (t == 1500) shrink_prev = (int64_t)st.shrink_drops;
      cr_assert_eq((int64_t)st.shrink_drops, shrink_prev);
    }
    prev = st.current_delay_ms;
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect(delay_at_start_rough >= 40.0, "grew to only %f ms within 3 s", delay_at_start_rough);
  cr_expect(max_delay >= 80.0, "max %f", max_delay);
  cr_expect(st.current_delay_ms < 20.0, "back to %f ms after 40 s calm", st.current_delay_ms);
  /* Shrinking from ~100 ms to 0 by dropping frames at most every 500 ms, so it took >= 2 s, and the
   * drops are bounded by the interval over 40 s. */
  cr_expect(st.shrink_drops >= 3 && st.shrink_drops <= 80, "drops %llu", (unsigned long long)st.shrink_drops);
  parley__impair_free(ic);
  parley__impair_free(ir);
  h_free(h);
}

/* The property tests' network: n_packets packets through a seeded mix of jitter, loss, reordering,
 * duplication, bursts and a spike chosen by the seed; fills evs (room for 2 * n_packets) with their
 * deliveries sorted by time and returns how many there are. */
static int random_arrivals(uint64_t seed, int n_packets, ev *evs) {
  parley__impair_config c = {.base_delay_us = 20000,
                             .jitter_sd_us = (int64_t)(seed % 5) * 10000,
                             .loss_pct = (double)(seed % 4),
                             .reorder_pct = (double)(seed % 3) * 3,
                             .reorder_hold_us = 45000,
                             .dup_pct = (double)(seed % 2) * 5,
                             .dup_gap_us = 7000,
                             .ge_enabled = seed % 7 == 0,
                             .n_spikes = 1,
                             .spikes = {{.start_us = 10000000, .peak_us = (int64_t)(seed % 4) * 100000}}};
  if (c.ge_enabled) parley__impair_ge_from_mean(3.0, 3.0, &c.ge);
  parley__impair *im = parley__impair_new(&c, seed, NULL);
  cr_assert_not_null(im);
  int n = 0;
  for (int k = 0; k < n_packets; k++) {
    parley__impair_verdict v;
    int d = parley__impair_packet(im, (int64_t)k * TICK + (int64_t)(seed * 1237 % TICK), 80, &v);
    for (int i = 0; i < d; i++) evs[n++] = (ev){v.deliver_us[i], k};
  }
  parley__impair_free(im);
  qsort(evs, (size_t)n, sizeof *evs, cmp_ev);
  return n;
}

Test(jitter, random_networks_never_play_twice_or_out_of_order) {
  enum { N = 1500, SEEDS = 150 };
  static ev evs[2 * N];
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    int n = random_arrivals(seed, N, evs);
    harness *h = h_new(NULL);
    h->seq0 = (uint16_t)(seed * 4099);
    h->ts0 = (uint32_t)(seed * 2654435761u);
    int e = 0;
    uint32_t last_out_ts = 0;
    bool have_out = false;
    for (int t = 0; t < N + 100; t++) {
      int64_t now = (int64_t)t * TICK;
      for (; e < n && evs[e].t <= now; e++) h_put(h, evs[e].k, evs[e].t);
      parley__jitter_kind kind = h_get(h, now);
      if (kind != PARLEY__JITTER_NOTHING) {
        /* Handed-out timestamps never go backwards (a hold repeats one). */
        if (have_out) cr_assert((int32_t)(h->f.timestamp - last_out_ts) >= 0, "seed %llu", (unsigned long long)seed);
        last_out_ts = h->f.timestamp;
        have_out = true;
      }
    }
    parley__jitter_stats st = h_stats(h);
    cr_assert_eq(st.resyncs, 0u);
    cr_assert(st.packets_out > N / 2, "seed %llu played %llu", (unsigned long long)seed, (unsigned long long)st.packets_out);
    h_free(h);
  }
}

Test(jitter, bad_arguments_rejected) {
  int err = 0;
  parley__jitter_config bad[] = {
      {.capacity_packets = 2}, {.late_target_pct = 60}, {.late_target_pct = -1}, {.window_packets = 5000},
      {.frame_samples = 96000}, {.min_delay_ms = 500, .max_delay_ms = 100}, {.max_payload_bytes = 100000},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_expect_null(parley__jitter_new(&bad[i], &err), "config %zu", i);
    cr_expect_eq(err, PARLEY_EINVAL);
  }
  parley__jitter *j = parley__jitter_new(NULL, &err);
  cr_assert_not_null(j);
  uint8_t big[1501] = {0};
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, big, sizeof big, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, big, 0, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, NULL, 10, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(NULL, 1, 1, 1, false, big, 10, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_get(j, 0, NULL), PARLEY_EINVAL);
  parley__jitter_frame f;
  cr_expect_eq(parley__jitter_get(j, 0, &f), 0);
  cr_expect_eq(f.kind, PARLEY__JITTER_NOTHING);
  parley__jitter_free(j);
  parley__jitter_free(NULL);
}

Test(jitter, garbage_input_is_survived) {
  /* Random sequence numbers, timestamps, SSRCs and arrival times: no crash (run under ASan), and the
   * accounting stays sane. */
  parley__jitter_config c = {.capacity_packets = 16, .window_packets = 32};
  parley__jitter *j = parley__jitter_new(&c, NULL);
  cr_assert_not_null(j);
  uint64_t x = 88172645463325252ull;
  int64_t now = 0;
  uint8_t p[1500];
  memset(p, 0x5a, sizeof p);
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    now += (int64_t)(x % 25000);
    uint16_t seq = (uint16_t)(x >> 16);
    uint32_t ts = (uint32_t)(x >> 32);
    if (x % 3) { /* mostly near-sane streams */
      seq = (uint16_t)(i / 2 + (x % 5));
      ts = (uint32_t)(i / 2) * F + (uint32_t)(x % 7) * F;
    }
    int rc = parley__jitter_put(j, seq, ts, (uint32_t)(x % 3), (x >> 8) & 1, p, 1 + (size_t)(x % 1500), now);
    cr_assert(rc >= 0 && rc <= PARLEY__JITTER_DROP_OVERFLOW);
    parley__jitter_frame f;
    cr_assert_eq(parley__jitter_get(j, now, &f), 0);
    if (f.kind == PARLEY__JITTER_PACKET || f.kind == PARLEY__JITTER_FEC) {
      cr_assert(f.payload_bytes >= 1 && f.payload_bytes <= 1500);
      cr_assert_eq(f.payload[0], 0x5a);
    }
  }
  parley__jitter_stats st;
  parley__jitter_get_stats(j, &st);
  cr_assert(st.packets_out <= st.packets_in);
  parley__jitter_reset(j);
  parley__jitter_free(j);
}

/* ---- timescaled playout on a 10 ms device clock ---- */

#define DTICK 10000 /* us */
#define DTICK_S 480u

typedef struct ts_play {
  int64_t queued;          /* samples decoded and not yet played */
  int64_t removed, added;  /* samples the time-scaling took out / put in */
  int64_t play_us[MAXF];   /* first-sample play time of each frame, -1 if never played */
  int fec[MAXF];           /* times frame k was recovered from the next packet's FEC */
  int64_t max_cut;         /* largest accelerate request, samples */
} ts_play;

static ts_play *tp_new(void) {
  ts_play *p = calloc(1, sizeof *p);
  cr_assert_not_null(p);
  for (int k = 0; k < MAXF; k++) p->play_us[k] = -1;
  return p;
}

/* One device tick as the receive chain does it: ask until a tick's worth is queued, then play one
 * tick. Time-scaling is modelled as carried out in full (a pitch lag as long as the request). */
static void ts_tick(harness *h, ts_play *p, int64_t now_us) {
  for (int guard = 0; p->queued < DTICK_S; guard++) {
    cr_assert(guard < 64, "get_timescaled made no progress");
    cr_assert_eq(parley__jitter_get_timescaled(h->j, now_us, (uint32_t)p->queued, &h->f), 0);
    cr_assert(h->f.out_samples >= 1 && h->f.out_samples <= F, "out_samples %u", h->f.out_samples);
    parley__jitter_kind kind = h_check(h);
    int64_t len = h->f.out_samples;
    if (kind == PARLEY__JITTER_PACKET) {
      int k;
      memcpy(&k, h->f.payload, sizeof k);
      /* Accelerate up to 3/4 of a frame (far above target), stretch up to half. */
      cr_assert(h->f.timescale_samples >= -(int32_t)(3 * F / 4) && h->f.timescale_samples <= (int32_t)F / 2,
                "timescale_samples %d", h->f.timescale_samples);
      p->play_us[k] = now_us + p->queued * 1000000 / 48000;
      len += h->f.timescale_samples;
      if (h->f.timescale_samples < 0) p->removed -= h->f.timescale_samples;
      else p->added += h->f.timescale_samples;
      if (-h->f.timescale_samples > p->max_cut) p->max_cut = -h->f.timescale_samples;
    } else if (kind == PARLEY__JITTER_FEC) {
      int k;
      memcpy(&k, h->f.payload, sizeof k);
      p->fec[k - 1]++;
      cr_assert_eq(h->f.timescale_samples, 0);
    } else {
      cr_assert_eq(h->f.timescale_samples, 0);
    }
    p->queued += len;
  }
  p->queued -= DTICK_S;
}

/* Frames [0, n) sent every 20 ms, frame k arriving at k * TICK + offset + extra[k]; device ticks every
 * 10 ms until extra_ms after the last send. Returns the arrival times in arr. */
static void ts_stream(harness *h, ts_play *p, int n, int64_t offset_us, const int64_t *extra_us, int64_t *arr) {
  static ev evs[MAXF];
  for (int k = 0; k < n; k++) {
    arr[k] = (int64_t)k * TICK + offset_us + (extra_us ? extra_us[k] : 0);
    evs[k] = (ev){arr[k], k};
  }
  qsort(evs, (size_t)n, sizeof *evs, cmp_ev);
  int e = 0;
  for (int64_t now = 0; now <= (int64_t)n * TICK + 1000000; now += DTICK) {
    for (; e < n && evs[e].t <= now; e++) h_put(h, evs[e].k, evs[e].t);
    ts_tick(h, p, now);
  }
}

Test(jitter, timescaled_plays_on_the_first_10ms_tick_after_arrival) {
  /* Arrivals 7.3 ms past each 20 ms boundary: whole frames on 20 ms ticks wait 12.7 ms; on a 10 ms
   * device clock the frame can start 2.7 ms after it arrives. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF];
  ts_stream(h, p, 500, 47300, NULL, arr);
  for (int k = 0; k < 500; k++) {
    cr_assert_eq(h->played[k], 1, "frame %d", k);
    int64_t delay = p->play_us[k] - arr[k];
    cr_assert(delay >= 0 && delay < DTICK, "frame %d delay %lld us", k, (long long)delay);
    if (k >= 5) cr_assert_eq(delay, 2700, "frame %d delay %lld us", k, (long long)delay);
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.accelerated + st.stretched, 0u, "a steady stream needs no time-scaling");
  /* The run ends with a second of waiting (EXPAND) past the last frame: the reported delay is still
   * the last played frame's (2.7 ms and a tick queued at most), not the growing wait. */
  cr_expect_gt(st.expands, 50u);
  cr_expect_lt(st.current_delay_ms, 15.0, "current delay %.1f ms", st.current_delay_ms);
  free(p);
  h_free(h);
}

Test(jitter, timescaled_late_packet_is_played_after_expand_not_lost) {
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF], extra[MAXF];
  /* Frame 200 is 30 ms late, 201 10 ms (they land together); nothing later is here meanwhile. */
  extra[200] = 30000;
  extra[201] = 10000;
  ts_stream(h, p, 400, 47300, extra, arr);
  for (int k = 0; k < 400; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_geq(st.expands, 3u, "30 ms of waiting on a 10 ms clock");
  cr_expect_eq(st.played_after_expand, 1u);
  cr_expect_leq(p->play_us[200] - arr[200], DTICK, "played at the first tick after it came");
  /* The 30 ms gained are shed again by accelerate within a second. */
  cr_expect_gt(st.accelerated, 0u);
  cr_expect_eq(p->play_us[300] - arr[300], 2700, "back at the floor: %lld us", (long long)(p->play_us[300] - arr[300]));
  free(p);
  h_free(h);
}

Test(jitter, timescaled_waits_for_reordered_packets_the_window_has_seen) {
  /* Every 25th frame is held 25 ms (behind its successor): 4 % of the window, above the low target's
   * 5 % quantile but within the wait limit's 1 %, so each held frame is waited for with EXPAND and
   * played, none lost. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF], extra[MAXF];
  for (int k = 5; k < 1000; k += 25) extra[k] = 25000;
  ts_stream(h, p, 1000, 47300, extra, arr);
  int lost = 0;
  for (int k = 0; k < 1000; k++) lost += h->played[k] != 1;
  parley__jitter_stats st = h_stats(h);
  cr_expect_leq(lost, 2, "%d frames never played (late %llu)", lost, (unsigned long long)st.late);
  cr_expect_geq(st.played_after_expand, 36u);
  free(p);
  h_free(h);
}

Test(jitter, timescaled_accelerate_sheds_a_spike_during_talk) {
  /* A 300 ms stall: frames 400..414 all arrive together at the end. Everything is waited for and
   * played; the delay the stall built is then removed by accelerating talk, no frame dropped. The
   * stall comes after 8 s of steady talk, so its 15 packets are 3 % of the transit window: under the
   * low target's 5 %, which it must not move. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF], extra[MAXF];
  for (int k = 400; k < 415; k++) extra[k] = 300000 - (int64_t)(k - 400) * TICK;
  ts_stream(h, p, 700, 47300, extra, arr);
  for (int k = 0; k < 700; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.shrink_drops, 0u);
  cr_expect_eq(st.silence, 0u, "talk throughout");
  /* The backlog lands at once and plays one frame after another, each cut to no less than a quarter
   * (5 ms): its last frame waits for the 14 before it. */
  cr_expect_geq(p->play_us[414] - arr[414], 14 * 5000 - DTICK, "the backlog's last frame waited %lld us",
                (long long)(p->play_us[414] - arr[414]));
  /* About 300 ms was expanded, and all of it is taken out again, faster than half a frame per frame
   * while far above target. */
  cr_expect_geq(p->removed, 48 * 250, "removed %lld samples", (long long)p->removed);
  cr_expect_gt(p->max_cut, (int64_t)F / 2, "largest cut %lld samples", (long long)p->max_cut);
  cr_expect_eq(p->play_us[550] - arr[550], 2700, "back at the floor 2.7 s later: %lld us",
               (long long)(p->play_us[550] - arr[550]));
  free(p);
  h_free(h);
}

static bool always_fec(const uint8_t *payload, size_t bytes) {
  (void)payload;
  return bytes > 0;
}

/* Frames arrive in pairs (frame 2i with 2i + 1), so the low target sits at the pairs' arrival and the
 * next frame is always here when a frame is decided; every 100th pair comes 30 ms later still (2 % of the
 * window: the wait limit covers them). Frames 200, 400, 600 and 800 are lost. */
static void fec_stream(harness *h, ts_play *p, int64_t *arr) {
  enum { N = 1000 };
  static int64_t extra[MAXF];
  memset(extra, 0, sizeof extra);
  for (int k = 50; k < N; k += 100) extra[k] = extra[k + 1] = 30000;
  static ev evs[MAXF];
  int n = 0;
  for (int k = 0; k < N; k++) {
    arr[k] = (int64_t)(k | 1) * TICK + 47300 + extra[k];
    if (k % 200 != 0 || k == 0) evs[n++] = (ev){arr[k], k};
  }
  qsort(evs, (size_t)n, sizeof *evs, cmp_ev);
  int e = 0;
  for (int64_t now = 0; now <= (int64_t)N * TICK + 500000; now += DTICK) {
    for (; e < n && evs[e].t <= now; e++) h_put(h, evs[e].k, evs[e].t);
    ts_tick(h, p, now);
  }
}

Test(jitter, timescaled_lost_frame_with_fec_next_is_recovered_without_waiting) {
  static int64_t arr[MAXF];
  parley__jitter_config with = {.has_fec = always_fec};
  harness *hf = h_new(&with), *hn = h_new(NULL);
  ts_play *pf = tp_new(), *pn = tp_new();
  fec_stream(hf, pf, arr);
  fec_stream(hn, pn, arr);
  parley__jitter_stats sf = h_stats(hf), sn = h_stats(hn);
  for (int k = 200; k < 1000; k += 200) {
    /* With FEC in the next packet the lost frame is rebuilt from it at once, and the next frame plays
     * right after it: one frame and a tick's wait after it came, at most. */
    cr_expect_eq(pf->fec[k], 1, "frame %d recovered %d times", k, pf->fec[k]);
    int64_t df = pf->play_us[k + 1] - arr[k + 1];
    cr_expect_leq(df, TICK + DTICK, "frame %d plays %lld us after it came", k + 1, (long long)df);
    /* Without, the buffer waits up to the wait limit (30 ms above) before giving the frame up. */
    int64_t dn = pn->play_us[k + 1] - arr[k + 1];
    cr_expect_gt(dn, df, "frame %d: %lld us without FEC vs %lld with", k + 1, (long long)dn, (long long)df);
  }
  cr_expect_lt(sf.expand_samples, sn.expand_samples, "expanded %llu with FEC vs %llu without",
               (unsigned long long)sf.expand_samples, (unsigned long long)sn.expand_samples);
  /* The held pairs are still waited for and played in both. */
  for (int k = 50; k < 1000; k += 100) {
    cr_expect_eq(hf->played[k], 1, "held frame %d", k);
    cr_expect_eq(hn->played[k], 1, "held frame %d", k);
  }
  free(pf);
  free(pn);
  h_free(hf);
  h_free(hn);
}

Test(jitter, timescaled_random_networks_never_play_twice_or_out_of_order) {
  enum { N = 1500, SEEDS = 60 };
  static ev evs[2 * N];
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    int n = random_arrivals(seed, N, evs);
    harness *h = h_new(NULL);
    h->seq0 = (uint16_t)(seed * 4099);
    h->ts0 = (uint32_t)(seed * 2654435761u);
    ts_play *p = tp_new();
    int e = 0;
    for (int64_t now = 0; now < (int64_t)(N + 100) * TICK; now += DTICK) {
      for (; e < n && evs[e].t <= now; e++) h_put(h, evs[e].k, evs[e].t);
      ts_tick(h, p, now); /* h_check asserts once-only and in order */
      cr_assert(p->queued >= 0 && p->queued < (int64_t)(F + F / 2), "queue %lld", (long long)p->queued);
    }
    parley__jitter_stats st = h_stats(h);
    cr_assert_eq(st.resyncs, 0u);
    cr_assert(st.packets_out > N / 2, "seed %llu played %llu", (unsigned long long)seed, (unsigned long long)st.packets_out);
    free(p);
    h_free(h);
  }
}

Test(jitter, timescaled_bad_arguments_rejected) {
  parley__jitter_config bad[] = {{.accel_target_pct = 0.5, .wait_late_pct = 1.0}, {.wait_late_pct = 60},
                                 {.tick_samples = 2000}, {.accel_target_pct = 70}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int err = 0;
    cr_expect_null(parley__jitter_new(&bad[i], &err), "config %zu", i);
    cr_expect_eq(err, PARLEY_EINVAL);
  }
  parley__jitter *j = parley__jitter_new(NULL, NULL);
  parley__jitter_frame f;
  cr_expect_eq(parley__jitter_get_timescaled(NULL, 0, 0, &f), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_get_timescaled(j, 0, 0, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_get_timescaled(j, 0, 100, &f), 0);
  cr_expect_eq(f.kind, PARLEY__JITTER_NOTHING);
  cr_expect_eq(f.out_samples, 380u, "nothing yet: fill the tick");
  parley__jitter_free(j);
}

Test(jitter, timescaled_dtx_silence_is_cut_not_talk) {
  /* After 8 s of talk (so the stall's packets stay under the low target's share of the window), a
   * 200 ms stall builds delay right before the talker stops. The sender then goes into DTX for 1 s:
   * an update packet every 400 ms (frames 420 and 440, consecutive sequence numbers, timestamp gaps),
   * then talk again at frame 450. The excess goes from the silence, not the talk: only the stalled
   * frames themselves are accelerated, the pause is played shorter than sent, and the first packet
   * after it plays at the floor. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int seq_of[MAXF];
  static ev evs[MAXF];
  int n = 0;
  for (int k = 0; k < 550; k++) {
    seq_of[k] = k < 400 ? k : k == 420 ? 400 : k == 440 ? 401 : k - 48;
    if (k >= 400 && k < 450 && k != 420 && k != 440) continue;
    int64_t extra = k >= 390 && k < 400 ? 200000 - (int64_t)(k - 390) * TICK : 0;
    evs[n++] = (ev){(int64_t)k * TICK + 47300 + extra, k};
  }
  h->seq_of = seq_of;
  qsort(evs, (size_t)n, sizeof *evs, cmp_ev);
  int e = 0;
  for (int64_t now = 0; now <= 560 * TICK; now += DTICK) {
    for (; e < n && evs[e].t <= now; e++) {
      int k = evs[e].k;
      uint8_t pl[8] = {0};
      memcpy(pl, &k, sizeof k);
      parley__jitter_put(h->j, (uint16_t)(h->seq0 + seq_of[k]), h->ts0 + (uint32_t)k * F, h->ssrc, k == 450, pl,
                         sizeof pl, evs[e].t);
    }
    ts_tick(h, p, now);
  }
  parley__jitter_stats st = h_stats(h);
  for (int k = 0; k < 550; k++) {
    if (k < 400 || k >= 450 || k == 420 || k == 440) cr_assert_eq(h->played[k], 1, "frame %d", k);
  }
  cr_expect_eq(st.late, 0u);
  cr_expect_leq(st.accelerated, 10u, "talk after the stall was not accelerated: %llu", (unsigned long long)st.accelerated);
  cr_expect_gt(st.silence, 10u);
  /* Frame 399 still plays late (the stall minus what accelerating the backlog took), frame 450 at the
   * floor: the pause between them played that much shorter than the 1.02 s it spans. */
  int64_t late399 = p->play_us[399] - (399 * TICK + 47300);
  cr_expect_gt(late399, 50000, "frame 399 plays %lld us after its nominal arrival", (long long)late399);
  cr_expect_leq(p->play_us[450] - p->play_us[399], 51 * TICK - late399 + 2700, "pause played for %lld us",
                (long long)(p->play_us[450] - p->play_us[399]));
  cr_expect_eq(p->play_us[450] - (450 * TICK + 47300), 2700, "after the pause: %lld us",
               (long long)(p->play_us[450] - (450 * TICK + 47300)));
  free(p);
  h_free(h);
}

Test(jitter, timescaled_pause_without_updates_resumes_at_the_floor) {
  /* The sender stops for 1 s with no DTX updates at all: until a packet shows the gap was a pause,
   * the buffer waits (expands, as for a stall); the first packet after it must not inherit that wait. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int seq_of[MAXF];
  static ev evs[MAXF];
  int n = 0;
  for (int k = 0; k < 250; k++) {
    seq_of[k] = k < 100 ? k : k - 50;
    if (k < 100 || k >= 150) evs[n++] = (ev){(int64_t)k * TICK + 47300, k};
  }
  h->seq_of = seq_of;
  int e = 0;
  for (int64_t now = 0; now <= 260 * TICK; now += DTICK) {
    for (; e < n && evs[e].t <= now; e++) {
      int k = evs[e].k;
      uint8_t pl[8] = {0};
      memcpy(pl, &k, sizeof k);
      parley__jitter_put(h->j, (uint16_t)(h->seq0 + seq_of[k]), h->ts0 + (uint32_t)k * F, h->ssrc, k == 150, pl,
                         sizeof pl, evs[e].t);
    }
    ts_tick(h, p, now);
  }
  for (int k = 0; k < 250; k++) {
    if (k < 100 || k >= 150) cr_assert_eq(h->played[k], 1, "frame %d", k);
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.late, 0u);
  cr_expect_eq(st.accelerated, 0u);
  cr_expect_eq(p->play_us[150] - (150 * TICK + 47300), 2700, "after the pause: %lld us",
               (long long)(p->play_us[150] - (150 * TICK + 47300)));
  free(p);
  h_free(h);
}

Test(jitter, timescaled_dtx_pause_counts_as_silence_not_expand) {
  /* Talk 0..99, then a 140 ms DTX pause: the next sequence number carries frame 107's timestamp and
   * the marker (talk resumes), as Opus DTX does between words. Every packet arrives 47.3 ms after it is
   * sent: nothing is late or lost. Until frame 107 arrives the buffer cannot tell the pause from a
   * stall and waits by expansion; once it arrives, the consecutive sequence number proves the gap was
   * DTX, so the wait is counted as the silence it was, as whole-frame playout recounts its PLC. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int seq_of[MAXF];
  static ev evs[MAXF];
  int n = 0;
  for (int k = 0; k < 200; k++) {
    seq_of[k] = k < 100 ? k : k - 7;
    if (k < 100 || k >= 107) evs[n++] = (ev){(int64_t)k * TICK + 47300, k};
  }
  h->seq_of = seq_of;
  int e = 0, handed_out_expand = 0;
  /* Up to the last frame: after it the stream has ended and the waiting is for good. */
  for (int64_t now = 0; now <= 210 * TICK && h->last_played < 199; now += DTICK) {
    for (; e < n && evs[e].t <= now; e++) {
      int k = evs[e].k;
      uint8_t pl[8] = {0};
      memcpy(pl, &k, sizeof k);
      parley__jitter_put(h->j, (uint16_t)(h->seq0 + seq_of[k]), h->ts0 + (uint32_t)k * F, h->ssrc, k == 107, pl,
                         sizeof pl, evs[e].t);
    }
    int before = h->n_kind[PARLEY__JITTER_EXPAND];
    ts_tick(h, p, now);
    handed_out_expand += h->n_kind[PARLEY__JITTER_EXPAND] - before;
  }
  for (int k = 0; k < 200; k++) {
    if (k < 100 || k >= 107) cr_assert_eq(h->played[k], 1, "frame %d", k);
  }
  parley__jitter_stats st = h_stats(h);
  cr_expect_gt(handed_out_expand, 0, "the pause was waited for before it was known to be one");
  cr_expect_eq(st.expands, 0u, "expands %llu", (unsigned long long)st.expands);
  cr_expect_eq(st.expand_samples, 0u, "expand_samples %llu", (unsigned long long)st.expand_samples);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.late, 0u);
  /* The 7 frames the sender left out are silence, and nothing else is (talk throughout). */
  cr_expect_eq(st.silence, 7u, "silence %llu", (unsigned long long)st.silence);
  cr_expect_eq(p->play_us[107] - (107 * TICK + 47300), 2700, "after the pause: %lld us",
               (long long)(p->play_us[107] - (107 * TICK + 47300)));
  free(p);
  h_free(h);
}
