/* test_pipeline.c: the send and receive chains end to end in simulated time: speech survives a clean
 * and a lossy path, DTX silence is not concealment, and per-frame processing never allocates (counted
 * by interposing the allocator). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "parley/parley.h"
#include "tests/audio_helpers.h"
#include "sim/impair.h"

/* ---- allocation counter: every malloc-family call in the process goes through here ----
 * Under sanitizers (AI_SANITIZED) there is no counter and the no-allocation test is skipped; the plain
 * build (make test) runs it. */
#include "tests/alloc_interpose.h"
#ifndef AI_SANITIZED
static atomic_long alloc_calls;
static atomic_bool counting;

static bool ai_fail(void *caller) {
  (void)caller;
  if (atomic_load(&counting)) atomic_fetch_add(&alloc_calls, 1);
  return false;
}
static void ai_made(void *p, void *caller) {
  (void)p;
  (void)caller;
}
static void ai_freed(void *p) {
  (void)p;
  if (atomic_load(&counting)) atomic_fetch_add(&alloc_calls, 1);
}
#endif

/* ---- a call in one direction over a simulated path ---- */
#define MAX_FLIGHT 256
typedef struct flight {
  int64_t deliver_us;
  parley__send_packet pkt;
  uint16_t seq;
} flight;

typedef struct path {
  parley__send_chain *send;
  parley__recv_chain *recv;
  parley__impair *net; /* NULL: fixed 30 ms delay, no loss */
  flight *air;         /* packets in flight (preallocated) */
  int n_air;
  uint16_t seq;
  uint64_t sent, lost, markers;
} path;

/* recv_frame_ms > 0: the receive chain runs on its own device clock of recv_frame_ms (packets stay
 * frame_ms long); 0: on frame_ms. */
static void path_init2(path *p, int device_rate_hz, int frame_ms, int recv_frame_ms,
                       const parley__impair_config *ic, bool low_delay) {
  memset(p, 0, sizeof *p);
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.device_rate_hz = device_rate_hz;
  sc.frame_ms = frame_ms;
  sc.opus.expected_loss_pct = 20;
  sc.opus.low_delay = low_delay;
  int err = 0;
  p->send = parley__send_chain_new(&sc, &err);
  cr_assert_not_null(p->send, "send chain: %s", parley_strerror(err));
  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.device_rate_hz = device_rate_hz;
  rc.frame_ms = recv_frame_ms > 0 ? recv_frame_ms : frame_ms;
  p->recv = parley__recv_chain_new(&rc, &err);
  cr_assert_not_null(p->recv, "recv chain: %s", parley_strerror(err));
  if (ic) {
    p->net = parley__impair_new(ic, 7, &err);
    cr_assert_not_null(p->net, "impair: %s", parley_strerror(err));
  }
  p->air = calloc(MAX_FLIGHT, sizeof *p->air);
  cr_assert_not_null(p->air);
}

static void path_init(path *p, int device_rate_hz, int frame_ms, const parley__impair_config *ic) {
  path_init2(p, device_rate_hz, frame_ms, 0, ic, false);
}

static void path_free(path *p) {
  parley__send_chain_free(p->send);
  parley__recv_chain_free(p->recv);
  parley__impair_free(p->net);
  free(p->air);
}

/* Capture side of a tick: encode one capture frame and put its packets in flight. */
static void path_send(path *p, int64_t now_us, const float *capture) {
  parley__send_packet pkts[PARLEY__SEND_MAX_PACKETS];
  int n = parley__send_chain_process(p->send, capture, pkts, PARLEY__SEND_MAX_PACKETS);
  cr_assert_geq(n, 0);
  for (int i = 0; i < n; i++) {
    p->sent++;
    p->markers += pkts[i].marker;
    uint16_t seq = p->seq++;
    parley__impair_verdict v = {1, {now_us + 30000, 0}};
    if (p->net) parley__impair_packet(p->net, now_us, pkts[i].len, &v);
    if (v.n_deliveries == 0) p->lost++;
    for (int d = 0; d < v.n_deliveries && p->n_air < MAX_FLIGHT; d++)
      p->air[p->n_air++] = (flight){v.deliver_us[d], pkts[i], seq};
  }
}

