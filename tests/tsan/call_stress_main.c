/* call_stress_main.c: the engine's threads under ThreadSanitizer (Criterion cannot start there). Three
 * engines on loopback: a mesh client M (app audio, app dispatch through the event fd) in a session with
 * two peers (one talking from a WAV file, one silent). While the audio, network and dispatch threads run,
 * this thread pushes/pulls audio, dispatches, reads stats, leaves the session, mutes, re-offers, and
 * finally hangs up and frees everything. Exit 0 when the expected events arrived. Bounded (~3 s).
 * Usage: call_stress [speech.wav]   (default: tests/data/speech_a_48k.wav via PARLEY_TEST_DATA) */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parley/parley.h"

#ifndef PARLEY_TEST_DATA
#define PARLEY_TEST_DATA "tests/data"
#endif

static atomic_int n_speakers, n_members, n_tracks, n_closed;

static void on_event(const parley_event *ev, void *user) {
  (void)user;
  switch (ev->kind) {
  case PARLEY_EVENT_SPEAKERS_CHANGED: atomic_fetch_add(&n_speakers, 1); break;
  case PARLEY_EVENT_MEMBERS_CHANGED: atomic_fetch_add(&n_members, 1); break;
  case PARLEY_EVENT_TRACK_STARTED: atomic_fetch_add(&n_tracks, 1); break;
  case PARLEY_EVENT_CLOSED: atomic_fetch_add(&n_closed, 1); break;
  default: break;
  }
}

static int negotiate(parley_call *a, parley_call *b) {
  static char offer[8192], answer[8192];
  parley_sdp_error se = {0};
  int r = parley_call_create_offer(a, offer, sizeof offer);
  if (r > 0) r = parley_call_set_local_description(a, offer);
  if (r == 0) r = parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se);
  if (r == 0) r = parley_call_create_answer(b, answer, sizeof answer);
  if (r > 0) r = parley_call_set_local_description(b, answer);
  if (r == 0) r = parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se);
  if (r == 0) r = parley_call_start(a);
  if (r == 0) r = parley_call_start(b);
  if (r) fprintf(stderr, "call_stress: negotiation: %s (%s)\n", parley_err_name(r), se.message);
  return r;
}

int main(int argc, char **argv) {
  const char *wav = argc > 1 ? argv[1] : PARLEY_TEST_DATA "/speech_a_48k.wav";
  parley_engine_config cm, c1, c2;
  parley_engine_config_init(&cm);
  cm.loopback_candidates = true;
  cm.ipv6 = false;
  c1 = c2 = cm;
  cm.audio = PARLEY_AUDIO_APP;
  cm.dispatch = PARLEY_DISPATCH_APP;
  c1.audio = PARLEY_AUDIO_FILE;
  c1.input_file = wav;
  parley_engine *em, *e1, *e2;
  if (parley_engine_new(&cm, &em) || parley_engine_new(&c1, &e1) || parley_engine_new(&c2, &e2)) {
    fprintf(stderr, "call_stress: engine_new failed\n");
    return 1;
  }
  parley_session *s;
  parley_call *m1, *m2, *p1, *p2;
  if (parley_session_new(em, &s) || parley_call_new(em, &m1) || parley_call_new(em, &m2) ||
      parley_call_new(e1, &p1) || parley_call_new(e2, &p2))
    return 1;
  int ids[5];
  ids[0] = parley_session_on(s, PARLEY_EVENT_SPEAKERS_CHANGED, on_event, NULL);
  ids[1] = parley_session_on(s, PARLEY_EVENT_MEMBERS_CHANGED, on_event, NULL);
  ids[2] = parley_call_on(m1, PARLEY_EVENT_TRACK_STARTED, on_event, NULL);
  ids[3] = parley_call_on(m1, PARLEY_EVENT_CLOSED, on_event, NULL);
  ids[4] = parley_call_on(m2, PARLEY_EVENT_TRACK_STARTED, on_event, NULL);
  if (parley_session_join(s, m1) || negotiate(m1, p1) || negotiate(p2, m2) || parley_session_join(s, m2)) {
    fprintf(stderr, "call_stress: negotiation failed\n");
    return 1;
  }
  int fd = parley_engine_event_fd(em);
  float buf[960] = {0};
  parley_call_stats st;
  static char reoffer[8192];
  for (int i = 0; i < 150; i++) { /* 150 x 20 ms */
    (void)parley_engine_push_capture(em, buf, 960);
    (void)parley_engine_pull_playout(em, buf, 960);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20) == 1) (void)parley_engine_dispatch(em);
    (void)parley_call_get_stats(m1, &st);
    if (i == 60) (void)parley_call_set_mute(m2, true);
    if (i == 80) (void)parley_session_leave(s, m2);
    if (i == 90) (void)parley_call_create_offer(p1, reoffer, sizeof reoffer); /* re-offer, not applied */
  }
  (void)parley_call_hangup(m1);
  for (int i = 0; i < 100 && atomic_load(&n_closed) == 0; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) (void)parley_engine_dispatch(em);
  }
  parley_session_off(s, ids[0]);
  parley_session_off(s, ids[1]);
  parley_call_off(m1, ids[2]);
  parley_call_off(m1, ids[3]);
  parley_call_off(m2, ids[4]);
  int freed = parley_call_free(m1) | parley_call_free(m2) | parley_session_free(s) | parley_call_free(p1) |
              parley_call_free(p2);
  parley_engine_free(em);
  parley_engine_free(e1);
  parley_engine_free(e2);
  int ok = freed == 0 && atomic_load(&n_tracks) == 2 && atomic_load(&n_members) == 3 &&
           atomic_load(&n_speakers) >= 1 && atomic_load(&n_closed) == 1;
  printf("call_stress: tracks %d members %d speakers %d closed %d: %s\n", atomic_load(&n_tracks),
         atomic_load(&n_members), atomic_load(&n_speakers), atomic_load(&n_closed), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
