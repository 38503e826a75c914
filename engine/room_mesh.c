/* room_mesh.c: the mesh room backend (room_internal.h): one call to every other member, all in the
 * engine's session (one capture, one mix with speaker ranking). The app carries the signalling: short
 * text messages handed to cfg.send and given back to parley_room_receive. Owns the session, the member
 * calls and their listeners.
 *
 * Messages: text, first line "parley-room/1 KIND[ ARGS]"; the sender's id is the app's `from`:
 *   hello M NAME      at join, to everyone: M is 1 when the microphone is muted, NAME the display name
 *                     (the rest of the line)
 *   welcome M NAME    the answer to a hello, to its sender only (a hello from a known id is a rejoin:
 *                     its old call is dropped)
 *   offer / answer    the first line, then the SDP (parley_call_create_offer / _answer)
 *   candidate LINE    a trickled local candidate ("candidate:..." or "end-of-candidates")
 *   mute M            the microphone mute changed
 *   bye               the sender leaves
 * One exchange per pair: once two members know each other (hello/welcome), the one whose id is smaller
 * (strcmp) offers; the other answers. A member's call INTERRUPTED/RESUMED is reported as the member's;
 * when every member's call is interrupted the room as a whole is (the local user's network). A peer's
 * bye (message or RTCP BYE) removes the member as LEFT; a failed call as FAILED.
 *
 * Threads: the ops run on app threads, the call and session listeners on the dispatch thread. mesh->lock
 * guards the peers; parley_call_* and the core's reports are called under it (they take eng->lock,
 * room->lock and ev_lock, which never wait for mesh->lock). cfg.send is called only after it is
 * released (an app may deliver a message synchronously to another room's parley_room_receive): messages
 * are collected in an outbox and sent on the way out.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/room_internal.h"

#define MAGIC "parley-room/1 "
#define SDP_CAP 8192
#define MAX_PEERS PARLEY_ENGINE_MAX_CALLS /* members, and calls still closing */

static const parley_event_kind call_kinds[] = {PARLEY_EVENT_LOCAL_CANDIDATE, PARLEY_EVENT_INTERRUPTED,
                                               PARLEY_EVENT_RESUMED, PARLEY_EVENT_PEER_STATE_CHANGED,
                                               PARLEY_EVENT_TRACK_STOPPED, PARLEY_EVENT_CLOSED};
#define N_KINDS (sizeof call_kinds / sizeof call_kinds[0])

typedef struct peer {
  char id[PARLEY_ROOM_ID_MAX]; /* "" with no call = a free entry; "" with a call = a call closing */
  parley_call *call;           /* NULL until the offer or answer is made */
  int lids[N_KINDS];
  bool member;      /* listed in the room (not yet left or dropped) */
  bool interrupted;
  int volume_pct;
} peer;

typedef struct outmsg {
  struct outmsg *next;
  char to[PARLEY_ROOM_ID_MAX]; /* "" = everyone */
  char text[];
} outmsg;

typedef struct mesh {
  parley_room *room;
  parley_engine *eng;
  char self[PARLEY_ROOM_ID_MAX];
  pthread_mutex_t lock;
  /* under lock */
  parley_session *session;
  int speakers_lid;
  peer peers[MAX_PEERS];
  bool leaving;
  outmsg *out_head, **out_tail;
} mesh;

/* ---- outbox ---- */

/* Queues a message (under lock); dropped when out of memory (the member then times out). */
static void queue_msg(mesh *m, const char *to, const char *kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *body = NULL;
  int n = vasprintf(&body, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = strlen(MAGIC) + strlen(kind) + (size_t)n + 1;
  outmsg *o = malloc(sizeof *o + len);
  if (o) {
    o->next = NULL;
    snprintf(o->to, sizeof o->to, "%s", to ? to : "");
    snprintf(o->text, len, "%s%s%s", MAGIC, kind, body);
    *m->out_tail = o;
    m->out_tail = &o->next;
  }
  free(body);
}

/* Releases the lock, then hands the outbox to cfg.send in order. */
static void unlock_and_send(mesh *m) {
  outmsg *o = m->out_head;
  m->out_head = NULL;
  m->out_tail = &m->out_head;
  pthread_mutex_unlock(&m->lock);
  while (o) {
    outmsg *next = o->next;
    (void)parley__room_send(m->room, o->to[0] ? o->to : NULL, o->text);
    free(o);
    o = next;
  }
}

/* ---- peers (under lock) ---- */

static peer *find_id(mesh *m, const char *id) {
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].id[0] && strcmp(m->peers[i].id, id) == 0) return &m->peers[i];
  return NULL;
}

