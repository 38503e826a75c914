/* test_liveness.c: the liveness monitor in simulated time. A small scripted peer (media at a fixed
 * period, probe and consent answers after a fixed round trip, a path that can be cut) drives the
 * monitor; the tests assert the event sequences and the pacing of the actions it requests. One test
 * runs over simnet, where the peer's endpoint disappears and our packets bounce (ECONNREFUSED); others
 * forge ICMP port unreachable while the peer is alive. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/liveness.h"
#include "sim/simnet.h"

#define MS 1000ll
#define S 1000000ll
#define SSRC_A 0x11111111u
#define SSRC_B 0x22222222u

typedef struct harness {
  parley__event storage[64];
  parley__event_queue q;
  parley__liveness *m;
  parley__liveness_config cfg;
  parley__event log[4096];
  int n;
  int64_t now;
  /* The scripted peer. */
  bool path_up;
  int64_t media_period; /* 0: no media */
  int64_t next_media;
  uint32_t ssrc;
  bool answer_probes, answer_consent;
  int64_t rtt;
  int64_t pending_probe[256];
  int n_probe;
  int64_t pending_consent[64];
  int n_consent;
  /* What the monitor asked for. */
  int64_t probe_at[8192];
  int n_probes;
  int64_t consent_at[256];
  int n_consents;
} harness;

static void drain(harness *h) {
  parley__event ev;
  while (parley__event_queue_pop(&h->q, &ev) == 0)
    if (h->n < 4096) h->log[h->n++] = ev;
}

static harness *setup(const parley__liveness_config *cfg) {
  static harness h;
  memset(&h, 0, sizeof h);
  cr_assert_eq(parley__event_queue_init(&h.q, h.storage, 64), 0);
  if (cfg) h.cfg = *cfg;
  else parley__liveness_config_init(&h.cfg);
  int err = 1;
  h.m = parley__liveness_new(&h.cfg, &h.q, &err);
  cr_assert_not_null(h.m);
  cr_assert_eq(err, 0);
  h.path_up = true;
  h.answer_probes = true;
  h.answer_consent = true;
  h.rtt = 40 * MS;
  h.ssrc = SSRC_A;
  return &h;
}