/* Playout side of a tick: deliver what is due, then play one device frame. */
static void path_recv(path *p, int64_t now_us, float *playout) {
  /* Deliver everything due by now, earliest first. */
  for (;;) {
    int best = -1;
    for (int i = 0; i < p->n_air; i++)
      if (p->air[i].deliver_us <= now_us && (best < 0 || p->air[i].deliver_us < p->air[best].deliver_us))
        best = i;
    if (best < 0) break;
    flight f = p->air[best];
    p->air[best] = p->air[--p->n_air];
    parley__recv_chain_put(p->recv, f.seq, f.pkt.timestamp, 0x1234, f.pkt.marker, f.pkt.data, f.pkt.len,
                           f.deliver_us);
  }
  cr_assert_eq(parley__recv_chain_process(p->recv, now_us, playout), 0);
}

/* One frame tick at now_us: capture in, playout out. No allocation here (the test checks). */
static void path_tick(path *p, int64_t now_us, const float *capture, float *playout) {
  path_send(p, now_us, capture);
  path_recv(p, now_us, playout);
}

/* As run_path with 20 ms capture frames and a timescaled receiver on 10 ms device frames. */
static void run_path_ts(path *p, const float *x, float *y, size_t n) {
  size_t cap = parley__send_chain_device_frame(p->send), play = parley__recv_chain_device_frame(p->recv);
  memset(y, 0, n * sizeof *y);
  for (size_t k = 0; (k + 1) * play <= n; k++) {
    int64_t now = (int64_t)k * 10000;
    if (k % 2 == 0 && (k / 2 + 1) * cap <= n) path_send(p, now, x + k / 2 * cap);
    path_recv(p, now, y + k * play);
  }
}

/* Plays x (n samples) through the path one frame_ms tick at a time; y gets n samples of playout. */
static void run_path(path *p, const float *x, float *y, size_t n, int frame_ms) {
  size_t frame = parley__send_chain_device_frame(p->send);
  memset(y, 0, n * sizeof *y);
  for (size_t k = 0; (k + 1) * frame <= n; k++)
    path_tick(p, (int64_t)k * frame_ms * 1000, x + k * frame, y + k * frame);
}

static float *load_speech(size_t *n) {
  int rate = 0;
  float *x = th_load_wav("speech_a_48k.wav", n, &rate);
  cr_assert_not_null(x);
  cr_assert_eq(rate, 48000);
  return x;
}

/* Correlation of output against input at the best lag within 0..500 ms, on the first 4 s. */
static double best_corr(const float *x, const float *y, size_t n, int rate, long *lag) {
  size_t win = (size_t)rate * 4;
  if (win + (size_t)rate / 2 > n) win = n - (size_t)rate / 2;
  double peak = 0;
  *lag = th_best_lag_speech(x, y, win, rate / 2, &peak);
  return peak;
}

/* Time-scaling moves the output against the input, so one lag fits only part of the clip: the mean
 * over 200 ms pieces of speech (rms >= 0.03) of each piece's correlation at its own best lag in
 * 0..300 ms. */
static double piecewise_corr(const float *x, const float *y, size_t n, int *pieces) {
  double sum = 0;
  *pieces = 0;
  for (size_t off = 0; off + 48000 < n; off += 9600) {
    if (th_rms(x + off, 9600) < 0.03) continue;
    double peak = 0;
    th_best_lag(x + off, y + off, 9600, 48000 * 3 / 10, &peak);
    sum += peak;
    (*pieces)++;
  }
  return *pieces ? sum / *pieces : 0;
}

Test(pipeline, clean_path_carries_speech_at_48k) {
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  path p;
  path_init(&p, 48000, 20, NULL);
  run_path(&p, x, y, n, 20);
  long lag;
  double c = best_corr(x, y, n, 48000, &lag);
  parley__send_stats ss;
  parley__recv_stats rs;
  parley__send_chain_stats(p.send, &ss);
  parley__recv_chain_stats(p.recv, &rs);
  /* The output is the input delayed by the path (30 ms), the chains' algorithmic delays and the
   * jitter buffer's; it must be that speech, not noise. */
  /* Measured 0.84: Opus alone gives ~0.95 on this clip, and the preprocessor's noise suppression and
   * DTX in the pauses take the rest. A broken chain (lost, doubled or misordered frames) falls far below. */
  cr_expect_geq(c, 0.75, "correlation %.3f at lag %ld", c, lag);
  long floor_lag = 30 * 48 + ss.delay_samples + rs.delay_samples;
  cr_expect_geq(lag, floor_lag - 48, "lag %ld below the floor %ld", lag, floor_lag);
  cr_expect_leq(lag, floor_lag + 48 * 60, "lag %ld far above the floor %ld", lag, floor_lag);
  cr_expect_eq(rs.jitter.concealed, 0);
  cr_expect_eq(rs.jitter.late, 0);
  cr_expect_gt(rs.decoded, 0);
  cr_expect_eq(rs.decoded, rs.jitter.packets_out, "every packet played is decoded");
  cr_expect_geq(rs.decoded + 5, ss.packets, "all but the last few packets in flight are played");
  path_free(&p);
  free(x);
  free(y);
}

