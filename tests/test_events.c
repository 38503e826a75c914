/* test_events.c: event names, the ICE -> peer-connection aggregation, the event FIFO and the signaling
 * state machine (W3C setLocal/RemoteDescription rules). */
#include <criterion/criterion.h>
#include <string.h>

#include "parley/parley.h"
#include "engine/signaling.h"
#include "transport/events.h"

Test(events, names_are_stable_strings) {
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_TRACK_STOPPED), "track-stopped");
  /* One vocabulary: the internal events are the public ones, with the public names. */
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_ICE_STATE_CHANGED), "ice-connection-state-changed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_PEER_STATE_CHANGED), "peer-connection-state-changed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_CLOSED), "closed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_SPEAKERS_CHANGED), "speakers-changed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_KIND_COUNT), "unknown");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_RESUMED), "resumed");
  cr_expect_str_eq(parley_stop_reason_name(PARLEY_STOP_SSRC_CHANGED), "ssrc-changed");
  cr_expect_str_eq(parley_stop_reason_name(PARLEY_STOP_PEER_GONE), "peer-gone");
  cr_expect_str_eq(parley_ice_state_name(PARLEY_ICE_DISCONNECTED), "disconnected");
  cr_expect_str_eq(parley_peer_state_name(PARLEY_PEER_CONNECTING), "connecting");
  cr_expect_str_eq(parley_signaling_state_name(PARLEY_SIGNALING_HAVE_REMOTE_OFFER), "have-remote-offer");
  cr_expect_str_eq(parley_interrupt_code_name(PARLEY_INTERRUPT_NETWORK_LOST), "network-lost");
  cr_expect_str_eq(parley_interrupt_code_name(PARLEY_INTERRUPT_CONSENT_EXPIRED), "consent-expired");
  cr_expect_str_eq(parley__sdp_op_name(PARLEY__SDP_SET_REMOTE_ANSWER), "set-remote-answer");
  cr_expect_str_eq(parley_ice_state_name((parley_ice_state)99), "unknown");
  cr_expect_str_eq(parley_interrupt_code_name((parley_interrupt_code)-1), "unknown");
  /* Every in-range value has a distinct name. */
  for (int i = 0; i < PARLEY__ICE_STATE_COUNT; i++)
    for (int j = i + 1; j < PARLEY__ICE_STATE_COUNT; j++)
      cr_expect_str_neq(parley_ice_state_name((parley_ice_state)i),
                        parley_ice_state_name((parley_ice_state)j));
}

Test(events, peer_state_aggregates_ice_per_w3c) {
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_NEW), PARLEY_PEER_NEW);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_CHECKING), PARLEY_PEER_CONNECTING);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_CONNECTED), PARLEY_PEER_CONNECTED);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_COMPLETED), PARLEY_PEER_CONNECTED);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_DISCONNECTED), PARLEY_PEER_DISCONNECTED);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_FAILED), PARLEY_PEER_FAILED);
  cr_expect_eq(parley__peer_state_from_ice(PARLEY_ICE_CLOSED), PARLEY_PEER_CLOSED);
}

Test(events, ice_state_reaches_completed_per_w3c) {
  const parley_ice_state C = PARLEY_ICE_CONNECTED, D = PARLEY_ICE_COMPLETED, K = PARLEY_ICE_CHECKING;
  /* The monitor's state stands unless it is connected. */
  for (int s = 0; s < PARLEY__ICE_STATE_COUNT; s++) {
    parley_ice_state m = (parley_ice_state)s;
    if (m != C) cr_expect_eq(parley__ice_state_reported(m, D, D), m, "monitor state %d", s);
  }
  /* Connected: completed once the agent is done checking, and it stays so through a restart. */
  cr_expect_eq(parley__ice_state_reported(C, C, K), C);
  cr_expect_eq(parley__ice_state_reported(C, D, C), D);
  cr_expect_eq(parley__ice_state_reported(C, K, D), D);
  cr_expect_eq(parley__ice_state_reported(C, C, D), D);
  /* Back from disconnected: connected until the agent is (still) completed. */
  cr_expect_eq(parley__ice_state_reported(C, K, PARLEY_ICE_DISCONNECTED), C);
  cr_expect_eq(parley__ice_state_reported(C, D, PARLEY_ICE_DISCONNECTED), D);
}