static peer *find_call(mesh *m, const parley_call *c) {
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].call == c && c) return &m->peers[i];
  return NULL;
}

static peer *add_peer(mesh *m, const char *id) {
  for (int i = 0; i < MAX_PEERS; i++)
    if (!m->peers[i].id[0] && !m->peers[i].call) {
      peer *p = &m->peers[i];
      memset(p, 0, sizeof *p);
      snprintf(p->id, sizeof p->id, "%s", id);
      p->volume_pct = 100;
      return p;
    }
  return NULL;
}

/* Frees p's call: listeners off, the call freed (it leaves the session by itself). The entry stays
 * while it is a member. */
static void free_call(peer *p) {
  if (p->call) {
    for (size_t k = 0; k < N_KINDS; k++)
      if (p->lids[k] > 0) (void)parley_call_off(p->call, p->lids[k]);
    (void)parley_call_free(p->call);
  }
  p->call = NULL;
  memset(p->lids, 0, sizeof p->lids);
  if (!p->member) p->id[0] = '\0';
}

/* p is no member any more: its call is hung up (its CLOSED listener frees it and the entry), or the
 * entry is freed at once when there is no call or it was hung up already. */
static void let_go(peer *p) {
  p->member = false;
  if (!p->call || parley_call_hangup(p->call) != 0) free_call(p);
}

/* Every member's call interrupted: the room is (the local user's network, most likely). */
static void update_room_interrupted(mesh *m, parley_interrupt_code code) {
  int live = 0, down = 0;
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].member && m->peers[i].call) {
      live++;
      down += m->peers[i].interrupted;
    }
  if (live && down == live)
    parley__room_interrupted(m->room, true, code, "every member's call is interrupted");
  else
    parley__room_interrupted(m->room, false, code, "");
}

static void on_call_event(const parley_event *ev, void *user);

/* A call for p, in the session, muted as the room is, at p's volume, with our listeners. */
static int new_call(mesh *m, peer *p) {
  parley_call *c;
  int rc = parley_call_new(m->eng, &c);
  if (rc) return rc;
  for (size_t k = 0; k < N_KINDS; k++) {
    p->lids[k] = parley_call_on(c, call_kinds[k], on_call_event, m);
    if (p->lids[k] < 0) rc = p->lids[k];
  }
  if (!rc) rc = parley_session_join(m->session, c);
  p->call = c;
  if (rc) {
    free_call(p);
    return rc;
  }
  (void)parley_call_set_mute(c, parley__room_mute_microphone(m->room));
  parley__call_set_volume(c, p->volume_pct);
  parley__room_member_call(m->room, p->id, c);
  return 0;
}

static void offer(mesh *m, peer *p) {
  char *sdp = malloc(SDP_CAP);
  int rc = sdp ? new_call(m, p) : PARLEY_ENOMEM;
  if (!rc) rc = parley_call_create_offer(p->call, sdp, SDP_CAP) > 0 ? 0 : PARLEY_EFULL;
  if (!rc) rc = parley_call_set_local_description(p->call, sdp);
  if (!rc) {
    queue_msg(m, p->id, "offer", "\n%s", sdp);
  } else {
    parley__room_member_left(m->room, p->id, PARLEY_LEAVE_FAILED);
    let_go(p);
  }
  free(sdp);
}

/* ---- messages ---- */

static int on_hello(mesh *m, const char *from, const char *args, bool hello) {
  int muted = 0, off = 0;
  if (sscanf(args, "%d %n", &muted, &off) != 1 || off == 0 || (muted != 0 && muted != 1)) return PARLEY_EPARSE;
  peer *p = find_id(m, from);
  if (p && p->member && !hello) return 0; /* both hellos crossed: known already */
  if (p) { /* a rejoin: the old call is stale; it closes under an anonymous entry */
    p->id[0] = '\0';
    let_go(p);
  }
  int vol = 100;
  int rc = parley__room_member_joined(m->room, from, args + off, muted == 1, NULL, &vol);
  if (rc) return rc;
  p = add_peer(m, from);
  if (!p) {
    parley__room_member_left(m->room, from, PARLEY_LEAVE_FAILED);
    return PARLEY_EFULL;
  }
  p->member = true;
  p->volume_pct = vol;
  if (hello) queue_msg(m, from, "welcome", " %d %s", parley__room_mute_microphone(m->room) ? 1 : 0,
                       parley__room_config(m->room)->display_name);
  if (strcmp(m->self, from) < 0) offer(m, p);
  return 0;
}