static void start_call(harness *h, int64_t media_period) {
  cr_assert_eq(parley__liveness_on_ice_checking(h->m, 0), 0);
  cr_assert_eq(parley__liveness_on_ice_connected(h->m, 0), 0);
  h->media_period = media_period;
  h->next_media = media_period ? 0 : INT64_MAX;
  drain(h);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t earliest(const int64_t *v, int n) {
  int64_t t = INT64_MAX;
  for (int i = 0; i < n; i++) t = min64(t, v[i]);
  return t;
}

/* Delivers the pending answers due at t (removing them); returns how many. */
static int take_due(int64_t *v, int *n, int64_t t) {
  int k = 0, due = 0;
  for (int i = 0; i < *n; i++) {
    if (v[i] <= t) due++;
    else v[k++] = v[i];
  }
  *n = k;
  return due;
}

/* Runs the simulation up to and including t_end. */
static void run_until(harness *h, int64_t t_end) {
  for (int guard = 0; guard < 2000000; guard++) {
    int64_t t = parley__liveness_next_deadline_us(h->m);
    t = min64(t, h->next_media);
    t = min64(t, earliest(h->pending_probe, h->n_probe));
    t = min64(t, earliest(h->pending_consent, h->n_consent));
    if (t < h->now) t = h->now;
    if (t > t_end) break;
    h->now = t;
    if (h->next_media <= t) {
      if (h->path_up) cr_assert_geq(parley__liveness_on_rtp(h->m, t, h->ssrc, true), 0);
      h->next_media = t + h->media_period;
    }
    for (int k = take_due(h->pending_probe, &h->n_probe, t); k > 0; k--)
      cr_assert_eq(parley__liveness_on_probe_response(h->m, t), 0);
    for (int k = take_due(h->pending_consent, &h->n_consent, t); k > 0; k--)
      cr_assert_eq(parley__liveness_on_consent_response(h->m, t), 0);
    int act = parley__liveness_tick(h->m, t);
    cr_assert_geq(act, 0);
    if (act & PARLEY__LIVENESS_SEND_PROBE) {
      if (h->n_probes < 8192) h->probe_at[h->n_probes++] = t;
      if (h->path_up && h->answer_probes && h->n_probe < 256) h->pending_probe[h->n_probe++] = t + h->rtt;
    }
    if (act & PARLEY__LIVENESS_SEND_CONSENT) {
      if (h->n_consents < 256) h->consent_at[h->n_consents++] = t;
      if (h->path_up && h->answer_consent && h->n_consent < 64)
        h->pending_consent[h->n_consent++] = t + h->rtt;
    }
    drain(h);
  }
  h->now = t_end;
}

/* Cut: from now on nothing the peer sends arrives and our probes go nowhere (answers in flight still
 * arrive, like on a real path). */
static void cut(harness *h) { h->path_up = false; }
static void restore(harness *h) { h->path_up = true; }

static int count(const harness *h, int from, parley_event_kind kind) {
  int c = 0;
  for (int i = from; i < h->n; i++) c += h->log[i].kind == kind;
  return c;
}

/* Index of the first event of kind at or after from matching an optional state/reason (-1: any). */
static int find(const harness *h, int from, parley_event_kind kind, int value) {
  for (int i = from; i < h->n; i++) {
    const parley__event *e = &h->log[i];
    if (e->kind != kind) continue;
    int v = -1;
    if (kind == PARLEY_EVENT_ICE_STATE_CHANGED) v = (int)e->ice_state;
    else if (kind == PARLEY_EVENT_PEER_STATE_CHANGED) v = (int)e->peer_state;
    else if (kind == PARLEY_EVENT_TRACK_STOPPED) v = (int)e->stop_reason;
    else if (kind == PARLEY_EVENT_INTERRUPTED || kind == PARLEY_EVENT_RESUMED) v = (int)e->code;
    if (value < 0 || v == value) return i;
  }
  return -1;
}

static void teardown(harness *h) { parley__liveness_free(h->m); }

Test(liveness, config_defaults_and_validation) {
  parley__liveness_config c;
  parley__liveness_config_init(&c);
  cr_expect_eq(parley__liveness_config_validate(&c), 0);
  cr_expect_eq(c.suspect_after_us, 100 * MS);
  cr_expect_eq(c.probe_interval_us, 20 * MS);
  cr_expect_eq(c.lost_after_us, 760 * MS);
  cr_expect_eq(c.consent_expiry_us, 30 * S);
  cr_expect_eq(c.icmp_confirm_us, 150 * MS);
  cr_expect_eq(parley__liveness_config_validate(NULL), PARLEY_EINVAL);
  parley__liveness_config bad;
  bad = c; bad.icmp_confirm_us = 0;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.suspect_after_us = 0;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.probe_interval_us = -5;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.lost_after_us = bad.suspect_after_us;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.lost_probe_interval_us = 0;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.media_timeout_us = -1;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.consent_jitter = 1.0;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.consent_jitter = 0.0 / 0.0;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.consent_expiry_us = 5 * S; /* shorter than one randomized interval */
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.consent_retry_after_us = 30 * S;
  cr_expect_eq(parley__liveness_config_validate(&bad), PARLEY_EINVAL);
  bad = c; bad.media_timeout_us = 0; /* disabling the media timeout is allowed */
  cr_expect_eq(parley__liveness_config_validate(&bad), 0);

  parley__event st[4];
  parley__event_queue q;
  parley__event_queue_init(&q, st, 4);
  int err = 0;
  bad = c; bad.lost_after_us = 0;
  cr_expect_null(parley__liveness_new(&bad, &q, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__liveness_new(&c, NULL, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__liveness *m = parley__liveness_new(NULL, &q, &err); /* NULL config: defaults */
  cr_assert_not_null(m);
  cr_expect_eq(parley__liveness_ice_state(m), PARLEY_ICE_NEW);
  cr_expect_eq(parley__liveness_next_deadline_us(m), INT64_MAX); /* no timers before ICE connects */
  parley__liveness_free(m);
  parley__liveness_free(NULL);
}

Test(liveness, connect_and_first_media) {
  harness *h = setup(NULL);
  cr_assert_eq(parley__liveness_on_ice_checking(h->m, 0), 0);
  cr_assert_eq(parley__liveness_on_ice_connected(h->m, 10 * MS), 0);
  cr_assert_eq(parley__liveness_on_rtp(h->m, 20 * MS, SSRC_A, true), 0);
  drain(h);
  cr_assert_eq(h->n, 5);
  cr_expect_eq(h->log[0].kind, PARLEY_EVENT_ICE_STATE_CHANGED);
  cr_expect_eq(h->log[0].ice_state, PARLEY_ICE_CHECKING);
  cr_expect_eq(h->log[1].peer_state, PARLEY_PEER_CONNECTING);
  cr_expect_eq(h->log[2].ice_state, PARLEY_ICE_CONNECTED);
  cr_expect_eq(h->log[2].now_us, 10 * MS);
  cr_expect_eq(h->log[3].peer_state, PARLEY_PEER_CONNECTED);
  cr_expect_eq(h->log[4].kind, PARLEY_EVENT_TRACK_STARTED);
  cr_expect_eq(h->log[4].ssrc, SSRC_A);
  cr_expect_eq(h->log[4].now_us, 20 * MS);
  /* More media from the same ssrc starts nothing new. */
  cr_assert_eq(parley__liveness_on_rtp(h->m, 40 * MS, SSRC_A, true), 0);
  drain(h);
  cr_expect_eq(h->n, 5);
  teardown(h);
}

Test(liveness, dtx_every_400ms_never_disconnects) {
  harness *h = setup(NULL);
  h->answer_probes = false; /* even with no probe answered: DTX alone keeps the path alive */
  start_call(h, 400 * MS);
  run_until(h, 600 * S);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_TRACK_STARTED), 1);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_TRACK_STOPPED), 0);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 0);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), -1);
  cr_expect_eq(parley__liveness_ice_state(h->m), PARLEY_ICE_CONNECTED);
  /* The 1500 gaps of 400 ms exceed suspect_after, so the monitor probes in each: 100..380 ms => 15,
   * fewer in the gaps where a consent answer (evidence too) arrived. */
  parley__liveness_stats st;
  parley__liveness_get_stats(h->m, &st);
  cr_expect_leq(st.probes_requested, 1500 * 15);
  cr_expect_geq(st.probes_requested, 1500 * 15 - 15 * (uint64_t)h->n_consents);
  cr_expect_gt(h->n_consents, 100); /* ~ every 5 s */
  teardown(h);
}

