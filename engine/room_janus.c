/* room_janus.c: the Janus AudioBridge room backend (parley__room_janus_ops, room_internal.h): one parley
 * call to the AudioBridge, which mixes the room on the server (each participant hears everyone but
 * itself), and the Janus client (transport/janus.h, ws:// or http://) for the session, the join and
 * the room's events. Built only with PARLEY_HAVE_JANUS.
 *
 * Owns its state (jroom): the client, the call and its listeners, and the participants Janus told us
 * about (ids, talking flags) to turn Janus's events into the core's reports: joined / participants
 * -> member_joined / member_muted; leaving -> member_left(LEFT); kicked -> member_left(KICKED), or
 * closed(KICKED) for us; talking / stopped-talking -> speakers (in the order they started); the
 * answer -> the call's remote description and start; our call interrupted / resumed -> the room's;
 * the session or the PeerConnection lost, a refused join -> closed(FAILED).
 * Member ids are Janus's participant ids in decimal. Janus does not report a participant's broken
 * connection, only its departure: a participant that vanishes leaves when Janus drops its session
 * (at once when its WebSocket closes; else the server's session_timeout) or its PeerConnection (ICE
 * failure), so the core's vanish timer does not run for Janus members.
 *
 * Threads: the ops on app threads (the core's rules), serialised by jroom.op_mu (leave and a mute may
 * come from two threads at once); the client's events on the client's thread; the call's listeners on
 * the dispatch thread. jroom.mu guards the participant table and the flags;
 * no parley_ function and no report is called with it held except the report functions, which take
 * only room and event locks (room_internal.h). Blocking requests run in start, leave, set_mute and free,
 * on the app's thread, never under an engine lock. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/room_internal.h"
#include "parley/parley.h"
#include "transport/janus.h"

#define MAX_PARTICIPANTS 64 /* Janus's room may hold more; the core lists PARLEY_ROOM_MESH_MAX_MEMBERS */
#define CALL_KINDS 3        /* the call events we listen to: INTERRUPTED, RESUMED, PEER_STATE_CHANGED */

typedef struct jpart {
  uint64_t id;
  bool talking;
  uint64_t talk_seq; /* when it started talking (order of the speakers list) */
} jpart;

typedef struct jroom {
  parley_room *room;
  parley_call *call;
  parley__janus *j;
  int listeners[CALL_KINDS];
  pthread_mutex_t op_mu; /* the ops among themselves (app threads; never the client's thread) */
  pthread_mutex_t mu;
  uint64_t self;
  jpart parts[MAX_PARTICIPANTS];
  size_t n;
  uint64_t seq;
  bool answered, leaving, closed;
} jroom;

static void id_text(uint64_t id, char *out, size_t cap) { snprintf(out, cap, "%" PRIu64, id); }

static jpart *find(jroom *r, uint64_t id) {
  for (size_t i = 0; i < r->n; i++)
    if (r->parts[i].id == id) return &r->parts[i];
  return NULL;
}

/* The room ended (not by leave): report it once. */
static void close_room(jroom *r, parley_leave_reason reason, const char *message) {
  pthread_mutex_lock(&r->mu);
  bool first = !r->closed && !r->leaving;
  r->closed = true;
  pthread_mutex_unlock(&r->mu);
  if (first) parley__room_closed(r->room, reason, message);
}

/* The speakers now: remote participants talking, in the order they started. Under r->mu. */
static void report_speakers(jroom *r) {
  const char *ids[PARLEY_SESSION_MAX_SPEAKERS];
  char text[PARLEY_SESSION_MAX_SPEAKERS][24];
  size_t n = 0;
  uint64_t after = 0;
  while (n < PARLEY_SESSION_MAX_SPEAKERS) { /* the next one to have started after `after` */
    jpart *next = NULL;
    for (size_t i = 0; i < r->n; i++)
      if (r->parts[i].talking && r->parts[i].talk_seq > after && (!next || r->parts[i].talk_seq < next->talk_seq))
        next = &r->parts[i];
    if (!next) break;
    id_text(next->id, text[n], sizeof text[n]);
    ids[n] = text[n];
    n++;
    after = next->talk_seq;
  }
  parley__room_speakers(r->room, ids, n);
}

