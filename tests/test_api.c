#define _POSIX_C_SOURCE 200809L
/* test_api.c: the public API's contract at its edges: every entry point refuses NULL and bad values
 * with a clear code, wrong-state calls get PARLEY_ESTATE, malformed SDP gets PARLEY_EPARSE with the line,
 * every error code has a message and a name. Engines here use no audio I/O and loopback only. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <time.h>
#include <string.h>

#include "parley/parley.h"
#include "tests/call_helpers.h"

static void noop(const parley_event *ev, void *user) {
  (void)ev;
  (void)user;
}

Test(api, strerror_and_names_for_every_code) {
  int codes[] = {
#define X(name, value, msg) PARLEY_##name,
      PARLEY_ERRNO_MAP(X)
#undef X
  };
  const char *msgs[] = {
#define X(name, value, msg) msg,
      PARLEY_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  cr_assert_geq(n, 20);
  for (size_t i = 0; i < n; i++) {
    cr_expect_lt(codes[i], 0);
    cr_expect_str_eq(parley_strerror(codes[i]), msgs[i]);
    cr_expect_str_neq(parley_strerror(codes[i]), "unknown error");
    cr_expect_eq(strncmp(parley_err_name(codes[i]), "PARLEY_E", 8), 0, "%s", parley_err_name(codes[i]));
    for (size_t j = 0; j < i; j++) cr_expect_neq(codes[i], codes[j], "codes are distinct");
  }
  cr_expect_str_eq(parley_err_name(PARLEY_EPARSE), "PARLEY_EPARSE");
  cr_expect_str_eq(parley_strerror(0), "success");
  cr_expect_str_eq(parley_strerror(-9999), "unknown error");
  cr_expect_not_null(parley_version());
}

Test(api, event_and_state_names) {
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_TRACK_STARTED), "track-started");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_TRACK_STOPPED), "track-stopped");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_ICE_STATE_CHANGED), "ice-connection-state-changed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_NEGOTIATION_NEEDED), "negotiation-needed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_ICE_CANDIDATE_ERROR), "ice-candidate-error");
  cr_expect_lt(PARLEY_EVENT_ICE_CANDIDATE_ERROR, PARLEY_EVENT_CALL_KIND_COUNT, "a call event");
  cr_expect_lt(PARLEY_EVENT_NEGOTIATION_NEEDED, PARLEY_EVENT_CALL_KIND_COUNT, "a call event");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_CLOSED), "closed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_MEMBERS_CHANGED), "members-changed");
  cr_expect_str_eq(parley_event_kind_name(PARLEY_EVENT_SPEAKERS_CHANGED), "speakers-changed");
  cr_expect_str_eq(parley_event_kind_name((parley_event_kind)99), "unknown");
  cr_expect_str_eq(parley_stop_reason_name(PARLEY_STOP_BYE), "bye");
  cr_expect_str_eq(parley_ice_state_name(PARLEY_ICE_CONNECTED), "connected");
  cr_expect_str_eq(parley_peer_state_name(PARLEY_PEER_FAILED), "failed");
  cr_expect_str_eq(parley_signaling_state_name(PARLEY_SIGNALING_HAVE_LOCAL_OFFER), "have-local-offer");
  cr_expect_str_eq(parley_interrupt_code_name(PARLEY_INTERRUPT_DEVICE_LOST), "device-lost");
}

Test(api, engine_config_is_validated) {
  parley_engine *e = (parley_engine *)1;
  cr_expect_eq(parley_engine_new(NULL, &e), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_network_changed(NULL), PARLEY_EINVAL);
  cr_expect_null(e);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cr_expect_eq(parley_engine_new(&cfg, NULL), PARLEY_EINVAL);
  cfg.frame_ms = 15;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.frame_ms = 5;
  cfg.device_rate_hz = 44100; /* 220.5 samples a period */
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.device_rate_hz = 22050;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.opus_bitrate_bps = 1000;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.lost_after_ms = cfg.suspect_after_ms;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.stun_server = "stun.example.org:3478"; /* names are not resolved */
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = "/nonexistent/parley.wav";
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_ENOTFOUND);
  cr_expect_null(e);
  parley_engine_config_init(&cfg);
  cfg.audio = (parley_audio_backend)9;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.media_timeout_ms = -1;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(&cfg);
  cfg.dispatch = (parley_dispatch_mode)7;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL);
  parley_engine_config_init(NULL); /* ignored */
  parley_engine_free(NULL);
}