Test(liveness, cut_then_restore_event_sequence) {
  harness *h = setup(NULL);
  start_call(h, 400 * MS);
  run_until(h, 10 * S + 50 * MS); /* last media at 10.0 s; the cut comes before suspect_after */
  int mark = h->n;
  cut(h);
  int64_t cut_at = h->now;
  run_until(h, 15 * S);
  /* Declared lost lost_after after the last arrival (media at 10.0 s; probes answered until the cut). */
  int i_ice = find(h, mark, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED);
  cr_assert_geq(i_ice, 0);
  cr_expect_eq(h->log[i_ice].now_us, 10 * S + h->cfg.lost_after_us);
  cr_expect_leq(h->log[i_ice].now_us - cut_at, 1 * S);
  cr_assert_eq(h->n - mark, 4);
  cr_expect_eq(h->log[mark + 1].kind, PARLEY_EVENT_PEER_STATE_CHANGED);
  cr_expect_eq(h->log[mark + 1].peer_state, PARLEY_PEER_DISCONNECTED);
  cr_expect_eq(h->log[mark + 2].kind, PARLEY_EVENT_TRACK_STOPPED);
  cr_expect_eq(h->log[mark + 2].stop_reason, PARLEY_STOP_TIMEOUT);
  cr_expect_eq(h->log[mark + 2].ssrc, SSRC_A);
  cr_expect_eq(h->log[mark + 3].kind, PARLEY_EVENT_INTERRUPTED);
  cr_expect_eq(h->log[mark + 3].code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_expect_gt(strlen(h->log[mark + 3].message), 0);
  cr_expect(parley__liveness_interrupted(h->m));
  /* Restore: the next slow probe is answered one RTT later, then media starts the track again. */
  mark = h->n;
  restore(h);
  int64_t restore_at = h->now;
  run_until(h, 17 * S);
  cr_assert_geq(h->n - mark, 4);
  cr_expect_eq(h->log[mark].kind, PARLEY_EVENT_ICE_STATE_CHANGED);
  cr_expect_eq(h->log[mark].ice_state, PARLEY_ICE_CONNECTED);
  cr_expect_leq(h->log[mark].now_us - restore_at, 200 * MS + h->rtt);
  cr_expect_eq(h->log[mark + 1].peer_state, PARLEY_PEER_CONNECTED);
  cr_expect_eq(h->log[mark + 2].kind, PARLEY_EVENT_RESUMED);
  cr_expect_eq(h->log[mark + 2].code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_expect_eq(h->log[mark + 3].kind, PARLEY_EVENT_TRACK_STARTED);
  cr_expect_eq(h->log[mark + 3].ssrc, SSRC_A);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_RESUMED), 1);
  cr_expect_not(parley__liveness_interrupted(h->m));
  /* A second outage raises a second interrupted/resumed pair, never more. */
  cut(h);
  run_until(h, 20 * S);
  restore(h);
  run_until(h, 22 * S);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 2);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_RESUMED), 2);
  teardown(h);
}

Test(liveness, probes_at_configured_pace) {
  parley__liveness_config cfg;
  parley__liveness_config_init(&cfg);
  cfg.suspect_after_us = 200 * MS; /* round figures, so the schedule below reads plainly */
  cfg.lost_after_us = 800 * MS;
  harness *h = setup(&cfg);
  start_call(h, 20 * MS);
  run_until(h, 5 * S); /* media every 20 ms: no probing at all */
  cr_expect_eq(h->n_probes, 0);
  cut(h); /* last media at exactly 5.0 s */
  run_until(h, 7 * S);
  /* Fast probes at 5.200, 5.220, ..., 5.780 (30), lost at 5.800, slow probes at 6.000, 6.200, ...,
   * 7.000 (6). */
  cr_assert_geq(h->n_probes, 30 + 6);
  for (int i = 0; i < 30; i++) cr_expect_eq(h->probe_at[i], 5 * S + 200 * MS + i * 20 * MS);
  for (int i = 30; i < h->n_probes; i++)
    cr_expect_eq(h->probe_at[i], 5 * S + 800 * MS + (i - 29) * 200 * MS);
  cr_expect_eq(h->n_probes, 30 + 6);
  parley__liveness_stats st;
  parley__liveness_get_stats(h->m, &st);
  cr_expect_eq(st.probes_requested, (uint64_t)h->n_probes);
  cr_expect_eq(st.outages, 1);
  teardown(h);
}