static void participants(jroom *r, const parley__janus_event *ev) {
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < ev->count; i++) {
    const parley__janus_participant *p = &ev->participants[i];
    if (p->id == r->self) continue;
    char id[24];
    id_text(p->id, id, sizeof id);
    if (find(r, p->id)) {
      parley__room_member_muted(r->room, id, p->muted);
      continue;
    }
    if (r->n == MAX_PARTICIPANTS) continue;
    /* Janus lets any display name in; one the core refuses (empty, control characters) gets the id. */
    if (parley__room_member_joined(r->room, id, p->display, p->muted, NULL, NULL) == PARLEY_EINVAL &&
        parley__room_member_joined(r->room, id, id, p->muted, NULL, NULL) < 0)
      continue;
    r->parts[r->n++] = (jpart){.id = p->id};
  }
  pthread_mutex_unlock(&r->mu);
}

static void gone(jroom *r, uint64_t id, parley_leave_reason reason) {
  pthread_mutex_lock(&r->mu);
  jpart *p = find(r, id);
  if (p) {
    bool talked = p->talking;
    *p = r->parts[--r->n];
    char text[24];
    id_text(id, text, sizeof text);
    parley__room_member_left(r->room, text, reason);
    if (talked) report_speakers(r);
  }
  pthread_mutex_unlock(&r->mu);
}

static void talking(jroom *r, uint64_t id, bool on) {
  pthread_mutex_lock(&r->mu);
  jpart *p = find(r, id);
  if (p && p->talking != on) {
    p->talking = on;
    p->talk_seq = ++r->seq;
    report_speakers(r);
  }
  pthread_mutex_unlock(&r->mu);
}

static void answer(jroom *r, const char *sdp) {
  pthread_mutex_lock(&r->mu);
  bool first = !r->answered;
  r->answered = true;
  pthread_mutex_unlock(&r->mu);
  if (!first) return;
  parley_sdp_error se;
  int rc = parley_call_set_remote_description(r->call, PARLEY_SDP_ANSWER, sdp, &se);
  if (rc == 0) rc = parley_call_start(r->call);
  if (rc < 0) {
    char why[192];
    snprintf(why, sizeof why, "Janus's answer: %s", rc == PARLEY_EPARSE ? se.message : parley_strerror(rc));
    close_room(r, PARLEY_LEAVE_FAILED, why);
  }
}

/* The client's thread. */
static void on_janus(const parley__janus_event *ev, void *user) {
  jroom *r = user;
  char why[192];
  switch (ev->kind) {
  case PARLEY__JANUS_JOINED: {
    char self[24];
    id_text(ev->id, self, sizeof self);
    parley__room_set_local_id(r->room, self); /* our id is Janus's: speakers and the member list show it */
    pthread_mutex_lock(&r->mu);
    r->self = ev->id;
    pthread_mutex_unlock(&r->mu);
    participants(r, ev);
    break;
  }
  case PARLEY__JANUS_PARTICIPANTS: participants(r, ev); break;
  case PARLEY__JANUS_LEAVING: gone(r, ev->id, PARLEY_LEAVE_LEFT); break;
  case PARLEY__JANUS_KICKED:
    if (ev->id == parley__janus_self(r->j)) close_room(r, PARLEY_LEAVE_KICKED, "kicked from the Janus room");
    else gone(r, ev->id, PARLEY_LEAVE_KICKED);
    break;
  case PARLEY__JANUS_TALKING:
  case PARLEY__JANUS_STOPPED_TALKING: talking(r, ev->id, ev->kind == PARLEY__JANUS_TALKING); break;
  case PARLEY__JANUS_ANSWER: answer(r, ev->sdp); break;
  case PARLEY__JANUS_ROOM_GONE: close_room(r, PARLEY_LEAVE_KICKED, "the Janus room was destroyed"); break;
  case PARLEY__JANUS_ERROR: /* a refused join or configure: before the answer, the room never started */
    snprintf(why, sizeof why, "Janus AudioBridge error %d: %s", ev->error_code, ev->message);
    pthread_mutex_lock(&r->mu);
    bool fatal = !r->answered;
    pthread_mutex_unlock(&r->mu);
    if (fatal) close_room(r, PARLEY_LEAVE_FAILED, why);
    break;
  case PARLEY__JANUS_HANGUP:
    snprintf(why, sizeof why, "Janus hung up: %s", ev->message);
    close_room(r, PARLEY_LEAVE_FAILED, why);
    break;
  case PARLEY__JANUS_SESSION_GONE:
    snprintf(why, sizeof why, "Janus session lost: %s", ev->message);
    close_room(r, PARLEY_LEAVE_FAILED, why);
    break;
  case PARLEY__JANUS_WEBRTC_UP:
  case PARLEY__JANUS_MEDIA: break; /* our call's own events say the same, sooner */
  }
}