Test(api, engine_functions_reject_null_and_wrong_mode) {
  cr_expect_eq(parley_engine_event_fd(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_dispatch(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_rate_hz(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_device_list(NULL, 1), PARLEY_EINVAL, "a capacity without a buffer");
  float buf[480] = {0};
  cr_expect_eq(parley_engine_push_capture(NULL, buf, 480), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_pull_playout(NULL, buf, 480), PARLEY_EINVAL);
  parley_engine *e = th_null_engine();
  cr_expect_eq(parley_engine_event_fd(e), PARLEY_ESTATE, "thread dispatch has no fd");
  cr_expect_eq(parley_engine_dispatch(e), PARLEY_ESTATE);
  cr_expect_eq(parley_engine_push_capture(e, buf, 480), PARLEY_ESTATE, "not an APP engine");
  cr_expect_eq(parley_engine_pull_playout(e, buf, 480), PARLEY_ESTATE);
  cr_expect_eq(parley_engine_push_capture(e, NULL, 480), PARLEY_EINVAL);
  cr_expect_eq(parley_engine_rate_hz(e), 48000);
  parley_engine_free(e);
}

Test(api, call_functions_reject_null) {
  parley_call *c = (parley_call *)1;
  cr_expect_eq(parley_call_new(NULL, &c), PARLEY_EINVAL);
  cr_expect_null(c);
  char sdp[64];
  parley_sdp_error se;
  parley_call_stats st;
  cr_expect_eq(parley_call_free(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_create_offer(NULL, sdp, sizeof sdp), PARLEY_EINVAL);
  cr_expect_eq(parley_call_create_answer(NULL, sdp, sizeof sdp), PARLEY_EINVAL);
  cr_expect_eq(parley_call_set_local_description(NULL, "v=0"), PARLEY_EINVAL);
  cr_expect_eq(parley_call_set_remote_description(NULL, PARLEY_SDP_OFFER, "v=0", &se), PARLEY_EINVAL);
  cr_expect_eq(parley_call_add_remote_candidate(NULL, "candidate:1 1 udp 1 127.0.0.1 9 typ host"), PARLEY_EINVAL);
  cr_expect_eq(parley_call_start(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_hangup(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_set_mute(NULL, true), PARLEY_EINVAL);
  cr_expect_eq(parley_call_get_stats(NULL, &st), PARLEY_EINVAL);
  cr_expect_eq(parley_call_on(NULL, PARLEY_EVENT_CLOSED, noop, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_off(NULL, 1), PARLEY_EINVAL);

  parley_engine *e = th_null_engine();
  cr_assert_eq(parley_call_new(e, &c), 0);
  cr_expect_eq(parley_call_new(e, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_create_offer(c, NULL, 100), PARLEY_EINVAL);
  cr_expect_eq(parley_call_create_offer(c, sdp, 0), PARLEY_EINVAL);
  cr_expect_eq(parley_call_create_offer(c, sdp, sizeof sdp), PARLEY_ENOSPC, "64 bytes cannot hold an offer");
  cr_expect_eq(parley_call_set_local_description(c, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, NULL, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_add_remote_candidate(c, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_get_stats(c, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_on(c, PARLEY_EVENT_CLOSED, NULL, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_on(c, PARLEY_EVENT_KIND_COUNT, noop, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_on(c, PARLEY_EVENT_MEMBERS_CHANGED, noop, NULL), PARLEY_EINVAL, "a session event");
  cr_expect_eq(parley_call_on(c, (parley_event_kind)-1, noop, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_call_off(c, 0), PARLEY_EINVAL);
  cr_expect_eq(parley_call_off(c, 12345), PARLEY_ENOTFOUND);
  cr_expect_eq(parley_call_get_stats(c, &st), 0);
  cr_expect_eq(st.rtt_ms, -1.0, "no RTT before any report");
  cr_expect_eq(st.packets_sent, 0);
  cr_expect_eq(parley_call_set_mute(c, true), 0);
  cr_expect_eq(parley_call_free(c), 0);
  parley_engine_free(e);
}

Test(api, wrong_states_are_refused) {
  parley_engine *e = th_null_engine();
  parley_call *a, *b;
  cr_assert_eq(parley_call_new(e, &a), 0);
  cr_assert_eq(parley_call_new(e, &b), 0);
  static char offer[8192], answer[8192];
  cr_expect_eq(parley_call_create_answer(a, answer, sizeof answer), PARLEY_ESTATE, "no remote offer");
  cr_expect_eq(parley_call_set_local_description(a, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"),
               PARLEY_ESTATE, "no offer was created");
  cr_expect_eq(parley_call_start(a), PARLEY_ESTATE, "nothing negotiated");
  cr_expect_eq(parley_call_add_remote_candidate(a, "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"),
               PARLEY_ESTATE, "no remote description");

  cr_assert_gt(parley_call_create_offer(a, offer, sizeof offer), 0);
  cr_expect_eq(parley_call_start(a), PARLEY_ESTATE, "offer only");
  parley_sdp_error se;
  cr_expect_eq(parley_call_set_remote_description(b, PARLEY_SDP_ANSWER, offer, &se), PARLEY_ESTATE,
               "an answer before any local offer");
  cr_expect_gt(strlen(se.message), 0);
  cr_expect_eq(parley_call_set_remote_description(b, (parley_sdp_type)5, offer, &se), PARLEY_EINVAL);
  cr_assert_eq(parley_call_set_local_description(a, offer), 0);
  cr_expect_eq(parley_call_set_remote_description(a, PARLEY_SDP_OFFER, offer, &se), PARLEY_ESTATE,
               "glare: an offer while ours is pending");
  cr_expect(strstr(se.message, "glare") != NULL, "%s", se.message);
  cr_expect_eq(parley_call_create_answer(a, answer, sizeof answer), PARLEY_ESTATE, "own offer pending");
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_expect_eq(se.line, 0);
  cr_expect_eq(parley_call_create_offer(b, offer, sizeof offer), PARLEY_ESTATE, "remote offer pending");
  cr_expect_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), PARLEY_ESTATE, "second remote offer");
  cr_expect_eq(parley_call_start(b), PARLEY_ESTATE, "no answer yet");
  cr_assert_gt(parley_call_create_answer(b, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(b, answer), 0);
  cr_expect_eq(parley_call_set_local_description(b, answer), PARLEY_ESTATE, "answer applied twice");
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_expect_eq(parley_call_add_remote_candidate(a, "candidate:x"), PARLEY_EPARSE);
  cr_expect_eq(parley_call_add_remote_candidate(a, "hello"), PARLEY_EPARSE);
  cr_expect_eq(parley_call_add_remote_candidate(a, "a=candidate:1 1 tcp 2130706431 127.0.0.1 9 typ host"),
               PARLEY_ENOTSUP, "TCP candidates");
  cr_expect_eq(parley_call_add_remote_candidate(a, "a=end-of-candidates"), 0);

  cr_assert_eq(parley_call_start(a), 0);
  cr_expect_eq(parley_call_start(a), PARLEY_ESTATE, "double start");
  int id = parley_call_on(a, PARLEY_EVENT_CLOSED, noop, NULL);
  cr_assert_gt(id, 0);
  cr_assert_eq(parley_call_hangup(a), 0);
  cr_expect_eq(parley_call_hangup(a), PARLEY_ESTATE, "double hangup");
  cr_expect_eq(parley_call_start(a), PARLEY_ESTATE, "start after hangup");
  cr_expect_eq(parley_call_create_offer(a, offer, sizeof offer), PARLEY_ESTATE, "offer after hangup");
  cr_expect_eq(parley_call_free(a), PARLEY_ESTATE, "a listener is still registered");
  cr_expect_eq(parley_call_off(a, id), 0);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0, "free without hangup tears down");
  parley_engine_free(e);
}

Test(api, malformed_sdp_names_the_line) {
  parley_engine *e = th_null_engine();
  parley_call *c;
  cr_assert_eq(parley_call_new(e, &c), 0);
  parley_sdp_error se;
  const char *bad = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio notaport RTP/SAVPF 111\r\n";
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, bad, &se), PARLEY_EPARSE);
  cr_expect_eq(se.line, 5, "line %d: %s", se.line, se.message);
  cr_expect(strstr(se.message, "line 5") != NULL, "message names the line: %s", se.message);
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, "hello", &se), PARLEY_EPARSE);
  cr_expect_eq(se.line, 1);
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, bad, NULL), PARLEY_EPARSE, "err may be NULL");
  /* Well-formed but unusable: no SRTP key, no ICE. */
  const char *plain = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                      "m=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, plain, &se), PARLEY_ENOTSUP);
  cr_expect_gt(strlen(se.message), 0);
  const char *nokey = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                      "m=audio 5000 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
                      "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, nokey, &se), PARLEY_ENOTSUP);
  cr_expect(strstr(se.message, "crypto") != NULL, "%s", se.message);
  /* None of these changed the signaling state: an offer can still be made. */
  char offer[8192];
  cr_expect_gt(parley_call_create_offer(c, offer, sizeof offer), 0);
  parley_call_free(c);
  parley_engine_free(e);
}

Test(api, session_rejects_bad_input_and_states) {
  parley_session *s = (parley_session *)1;
  cr_expect_eq(parley_session_new(NULL, &s), PARLEY_EINVAL);
  cr_expect_null(s);
  cr_expect_eq(parley_session_free(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_session_join(NULL, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_session_leave(NULL, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_session_count(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_session_on(NULL, PARLEY_EVENT_MEMBERS_CHANGED, noop, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_session_off(NULL, 1), PARLEY_EINVAL);

  parley_engine *e = th_null_engine(), *e2 = th_null_engine();
  cr_assert_eq(parley_session_new(e, &s), 0);
  parley_session *s2;
  cr_expect_eq(parley_session_new(e, &s2), PARLEY_EFULL, "one session per engine");
  cr_expect_eq(parley_session_on(s, PARLEY_EVENT_TRACK_STARTED, noop, NULL), PARLEY_EINVAL, "a call event");
  cr_expect_eq(parley_session_on(s, PARLEY_EVENT_MEMBERS_CHANGED, NULL, NULL), PARLEY_EINVAL);
  int id = parley_session_on(s, PARLEY_EVENT_MEMBERS_CHANGED, noop, NULL);
  cr_assert_gt(id, 0);
  parley_call *c, *other;
  cr_assert_eq(parley_call_new(e, &c), 0);
  cr_assert_eq(parley_call_new(e2, &other), 0);
  cr_expect_eq(parley_session_join(s, other), PARLEY_EINVAL, "another engine's call");
  cr_expect_eq(parley_session_join(s, c), 0);
  cr_expect_eq(parley_session_join(s, c), PARLEY_ESTATE, "already a member");
  cr_expect_eq(parley_session_count(s), 1);
  cr_expect_eq(parley_session_free(s), PARLEY_ESTATE, "members and listeners remain");
  cr_expect_eq(parley_session_leave(s, c), 0);
  cr_expect_eq(parley_session_leave(s, c), PARLEY_ENOTFOUND);
  cr_expect_eq(parley_session_free(s), PARLEY_ESTATE, "a listener remains");
  cr_expect_eq(parley_session_off(s, id), 0);
  cr_expect_eq(parley_session_join(s, c), 0);
  cr_expect_eq(parley_call_free(c), 0, "a member call leaves when freed");
  cr_expect_eq(parley_session_count(s), 0);
  cr_expect_eq(parley_session_free(s), 0);
  parley_call_free(other);
  parley_engine_free(e);
  parley_engine_free(e2);

  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.device_rate_hz = 16000;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  cr_expect_eq(parley_session_new(e, &s), PARLEY_ENOTSUP, "mixer runs at 48 kHz");
  parley_engine_free(e);
}

/* The documented way to free a call from its own CLOSED listener: parley_off, then parley_call_free.
 * (Under ASan this also checks that the dispatcher does not touch the freed call afterwards.) */
typedef struct self_free {
  int id;
  atomic_int freed;
  int free_result;
} self_free;

static void free_on_closed(const parley_event *ev, void *user) {
  self_free *sf = user;
  cr_expect_eq(ev->kind, PARLEY_EVENT_CLOSED);
  cr_expect_eq(parley_call_off(ev->call, sf->id), 0);
  sf->free_result = parley_call_free(ev->call);
  atomic_store(&sf->freed, 1);
}

Test(api, call_freed_from_its_closed_listener) {
  parley_engine *e = th_null_engine();
  parley_call *c;
  cr_assert_eq(parley_call_new(e, &c), 0);
  self_free sf = {0};
  sf.id = parley_call_on(c, PARLEY_EVENT_CLOSED, free_on_closed, &sf);
  cr_assert_gt(sf.id, 0);
  cr_assert_eq(parley_call_hangup(c), 0);
  for (int i = 0; i < 500 && !atomic_load(&sf.freed); i++) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  cr_expect(atomic_load(&sf.freed));
  cr_expect_eq(sf.free_result, 0);
  parley_engine_free(e);
}

Test(api, call_table_is_bounded) {
  parley_engine *e = th_null_engine();
  parley_call *c[PARLEY_ENGINE_MAX_CALLS + 1];
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++) cr_assert_eq(parley_call_new(e, &c[i]), 0);
  cr_expect_eq(parley_call_new(e, &c[PARLEY_ENGINE_MAX_CALLS]), PARLEY_EFULL);
  cr_expect_null(c[PARLEY_ENGINE_MAX_CALLS]);
  cr_expect_eq(parley_call_free(c[3]), 0);
  cr_expect_eq(parley_call_new(e, &c[3]), 0, "a freed place is reused");
  /* The rest are freed by the engine. */
  parley_engine_free(e);
}

/* A target whose events the app does not dispatch keeps the newest ones and counts the rest in its
 * statistics: delivered + dropped is what was posted, and CLOSED still comes last. */
typedef struct tally {
  int events, signaling, closed, members;
  parley_signaling_state last_signaling;
} tally;

static void tally_event(const parley_event *ev, void *user) {
  tally *t = user;
  t->events++;
  if (ev->kind == PARLEY_EVENT_SIGNALING_STATE_CHANGED) {
    t->signaling++;
    t->last_signaling = ev->signaling_state;
  }
  if (ev->kind == PARLEY_EVENT_CLOSED) t->closed++;
  if (ev->kind == PARLEY_EVENT_MEMBERS_CHANGED) t->members++;
}

Test(api, full_event_queues_count_what_they_drop) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  cfg.dispatch = PARLEY_DISPATCH_APP;
  parley_engine *e = NULL;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_call *a, *b;
  cr_assert_eq(parley_call_new(e, &a), 0);
  cr_assert_eq(parley_call_new(e, &b), 0);
  tally ta = {0}, ts = {0};
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
    cr_assert_gt(parley_call_on(a, (parley_event_kind)k, tally_event, &ta), 0);
  parley_session *s;
  cr_assert_eq(parley_session_new(e, &s), 0);
  int sid = parley_session_on(s, PARLEY_EVENT_MEMBERS_CHANGED, tally_event, &ts);
  cr_assert_gt(sid, 0);
  parley_call_stats cs;
  parley_session_stats ss;
  cr_expect_eq(parley_call_get_stats(a, &cs), 0);
  cr_expect_eq(cs.events_dropped, 0);
  cr_expect_eq(parley_session_get_stats(NULL, &ss), PARLEY_EINVAL);
  cr_expect_eq(parley_session_get_stats(s, NULL), PARLEY_EINVAL);

  /* 40 offer/answer rounds, nothing dispatched: a's signaling state changes 80 times. */
  enum { ROUNDS = 40 };
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  for (int i = 0; i < ROUNDS; i++) {
    cr_assert_gt(parley_call_create_offer(a, offer, sizeof offer), 0);
    cr_assert_eq(parley_call_set_local_description(a, offer), 0);
    cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
    cr_assert_gt(parley_call_create_answer(b, answer, sizeof answer), 0);
    cr_assert_eq(parley_call_set_local_description(b, answer), 0);
    cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  }
  /* 40 joins and leaves: 80 MEMBERS_CHANGED. */
  for (int i = 0; i < ROUNDS; i++) {
    cr_assert_eq(parley_session_join(s, b), 0);
    cr_assert_eq(parley_session_leave(s, b), 0);
  }
  cr_assert_eq(parley_call_hangup(a), 0);
  cr_assert_eq(parley_call_get_stats(a, &cs), 0);
  cr_assert_eq(parley_session_get_stats(s, &ss), 0);
  for (int i = 0; i < 100 && (!ta.closed || ts.members + (int)ss.events_dropped < 2 * ROUNDS); i++) {
    parley_engine_dispatch(e);
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  cr_assert_eq(parley_call_get_stats(a, &cs), 0);
  cr_expect_gt(cs.events_dropped, 0, "a full queue drops");
  cr_expect_eq(ta.closed, 1, "CLOSED is never dropped");
  cr_expect_eq(ta.last_signaling, PARLEY_SIGNALING_CLOSED, "the newest state survives");
  /* a's signaling changes: 80 rounds, then closed at hang-up; the other kinds are ICE's and close's. */
  cr_expect_geq(ta.events + (int)cs.events_dropped, 2 * ROUNDS + 1, "%d delivered, %d dropped", ta.events,
                (int)cs.events_dropped);
  cr_expect_lt(ta.signaling, 2 * ROUNDS);
  cr_expect_gt(ss.events_dropped, 0);
  cr_expect_eq(ts.members + (int)ss.events_dropped, 2 * ROUNDS, "%d delivered, %d dropped", ts.members,
               (int)ss.events_dropped);
  cr_expect_eq(parley_session_off(s, sid), 0);
  cr_expect_eq(parley_session_free(s), 0);
  parley_engine_free(e);
}

/* The app's own DTLS certificate: both PEMs or neither; unreadable PEM refused; a good pair is what the
 * offer's a=fingerprint names (checked against the openssl tool's fingerprint of the same file). */
Test(api, engine_takes_the_apps_dtls_certificate) {
  char dir[] = "/tmp/parley-pem-XXXXXX", cmd[1024], path[300];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=app -days 2 "
           "-keyout %s/k.pem -out %s/c.pem 2>/dev/null && openssl x509 -in %s/c.pem -noout -fingerprint "
           "-sha256 > %s/fp",
           dir, dir, dir, dir);
  cr_assert_eq(system(cmd), 0);
  static char cert[8192], key[8192], fp[256];
  const char *names[] = {"c.pem", "k.pem", "fp"};
  char *bufs[] = {cert, key, fp};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(bufs[i], 1, 8191, f);
    bufs[i][n] = '\0';
    fclose(f);
  }
  fp[strcspn(fp, "\r\n")] = '\0';
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  parley_engine *e = NULL;
  cfg.dtls_certificate_pem = cert;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL, "a certificate without its key");
  cfg.dtls_private_key_pem = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n";
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EPARSE);
  cfg.dtls_private_key_pem = key;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_call *c;
  cr_assert_eq(parley_call_new(e, &c), 0);
  static char offer[8192];
  cr_assert_gt(parley_call_create_offer(c, offer, sizeof offer), 0);
  char want[300];
  snprintf(want, sizeof want, "a=fingerprint:sha-256 %s\r\n", strchr(fp, '=') + 1);
  cr_expect(strstr(offer, want), "want %s in\n%s", want, offer);
  cr_expect_eq(parley_call_free(c), 0);
  parley_engine_free(e);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}