Test(liveness, answered_probes_keep_a_silent_peer_connected) {
  parley__liveness_config c;
  parley__liveness_config_init(&c);
  c.media_timeout_us = 0;
  harness *h = setup(&c);
  start_call(h, 0); /* no media at all: only probe answers */
  run_until(h, 60 * S);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), -1);
  cr_expect_gt(h->n_probes, 60 * 4); /* one probe per ~240 ms of silence */
  teardown(h);
}

Test(liveness, bye_stops_track_without_interruption) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 2 * S);
  int mark = h->n;
  cr_assert_eq(parley__liveness_on_rtcp(h->m, h->now), 0);
  cr_assert_eq(parley__liveness_on_rtcp_bye(h->m, h->now, SSRC_A), 0);
  drain(h);
  cr_assert_eq(h->n - mark, 1);
  cr_expect_eq(h->log[mark].kind, PARLEY_EVENT_TRACK_STOPPED);
  cr_expect_eq(h->log[mark].stop_reason, PARLEY_STOP_BYE);
  cr_expect_eq(h->log[mark].ssrc, SSRC_A);
  /* Stragglers of the byed ssrc do not restart the track. */
  run_until(h, 3 * S);
  cr_expect_eq(count(h, mark, PARLEY_EVENT_TRACK_STARTED), 0);
  /* The peer hangs up for good: the path goes away, ICE says so, but no interrupted. */
  h->media_period = 0;
  h->next_media = INT64_MAX;
  cut(h);
  run_until(h, 6 * S);
  cr_expect_geq(find(h, mark, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), 0);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 0);
  cr_expect_eq(count(h, mark, PARLEY_EVENT_TRACK_STOPPED), 1);
  /* A new stream (new ssrc) after the path comes back starts a new track. */
  restore(h);
  h->ssrc = SSRC_B;
  h->media_period = 20 * MS;
  h->next_media = h->now;
  run_until(h, 7 * S);
  int i = find(h, mark, PARLEY_EVENT_TRACK_STARTED, -1);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].ssrc, SSRC_B);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_RESUMED), 0);
  teardown(h);
}

Test(liveness, ssrc_change_stops_old_starts_new_without_flapping) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n;
  cr_assert_eq(parley__liveness_on_rtp(h->m, h->now, SSRC_B, true), 0);
  cr_assert_eq(parley__liveness_on_rtp(h->m, h->now, SSRC_A, true), 0); /* late packet of the old */
  cr_assert_eq(parley__liveness_on_rtp(h->m, h->now, SSRC_B, true), 0);
  drain(h);
  cr_assert_eq(h->n - mark, 2);
  cr_expect_eq(h->log[mark].kind, PARLEY_EVENT_TRACK_STOPPED);
  cr_expect_eq(h->log[mark].stop_reason, PARLEY_STOP_SSRC_CHANGED);
  cr_expect_eq(h->log[mark].ssrc, SSRC_A);
  cr_expect_eq(h->log[mark + 1].kind, PARLEY_EVENT_TRACK_STARTED);
  cr_expect_eq(h->log[mark + 1].ssrc, SSRC_B);
  teardown(h);
}

Test(liveness, inactive_direction_stops_track_and_excuses_silence) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n;
  cr_assert_eq(parley__liveness_on_remote_direction(h->m, h->now, PARLEY__DIR_INACTIVE), 0);
  drain(h);
  cr_assert_eq(h->n - mark, 1);
  cr_expect_eq(h->log[mark].kind, PARLEY_EVENT_TRACK_STOPPED);
  cr_expect_eq(h->log[mark].stop_reason, PARLEY_STOP_INACTIVE);
  /* On hold: no media for 20 s, probes answered: no timeout, no disconnect. */
  h->media_period = 0;
  h->next_media = INT64_MAX;
  run_until(h, 21 * S);
  cr_expect_eq(h->n - mark, 1);
  /* Off hold. */
  cr_assert_eq(parley__liveness_on_remote_direction(h->m, h->now, PARLEY__DIR_SENDRECV), 0);
  h->media_period = 20 * MS;
  h->next_media = h->now;
  run_until(h, 22 * S);
  cr_expect_eq(count(h, mark, PARLEY_EVENT_TRACK_STARTED), 1);
  cr_expect_eq(parley__liveness_on_remote_direction(h->m, h->now, (parley__liveness_direction)9),
               PARLEY_EINVAL);
  teardown(h);
}

Test(liveness, media_timeout_with_live_path_stops_track_only) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n;
  h->media_period = 0; /* the sender stops without BYE; the peer still answers probes */
  h->next_media = INT64_MAX;
  run_until(h, 10 * S);
  int i = find(h, mark, PARLEY_EVENT_TRACK_STOPPED, PARLEY_STOP_TIMEOUT);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].now_us, 1 * S + 5 * S);
  cr_expect_eq(h->n - mark, 1); /* no ICE change, no interrupted */
  teardown(h);
}