/* The low-delay profile (restricted-lowdelay Opus, 5 ms frames, 5 ms canceller/preprocessor blocks)
 * carries the same speech with its smaller floor: lookahead 2.5 ms and one 5 ms block. */
Test(pipeline, low_delay_profile_carries_speech_on_5ms_frames) {
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  path p;
  path_init2(&p, 48000, 5, 0, NULL, true);
  run_path(&p, x, y, n, 5);
  long lag;
  double c = best_corr(x, y, n, 48000, &lag);
  parley__send_delays sd;
  parley__send_chain_delays(p.send, &sd);
  cr_expect_eq(sd.lookahead_samples, 120, "restricted-lowdelay Opus looks 2.5 ms ahead");
  cr_expect_eq(sd.echo_samples, 240, "the preprocessor pays one 5 ms block");
  parley__send_stats ss;
  parley__recv_stats rs;
  parley__send_chain_stats(p.send, &ss);
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_geq(c, 0.75, "correlation %.3f at lag %ld", c, lag); /* measured 0.86 */
  long floor_lag = 30 * 48 + ss.delay_samples + rs.delay_samples;
  cr_expect_geq(lag, floor_lag - 48, "lag %ld below the floor %ld", lag, floor_lag);
  cr_expect_leq(lag, floor_lag + 48 * 20, "lag %ld far above the floor %ld", lag, floor_lag);
  cr_expect_eq(rs.jitter.concealed, 0);
  /* 30 ms of path is six 5 ms packets in flight, and a few more wait in the jitter buffer. */
  cr_expect_geq(rs.decoded + 10, ss.packets, "played %llu of %llu", (unsigned long long)rs.decoded,
                (unsigned long long)ss.packets);
  path_free(&p);
  free(x);
  free(y);
}

/* Device rates other than 48 kHz go through both resamplers. */
static void resampled_round_trip(int rate, int frame_ms) {
  size_t n48;
  float *x48 = load_speech(&n48);
  size_t n = n48 * (size_t)rate / 48000;
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  for (size_t i = 0; i < n; i++) x[i] = x48[i * 48000 / (size_t)rate]; /* speech is band-limited enough */
  path p;
  path_init(&p, rate, frame_ms, NULL);
  run_path(&p, x, y, n, frame_ms);
  long lag;
  double c = best_corr(x, y, n, rate, &lag);
  cr_expect_geq(c, 0.7, "rate %d frame %d ms: correlation %.3f", rate, frame_ms, c); /* measured >= 0.78 */
  parley__recv_stats rs;
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_lt(rs.underrun_samples, (uint64_t)rate / 100, "underruns %llu",
               (unsigned long long)rs.underrun_samples);
  path_free(&p);
  free(x48);
  free(x);
  free(y);
}

Test(pipeline, device_rates_resample_both_ways) {
  resampled_round_trip(44100, 20);
  resampled_round_trip(16000, 10);
  resampled_round_trip(8000, 20);
}

Test(pipeline, lossy_jittery_path_recovers_with_fec_and_plc) {
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  parley__impair_config ic = {.base_delay_us = 40000, .jitter_sd_us = 10000, .loss_pct = 8};
  path p;
  path_init(&p, 48000, 20, &ic);
  run_path(&p, x, y, n, 20);
  parley__recv_stats rs;
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_gt(p.lost, 0);
  cr_expect_gt(rs.fec_recovered + rs.jitter.concealed, 0);
  cr_expect_gt(rs.fec_recovered, 0, "single losses with the next packet present use FEC");
  int pieces = 0;
  double c = piecewise_corr(x, y, n, &pieces);
  cr_expect_gt(pieces, 10);
  cr_expect_geq(c, 0.6, "8%% loss: piecewise correlation %.3f over %d pieces", c, pieces);
  path_free(&p);
  free(x);
  free(y);
}