static int on_offer(mesh *m, peer *p, const char *sdp) {
  if (strcmp(m->self, p->id) < 0) return PARLEY_ESTATE; /* we offer to this one, not it to us */
  char *answer = malloc(SDP_CAP);
  if (!answer) return PARLEY_ENOMEM;
  int rc = 0;
  bool fresh = !p->call;
  if (fresh) rc = new_call(m, p);
  parley_sdp_error se;
  if (!rc) rc = parley_call_set_remote_description(p->call, PARLEY_SDP_OFFER, sdp, &se);
  if (!rc) rc = parley_call_create_answer(p->call, answer, SDP_CAP) > 0 ? 0 : PARLEY_EFULL;
  if (!rc) rc = parley_call_set_local_description(p->call, answer);
  if (!rc && fresh) rc = parley_call_start(p->call);
  if (!rc) {
    queue_msg(m, p->id, "answer", "\n%s", answer);
  } else if (fresh) {
    free_call(p); /* it stays a member, without a call until it offers again */
  }
  free(answer);
  return rc == PARLEY_EPARSE || rc == PARLEY_ENOMEM ? rc : rc ? PARLEY_ESTATE : 0;
}

static int on_answer(mesh *m, peer *p, const char *sdp) {
  if (!p->call) return PARLEY_ESTATE;
  parley_sdp_error se;
  int rc = parley_call_set_remote_description(p->call, PARLEY_SDP_ANSWER, sdp, &se);
  if (rc) return rc == PARLEY_EPARSE || rc == PARLEY_ENOMEM ? rc : PARLEY_ESTATE;
  rc = parley_call_start(p->call);
  if (rc == 0 || rc == PARLEY_ESTATE) return 0; /* ESTATE: a re-answer, already started */
  parley__room_member_left(m->room, p->id, PARLEY_LEAVE_FAILED); /* no media for this pair */
  let_go(p);
  return rc == PARLEY_ENOMEM ? rc : 0;
}

static int receive(void *state, const char *from, const char *message) {
  mesh *m = state;
  if (strncmp(message, MAGIC, strlen(MAGIC)) != 0) return PARLEY_EPARSE;
  const char *kind = message + strlen(MAGIC);
  size_t klen = strcspn(kind, " \n");
  const char *args = kind + klen + (kind[klen] ? 1 : 0);
#define IS(k) (klen == strlen(k) && strncmp(kind, k, klen) == 0)
  if (!(IS("hello") || IS("welcome") || IS("offer") || IS("answer") || IS("candidate") || IS("mute") || IS("bye")))
    return PARLEY_EPARSE;
  pthread_mutex_lock(&m->lock);
  int rc = 0;
  peer *p = find_id(m, from);
  if (m->leaving) {
    rc = PARLEY_ESTATE;
  } else if (IS("hello") || IS("welcome")) {
    rc = on_hello(m, from, args, IS("hello"));
  } else if (!p || !p->member) {
    rc = PARLEY_ENOTFOUND; /* no hello from it yet, or it left */
  } else if (IS("offer")) {
    rc = on_offer(m, p, args);
  } else if (IS("answer")) {
    rc = on_answer(m, p, args);
  } else if (IS("candidate")) {
    rc = p->call ? parley_call_add_remote_candidate(p->call, args) : PARLEY_ESTATE;
    rc = rc == 1 ? 0 : rc;
  } else if (IS("mute")) {
    rc = strcmp(args, "0") == 0 || strcmp(args, "1") == 0 ? 0 : PARLEY_EPARSE;
    if (!rc) parley__room_member_muted(m->room, from, args[0] == '1');
  } else { /* bye */
    parley__room_member_left(m->room, from, PARLEY_LEAVE_LEFT);
    let_go(p);
  }
#undef IS
  unlock_and_send(m);
  return rc;
}

/* ---- listeners (dispatch thread) ---- */

static void on_call_event(const parley_event *ev, void *user) {
  mesh *m = user;
  pthread_mutex_lock(&m->lock);
  peer *p = find_call(m, ev->call);
  if (!p) {
    pthread_mutex_unlock(&m->lock);
    return;
  }
  switch (ev->kind) {
  case PARLEY_EVENT_LOCAL_CANDIDATE:
    if (p->member && !m->leaving) queue_msg(m, p->id, "candidate", " %s", ev->candidate);
    break;
  case PARLEY_EVENT_INTERRUPTED:
  case PARLEY_EVENT_RESUMED:
    p->interrupted = ev->kind == PARLEY_EVENT_INTERRUPTED;
    if (p->member) {
      parley__room_member_interrupted(m->room, p->id, p->interrupted, ev->code, ev->message);
      update_room_interrupted(m, ev->code);
    }
    break;
  case PARLEY_EVENT_PEER_STATE_CHANGED:
  case PARLEY_EVENT_TRACK_STOPPED:
    if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED ? ev->peer_state == PARLEY_PEER_FAILED
                                                    : ev->reason == PARLEY_STOP_BYE) {
      if (p->member)
        parley__room_member_left(m->room, p->id,
                                 ev->kind == PARLEY_EVENT_TRACK_STOPPED ? PARLEY_LEAVE_LEFT : PARLEY_LEAVE_FAILED);
      let_go(p);
    }
    break;
  case PARLEY_EVENT_CLOSED:
    if (p->member) parley__room_member_left(m->room, p->id, PARLEY_LEAVE_FAILED); /* closed under us */
    p->member = false;
    free_call(p);
    update_room_interrupted(m, PARLEY_INTERRUPT_NONE);
    break;
  default:
    break;
  }
  unlock_and_send(m);
}