/* The peer process died: nothing more arrives, and each of our probes bounces (ICMP port unreachable)
 * half a round trip after it left. Runs to t_end feeding those bounces. */
static void run_dead_peer(harness *h, int64_t t_end) {
  cut(h);
  int seen = h->n_probes;
  while (h->now < t_end) {
    int64_t t = min64(t_end, h->now + 1 * MS);
    run_until(h, t);
    for (; seen < h->n_probes; seen++) {
      if (h->probe_at[seen] + h->rtt / 2 > h->now) break;
      cr_assert_geq(parley__liveness_on_socket_error(h->m, h->now, ECONNREFUSED), 0);
      drain(h);
    }
  }
}

Test(liveness, killed_peer_is_peer_gone_once_probes_bounce) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n;
  cut(h);
  /* Our media bounced: one error is grounds to probe at once, nothing more. */
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ECONNREFUSED), 0);
  drain(h);
  cr_expect_eq(h->n, mark);
  cr_expect_eq(parley__liveness_next_deadline_us(h->m), h->now);
  int64_t t0 = h->now;
  run_dead_peer(h, 2 * S);
  int i = find(h, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE);
  cr_assert_geq(i, 0);
  /* No round trip measured yet: the first probe (sent at t0) was given icmp_confirm to be answered. */
  cr_expect_eq(h->log[i].now_us, t0 + h->cfg.icmp_confirm_us);
  cr_expect(strstr(h->log[i].message, "; ECONNREFUSED: Connection refused"), "%s", h->log[i].message);
  cr_expect_eq(h->log[mark].ice_state, PARLEY_ICE_DISCONNECTED);
  cr_expect_eq(h->log[mark].now_us, t0 + h->cfg.icmp_confirm_us);
  int k = find(h, mark, PARLEY_EVENT_TRACK_STOPPED, -1);
  cr_assert_geq(k, 0);
  cr_expect_eq(h->log[k].stop_reason, PARLEY_STOP_PEER_GONE);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST), -1);
  /* The peer comes back (e.g. restarted): resumed carries the outage's code. */
  restore(h);
  run_until(h, 3 * S);
  int r = find(h, mark, PARLEY_EVENT_RESUMED, -1);
  cr_assert_geq(r, 0);
  cr_expect_eq(h->log[r].code, PARLEY_INTERRUPT_PEER_GONE);
  cr_expect_eq(parley__liveness_on_socket_error(h->m, h->now, 0), PARLEY_EINVAL);
  teardown(h);
}

Test(liveness, measured_round_trip_sets_the_icmp_window) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  parley__liveness_on_rtt(h->m, 40 * MS); /* srtt 40, rttvar 20 */
  parley__liveness_on_rtt(h->m, 40 * MS); /* srtt 40, rttvar 15 */
  parley__liveness_on_rtt(h->m, -1);        /* ignored */
  parley__liveness_on_rtt(h->m, 20 * S);    /* ignored */
  parley__liveness_on_rtt(NULL, 40 * MS);   /* harmless */
  int mark = h->n;
  cut(h);
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ECONNREFUSED), 0);
  int64_t t0 = h->now;
  run_dead_peer(h, 2 * S);
  int i = find(h, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].now_us, t0 + 40 * MS + 4 * 15 * MS); /* RFC 6298: srtt + 4 rttvar */
  teardown(h);
}

Test(liveness, forged_icmp_while_the_peer_talks_raises_nothing) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n, probes = h->n_probes;
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ECONNREFUSED), 0);
  cr_expect_eq(parley__liveness_next_deadline_us(h->m), h->now);
  run_until(h, 1 * S);
  cr_expect_eq(h->n_probes, probes + 1, "one error: one probe at once");
  cr_expect_eq(h->probe_at[probes], 1 * S);
  run_until(h, 5 * S);
  cr_expect_eq(h->n, mark, "no ICE change, no track-stopped, no interrupted");
  teardown(h);
}

Test(liveness, forged_icmp_flood_while_probes_are_answered_raises_nothing) {
  harness *h = setup(NULL);
  start_call(h, 400 * MS); /* a silent (DTX) peer: only probe answers prove it alive */
  run_until(h, 1 * S);
  int mark = h->n;
  for (int64_t t = 1 * S; t < 4 * S; t += 10 * MS) { /* a forger sends one every 10 ms for 3 s */
    run_until(h, t);
    cr_assert_eq(parley__liveness_on_socket_error(h->m, t, ECONNREFUSED), 0);
    drain(h);
  }
  run_until(h, 6 * S);
  cr_expect_eq(h->n, mark, "no ICE change, no track-stopped, no interrupted");
  teardown(h);
}