Test(pipeline, silence_is_dtx_not_concealment) {
  size_t n = 48000 * 3;
  float *x = calloc(n, sizeof *x), *y = malloc(n * sizeof *y);
  size_t ns;
  float *speech = load_speech(&ns);
  memcpy(x, speech, 48000 * sizeof *x); /* 1 s of speech, then 2 s of digital silence */
  path p;
  path_init(&p, 48000, 20, NULL);
  /* Tick by hand to count the markers sent during the silence alone. */
  uint64_t markers_in_speech = 0;
  for (size_t k = 0; (k + 1) * 960 <= n; k++) {
    if (k == 60) markers_in_speech = p.markers; /* 1.2 s: speech and its DTX hangover are over */
    path_tick(&p, (int64_t)k * 20000, x + k * 960, y + k * 960);
  }
  parley__send_stats ss;
  parley__recv_stats rs;
  parley__send_chain_stats(p.send, &ss);
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_gt(ss.dtx_frames, 60, "2 s of silence: %llu DTX frames", (unsigned long long)ss.dtx_frames);
  /* Comfort-noise updates keep a pause going; only a talkspurt start carries the marker (RFC 7587),
   * so the silence, which still sends an update every 400 ms, adds none. */
  cr_expect_geq(markers_in_speech, 1, "the first packet starts a talkspurt");
  cr_expect_eq(p.markers, markers_in_speech, "%llu markers during silence",
               (unsigned long long)(p.markers - markers_in_speech));
  cr_expect_gt(rs.jitter.silence, 50, "the receiver plays DTX gaps as silence");
  /* A receiver cannot tell a DTX gap from a loss until the next packet shows consecutive sequence
   * numbers; the gap still open at the end stays counted as concealment, at most one DTX interval. */
  cr_expect_leq(rs.jitter.concealed, 20, "no frame was lost (%llu concealed, %llu silence, %llu dtx)",
               (unsigned long long)rs.jitter.concealed, (unsigned long long)rs.jitter.silence,
               (unsigned long long)ss.dtx_frames);
  /* The tail is quiet: comfort noise at most. */
  cr_expect_lt(th_rms(y + 48000 * 2, 48000 / 2), 0.01);
  path_free(&p);
  free(speech);
  free(x);
  free(y);
}

Test(pipeline, per_frame_processing_never_allocates) {
#ifdef AI_SANITIZED
  cr_skip_test("the sanitizer owns the allocator; the plain build runs this test");
#else
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  parley__impair_config ic = {.base_delay_us = 40000, .jitter_sd_us = 15000, .loss_pct = 5,
                              .reorder_pct = 2, .reorder_hold_us = 30000, .dup_pct = 1, .dup_gap_us = 5000};
  path p;
  path_init(&p, 44100, 20, &ic);
  size_t frame = parley__send_chain_device_frame(p.send);
  size_t n441 = n * 44100 / 48000;
  float *x441 = malloc(n441 * sizeof *x);
  for (size_t i = 0; i < n441; i++) x441[i] = x[i * 48000 / 44100];
  size_t frames = n441 / frame;
  parley__echo *echo = parley__send_chain_echo(p.send);
  parley__recv_chain_link_echo(p.recv, echo);
  /* Warm up outside the count, then count every allocator call during the rest. */
  for (size_t k = 0; k < 10; k++) path_tick(&p, (int64_t)k * 20000, x441 + k * frame, y + k * frame);
  atomic_store(&alloc_calls, 0);
  atomic_store(&counting, true);
  for (size_t k = 10; k < frames; k++) path_tick(&p, (int64_t)k * 20000, x441 + k * frame, y + k * frame);
  atomic_store(&counting, false);
  long calls = atomic_load(&alloc_calls);
  cr_expect_eq(calls, 0, "%ld allocator calls in %zu frames of send+receive processing", calls, frames - 10);
  /* The counter itself works: one malloc while counting is seen. */
  void *(*volatile alloc)(size_t) = malloc; /* called through a pointer the compiler can't elide */
  atomic_store(&counting, true);
  void *probe = alloc(16);
  atomic_store(&counting, false);
  cr_expect_eq(atomic_load(&alloc_calls), 1, "the allocation counter missed a malloc");
  free(probe);
  path_free(&p);
  free(x);
  free(x441);
  free(y);
#endif
}

