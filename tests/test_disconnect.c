/* test_disconnect.c: a passive disconnect through the real stack (sim/simcall.h: two ICE agents,
 * each wired to its liveness monitor, Opus-like RTP both ways over simnet), in simulated time. One
 * deterministic cut/restore trial: the event sequence each receiving side reports, and that detection
 * and recovery happen inside the windows the monitor's configuration and the path delay allow. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/events.h"
#include "transport/liveness.h"
#include "sim/simcall.h"

#define MS 1000
#define ONE_WAY_US (25 * MS)
#define MAX_SEEN 64

typedef struct seen {
  parley__event ev[2][MAX_SEEN];
  int n[2];
  int overflow;
} seen;

/* Keeps what an app would act on: ICE state, tracks, interruptions (peer-state mirrors ICE state). */
static void on_event(void *ctx, int side, const parley__event *ev) {
  seen *s = ctx;
  if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED) return;
  if (s->n[side] >= MAX_SEEN) {
    s->overflow++;
    return;
  }
  s->ev[side][s->n[side]++] = *ev;
}

/* A clean path of fixed delay: every bound below is exact for it. */
static parley__simcall *call_new(seen *s, uint64_t seed, bool talkspurts) {
  memset(s, 0, sizeof *s);
  parley__simcall_config cfg = {.a2b = {.base_delay_us = ONE_WAY_US},
                                .b2a = {.base_delay_us = ONE_WAY_US},
                                .talkspurts = talkspurts,
                                .seed = seed,
                                .on_event = on_event,
                                .ctx = s};
  int err = 1;
  parley__simcall *c = parley__simcall_new(&cfg, &err);
  cr_assert_not_null(c, "simcall_new: %d", err);
  cr_assert_eq(err, 0);
  return c;
}

typedef struct want {
  parley_event_kind kind;
  int detail; /* ice_state, stop_reason or interrupt code; -1 = any */
} want;

static int detail_of(const parley__event *ev) {
  switch (ev->kind) {
  case PARLEY_EVENT_ICE_STATE_CHANGED: return (int)ev->ice_state;
  case PARLEY_EVENT_TRACK_STOPPED: return (int)ev->stop_reason;
  case PARLEY_EVENT_INTERRUPTED:
  case PARLEY_EVENT_RESUMED: return (int)ev->code;
  default: return -1;
  }
}

static void describe(const seen *s, int side) {
  char line[160];
  for (int i = 0; i < s->n[side]; i++) {
    parley__event_format(&s->ev[side][i], line, sizeof line);
    cr_log_info("side %d: %s", side, line);
  }
}

static const parley__event *find(const seen *s, int side, parley_event_kind kind, int detail, int64_t after_us) {
  for (int i = 0; i < s->n[side]; i++) {
    const parley__event *ev = &s->ev[side][i];
    if (ev->kind == kind && (detail < 0 || detail_of(ev) == detail) && ev->now_us >= after_us) return ev;
  }
  return NULL;
}