Test(liveness, one_icmp_then_silence_is_network_lost) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  cut(h); /* a blackout; a single (stray or forged) error, then nothing: probes fail but ICMP stopped */
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ECONNREFUSED), 0);
  run_until(h, 3 * S);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE), -1);
  int i = find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].now_us, 1 * S + h->cfg.lost_after_us);
  cr_expect(strstr(h->log[i].message, "ECONNREFUSED"), "the error is named: %s", h->log[i].message);
  int k = find(h, 0, PARLEY_EVENT_TRACK_STOPPED, -1);
  cr_assert_geq(k, 0);
  cr_expect_eq(h->log[k].stop_reason, PARLEY_STOP_TIMEOUT);
  teardown(h);
}

/* The outage message names the socket error that came with the silence (errno's name and text), and
 * only one since the last evidence: an error the peer's answers have since disproved is not named. */
Test(liveness, outage_message_names_the_socket_error) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, EHOSTUNREACH), 0); /* a route flapped */
  run_until(h, 2 * S);                                                           /* media: evidence */
  cut(h);
  run_until(h, 4 * S);
  int i = find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_assert_geq(i, 0);
  cr_expect_null(strstr(h->log[i].message, "EHOSTUNREACH"), "a disproved error named: %s", h->log[i].message);
  cr_expect_null(strchr(h->log[i].message, ';'), "%s", h->log[i].message);
  restore(h);
  run_until(h, 6 * S);
  cr_assert_geq(find(h, i, PARLEY_EVENT_RESUMED, -1), 0);
  int mark = h->n;
  cut(h);
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ENETUNREACH), 0);
  run_until(h, 8 * S);
  i = find(h, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_assert_geq(i, 0);
  cr_expect(strstr(h->log[i].message, "; ENETUNREACH: Network is unreachable"), "%s", h->log[i].message);
  cr_expect_lt(strlen(h->log[i].message), PARLEY__EVENT_MESSAGE_MAX - 1, "truncated: %s", h->log[i].message);
  teardown(h);
}

Test(liveness, network_unreachable_starts_probing_at_once) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int before = h->n_probes;
  cr_assert_eq(parley__liveness_on_socket_error(h->m, h->now, ENETUNREACH), 0);
  cr_expect_eq(parley__liveness_next_deadline_us(h->m), h->now);
  cr_expect_eq(parley__liveness_tick(h->m, h->now) & PARLEY__LIVENESS_SEND_PROBE,
               PARLEY__LIVENESS_SEND_PROBE);
  (void)before;
  drain(h);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 0);
  teardown(h);
}

Test(liveness, consent_expiry_fails_with_consent_expired) {
  harness *h = setup(NULL);
  h->answer_consent = false; /* the peer withdrew consent but media still arrives */
  start_call(h, 20 * MS);
  run_until(h, 40 * S);
  int i = find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_FAILED);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].now_us, 30 * S);
  cr_expect_eq(h->log[i + 1].peer_state, PARLEY_PEER_FAILED);
  cr_expect_eq(h->log[i + 2].stop_reason, PARLEY_STOP_TIMEOUT);
  cr_expect_eq(h->log[i + 3].kind, PARLEY_EVENT_INTERRUPTED);
  cr_expect_eq(h->log[i + 3].code, PARLEY_INTERRUPT_CONSENT_EXPIRED);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), -1);
  /* Consent checks: one as ICE connects, the next after 4..6 s, then every 4..6 s until one is 7.5 s
   * overdue, then ~1 s. */
  cr_assert_geq(h->n_consents, 20);
  cr_expect_eq(h->consent_at[0], 0);
  cr_expect(h->consent_at[1] >= 4 * S && h->consent_at[1] <= 6 * S);
  for (int k = 2; k < h->n_consents; k++) {
    int64_t gap = h->consent_at[k] - h->consent_at[k - 1];
    if (h->consent_at[k - 1] >= 7500 * MS) cr_expect(gap >= 800 * MS && gap <= 1200 * MS);
    else cr_expect(gap > 0 && gap <= 6 * S);
  }
  /* After failure: silent, no actions, media does not revive it. */
  cr_expect_eq(parley__liveness_next_deadline_us(h->m), INT64_MAX);
  cr_expect_eq(h->log[h->n - 1].kind, PARLEY_EVENT_INTERRUPTED);
  cr_expect_lt(h->consent_at[h->n_consents - 1], 30 * S);
  /* An ICE restart brings it back with one resumed. */
  int mark = h->n;
  cr_assert_eq(parley__liveness_on_ice_checking(h->m, h->now), 0);
  cr_assert_eq(parley__liveness_on_ice_connected(h->m, h->now + 100 * MS), 0);
  drain(h);
  cr_expect_eq(h->log[mark].ice_state, PARLEY_ICE_CHECKING);
  cr_expect_geq(find(h, mark, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED), 0);
  cr_expect_eq(find(h, mark, PARLEY_EVENT_RESUMED, PARLEY_INTERRUPT_CONSENT_EXPIRED) >= 0, 1);
  teardown(h);
}

