/* test_jitter.c: the adaptive jitter buffer in simulated time. Each packet's payload carries its frame
 * index, so what the buffer hands out can be checked against what was sent. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jitter.h"
#include "parley/parley.h"
#include "sim/impair.h"
#include "base/rng.h"

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

/* ---- playout on a 10 ms device clock, as the receive chain asks ---- */

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
    cr_assert(guard < 64, "get made no progress");
    cr_assert_eq(parley__jitter_get(h->j, now_us, (uint32_t)p->queued, &h->f), 0);
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

Test(jitter, plays_on_the_first_10ms_tick_after_arrival) {
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

Test(jitter, late_packet_is_played_after_expand_not_lost) {
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

Test(jitter, waits_for_reordered_packets_the_window_has_seen) {
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

Test(jitter, accelerate_sheds_a_spike_during_talk) {
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

Test(jitter, loss_after_a_spike_is_not_waited_for_the_spike_height) {
  /* A 200 ms stall after 8 s of talk (frames 400..409 land together, in order: 2.5 % of the window,
   * under the low target's 5 %), then frame 450 is lost. The stall's transits are the top 1 % of the
   * window, but none came after a later packet: once frame 451 is here nothing says 450 may still
   * come, so it is concealed and 451 plays at once instead of after ~100 ms of expansion. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF], extra[MAXF];
  for (int k = 400; k < 410; k++) extra[k] = 200000 - (int64_t)(k - 400) * TICK;
  extra[450] = 100000000; /* never arrives within the run */
  ts_stream(h, p, 600, 47300, extra, arr);
  for (int k = 0; k < 600; k++) cr_assert_eq(h->played[k], k != 450, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.late, 0u);
  cr_expect_leq(p->play_us[451] - arr[451], DTICK, "frame 451 waited %lld us", (long long)(p->play_us[451] - arr[451]));
  free(p);
  h_free(h);
}

static bool always_fec(const uint8_t *payload, size_t bytes) {
  (void)payload;
  return bytes > 0;
}

/* Frames arrive in pairs (frame 2i with 2i + 1), so the low target sits at the pairs' arrival and the
 * next frame is always here when a frame is decided; every 100th pair comes 30 ms later still (in
 * order: nothing later is here, so it is waited for), and frames 70, 120, 170, ... 10 ms alone, behind the
 * other frame of their pair (2 % of the window came after a later packet: the wait limit covers them,
 * where a buffer with FEC recovers them at once instead). Frames
 * 200, 400, 600 and 800 are lost. */
static void fec_stream(harness *h, ts_play *p, int64_t *arr) {
  enum { N = 1000 };
  static int64_t extra[MAXF];
  memset(extra, 0, sizeof extra);
  for (int k = 50; k < N; k += 100) {
    extra[k] = extra[k + 1] = 30000;
    extra[k + 20] = extra[k + 70] = 10000;
  }
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

Test(jitter, lost_frame_with_fec_next_is_recovered_without_waiting) {
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
    /* Without, the buffer waits (expands) for it up to the wait limit and conceals the rest of its
     * slot: the wait stands in for part of the frame, so the next frame plays no later for it. */
    int64_t dn = pn->play_us[k + 1] - arr[k + 1];
    cr_expect_leq(dn, TICK + DTICK, "frame %d plays %lld us after it came", k + 1, (long long)dn);
    cr_expect_eq(pn->fec[k], 0);
  }
  cr_expect_eq(sf.concealed, 0u);
  cr_expect_geq(sn.concealed, 4u);
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

Test(jitter, random_networks_never_play_twice_or_out_of_order) {
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

Test(jitter, bad_arguments_rejected) {
  parley__jitter_config bad[] = {{.accel_target_pct = 0.5, .wait_late_pct = 1.0}, {.wait_late_pct = 60},
                                 {.tick_samples = 60000}, {.accel_target_pct = 70}, {.capacity_packets = 2},
                                 {.window_packets = 5000}, {.frame_samples = 96000}, {.max_packet_samples = 96000},
                                 {.min_delay_ms = 500, .max_delay_ms = 100}, {.max_payload_bytes = 100000},
                                 {.clock_hz = 500}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int err = 0;
    cr_expect_null(parley__jitter_new(&bad[i], &err), "config %zu", i);
    cr_expect_eq(err, PARLEY_EINVAL);
  }
  parley__jitter *j = parley__jitter_new(NULL, NULL);
  cr_assert_not_null(j);
  uint8_t big[1501] = {0};
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, big, sizeof big, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, big, 0, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(j, 1, 1, 1, false, NULL, 10, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_put(NULL, 1, 1, 1, false, big, 10, 0), PARLEY_EINVAL);
  parley__jitter_frame f;
  cr_expect_eq(parley__jitter_get(NULL, 0, 0, &f), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_get(j, 0, 0, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__jitter_get(j, 0, 100, &f), 0);
  cr_expect_eq(f.kind, PARLEY__JITTER_NOTHING);
  cr_expect_eq(f.out_samples, 380u, "nothing yet: fill the tick");
  parley__jitter_free(j);
  parley__jitter_free(NULL);
}

Test(jitter, dtx_silence_is_cut_not_talk) {
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

Test(jitter, pause_without_updates_resumes_at_the_floor) {
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

Test(jitter, dtx_pause_counts_as_silence_not_expand) {
  /* Talk 0..99, then a 140 ms DTX pause: the next sequence number carries frame 107's timestamp and
   * the marker (talk resumes), as Opus DTX does between words. Every packet arrives 47.3 ms after it is
   * sent: nothing is late or lost. Until frame 107 arrives the buffer cannot tell the pause from a
   * stall and waits by expansion; once it arrives, the consecutive sequence number proves the gap was
   * DTX, so the wait is counted as the silence it was, as it recounts concealment. */
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
/* ---- a grid stream (20 ms packets) on a 10 ms device clock ---- */

Test(jitter, duplicates_dropped_and_counted) {
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  int dups = 0;
  for (int k = 0; k < 200; k++) {
    int64_t now = (int64_t)k * TICK;
    cr_assert_eq(h_put(h, k, now), 0);
    /* A copy right away (still buffered) and one of a frame played a tick or two ago. */
    if (k % 3 == 0) {
      cr_assert_eq(h_put(h, k, now), PARLEY__JITTER_DROP_DUPLICATE);
      dups++;
    }
    if (k % 5 == 1 && k >= 3) {
      cr_assert_eq(h_put(h, k - 3, now), PARLEY__JITTER_DROP_DUPLICATE);
      dups++;
    }
    ts_tick(h, p, now);
    ts_tick(h, p, now + DTICK);
  }
  for (int k = 0; k < 199; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  cr_expect_eq(h_stats(h).duplicates, (uint64_t)dups);
  cr_expect_eq(h_stats(h).packets_in, 200u);
  free(p);
  h_free(h);
}

Test(jitter, late_packet_counted_not_played) {
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  for (int k = 0; k < 100; k++) {
    int64_t now = (int64_t)k * TICK;
    if (k != 50) h_put(h, k, now);
    if (k == 53) cr_assert_eq(h_put(h, 50, now), PARLEY__JITTER_DROP_LATE);
    ts_tick(h, p, now);
    ts_tick(h, p, now + DTICK);
  }
  cr_expect_eq(h->played[50], 0);
  for (int k = 0; k < 99; k++) {
    if (k != 50) cr_assert_eq(h->played[k], 1, "frame %d", k);
  }
  cr_expect_eq(h_stats(h).late, 1u);
  free(p);
  h_free(h);
}

Test(jitter, seq_and_timestamp_wrap) {
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF];
  h->seq0 = 65530;
  h->ts0 = UINT32_MAX - 3 * F + 1;
  ts_stream(h, p, 100, 5000, NULL, arr);
  for (int k = 0; k < 100; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.resyncs, 0u);
  cr_expect_eq(st.concealed, 0u);
  cr_expect_eq(st.late, 0u);
  free(p);
  h_free(h);
}

/* Frames 0..99 every 20 ms, arriving 5 ms after they are sent; from frame 50 on the sender's
 * timestamps are offset by jump (its encoder restarted) while sequence numbers and real time go on.
 * Returns the ticks from frame 50's arrival to its play. */
static int64_t jump_stream(harness *h, ts_play *p, int64_t jump) {
  int64_t played50 = -1;
  for (int k = 0; k < 100; k++) {
    int64_t at = (int64_t)k * TICK + 5000;
    uint8_t pl[8] = {0};
    memcpy(pl, &k, sizeof k);
    uint32_t ts = h->ts0 + (uint32_t)((int64_t)k * F + (k >= 50 ? jump : 0));
    parley__jitter_put(h->j, (uint16_t)(h->seq0 + k), ts, h->ssrc, false, pl, sizeof pl, at);
    for (int64_t now = (int64_t)k * TICK + DTICK; now <= (int64_t)(k + 1) * TICK; now += DTICK) {
      cr_assert_eq(parley__jitter_get(h->j, now, (uint32_t)p->queued, &h->f), 0);
      int before = h->played[50];
      h->saw_reset |= h->f.reset;
      if (h->f.kind == PARLEY__JITTER_PACKET) {
        int got;
        memcpy(&got, h->f.payload, sizeof got);
        cr_assert_eq(h->played[got], 0, "frame %d played twice", got);
        h->played[got]++;
        if (got == 50 && before == 0) played50 = now - at;
      }
      p->queued += (int64_t)h->f.out_samples + h->f.timescale_samples - DTICK_S;
      if (p->queued < 0) p->queued = 0;
    }
  }
  return played50;
}

Test(jitter, timestamp_jumps_forward_or_back_resync_at_once) {
  /* Forward by ~208 s (transit far below anything seen), forward by 1 s, back by 5 s and back by
   * 30 ms (newer in sequence, older in time): each restarts the timeline at the jump, no packet is
   * dropped as late, and the first packet after the jump plays within two ticks. */
  const int64_t jumps[] = {10000000, 48000, -240000, -1440};
  for (size_t i = 0; i < sizeof jumps / sizeof jumps[0]; i++) {
    harness *h = h_new(NULL);
    ts_play *p = tp_new();
    h->ts0 = 1000000;
    int64_t wait = jump_stream(h, p, jumps[i]);
    parley__jitter_stats st = h_stats(h);
    cr_expect_eq(st.resyncs, 1u, "jump %lld: resyncs %llu", (long long)jumps[i], (unsigned long long)st.resyncs);
    cr_expect(h->saw_reset);
    cr_expect_eq(st.late, 0u, "jump %lld", (long long)jumps[i]);
    cr_expect(wait >= 0 && wait <= 2 * DTICK, "jump %lld: frame 50 played %lld us after it came",
              (long long)jumps[i], (long long)wait);
    for (int k = 0; k < 99; k++) cr_expect_eq(h->played[k], 1, "jump %lld: frame %d", (long long)jumps[i], k);
    free(p);
    h_free(h);
  }
}

Test(jitter, paused_timestamps_resync_after_a_late_run) {
  /* The sender stops for 1.5 s and resumes with timestamps that did not advance: to the buffer every
   * packet is 1.5 s late. That is below the jump threshold, so the run of late packets must do it. */
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  static int64_t arr[MAXF];
  ts_stream(h, p, 50, 5000, NULL, arr);
  int64_t pause_us = 1500000, t0 = 50 * TICK + 1000000 + DTICK; /* ts_stream ran a second past frame 49 */
  for (int k = 50; k < 250; k++) {
    int64_t at = (int64_t)k * TICK + pause_us + 5000;
    for (int64_t now = t0; now < at; now += DTICK) ts_tick(h, p, now);
    if (t0 < at) t0 = at - (at - t0) % DTICK + DTICK;
    h_put(h, k, at);
  }
  for (int i = 0; i < 20; i++, t0 += DTICK) ts_tick(h, p, t0);
  parley__jitter_stats st = h_stats(h);
  cr_expect_eq(st.resyncs, 1u);
  cr_expect(st.late >= 10 && st.late <= 60, "late %llu", (unsigned long long)st.late);
  for (int k = 150; k < 249; k++) cr_assert_eq(h->played[k], 1, "frame %d", k);
  free(p);
  h_free(h);
}

Test(jitter, ssrc_change_resets) {
  harness *h = h_new(NULL);
  ts_play *p = tp_new();
  for (int k = 0; k < 30; k++) {
    h_put(h, k, (int64_t)k * TICK);
    ts_tick(h, p, (int64_t)k * TICK);
    ts_tick(h, p, (int64_t)k * TICK + DTICK);
  }
  int played_new = 0;
  bool reset_seen = false;
  for (int i = 0; i < 30; i++) {
    int64_t now = (int64_t)(30 + i) * TICK;
    uint8_t pl[8] = {9};
    parley__jitter_put(h->j, (uint16_t)(777 + i), 123456u + (uint32_t)i * F, 0x55, false, pl, sizeof pl, now);
    for (int t = 0; t < 2; t++) {
      parley__jitter_frame f;
      cr_assert_eq(parley__jitter_get(h->j, now + t * DTICK, (uint32_t)p->queued, &f), 0);
      reset_seen |= f.reset;
      if (f.kind == PARLEY__JITTER_PACKET && f.ssrc == 0x55u) {
        cr_expect(reset_seen, "the decoder is reset before the new stream's first packet");
        cr_expect_eq(f.seq, (uint16_t)(777 + played_new));
        played_new++;
      }
      p->queued += (int64_t)f.out_samples + f.timescale_samples - DTICK_S;
      if (p->queued < 0) p->queued = 0;
    }
  }
  cr_expect_geq(played_new, 29);
  cr_expect_eq(h_stats(h).ssrc_changes, 1u);
  free(p);
  h_free(h);
}

/* ---- any timestamp grid and any packet duration (RFC 7587 streams that are not our own) ---- */

/* A packet of a variable-duration stream: its index and duration ride in the payload. */
typedef struct vpkt {
  int64_t ts;       /* offset from the stream's first timestamp */
  uint32_t dur;     /* samples at 48 kHz */
  uint16_t seq;     /* offset from the first sequence number */
  int64_t at_us;    /* arrival (a duplicate is a second entry) */
} vpkt;

static int payload_samples(const uint8_t *payload, size_t bytes) {
  uint32_t d;
  if (bytes < 8) return -1;
  memcpy(&d, payload + 4, sizeof d);
  return (int)d;
}

typedef struct vresult {
  parley__jitter_stats st;
  int sent, played, twice, out_of_order; /* sent: distinct packets that arrived */
  int64_t max_delay_us; /* largest arrival-to-play delay */
} vresult;

/* Plays pkts (n, sorted by arrival) on a device clock of tick_us: asks whenever less than a tick is
 * queued, as the receive chain does, with time-scaling carried out in full. */
static vresult vplay(const vpkt *pkts, int n, uint32_t ts0, uint16_t seq0, int64_t tick_us, int64_t end_us) {
  parley__jitter_config c = {.frame_samples = (uint32_t)(tick_us * 48 / 1000), .tick_samples = (uint32_t)(tick_us * 48 / 1000),
                             .packet_samples = payload_samples};
  int err = 1;
  parley__jitter *j = parley__jitter_new(&c, &err);
  cr_assert_not_null(j);
  /* Packets are identified by their sequence offset (send order): the payload carries it. */
  static int played[MAXF];
  static const vpkt *by_seq[MAXF];
  memset(played, 0, sizeof played);
  memset(by_seq, 0, sizeof by_seq);
  for (int i = 0; i < n; i++) by_seq[pkts[i].seq] = &pkts[i];
  int sent = 0;
  for (int i = 0; i < MAXF; i++) sent += by_seq[i] != NULL;
  vresult r = {0};
  int last = -1, e = 0;
  int64_t queued = 0, tick_s = tick_us * 48 / 1000;
  for (int64_t now = 0; now <= end_us; now += tick_us) {
    for (; e < n && pkts[e].at_us <= now; e++) {
      uint8_t pl[8];
      int id = pkts[e].seq;
      memcpy(pl, &id, 4);
      memcpy(pl + 4, &pkts[e].dur, 4);
      parley__jitter_put(j, (uint16_t)(seq0 + pkts[e].seq), ts0 + (uint32_t)pkts[e].ts, 0x77, false, pl, sizeof pl,
                         pkts[e].at_us);
    }
    for (int guard = 0; queued < tick_s; guard++) {
      cr_assert(guard < 64, "no progress");
      parley__jitter_frame f;
      cr_assert_eq(parley__jitter_get(j, now, (uint32_t)queued, &f), 0);
      cr_assert(f.out_samples >= 1 && f.out_samples <= 5760 + 120, "out_samples %u", f.out_samples);
      int64_t len = f.out_samples;
      if (f.kind == PARLEY__JITTER_PACKET) {
        int k;
        memcpy(&k, f.payload, sizeof k);
        cr_assert(k >= 0 && k < MAXF && by_seq[k]);
        cr_assert_eq(f.out_samples, by_seq[k]->dur);
        cr_assert_eq(f.timestamp, ts0 + (uint32_t)by_seq[k]->ts);
        if (played[k]++) r.twice++;
        if (k <= last) r.out_of_order++;
        last = k;
        r.played++;
        int64_t delay = now + queued * 1000000 / 48000 - by_seq[k]->at_us;
        if (delay > r.max_delay_us) r.max_delay_us = delay;
        len += f.timescale_samples;
      } else if (f.kind == PARLEY__JITTER_FEC) {
        cr_assert(f.span_samples >= f.out_samples);
      }
      queued += len;
    }
    queued -= tick_s;
  }
  parley__jitter_get_stats(j, &r.st);
  parley__jitter_free(j);
  r.sent = sent;
  return r;
}

static int cmp_vpkt(const void *a, const void *b) {
  const vpkt *x = a, *y = b;
  return x->at_us < y->at_us ? -1 : x->at_us > y->at_us;
}

Test(jitter, unaligned_sender_plays_every_packet) {
  /* GStreamer's opusenc: the first 20 ms packet's successor starts 13.5 ms later (the 6.5 ms
   * lookahead is clipped from the first frame), then every 20 ms. A buffer that plays only its own
   * frame grid plays one packet and drops the rest as late. On 10 and 20 ms device clocks, with
   * constant transit. */
  enum { N = 300 };
  static vpkt v[N];
  for (int k = 0; k < N; k++) {
    int64_t ts = k == 0 ? 0 : 648 + (int64_t)(k - 1) * 960;
    v[k] = (vpkt){ts, 960, (uint16_t)k, ts * 1000 / 48 + 7300};
  }
  for (int64_t tick = 10000; tick <= 20000; tick += 10000) {
    vresult r = vplay(v, N, 0x12345678u, 4321, tick, (int64_t)(N + 50) * TICK);
    cr_expect_eq(r.played, N, "tick %lld: played %d of %d", (long long)tick, r.played, N);
    cr_expect_eq(r.st.late, 0u);
    cr_expect_eq(r.st.concealed, 0u);
    cr_expect_eq(r.twice + r.out_of_order, 0);
    cr_expect_leq(r.max_delay_us, 2 * tick, "tick %lld: delay %lld us", (long long)tick, (long long)r.max_delay_us);
  }
}

Test(jitter, every_opus_duration_changing_mid_stream_plays) {
  /* 2.5, 5, 10, 20, 40, 60 and 120 ms packets (multi-frame 40..120 ms), in runs of 25 then switching,
   * sent in real time with constant transit: every packet plays once, in order, nothing late or
   * concealed, and the buffer waits no more than about a packet. */
  static const uint32_t durs[] = {120, 240, 480, 960, 1920, 2880, 5760, 960, 120, 2880, 480};
  enum { RUN = 25, NRUNS = sizeof durs / sizeof durs[0], N = RUN * NRUNS };
  static vpkt v[N];
  int64_t ts = 0;
  for (int k = 0; k < N; k++) {
    uint32_t d = durs[k / RUN];
    v[k] = (vpkt){ts, d, (uint16_t)k, (ts + d) * 1000 / 48 + 3100}; /* sent when its audio is complete */
    ts += d;
  }
  for (int64_t tick = 10000; tick <= 20000; tick += 10000) {
    vresult r = vplay(v, N, 7, 65000, tick, ts * 1000 / 48 + 1000000);
    cr_expect_eq(r.played, N, "tick %lld: played %d of %d", (long long)tick, r.played, N);
    cr_expect_eq(r.st.late, 0u);
    cr_expect_eq(r.st.concealed, 0u);
    cr_expect_eq(r.st.malformed, 0u);
    cr_expect_eq(r.twice + r.out_of_order, 0);
    cr_expect_leq(r.max_delay_us, 120000 + tick, "tick %lld: delay %lld us", (long long)tick,
                  (long long)r.max_delay_us);
  }
}

Test(jitter, durations_the_buffer_cannot_read_are_refused_and_counted) {
  parley__jitter_config c = {.packet_samples = payload_samples};
  parley__jitter *j = parley__jitter_new(&c, NULL);
  cr_assert_not_null(j);
  uint8_t pl[8] = {0};
  uint32_t d = 0;
  memcpy(pl + 4, &d, 4);
  cr_expect_eq(parley__jitter_put(j, 1, 0, 1, false, pl, sizeof pl, 0), PARLEY__JITTER_DROP_MALFORMED);
  d = 5761;
  memcpy(pl + 4, &d, 4);
  cr_expect_eq(parley__jitter_put(j, 1, 0, 1, false, pl, sizeof pl, 0), PARLEY__JITTER_DROP_MALFORMED);
  cr_expect_eq(parley__jitter_put(j, 1, 0, 1, false, pl, 4, 0), PARLEY__JITTER_DROP_MALFORMED);
  d = 480;
  memcpy(pl + 4, &d, 4);
  cr_expect_eq(parley__jitter_put(j, 1, 0, 1, false, pl, sizeof pl, 0), 0);
  parley__jitter_stats st;
  parley__jitter_get_stats(j, &st);
  cr_expect_eq(st.malformed, 3u);
  cr_expect_eq(st.packets_in, 1u);
  parley__jitter_free(j);
}

/* Property: random durations (any legal Opus duration, changing at random), random first timestamps
 * and sequence numbers, DTX gaps of random lengths that need not be whole packets, a short first frame
 * sometimes, and a random network. Never played twice or out of order; on a network that only delays
 * (no loss, no reordering, jitter within the window) every packet plays and none is late. */
Test(jitter, random_durations_offsets_and_networks) {
  static const uint32_t legal[] = {120, 240, 480, 960, 1920, 2880, 3840, 4800, 5760};
  enum { N = 600, SEEDS = 80 };
  static vpkt v[N];
  for (uint64_t seed = 1; seed <= SEEDS; seed++) {
    parley__rng rng;
    parley__rng_seed(&rng, seed);
    bool clean = seed % 2 == 0;
    parley__impair_config ic = {.base_delay_us = 20000,
                                .jitter_sd_us = clean ? 0 : (int64_t)(seed % 4) * 8000,
                                .loss_pct = clean ? 0 : (double)(seed % 5),
                                .reorder_pct = clean ? 0 : (double)(seed % 3) * 2,
                                .reorder_hold_us = 30000};
    parley__impair *im = parley__impair_new(&ic, seed, NULL);
    cr_assert_not_null(im);
    int64_t ts = 0, t_send = (int64_t)parley__rng_below(&rng, 20000);
    uint32_t d = legal[parley__rng_below(&rng, 9)];
    int n = 0;
    for (int k = 0; k < N; k++) {
      if (parley__rng_below(&rng, 10) == 0) d = legal[parley__rng_below(&rng, 9)];
      int64_t step = d;
      if (k == 0 && seed % 3 == 0) step = 648; /* a short first frame */
      if (parley__rng_below(&rng, 40) == 0) step += 1 + parley__rng_below(&rng, 48000); /* DTX of any length */
      parley__impair_verdict iv;
      int copies = parley__impair_packet(im, t_send, 80, &iv);
      for (int c = 0; c < copies && n < N; c++) v[n++] = (vpkt){ts, d, (uint16_t)k, iv.deliver_us[c]};
      ts += step;
      t_send += step * 1000 / 48;
      if (n == N) break;
    }
    parley__impair_free(im);
    qsort(v, (size_t)n, sizeof *v, cmp_vpkt);
    int64_t tick = seed % 4 == 1 ? 20000 : 10000;
    vresult r = vplay(v, n, (uint32_t)parley__rng_u64(&rng), (uint16_t)parley__rng_u64(&rng), tick,
                      t_send + 2000000);
    cr_assert_eq(r.twice, 0, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(r.out_of_order, 0, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(r.st.resyncs, 0u, "seed %llu", (unsigned long long)seed);
    if (clean) {
      cr_assert_eq(r.played, r.sent, "seed %llu: played %d of %d (late %llu)", (unsigned long long)seed, r.played, r.sent,
                   (unsigned long long)r.st.late);
      cr_assert_eq(r.st.late, 0u, "seed %llu", (unsigned long long)seed);
    } else {
      cr_assert(r.played > n * 8 / 10, "seed %llu: played %d of %d", (unsigned long long)seed, r.played, n);
    }
  }
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
    cr_assert(rc >= 0 && rc <= PARLEY__JITTER_DROP_MALFORMED);
    parley__jitter_frame f;
    cr_assert_eq(parley__jitter_get(j, now, (uint32_t)(x % 1000), &f), 0);
    cr_assert(f.out_samples >= 1);
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