static void on_speakers(const parley_event *ev, void *user) {
  mesh *m = user;
  const char *ids[PARLEY_SESSION_MAX_SPEAKERS];
  size_t n = 0;
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < ev->count && i < PARLEY_SESSION_MAX_SPEAKERS; i++) {
    peer *p = find_call(m, ev->speakers[i]);
    if (p && p->member) ids[n++] = p->id;
  }
  parley__room_speakers(m->room, ids, n);
  pthread_mutex_unlock(&m->lock);
}

/* ---- ops ---- */

static void state_free(void *state) {
  mesh *m = state;
  pthread_mutex_lock(&m->lock);
  for (int i = 0; i < MAX_PEERS; i++) {
    m->peers[i].member = false;
    free_call(&m->peers[i]);
  }
  if (m->session) {
    if (m->speakers_lid > 0) (void)parley_session_off(m->session, m->speakers_lid);
    (void)parley_session_free(m->session);
  }
  outmsg *o = m->out_head;
  while (o) {
    outmsg *next = o->next;
    free(o);
    o = next;
  }
  pthread_mutex_unlock(&m->lock);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

static int start(parley_room *room, void **state) {
  mesh *m = calloc(1, sizeof *m);
  if (!m) return PARLEY_ENOMEM;
  m->room = room;
  m->eng = parley__room_engine(room);
  snprintf(m->self, sizeof m->self, "%s", parley__room_config(room)->member_id);
  m->out_tail = &m->out_head;
  pthread_mutex_init(&m->lock, NULL);
  int rc = parley_session_new(m->eng, &m->session);
  if (!rc) {
    m->speakers_lid = parley_session_on(m->session, PARLEY_EVENT_SPEAKERS_CHANGED, on_speakers, m);
    if (m->speakers_lid < 0) rc = m->speakers_lid;
  }
  if (rc) {
    state_free(m);
    return rc;
  }
  pthread_mutex_lock(&m->lock);
  queue_msg(m, NULL, "hello", " %d %s", parley__room_mute_microphone(room) ? 1 : 0,
            parley__room_config(room)->display_name);
  *state = m;
  unlock_and_send(m);
  return 0;
}

static int leave(void *state) {
  mesh *m = state;
  pthread_mutex_lock(&m->lock);
  m->leaving = true;
  queue_msg(m, NULL, "bye", "%s", "");
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].id[0] || m->peers[i].call) let_go(&m->peers[i]);
  /* The calls' CLOSED events are queued before the room's: their listeners free them first. */
  parley__room_closed(m->room, PARLEY_LEAVE_LEFT, NULL);
  unlock_and_send(m);
  return 0;
}

static int set_mute_microphone(void *state, bool mute) {
  mesh *m = state;
  pthread_mutex_lock(&m->lock);
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].call) (void)parley_call_set_mute(m->peers[i].call, mute);
  if (!m->leaving) queue_msg(m, NULL, "mute", " %d", mute ? 1 : 0);
  unlock_and_send(m);
  return 0;
}

static int set_member_volume(void *state, const char *member_id, int volume_pct) {
  mesh *m = state;
  pthread_mutex_lock(&m->lock);
  peer *p = find_id(m, member_id);
  if (p) {
    p->volume_pct = volume_pct;
    if (p->call) parley__call_set_volume(p->call, volume_pct);
  }
  pthread_mutex_unlock(&m->lock);
  return p ? 0 : PARLEY_ENOTFOUND;
}

static void drop_member(void *state, const char *member_id) {
  mesh *m = state;
  pthread_mutex_lock(&m->lock);
  peer *p = find_id(m, member_id);
  if (p && p->member) let_go(p);
  unlock_and_send(m);
}

const parley__room_backend_ops parley__room_mesh_ops = {
    .start = start,
    .receive = receive,
    .leave = leave,
    .set_mute_microphone = set_mute_microphone,
    .set_member_volume = set_member_volume,
    .drop_member = drop_member,
    .free = state_free,
};