Test(disconnect, cut_and_restore_through_two_real_agents) {
  parley__liveness_config lc;
  parley__liveness_config_init(&lc); /* the defaults the call runs with */
  seen s;
  parley__simcall *c = call_new(&s, 7, true);
  const int64_t t_cut = 4000 * MS + 7 * MS, t_restore = 7000 * MS + 3 * MS, t_end = 9000 * MS;
  cr_assert_eq(parley__simcall_run_until(c, t_cut), 0);
  parley__simcall_cut(c);
  cr_assert_eq(parley__simcall_run_until(c, t_restore), 0);
  parley__simcall_restore(c);
  cr_assert_eq(parley__simcall_run_until(c, t_end), 0);
  cr_assert_eq(s.overflow, 0);

  static const want seq[] = {
      {PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CHECKING},
      {PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED},
      {PARLEY_EVENT_TRACK_STARTED, -1},
      /* The outage is declared at one instant: ICE disconnected, the track stopped (timeout), one
       * interrupted network-lost. */
      {PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED},
      {PARLEY_EVENT_TRACK_STOPPED, PARLEY_STOP_TIMEOUT},
      {PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST},
      {PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED},
      {PARLEY_EVENT_RESUMED, PARLEY_INTERRUPT_NETWORK_LOST},
      {PARLEY_EVENT_TRACK_STARTED, -1}, /* the media flows again */
  };
  const int n_seq = (int)(sizeof seq / sizeof seq[0]);
  for (int side = 0; side < 2; side++) {
    describe(&s, side);
    cr_assert_eq(s.n[side], n_seq, "side %d: %d events, want %d", side, s.n[side], n_seq);
    for (int i = 0; i < n_seq; i++) {
      const parley__event *ev = &s.ev[side][i];
      cr_expect_eq(ev->kind, seq[i].kind, "side %d event %d: %s", side, i, parley_event_kind_name(ev->kind));
      if (seq[i].detail >= 0) cr_expect_eq(detail_of(ev), seq[i].detail, "side %d event %d detail", side, i);
    }
    const parley__event *ev = s.ev[side];
    cr_expect_eq(ev[2].ssrc, 0x5eed0000u + (uint32_t)(1 - side), "the peer's stream");
    cr_expect_eq(ev[8].ssrc, ev[2].ssrc, "the same stream resumes");
    cr_expect_lt(ev[1].now_us, t_cut, "connected before the cut");
    cr_expect_eq(ev[3].now_us, ev[4].now_us);
    cr_expect_eq(ev[4].now_us, ev[5].now_us);

    /* Detection: lost_after after the last arrival. The last arrival is no later than the cut plus one
     * one-way delay (datagrams in flight), and no earlier than the cut minus suspect_after minus a
     * round trip (before the cut a probe sent after suspect_after of silence is always answered). */
    int64_t detect = ev[3].now_us - t_cut;
    cr_expect_leq(detect, lc.lost_after_us + ONE_WAY_US, "side %d: detected %lld us after the cut", side,
                  (long long)detect);
    cr_expect_geq(detect, lc.lost_after_us - lc.suspect_after_us - 2 * ONE_WAY_US,
                  "side %d: detected %lld us after the cut", side, (long long)detect);
    /* Recovery: the first slow probe after the restore (<= lost_probe_interval) answered one round trip
     * later, or the peer's media, whichever first; nothing can arrive earlier than one one-way delay. */
    int64_t recover = ev[6].now_us - t_restore;
    cr_expect_geq(recover, ONE_WAY_US, "side %d: recovered %lld us after the restore", side, (long long)recover);
    cr_expect_leq(recover, lc.lost_probe_interval_us + 2 * ONE_WAY_US, "side %d: recovered %lld us after",
                  side, (long long)recover);
    cr_expect_eq(ev[7].now_us, ev[6].now_us, "resumed with connected");
  }
  parley__simcall_stats st;
  parley__simcall_get_stats(c, &st);
  for (int side = 0; side < 2; side++) {
    cr_expect_gt(st.rtp_accepted[side], 0);
    cr_expect_gt(st.probes_sent[side], 0, "the monitor probed through the agent");
    cr_expect_leq(st.rtp_accepted[side], st.rtp_sent[1 - side]);
  }
  parley__simcall_free(c);
}

/* No loss, no cut, a long round trip (300 ms), and A sends no media: B's monitor lives on its probes
 * alone, 15 in flight at 20 ms pacing, and their late answers must all count for a minute. (B's DTX
 * keeps A's monitor fed.) */
Test(disconnect, long_round_trip_probes_alone_raise_no_false_alarm) {
  seen s;
  memset(&s, 0, sizeof s);
  parley__simcall_config cfg = {.a2b = {.base_delay_us = 150 * MS}, .b2a = {.base_delay_us = 150 * MS},
                                .mute = {true, false}, .seed = 3, .on_event = on_event, .ctx = &s};
  parley__simcall *c = parley__simcall_new(&cfg, NULL);
  cr_assert_not_null(c);
  cr_assert_eq(parley__simcall_run_until(c, 60 * 1000 * MS), 0);
  for (int side = 0; side < 2; side++) {
    describe(&s, side);
    cr_expect_not_null(find(&s, side, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED, 0));
    cr_expect_null(find(&s, side, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED, 0), "side %d", side);
    cr_expect_null(find(&s, side, PARLEY_EVENT_INTERRUPTED, -1, 0), "side %d", side);
  }
  cr_expect_null(find(&s, 1, PARLEY_EVENT_TRACK_STARTED, -1, 0), "A is muted");
  cr_expect_not_null(find(&s, 0, PARLEY_EVENT_TRACK_STARTED, -1, 0));
  parley__simcall_stats st;
  parley__simcall_get_stats(c, &st);
  cr_expect_eq(st.rtp_sent[0], 0);
  /* About 1000 (the consent timers' phase moves it by a few). */
  cr_expect_gt(st.probes_sent[1], 900, "B probed in every silence: %llu", (unsigned long long)st.probes_sent[1]);
  parley__simcall_free(c);
}

/* An off-path attacker forges ICMP port unreachable about B's selected pair while A is alive: B probes,
 * A answers, nothing is reported. Then A's process really dies (no BYE): B's packets bounce, and B
 * reports peer-gone (ICE disconnected, track-stopped peer-gone, interrupted peer-gone) within the
 * window its measured round trip allows. */
