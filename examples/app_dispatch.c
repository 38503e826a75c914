/* app_dispatch.c: event listeners on the app's own loop. With PARLEY_DISPATCH_APP an engine starts no
 * dispatch thread: its event fd becomes readable while events are pending, and the app runs their
 * listeners by calling parley_engine_dispatch() from its loop, e.g. beside its sockets and timers in
 * one poll(). Listeners then need no locks against the rest of the app.
 *
 * Two engines in one process call each other over loopback UDP (ICE + SDES-SRTP), with no audio I/O
 * (silence in, playout discarded). The whole call is driven from listeners on the main loop: once both
 * sides hear the other's track, A hangs up; B, told by track-stopped (bye), hangs up too.
 *
 *   app_dispatch
 *
 * Exits 0 when both calls reached closed, B saw the bye, and every listener ran on the main thread.
 * Bounded: gives up after 10 s. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "example_util.h"

typedef struct side {
  const char *name;
  parley_engine *eng;
  parley_call *call;
  bool track_started, bye, closed; /* plain fields: only the main loop touches them */
} side;

static side a = {.name = "A"}, b = {.name = "B"};
static pthread_t main_thread;
static int events, foreign_thread_events;

static void on_event(const parley_event *ev, void *user) {
  side *s = user;
  events++;
  if (!pthread_equal(pthread_self(), main_thread)) foreign_thread_events++;
  printf("[%s] %s", s->name, parley_event_kind_name(ev->kind));
  switch (ev->kind) {
  case PARLEY_EVENT_ICE_STATE_CHANGED: printf(" %s", parley_ice_state_name(ev->ice_state)); break;
  case PARLEY_EVENT_PEER_STATE_CHANGED: printf(" %s", parley_peer_state_name(ev->peer_state)); break;
  case PARLEY_EVENT_SIGNALING_STATE_CHANGED: printf(" %s", parley_signaling_state_name(ev->signaling_state)); break;
  case PARLEY_EVENT_TRACK_STARTED:
    s->track_started = true;
    /* Listeners may call into parley (anything but parley_engine_free/dispatch): A ends the call as
     * soon as audio flows both ways. */
    if (a.track_started && b.track_started) parley_call_hangup(a.call);
    break;
  case PARLEY_EVENT_TRACK_STOPPED:
    printf(" (%s)", parley_stop_reason_name(ev->reason));
    if (ev->reason == PARLEY_STOP_BYE) {
      s->bye = true;
      parley_call_hangup(s->call); /* the peer hung up: so do we */
    }
    break;
  case PARLEY_EVENT_INTERRUPTED: printf(" %s: %s", parley_interrupt_code_name(ev->code), ev->message); break;
  case PARLEY_EVENT_CLOSED: s->closed = true; break;
  default: break;
  }
  printf("\n");
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void) {
  main_thread = pthread_self();
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.dispatch = PARLEY_DISPATCH_APP; /* listeners run in parley_engine_dispatch, on this thread */
  cfg.loopback_candidates = true;     /* stay on 127.0.0.1 */
  cfg.ipv6 = false;
  side *sides[2] = {&a, &b};
  int ids[2][PARLEY_EVENT_CALL_KIND_COUNT];
  for (int i = 0; i < 2; i++) {
    if (check(parley_engine_new(&cfg, &sides[i]->eng), "engine") < 0 ||
        check(parley_call_new(sides[i]->eng, &sides[i]->call), "call") < 0)
      return 1;
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      ids[i][k] = parley_call_on(sides[i]->call, (parley_event_kind)k, on_event, sides[i]);
  }

  if (negotiate(a.call, b.call) < 0) /* in an app, the SDPs travel over its signalling channel */
    return 1;

  /* The app's loop: one poll() over both engines' event fds (an app adds its own fds here). The fds
   * belong to the engines: never read or close them; parley_engine_dispatch drains them. */
  struct pollfd fds[2];
  for (int i = 0; i < 2; i++) {
    fds[i].fd = check(parley_engine_event_fd(sides[i]->eng), "event fd");
    fds[i].events = POLLIN;
    if (fds[i].fd < 0) return 1;
  }
  int64_t deadline = now_ms() + 10000;
  while (!(a.closed && b.closed) && now_ms() < deadline) {
    if (poll(fds, 2, 100) < 0) break;
    for (int i = 0; i < 2; i++)
      if (fds[i].revents & POLLIN) check(parley_engine_dispatch(sides[i]->eng), "dispatch");
  }

  for (int i = 0; i < 2; i++) {
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) parley_call_off(sides[i]->call, ids[i][k]);
    parley_call_free(sides[i]->call);
    parley_engine_free(sides[i]->eng);
  }
  int ok = a.closed && b.closed && b.bye && events > 0 && foreign_thread_events == 0;
  printf("%d events, %d on another thread\n%s\n", events, foreign_thread_events, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