Test(liveness, consent_expiry_during_outage_reports_failed_once_interrupted) {
  harness *h = setup(NULL);
  start_call(h, 400 * MS);
  run_until(h, 5 * S);
  cut(h);
  run_until(h, 45 * S);
  cr_expect_geq(find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), 0);
  int i = find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_FAILED);
  cr_assert_geq(i, 0);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_PEER_STATE_CHANGED, PARLEY_PEER_FAILED), i + 1);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST) >= 0, 1);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_CONSENT_EXPIRED), -1);
  teardown(h);
}

Test(liveness, consent_survives_lost_checks_while_media_flows) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  /* Answer nothing for 25 s (consent checks lost), then answer again: the retries catch it in time. */
  h->answer_consent = false;
  run_until(h, 25 * S);
  h->answer_consent = true;
  run_until(h, 120 * S);
  cr_expect_eq(find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_FAILED), -1);
  teardown(h);
}

Test(liveness, undecodable_packets_are_not_evidence) {
  harness *h = setup(NULL);
  start_call(h, 0);
  h->answer_probes = false;
  /* Garbage every 10 ms from t = 0: the path is still declared lost at 0.8 s, no track starts. */
  for (int64_t t = 0; t <= 1 * S; t += 10 * MS) {
    cr_assert_eq(parley__liveness_on_rtp(h->m, t, SSRC_A, false), 0);
    parley__liveness_tick(h->m, t);
  }
  drain(h);
  int i = find(h, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED);
  cr_assert_geq(i, 0);
  cr_expect_eq(h->log[i].now_us, h->cfg.lost_after_us);
  cr_expect_eq(count(h, 0, PARLEY_EVENT_TRACK_STARTED), 0);
  parley__liveness_stats st;
  parley__liveness_get_stats(h->m, &st);
  cr_expect_eq(st.undecodable_rtp, 101);
  teardown(h);
}

Test(liveness, close_reports_closed_and_rejects_inputs) {
  harness *h = setup(NULL);
  start_call(h, 20 * MS);
  run_until(h, 1 * S);
  int mark = h->n;
  cr_assert_eq(parley__liveness_close(h->m, h->now), 0);
  drain(h);
  cr_assert_eq(h->n - mark, 2);
  cr_expect_eq(h->log[mark].ice_state, PARLEY_ICE_CLOSED);
  cr_expect_eq(h->log[mark + 1].peer_state, PARLEY_PEER_CLOSED);
  cr_expect_eq(parley__liveness_peer_state(h->m), PARLEY_PEER_CLOSED);
  cr_expect_eq(parley__liveness_next_deadline_us(h->m), INT64_MAX);
  cr_expect_eq(parley__liveness_on_rtp(h->m, h->now, SSRC_A, true), PARLEY_ESTATE);
  cr_expect_eq(parley__liveness_on_probe_response(h->m, h->now), PARLEY_ESTATE);
  cr_expect_eq(parley__liveness_on_ice_connected(h->m, h->now), PARLEY_ESTATE);
  cr_expect_eq(parley__liveness_tick(h->m, h->now + S), 0);
  cr_expect_eq(parley__liveness_close(h->m, h->now), 0);
  drain(h);
  cr_expect_eq(h->n - mark, 2);
  teardown(h);
}

Test(liveness, rejects_time_going_backwards_and_null) {
  harness *h = setup(NULL);
  start_call(h, 0);
  cr_assert_eq(parley__liveness_on_rtp(h->m, 100 * MS, SSRC_A, true), 0);
  cr_expect_eq(parley__liveness_on_rtp(h->m, 99 * MS, SSRC_A, true), PARLEY_EINVAL);
  cr_expect_eq(parley__liveness_tick(h->m, 50 * MS), PARLEY_EINVAL);
  cr_expect_eq(parley__liveness_on_rtcp(NULL, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__liveness_tick(NULL, 0), PARLEY_EINVAL);
  teardown(h);
}

Test(liveness, full_queue_reports_efull_but_state_advances) {
  parley__event st[1];
  parley__event_queue q;
  parley__event_queue_init(&q, st, 1);
  parley__liveness *m = parley__liveness_new(NULL, &q, NULL);
  cr_assert_not_null(m);
  cr_expect_eq(parley__liveness_on_ice_connected(m, 0), PARLEY_EFULL); /* ice + peer: 2 events */
  cr_expect_eq(q.dropped, 1);
  cr_expect_eq(parley__liveness_peer_state(m), PARLEY_PEER_CONNECTED);
  parley__liveness_free(m);
}

/* ---- over simnet: the peer process dies, its port bounces our packets (ICMP port unreachable) ---- */

typedef struct duo {
  parley__simnet *net;
  struct sockaddr_storage a, b;
  int a_id;
  harness *h;
} duo;

static void duo_a_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                       const uint8_t *data, size_t len, int64_t now_us) {
  (void)ctx;
  if (len >= 1 && data[0] == 'P') parley__simnet_send(net, to, from, "R", 1, now_us); /* probe echo */
}