Test(disconnect, forged_icmp_is_ignored_and_a_killed_peer_is_peer_gone) {
  seen s;
  parley__simcall *c = call_new(&s, 11, true);
  cr_assert_eq(parley__simcall_run_until(c, 3000 * MS), 0);
  int before = s.n[1];
  cr_assert_eq(parley__simcall_socket_error(c, 1, ECONNREFUSED), 0);
  cr_assert_eq(parley__simcall_run_until(c, 3200 * MS), 0);
  cr_assert_eq(parley__simcall_socket_error(c, 1, ECONNREFUSED), 0); /* and again */
  cr_assert_eq(parley__simcall_run_until(c, 6000 * MS), 0);
  describe(&s, 1);
  cr_expect_eq(s.n[1], before, "forged ICMP raised %d events", s.n[1] - before);
  cr_expect_null(find(&s, 1, PARLEY_EVENT_INTERRUPTED, -1, 0));

  const int64_t t_kill = 6000 * MS + 3 * MS;
  cr_assert_eq(parley__simcall_run_until(c, t_kill), 0);
  cr_assert_eq(parley__simcall_kill(c, 0), 0);
  cr_assert_eq(parley__simcall_run_until(c, t_kill + 2000 * MS), 0);
  describe(&s, 1);
  const parley__event *gone = find(&s, 1, PARLEY_EVENT_INTERRUPTED, -1, t_kill);
  cr_assert_not_null(gone);
  cr_expect_eq(gone->code, PARLEY_INTERRUPT_PEER_GONE);
  const parley__event *stop = find(&s, 1, PARLEY_EVENT_TRACK_STOPPED, -1, t_kill);
  cr_assert_not_null(stop);
  cr_expect_eq(stop->stop_reason, PARLEY_STOP_PEER_GONE);
  cr_expect_eq(stop->now_us, gone->now_us);
  /* B's next packet leaves within a DTX period and bounces a one-way delay later; the first probe then
   * waits srtt + max(4 rttvar, 20 ms) <= lost_after / 2 for its answer. */
  parley__liveness_config lc;
  parley__liveness_config_init(&lc);
  cr_expect_leq(gone->now_us - t_kill, 400 * MS + ONE_WAY_US + lc.lost_after_us / 2);
  cr_expect_geq(gone->now_us - t_kill, 2 * ONE_WAY_US + 20 * MS, "not on the first bounce");
  cr_expect_null(find(&s, 1, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST, 0));
  cr_expect_eq(parley__simcall_kill(c, 2), PARLEY_EINVAL);
  cr_expect_eq(parley__simcall_socket_error(c, 0, ECONNREFUSED), PARLEY_EINVAL, "a killed side");
  parley__simcall_free(c);
}

/* Same seed, same call: the simulation is deterministic in simulated time. */
Test(disconnect, deterministic_for_a_seed) {
  static seen s1, s2;
  parley__simcall_config cfg = {.a2b = {.base_delay_us = 40 * MS, .jitter_sd_us = 50 * MS, .loss_pct = 20},
                                .b2a = {.base_delay_us = 40 * MS, .jitter_sd_us = 50 * MS, .loss_pct = 20},
                                .talkspurts = true, .seed = 11, .on_event = on_event};
  for (int k = 0; k < 2; k++) {
    seen *s = k ? &s2 : &s1;
    memset(s, 0, sizeof *s);
    cfg.ctx = s;
    parley__simcall *c = parley__simcall_new(&cfg, NULL);
    cr_assert_not_null(c);
    cr_assert_eq(parley__simcall_run_until(c, 5000 * MS), 0);
    parley__simcall_cut(c);
    cr_assert_eq(parley__simcall_run_until(c, 8000 * MS), 0);
    parley__simcall_restore(c);
    cr_assert_eq(parley__simcall_run_until(c, 12000 * MS), 0);
    parley__simcall_free(c);
  }
  for (int side = 0; side < 2; side++) {
    cr_assert_gt(s1.n[side], 3);
    cr_assert_eq(s1.n[side], s2.n[side]);
    for (int i = 0; i < s1.n[side]; i++) {
      cr_expect_eq(s1.ev[side][i].kind, s2.ev[side][i].kind);
      cr_expect_eq(s1.ev[side][i].now_us, s2.ev[side][i].now_us);
    }
  }
}

Test(disconnect, bad_arguments) {
  int err = 0;
  cr_expect_null(parley__simcall_new(NULL, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__simcall_config cfg = {.a2b = {.loss_pct = 150}};
  cr_expect_null(parley__simcall_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cfg = (parley__simcall_config){.has_live = true}; /* an all-zero monitor config is invalid */
  cr_expect_null(parley__simcall_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cfg = (parley__simcall_config){0};
  parley__simcall *c = parley__simcall_new(&cfg, &err);
  cr_assert_not_null(c);
  cr_expect_eq(parley__simcall_run_until(c, 1000 * MS), 0);
  cr_expect_eq(parley__simcall_run_until(c, 999 * MS), PARLEY_EINVAL, "time does not go back");
  cr_expect_eq(parley__simcall_now_us(c), 1000 * MS);
  cr_expect_null(parley__simcall_agent(c, 2));
  cr_expect_null(parley__simcall_monitor(c, -1));
  cr_expect_not_null(parley__simcall_agent(c, 1));
  parley__simcall_free(c);
  parley__simcall_free(NULL);
}