/* The dispatch thread: our call's connectivity is the room's. */
static void on_call(const parley_event *ev, void *user) {
  jroom *r = user;
  if (ev->kind == PARLEY_EVENT_INTERRUPTED || ev->kind == PARLEY_EVENT_RESUMED)
    parley__room_interrupted(r->room, ev->kind == PARLEY_EVENT_INTERRUPTED, ev->code, ev->message);
  else if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED && ev->peer_state == PARLEY_PEER_FAILED)
    close_room(r, PARLEY_LEAVE_FAILED, ev->message);
}

static void release(jroom *r) {
  parley__janus_close(r->j); /* no client event after this */
  r->j = NULL;
  if (r->call) {
    for (int k = 0; k < CALL_KINDS; k++)
      if (r->listeners[k] > 0) (void)parley_call_off(r->call, r->listeners[k]);
    (void)parley_call_free(r->call);
    r->call = NULL;
  }
  pthread_mutex_destroy(&r->mu);
  pthread_mutex_destroy(&r->op_mu);
  free(r);
}

static int start(parley_room *room, void **state) {
  const parley_room_config *cfg = parley__room_config(room);
  char *end = NULL;
  unsigned long long number = strtoull(cfg->room_id, &end, 10);
  if (!cfg->janus_url || !*cfg->janus_url || !number || *end || cfg->room_id[0] == '-') return PARLEY_EINVAL;
  jroom *r = calloc(1, sizeof *r);
  if (!r) return PARLEY_ENOMEM;
  r->room = room;
  pthread_mutex_init(&r->mu, NULL);
  pthread_mutex_init(&r->op_mu, NULL);
  bool muted = parley__room_mute_microphone(room);
  int rc = parley_call_new(parley__room_engine(room), &r->call);
  static const parley_event_kind kinds[CALL_KINDS] = {PARLEY_EVENT_INTERRUPTED, PARLEY_EVENT_RESUMED,
                                                      PARLEY_EVENT_PEER_STATE_CHANGED};
  for (int k = 0; rc == 0 && k < CALL_KINDS; k++) {
    r->listeners[k] = parley_call_on(r->call, kinds[k], on_call, r);
    if (r->listeners[k] < 0) rc = r->listeners[k];
  }
  if (rc == 0) rc = parley_call_set_mute(r->call, muted);
  char sdp[8192], err[256] = "";
  if (rc == 0) {
    int len = parley_call_create_offer(r->call, sdp, sizeof sdp);
    rc = len < 0 ? len : parley_call_set_local_description(r->call, sdp);
  }
  if (rc == 0) rc = parley__janus_open(cfg->janus_url, on_janus, r, &r->j, err, sizeof err);
  if (rc == 0) rc = parley__janus_join(r->j, number, cfg->display_name, cfg->janus_pin, muted, sdp, err, sizeof err);
  if (rc < 0) {
    release(r);
    return rc;
  }
  *state = r;
  return 0;
}

static int leave(void *state) {
  jroom *r = state;
  pthread_mutex_lock(&r->op_mu);
  pthread_mutex_lock(&r->mu);
  bool closed = r->closed;
  r->leaving = true;
  pthread_mutex_unlock(&r->mu);
  parley__janus_close(r->j); /* leave, detach, destroy: the others see "leaving" */
  r->j = NULL;
  (void)parley_call_hangup(r->call);
  pthread_mutex_unlock(&r->op_mu);
  if (!closed) parley__room_closed(r->room, PARLEY_LEAVE_LEFT, NULL);
  return 0;
}

static int set_mute_microphone(void *state, bool mute) {
  jroom *r = state;
  pthread_mutex_lock(&r->op_mu);
  int rc = parley_call_set_mute(r->call, mute);
  /* After leave the client is gone: the call's mute is all there is. */
  if (rc == 0 && r->j) rc = parley__janus_set_muted(r->j, mute);
  pthread_mutex_unlock(&r->op_mu);
  return rc;
}

static void free_state(void *state) {
  if (state) release(state);
}

const parley__room_backend_ops parley__room_janus_ops = {
    .start = start,
    .leave = leave,
    .set_mute_microphone = set_mute_microphone,
    .free = free_state,
};