static void duo_b_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                       const uint8_t *data, size_t len, int64_t now_us) {
  (void)net;
  (void)from;
  (void)to;
  duo *d = ctx;
  if (len < 1) return;
  if (data[0] == 'M') cr_assert_geq(parley__liveness_on_rtp(d->h->m, now_us, SSRC_A, true), 0);
  if (data[0] == 'R') cr_assert_geq(parley__liveness_on_probe_response(d->h->m, now_us), 0);
  drain(d->h);
}

static void duo_b_error(void *ctx, parley__simnet *net, const struct sockaddr *dest, int errno_value,
                        int64_t now_us) {
  (void)net;
  (void)dest;
  duo *d = ctx;
  cr_assert_geq(parley__liveness_on_socket_error(d->h->m, now_us, errno_value), 0);
  drain(d->h);
}

Test(liveness, peer_process_death_over_simnet_is_peer_gone) {
  static duo d;
  memset(&d, 0, sizeof d);
  d.h = setup(NULL);
  d.net = parley__simnet_new(4, 1024, 32, 5, NULL);
  cr_assert_not_null(d.net);
  parley__simnet_link link = {.delay_us = 30 * MS, .jitter_us = 10 * MS};
  parley__simnet_set_link(d.net, &link);
  parley__simnet_addr4(&d.a, "127.0.0.1", 4000);
  parley__simnet_addr4(&d.b, "127.0.0.1", 4001);
  d.a_id = parley__simnet_add_endpoint(d.net, (struct sockaddr *)&d.a, duo_a_recv, NULL, &d);
  parley__simnet_add_endpoint(d.net, (struct sockaddr *)&d.b, duo_b_recv, duo_b_error, &d);
  cr_assert_eq(parley__liveness_on_ice_connected(d.h->m, 0), 0);
  const struct sockaddr *a = (struct sockaddr *)&d.a, *b = (struct sockaddr *)&d.b;
  int64_t next_a = 0, next_b = 0, killed_at = -1;
  for (int64_t t = 0; t <= 8 * S;) {
    if (killed_at < 0 && t >= 5 * S) {
      parley__simnet_remove_endpoint(d.net, d.a_id); /* the peer process exits */
      killed_at = t;
    }
    if (t >= next_a) { /* A: DTX while alive */
      if (killed_at < 0) parley__simnet_send(d.net, a, b, "M", 1, t);
      next_a = t + 400 * MS;
    }
    if (t >= next_b) { /* B talks: one packet per 20 ms towards A */
      parley__simnet_send(d.net, b, a, "m", 1, t);
      next_b = t + 20 * MS;
    }
    parley__simnet_deliver_until(d.net, t);
    int act = parley__liveness_tick(d.h->m, t);
    cr_assert_geq(act, 0);
    if (act & PARLEY__LIVENESS_SEND_PROBE) parley__simnet_send(d.net, b, a, "P", 1, t);
    drain(d.h);
    int64_t nt = min64(min64(next_a, next_b), parley__simnet_next_delivery_us(d.net));
    nt = min64(nt, parley__liveness_next_deadline_us(d.h->m));
    if (killed_at < 0) nt = min64(nt, 5 * S);
    t = nt > t ? nt : t + 1;
  }
  cr_expect_eq(find(d.h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST), -1);
  int i = find(d.h, 0, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE);
  cr_assert_geq(i, 0);
  /* The first packet B sends after the death bounces one one-way delay (<= 40 ms) later; B probes at
   * once, the probes bounce too, and the first stays unanswered for icmp_confirm (no RTT measured). */
  cr_expect_leq(d.h->log[i].now_us - killed_at, 20 * MS + 40 * MS + d.h->cfg.icmp_confirm_us);
  int k = find(d.h, 0, PARLEY_EVENT_TRACK_STOPPED, -1);
  cr_assert_geq(k, 0);
  cr_expect_eq(d.h->log[k].stop_reason, PARLEY_STOP_PEER_GONE);
  cr_expect_eq(count(d.h, 0, PARLEY_EVENT_INTERRUPTED), 1);
  parley__simnet_free(d.net);
  teardown(d.h);
}

/* Debug builds check the monitor's thread contract (base/thread_check.h): shared under a mutex
 * (cfg.guard), every input must hold it. */
#ifdef PARLEY_THREAD_CHECKS
#include <pthread.h>
#include <signal.h>

Test(liveness_thread_check, a_guarded_monitor_fed_without_its_lock_aborts, .signal = SIGABRT) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  parley__liveness_config c;
  parley__liveness_config_init(&c);
  c.guard = &m;
  parley__event q_store[8];
  parley__event_queue q;
  parley__event_queue_init(&q, q_store, 8);
  int err;
  parley__liveness *mon = parley__liveness_new(&c, &q, &err);
  cr_assert_not_null(mon);
  pthread_mutex_lock(&m);
  cr_assert_eq(parley__liveness_on_ice_checking(mon, 0), 0, "held: fine");
  pthread_mutex_unlock(&m);
  parley__liveness_on_ice_connected(mon, 1000);
}
#endif