Test(events, queue_is_fifo_and_counts_drops) {
  parley__event storage[3];
  parley__event_queue q;
  cr_expect_eq(parley__event_queue_init(&q, storage, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__event_queue_init(&q, NULL, 3), PARLEY_EINVAL);
  cr_assert_eq(parley__event_queue_init(&q, storage, 3), 0);
  parley__event ev, out;
  memset(&ev, 0, sizeof ev);
  cr_expect_eq(parley__event_queue_pop(&q, &out), PARLEY_EAGAIN);
  for (int round = 0; round < 5; round++) { /* wraps the ring several times */
    for (int i = 0; i < 3; i++) {
      ev.now_us = round * 10 + i;
      cr_expect_eq(parley__event_queue_push(&q, &ev), 0);
    }
    cr_expect_eq(parley__event_queue_push(&q, &ev), PARLEY_EFULL);
    cr_expect_eq(parley__event_queue_count(&q), 3);
    for (int i = 0; i < 3; i++) {
      cr_expect_eq(parley__event_queue_pop(&q, &out), 0);
      cr_expect_eq(out.now_us, round * 10 + i);
    }
  }
  cr_expect_eq(q.dropped, 5);
}

Test(events, format_mentions_kind_and_reason) {
  parley__event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_TRACK_STOPPED;
  ev.now_us = 1250000;
  ev.ssrc = 0x1234;
  ev.stop_reason = PARLEY_STOP_TIMEOUT;
  char buf[128];
  cr_assert_gt(parley__event_format(&ev, buf, sizeof buf), 0);
  cr_expect_not_null(strstr(buf, "track-stopped"));
  cr_expect_not_null(strstr(buf, "reason=timeout"));
  cr_expect_not_null(strstr(buf, "0x00001234"));
  cr_expect_eq(parley__event_format(NULL, buf, sizeof buf), PARLEY_EINVAL);
}

Test(signaling, offer_answer_round_trips) {
  parley_signaling_state s = PARLEY_SIGNALING_STABLE;
  parley__event ev;
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_OFFER, 5, &ev), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_HAVE_LOCAL_OFFER);
  cr_expect_eq(ev.kind, PARLEY_EVENT_SIGNALING_STATE_CHANGED);
  cr_expect_eq(ev.signaling_state, PARLEY_SIGNALING_HAVE_LOCAL_OFFER);
  cr_expect_eq(ev.now_us, 5);
  /* Replacing our own offer is allowed and changes nothing. */
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_OFFER, 6, &ev), 0);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_ANSWER, 7, &ev), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_STABLE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_OFFER, 8, NULL), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_HAVE_REMOTE_OFFER);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_OFFER, 8, NULL), 0);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_ANSWER, 9, NULL), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_STABLE);
}

Test(signaling, invalid_transitions_are_estate_and_keep_state) {
  parley_signaling_state s = PARLEY_SIGNALING_STABLE;
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_ANSWER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_ANSWER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_ROLLBACK, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(s, PARLEY_SIGNALING_STABLE);
  parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_OFFER, 0, NULL);
  /* Glare: a remote offer while ours is pending must be rolled back first. */
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_OFFER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_ANSWER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(s, PARLEY_SIGNALING_HAVE_LOCAL_OFFER);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_ROLLBACK, 0, NULL), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_STABLE);
  parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_OFFER, 0, NULL);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_LOCAL_OFFER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_SET_REMOTE_ANSWER, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(s, PARLEY_SIGNALING_HAVE_REMOTE_OFFER);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_CLOSE, 0, NULL), 1);
  cr_expect_eq(s, PARLEY_SIGNALING_CLOSED);
  for (int op = 0; op < PARLEY__SDP_CLOSE; op++)
    cr_expect_eq(parley__signaling_apply(&s, (parley__sdp_op)op, 0, NULL), PARLEY_ESTATE);
  cr_expect_eq(parley__signaling_apply(&s, PARLEY__SDP_CLOSE, 0, NULL), 0);
  cr_expect_eq(parley__signaling_apply(NULL, PARLEY__SDP_CLOSE, 0, NULL), PARLEY_EINVAL);
  s = PARLEY_SIGNALING_STABLE;
  cr_expect_eq(parley__signaling_apply(&s, (parley__sdp_op)42, 0, NULL), PARLEY_EINVAL);
}