Test(pipeline, packets_shorter_than_the_device_frame_play) {
  /* A peer sending 10 ms packets (SDP minptime=10) to a 20 ms engine: two packets per device frame. */
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  path p;
  path_init2(&p, 48000, 10, 20, NULL, false);
  size_t cap = parley__send_chain_device_frame(p.send), play = parley__recv_chain_device_frame(p.recv);
  memset(y, 0, n * sizeof *y);
  for (size_t k = 0; (k + 1) * play <= n; k++) {
    int64_t now = (int64_t)k * 20000;
    path_send(&p, now, x + 2 * k * cap);
    path_send(&p, now + 10000, x + (2 * k + 1) * cap);
    path_recv(&p, now + 10000, y + k * play);
  }
  long lag;
  double c = best_corr(x, y, n, 48000, &lag);
  parley__recv_stats rs;
  parley__recv_chain_stats(p.recv, &rs);
  cr_log_info("corr %.3f lag %ld acc %llu str %llu exp %llu removed %llu inserted %llu", c, lag,
              (unsigned long long)rs.jitter.accelerated, (unsigned long long)rs.jitter.stretched,
              (unsigned long long)rs.jitter.expands, (unsigned long long)rs.removed_samples,
              (unsigned long long)rs.inserted_samples);
  cr_expect_geq(c, 0.75, "correlation %.3f at lag %ld", c, lag);
  cr_expect_eq(rs.jitter.late, 0);
  cr_expect_eq(rs.jitter.concealed, 0);
  cr_expect_eq(rs.decode_errors, 0);
  path_free(&p);
  free(x);
  free(y);
}

Test(pipeline, timescaled_clean_path_carries_speech_with_less_delay) {
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  path p;
  path_init2(&p, 48000, 20, 10, NULL, false);
  run_path_ts(&p, x, y, n);
  long lag;
  double c = best_corr(x, y, n, 48000, &lag);
  parley__send_stats ss;
  parley__recv_stats rs;
  parley__send_chain_stats(p.send, &ss);
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_geq(c, 0.75, "correlation %.3f at lag %ld", c, lag);
  /* Packets land on the 20 ms capture ticks + 30 ms, i.e. on a device tick: played at once. */
  long floor_lag = 30 * 48 + ss.delay_samples + rs.delay_samples;
  cr_expect_geq(lag, floor_lag - 48, "lag %ld below the floor %ld", lag, floor_lag);
  cr_expect_leq(lag, floor_lag + 48 * 10, "lag %ld more than a tick above the floor %ld", lag, floor_lag);
  cr_expect_eq(rs.jitter.concealed, 0);
  cr_expect_eq(rs.jitter.late, 0);
  cr_expect_eq(rs.decoded, rs.jitter.packets_out, "every packet played is decoded");
  cr_expect_geq(rs.decoded + 5, ss.packets);
  path_free(&p);
  free(x);
  free(y);
}

Test(pipeline, timescaled_jittery_path_expands_and_accelerates) {
  size_t n;
  float *x = load_speech(&n);
  float *y = malloc(n * sizeof *y);
  parley__impair_config ic = {.base_delay_us = 40000, .jitter_sd_us = 20000, .loss_pct = 3};
  path p;
  path_init2(&p, 48000, 20, 10, &ic, false);
  run_path_ts(&p, x, y, n);
  parley__recv_stats rs;
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_gt(rs.expand_samples, 0, "late packets were waited for");
  cr_expect_gt(rs.jitter.played_after_expand, 0);
  cr_expect_gt(rs.removed_samples, 0, "the delay was shed by accelerating");
  /* Late packets are waited for, except where the next packet's FEC stood in for one (not waited
   * for: no delay added), so at most 2 % go late beyond those the FEC recoveries may cover. */
  cr_expect_gt(rs.jitter.fec_recoveries, 0);
  cr_expect_leq(rs.jitter.late * 100, rs.jitter.packets_in * 2 + rs.jitter.fec_recoveries * 100,
                "late %llu of %llu, FEC %llu", (unsigned long long)rs.jitter.late,
                (unsigned long long)rs.jitter.packets_in, (unsigned long long)rs.jitter.fec_recoveries);
  /* 200 ms pieces of speech, each at its own best lag (measured 0.73). */
  int pieces = 0;
  double mean = piecewise_corr(x, y, n, &pieces);
  cr_expect_gt(pieces, 10);
  cr_expect_geq(mean, 0.6, "mean piecewise correlation %.3f over %d pieces", mean, pieces);
  path_free(&p);
  free(x);
  free(y);
}

