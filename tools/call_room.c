/* call_room.c: `parley-call room --janus URL --room ID --name NAME`: joins a Janus AudioBridge room
 * through the public room API (PARLEY_ROOM_JANUS) and prints the room's timeline: members joining and
 * leaving (with the reason), mute flags, speakers, interruptions, closed. Audio as for the other
 * one-engine modes (--in/--out, --device, none). Ends after --duration seconds, on SIGINT/SIGTERM
 * (leaving the room: the others see it go), or when the room closes (kicked, Janus lost).
 * Main thread only: the engine dispatches on the app's thread (PARLEY_DISPATCH_APP), so the listeners
 * run here inside parley_engine_dispatch. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "tools/call_tool.h"

typedef struct room_run {
  bool closed;
  parley_leave_reason closed_reason;
} room_run;

static void on_room(const parley_event *ev, void *user) {
  room_run *r = user;
  int64_t ms = calltool_since_ms(ev->time_us);
  const parley_room_member *m = ev->member;
  switch (ev->kind) {
  case PARLEY_EVENT_MEMBERS_CHANGED:
    if (ev->leave_reason != PARLEY_LEAVE_NONE)
      printf("%8lld ms  member left: %s (%s), reason %s; %zu in the room\n", (long long)ms, m ? m->name : "?",
             m ? m->id : "?", parley_leave_reason_name(ev->leave_reason), ev->count);
    else
      printf("%8lld ms  member %s (%s)%s%s%s; %zu in the room\n", (long long)ms, m ? m->name : "?", m ? m->id : "?",
             m && m->local ? " [you]" : "", m && m->muted ? " muted" : "", m && m->interrupted ? " interrupted" : "",
             ev->count);
    break;
  case PARLEY_EVENT_SPEAKERS_CHANGED:
    printf("%8lld ms  speakers:", (long long)ms);
    for (size_t i = 0; i < ev->count && i < PARLEY_SESSION_MAX_SPEAKERS; i++) printf(" %s", ev->speaker_ids[i]);
    printf("%s\n", ev->count ? "" : " (none)");
    break;
  case PARLEY_EVENT_INTERRUPTED:
  case PARLEY_EVENT_RESUMED:
    printf("%8lld ms  %s%s%s: %s %s\n", (long long)ms, parley_event_kind_name(ev->kind), m ? " member " : "",
           m ? m->name : "", parley_interrupt_code_name(ev->code), ev->message);
    break;
  case PARLEY_EVENT_CLOSED:
    printf("%8lld ms  closed: %s %s\n", (long long)ms, parley_leave_reason_name(ev->leave_reason), ev->message);
    r->closed = true;
    r->closed_reason = ev->leave_reason;
    break;
  default: break;
  }
}

/* Dispatches events until until_us (or a signal with stop_on_signal, or CLOSED). */
static void pump(parley_engine *eng, room_run *r, int64_t until_us, bool stop_on_signal) {
  int fd = parley_engine_event_fd(eng);
  while (!r->closed && calltool_now_us() < until_us && !(stop_on_signal && calltool_stopping())) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, 100);
    (void)parley_engine_dispatch(eng);
  }
}

int calltool_room(const calltool_opts *o) {
  parley_engine_config cfg;
  calltool_peer_config(o, &cfg);
  parley_engine *eng;
  int err = parley_engine_new(&cfg, &eng);
  if (err < 0) return calltool_fail("engine", err), 1;
  parley_room_config rc;
  parley_room_config_init(&rc);
  rc.backend = PARLEY_ROOM_JANUS;
  rc.room_id = o->room_id;
  rc.display_name = o->name;
  rc.janus_url = o->janus;
  rc.janus_pin = o->pin;
  parley_room *room;
  room_run r = {0};
  if ((err = parley_room_join(eng, &rc, &room)) < 0) {
    fprintf(stderr, "parley-call: room: cannot join room %s at %s: %s\n", o->room_id, o->janus, parley_strerror(err));
    parley_engine_free(eng);
    return 1;
  }
  static const parley_event_kind kinds[] = {PARLEY_EVENT_MEMBERS_CHANGED, PARLEY_EVENT_SPEAKERS_CHANGED,
                                            PARLEY_EVENT_INTERRUPTED, PARLEY_EVENT_RESUMED, PARLEY_EVENT_CLOSED};
  int ids[5];
  for (int k = 0; k < 5; k++) ids[k] = parley_room_on(room, kinds[k], on_room, &r);
  printf("joining room %s at %s as %s\n", o->room_id, o->janus, o->name);
  int64_t until = o->duration_s > 0 ? calltool_now_us() + (int64_t)(o->duration_s * 1e6) : INT64_MAX;
  pump(eng, &r, until, true);
  if (!r.closed && parley_room_leave(room) == 0) pump(eng, &r, calltool_now_us() + 5000000, false);
  parley_room_stats st;
  if (parley_room_get_stats(room, &st) == 0)
    printf("join_ms %lld, events dropped %llu\n", (long long)st.join_ms, (unsigned long long)st.events_dropped);
  for (int k = 0; k < 5; k++)
    if (ids[k] > 0) (void)parley_room_off(room, ids[k]);
  (void)parley_room_free(room);
  parley_engine_free(eng);
  return r.closed && (r.closed_reason == PARLEY_LEAVE_LEFT) ? 0 : 1;
}