Test(pipeline, timescaled_processing_never_allocates) {
#ifdef AI_SANITIZED
  cr_skip_test("the sanitizer owns the allocator; the plain build runs this test");
#else
  size_t n;
  float *x = load_speech(&n);
  parley__impair_config ic = {.base_delay_us = 40000, .jitter_sd_us = 15000, .loss_pct = 5,
                              .reorder_pct = 2, .reorder_hold_us = 30000, .dup_pct = 1, .dup_gap_us = 5000};
  path p;
  path_init2(&p, 44100, 20, 10, &ic, false);
  size_t cap = parley__send_chain_device_frame(p.send), play = parley__recv_chain_device_frame(p.recv);
  size_t n441 = n * 44100 / 48000;
  float *x441 = malloc(n441 * sizeof *x);
  float *y = malloc(n441 * sizeof *y);
  for (size_t i = 0; i < n441; i++) x441[i] = x[i * 48000 / 44100];
  parley__recv_chain_link_echo(p.recv, parley__send_chain_echo(p.send));
  size_t ticks = n441 / play;
  for (size_t k = 0; k < ticks; k++) {
    if (k == 20) {
      atomic_store(&alloc_calls, 0);
      atomic_store(&counting, true);
    }
    if (k % 2 == 0 && (k / 2 + 1) * cap <= n441) path_send(&p, (int64_t)k * 10000, x441 + k / 2 * cap);
    path_recv(&p, (int64_t)k * 10000, y + k * play);
  }
  atomic_store(&counting, false);
  long calls = atomic_load(&alloc_calls);
  cr_expect_eq(calls, 0, "%ld allocator calls in %zu timescaled ticks", calls, ticks - 20);
  parley__recv_stats rs;
  parley__recv_chain_stats(p.recv, &rs);
  cr_expect_gt(rs.expand_samples + rs.removed_samples + rs.inserted_samples, 0, "time-scaling ran");
  path_free(&p);
  free(x);
  free(x441);
  free(y);
#endif
}

/* Sends 1 s of speech through a send chain of frame_ms device frames and packet_ms packets; every packet
 * must hold packet_ms of audio (its TOC says so) and start packet_ms after the previous one, or a
 * whole number of packets later after DTX. Returns the packet count. */
static int packets_of(int frame_ms, int packet_ms) {
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.frame_ms = frame_ms;
  sc.packet_ms = packet_ms;
  sc.first_timestamp = 1000;
  int err = 0;
  parley__send_chain *s = parley__send_chain_new(&sc, &err);
  cr_assert_not_null(s, "%s", parley_strerror(err));
  size_t n, dev = (size_t)frame_ms * 48;
  uint32_t step = (uint32_t)packet_ms * 48;
  float *x = load_speech(&n);
  parley__send_packet pk[PARLEY__SEND_MAX_PACKETS];
  uint32_t next = 1000;
  int total = 0;
  for (size_t k = 0; (k + 1) * dev <= 48000; k++) {
    int got = parley__send_chain_process(s, x + 48000 + k * dev, pk, PARLEY__SEND_MAX_PACKETS);
    cr_assert_geq(got, 0);
    for (int i = 0; i < got; i++) {
      cr_expect_eq(parley__packet_samples_48k(pk[i].data, pk[i].len), (int)step);
      cr_expect_geq(pk[i].timestamp, next);
      cr_expect_eq((pk[i].timestamp - 1000) % step, 0u);
      next = pk[i].timestamp + step;
    }
    total += got;
  }
  parley__send_chain_free(s);
  free(x);
  return total;
}

Test(pipeline, packets_shorter_and_longer_than_the_device_frame) {
  /* A peer's a=maxptime:10 on a 20 ms engine: two 10 ms packets per device frame. */
  int n = packets_of(20, 10);
  cr_expect_gt(n, 60, "%d 10 ms packets in 1 s of speech", n);
  /* A peer's a=ptime:40 on a 20 ms engine, or 20 on a 10 ms one: a packet every other device frame. */
  n = packets_of(20, 40);
  cr_expect(n > 15 && n <= 25, "%d 40 ms packets in 1 s of speech", n);
  n = packets_of(10, 20);
  cr_expect(n > 30 && n <= 50, "%d 20 ms packets in 1 s of speech", n);
  n = packets_of(20, 60);
  cr_expect(n > 10 && n <= 17, "%d 60 ms packets in 1 s of speech", n);
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.packet_ms = 30; /* not an Opus frame length */
  int err = 0;
  cr_expect_null(parley__send_chain_new(&sc, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
}

Test(pipeline, packet_length_follows_the_peers_ptime_within_maxptime) {
  cr_expect_eq(parley__send_packet_ms(20, 0, 0), 20, "nothing said: our frame");
  cr_expect_eq(parley__send_packet_ms(10, 0, 120), 10);
  cr_expect_eq(parley__send_packet_ms(20, 40, 0), 40, "the peer's ptime");
  cr_expect_eq(parley__send_packet_ms(20, 40, 120), 40);
  cr_expect_eq(parley__send_packet_ms(10, 20, 120), 20);
  cr_expect_eq(parley__send_packet_ms(20, 10, 0), 10);
  cr_expect_eq(parley__send_packet_ms(20, 60, 0), 60);
  cr_expect_eq(parley__send_packet_ms(20, 40, 30), 20, "maxptime bounds ptime");
  cr_expect_eq(parley__send_packet_ms(20, 0, 10), 10, "maxptime under our frame");
  cr_expect_eq(parley__send_packet_ms(20, 0, 15), 10);
  cr_expect_eq(parley__send_packet_ms(20, 0, 7), 5);
  cr_expect_eq(parley__send_packet_ms(20, 0, 3), 5, "5 ms when even that is over maxptime");
  cr_expect_eq(parley__send_packet_ms(20, 30, 0), 20, "nearest we code, the shorter on a tie");
  cr_expect_eq(parley__send_packet_ms(20, 50, 0), 40);
  cr_expect_eq(parley__send_packet_ms(20, 100, 0), 60, "at most 60 ms");
  cr_expect_eq(parley__send_packet_ms(20, 3, 0), 5);
}

Test(pipeline, fec_loss_hint_follows_the_reports) {
  double t = 0.10;
  cr_expect_eq(parley__loss_hint_update(&t, 0.30), 30, "up at once");
  int a = parley__loss_hint_update(&t, 0.0), b = parley__loss_hint_update(&t, 0.0);
  cr_expect_eq(a, 24, "down a fifth of the way per report");
  cr_expect(b < a && b > 0, "%d then %d", a, b);
  for (int i = 0; i < 100; i++) (void)parley__loss_hint_update(&t, 0.0);
  cr_expect_eq(parley__loss_hint_update(&t, 0.0), 0, "a clean path ends at no FEC");
  cr_expect_eq(parley__loss_hint_update(&t, 0.9), PARLEY__LOSS_HINT_MAX_PCT, "capped");
  cr_expect_eq(parley__loss_hint_update(&t, -1.0) <= PARLEY__LOSS_HINT_MAX_PCT, true);
  cr_expect_eq(parley__loss_hint_update(NULL, 0.1), PARLEY_EINVAL);
}

Test(pipeline, bad_config_is_rejected) {
  int err = 0;
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.device_rate_hz = 22050;
  cr_expect_null(parley__send_chain_new(&sc, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__send_config_init(&sc);
  sc.frame_ms = 30;
  cr_expect_null(parley__send_chain_new(&sc, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__send_chain_new(NULL, &err));
  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.device_rate_hz = 0;
  cr_expect_null(parley__recv_chain_new(&rc, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__recv_config_init(&rc);
  rc.frame_ms = 30;
  cr_expect_null(parley__recv_chain_new(&rc, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_eq(parley__send_chain_process(NULL, NULL, NULL, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__recv_chain_process(NULL, 0, NULL), PARLEY_EINVAL);
}
