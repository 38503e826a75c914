/* room.c: the room core. Owns a room's config copy, its member list (the local user first), the mute
 * config (kept for members who join later), the vanish timers, the speaker list and the room's events;
 * a backend (room_internal.h: room_mesh.c, room_janus.c) does the signalling and the calls and
 * reports members, flags and speakers here.
 *
 * Threads: the public functions run on app threads (or inside listeners) and call the backend's ops
 * with no lock held. Reports come from any thread but audio (the backend's listeners on the dispatch
 * thread, its own threads). The network thread runs parley__room_poll under eng->lock once per loop
 * (at least every 100 ms): a member interrupted for vanish_grace_ms is removed there (VANISHED), on the
 * engine's clock, and the local speaking flag follows the audio thread's capture_voice_us. room->lock
 * guards everything below "under lock"; it is taken after eng->lock and before ev_lock. Events go to
 * dispatch.c's queue; the room's dispatch hook tells the backend about a vanished member on the
 * dispatch thread, before the app's listeners run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/room_internal.h"

#define ROOM_MAX_MEMBERS 64          /* a Janus room's list; mesh rooms stop at PARLEY_ROOM_MESH_MAX_MEMBERS */
#define LOCAL_SPEECH_HANGOVER_US 300000 /* the local user speaks while a voiced frame went out this recently */

typedef struct member {
  parley_room_member pub;
  parley_call *call;     /* mesh: its call (borrowed from the backend), or NULL */
  int64_t interrupted_us; /* engine clock when it was interrupted */
} member;

typedef struct remembered_volume {
  char id[PARLEY_ROOM_ID_MAX];
  int volume_pct;
} remembered_volume;

struct parley_room {
  parley__target tgt; /* first member: dispatch's view of the room */
  parley_engine *eng;
  const parley__room_backend_ops *ops;
  void *state; /* the backend's */
  parley_room_config cfg; /* strings point to the copies below */
  char room_id[PARLEY_ROOM_ID_MAX], member_id[PARLEY_ROOM_ID_MAX], name[PARLEY_ROOM_ID_MAX];
  char *janus_url, *janus_pin;
  size_t max_members;
  pthread_mutex_t lock;
  /* ---- under lock ---- */
  member m[ROOM_MAX_MEMBERS]; /* m[0]: the local user */
  size_t n;
  remembered_volume volumes[ROOM_MAX_MEMBERS]; /* what the app set, by id, for members who come back */
  size_t n_volumes;
  bool mute_microphone;
  bool left, closed;
  bool interrupted; /* the room as a whole */
  bool local_speaking;
  char remote_speakers[PARLEY_SESSION_MAX_SPEAKERS][PARLEY_ROOM_ID_MAX];
  size_t n_remote_speakers;
  char shown_speakers[PARLEY_SESSION_MAX_SPEAKERS][PARLEY_ROOM_ID_MAX]; /* the last SPEAKERS_CHANGED */
  size_t n_shown_speakers;
  parley_room_stats stats;
  int64_t join_us;
};

static int64_t now_us(const parley_room *r) { return parley__clock_now(&r->eng->clock); }

void parley_room_config_init(parley_room_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->backend = PARLEY_ROOM_MESH;
  cfg->vanish_grace_ms = 5000;
}

const char *parley_leave_reason_name(parley_leave_reason r) {
  static const char *const names[] = {"none", "left", "kicked", "vanished", "failed"};
  return r >= PARLEY_LEAVE_NONE && r <= PARLEY_LEAVE_FAILED ? names[r] : "unknown";
}

/* An id or display name: 1..PARLEY_ROOM_ID_MAX-1 bytes, no control characters (they would break the
 * backends' text formats). */
static bool valid_text(const char *s) {
  if (!s || !*s) return false;
  size_t n = 0;
  for (; s[n]; n++)
    if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n + 1 >= PARLEY_ROOM_ID_MAX) return false;
  return true;
}

/* ---- events (under lock) ---- */

static void post(parley_room *r, parley_event_kind kind, const member *mb, parley_leave_reason reason,
                 parley_interrupt_code code, const char *message) {
  parley_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.room = r;
  ev.time_us = now_us(r);
  ev.count = r->n;
  ev.member = mb ? &mb->pub : NULL;
  ev.call = mb ? mb->call : NULL;
  ev.leave_reason = reason;
  ev.code = code;
  ev.message = message ? message : "";
  parley__engine_post_room(r->eng, &r->tgt, &ev);
}

/* The speakers the app sees: the local user first while it speaks (its capture level is not on the
 * mix's scale, so it is not ranked against the others), then the backend's ranking. Posted on change. */
static void update_speakers(parley_room *r) {
  const char *ids[PARLEY_SESSION_MAX_SPEAKERS];
  size_t n = 0;
  if (r->local_speaking) ids[n++] = r->member_id;
  for (size_t i = 0; i < r->n_remote_speakers && n < PARLEY_SESSION_MAX_SPEAKERS; i++) ids[n++] = r->remote_speakers[i];
  bool same = n == r->n_shown_speakers;
  for (size_t i = 0; same && i < n; i++) same = strcmp(ids[i], r->shown_speakers[i]) == 0;
  if (same || r->closed) return;
  parley_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_SPEAKERS_CHANGED;
  ev.room = r;
  ev.time_us = now_us(r);
  ev.count = n;
  ev.message = "";
  for (size_t i = 0; i < n; i++) {
    snprintf(r->shown_speakers[i], sizeof r->shown_speakers[i], "%s", ids[i]);
    ev.speaker_ids[i] = r->shown_speakers[i];
  }
  r->n_shown_speakers = n;
  parley__engine_post_room(r->eng, &r->tgt, &ev);
}

static member *find(parley_room *r, const char *id) {
  for (size_t i = 1; i < r->n; i++)
    if (strcmp(r->m[i].pub.id, id) == 0) return &r->m[i];
  return NULL;
}

static int *remembered(parley_room *r, const char *id) {
  for (size_t i = 0; i < r->n_volumes; i++)
    if (strcmp(r->volumes[i].id, id) == 0) return &r->volumes[i].volume_pct;
  return NULL;
}

/* Removes m (a copy goes with the event) and drops it from the remote speakers. */
static void remove_member(parley_room *r, member *mb, parley_leave_reason reason) {
  member gone = *mb;
  *mb = r->m[--r->n];
  size_t k = 0;
  for (size_t i = 0; i < r->n_remote_speakers; i++)
    if (strcmp(r->remote_speakers[i], gone.pub.id) != 0) memmove(r->remote_speakers[k++], r->remote_speakers[i], PARLEY_ROOM_ID_MAX);
  r->n_remote_speakers = k;
  post(r, PARLEY_EVENT_MEMBERS_CHANGED, &gone, reason, PARLEY_INTERRUPT_NONE, NULL);
  update_speakers(r);
}

/* ---- what a backend reads ---- */

const parley_room_config *parley__room_config(const parley_room *r) { return &r->cfg; }
parley_engine *parley__room_engine(const parley_room *r) { return r->eng; }

bool parley__room_mute_microphone(parley_room *r) {
  pthread_mutex_lock(&r->lock);
  bool m = r->mute_microphone;
  pthread_mutex_unlock(&r->lock);
  return m;
}

int parley__room_send(parley_room *r, const char *to, const char *message) {
  if (!r->cfg.send) return PARLEY_ESTATE;
  int rc = r->cfg.send(to, message, r->cfg.user);
  pthread_mutex_lock(&r->lock);
  r->stats.messages_sent++;
  pthread_mutex_unlock(&r->lock);
  return rc;
}

/* ---- reports ---- */

int parley__room_member_joined(parley_room *r, const char *id, const char *name, bool muted, parley_call *call,
                               int *volume_pct) {
  if (volume_pct) *volume_pct = 100;
  if (!valid_text(id) || !valid_text(name)) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  int rc = 0;
  member *mb = find(r, id);
  if (strcmp(id, r->member_id) == 0) {
    rc = PARLEY_EINVAL;
  } else if (r->closed) {
    rc = PARLEY_ESTATE;
  } else if (mb) { /* back again (a rejoin): fresh flags */
    snprintf(mb->pub.name, sizeof mb->pub.name, "%s", name);
    mb->pub.muted = muted;
    mb->pub.interrupted = false;
    mb->call = call;
    if (volume_pct) *volume_pct = mb->pub.volume_pct;
    post(r, PARLEY_EVENT_MEMBERS_CHANGED, mb, PARLEY_LEAVE_NONE, PARLEY_INTERRUPT_NONE, NULL);
  } else if (r->n >= r->max_members) {
    rc = PARLEY_EFULL;
  } else {
    mb = &r->m[r->n++];
    memset(mb, 0, sizeof *mb);
    snprintf(mb->pub.id, sizeof mb->pub.id, "%s", id);
    snprintf(mb->pub.name, sizeof mb->pub.name, "%s", name);
    mb->pub.muted = muted;
    const int *v = remembered(r, id);
    mb->pub.volume_pct = v ? *v : 100;
    mb->call = call;
    if (volume_pct) *volume_pct = mb->pub.volume_pct;
    if (r->stats.join_ms < 0) r->stats.join_ms = (now_us(r) - r->join_us) / 1000;
    post(r, PARLEY_EVENT_MEMBERS_CHANGED, mb, PARLEY_LEAVE_NONE, PARLEY_INTERRUPT_NONE, NULL);
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

void parley__room_member_call(parley_room *r, const char *id, parley_call *call) {
  pthread_mutex_lock(&r->lock);
  member *mb = find(r, id);
  if (mb) mb->call = call;
  pthread_mutex_unlock(&r->lock);
}

void parley__room_member_left(parley_room *r, const char *id, parley_leave_reason reason) {
  pthread_mutex_lock(&r->lock);
  member *mb = find(r, id);
  if (mb && !r->closed) remove_member(r, mb, reason == PARLEY_LEAVE_NONE ? PARLEY_LEAVE_LEFT : reason);
  pthread_mutex_unlock(&r->lock);
}

void parley__room_member_muted(parley_room *r, const char *id, bool muted) {
  pthread_mutex_lock(&r->lock);
  member *mb = find(r, id);
  if (mb && !r->closed && mb->pub.muted != muted) {
    mb->pub.muted = muted;
    post(r, PARLEY_EVENT_MEMBERS_CHANGED, mb, PARLEY_LEAVE_NONE, PARLEY_INTERRUPT_NONE, NULL);
  }
  pthread_mutex_unlock(&r->lock);
}

void parley__room_member_interrupted(parley_room *r, const char *id, bool interrupted, parley_interrupt_code code,
                                     const char *message) {
  pthread_mutex_lock(&r->lock);
  member *mb = find(r, id);
  if (mb && !r->closed && mb->pub.interrupted != interrupted) {
    mb->pub.interrupted = interrupted;
    mb->interrupted_us = now_us(r);
    post(r, PARLEY_EVENT_MEMBERS_CHANGED, mb, PARLEY_LEAVE_NONE, PARLEY_INTERRUPT_NONE, NULL);
    post(r, interrupted ? PARLEY_EVENT_INTERRUPTED : PARLEY_EVENT_RESUMED, mb, PARLEY_LEAVE_NONE, code, message);
  }
  pthread_mutex_unlock(&r->lock);
}

void parley__room_interrupted(parley_room *r, bool interrupted, parley_interrupt_code code, const char *message) {
  pthread_mutex_lock(&r->lock);
  if (!r->closed && r->interrupted != interrupted) {
    r->interrupted = interrupted;
    post(r, interrupted ? PARLEY_EVENT_INTERRUPTED : PARLEY_EVENT_RESUMED, NULL, PARLEY_LEAVE_NONE, code, message);
  }
  pthread_mutex_unlock(&r->lock);
}

void parley__room_speakers(parley_room *r, const char *const *ids, size_t n) {
  pthread_mutex_lock(&r->lock);
  r->n_remote_speakers = 0;
  for (size_t i = 0; i < n && r->n_remote_speakers < PARLEY_SESSION_MAX_SPEAKERS; i++)
    if (ids[i] && find(r, ids[i]))
      snprintf(r->remote_speakers[r->n_remote_speakers++], PARLEY_ROOM_ID_MAX, "%s", ids[i]);
  update_speakers(r);
  pthread_mutex_unlock(&r->lock);
}

void parley__room_set_local_id(parley_room *r, const char *id) {
  if (!valid_text(id)) return;
  pthread_mutex_lock(&r->lock);
  snprintf(r->member_id, sizeof r->member_id, "%s", id);
  snprintf(r->m[0].pub.id, sizeof r->m[0].pub.id, "%s", id);
  pthread_mutex_unlock(&r->lock);
}

void parley__room_closed(parley_room *r, parley_leave_reason reason, const char *message) {
  pthread_mutex_lock(&r->lock);
  if (!r->closed) {
    r->n_remote_speakers = 0;
    r->local_speaking = false;
    update_speakers(r);
    r->closed = true;
    post(r, PARLEY_EVENT_CLOSED, NULL, reason, PARLEY_INTERRUPT_NONE, message);
  }
  pthread_mutex_unlock(&r->lock);
}

/* ---- engine: timers, hook, teardown ---- */

void parley__room_poll(parley_engine *e, int64_t now) {
  parley_room *r = e->room;
  if (!r) return;
  int64_t voice_us = atomic_load_explicit(&e->capture_voice_us, memory_order_relaxed);
  pthread_mutex_lock(&r->lock);
  if (!r->closed) {
    int64_t grace_us = (int64_t)r->cfg.vanish_grace_ms * 1000;
    for (size_t i = r->n; i-- > 1;)
      if (r->m[i].pub.interrupted && now - r->m[i].interrupted_us >= grace_us)
        remove_member(r, &r->m[i], PARLEY_LEAVE_VANISHED);
    bool speaking = !r->mute_microphone && voice_us != 0 && now - voice_us < LOCAL_SPEECH_HANGOVER_US;
    if (speaking != r->local_speaking) {
      r->local_speaking = speaking;
      update_speakers(r);
    }
  }
  pthread_mutex_unlock(&r->lock);
}

/* Dispatch thread, before the listeners: the backend lets a vanished member go. */
static void hook(parley__target *t, const parley_event *ev) {
  parley_room *r = (parley_room *)t;
  if (ev->kind == PARLEY_EVENT_MEMBERS_CHANGED && ev->leave_reason == PARLEY_LEAVE_VANISHED && ev->member &&
      r->ops->drop_member)
    r->ops->drop_member(r->state, ev->member->id);
}

static void room_free(parley_room *r) {
  free(r->janus_url);
  free(r->janus_pin);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

/* Unhooks r from its engine (the backend is gone or was never started). */
static void detach(parley_room *r) {
  parley_engine *e = r->eng;
  pthread_mutex_lock(&e->lock);
  e->room = NULL;
  pthread_mutex_unlock(&e->lock);
  parley__dispatch_unregister(e, &r->tgt);
  atomic_store(&e->playout_muted, false);
}

void parley__room_destroy(parley_engine *e) {
  pthread_mutex_lock(&e->lock);
  parley_room *r = e->room;
  pthread_mutex_unlock(&e->lock);
  if (!r) return;
  r->ops->free(r->state);
  detach(r);
  room_free(r);
}

/* ---- public ---- */

static int validate(const parley_room_config *c) {
  if (!valid_text(c->room_id) || !valid_text(c->display_name) || c->vanish_grace_ms <= 0) return PARLEY_EINVAL;
  if (c->backend == PARLEY_ROOM_MESH) return valid_text(c->member_id) && c->send ? 0 : PARLEY_EINVAL;
  if (c->backend == PARLEY_ROOM_JANUS) return c->janus_url && *c->janus_url ? 0 : PARLEY_EINVAL;
  return PARLEY_EINVAL;
}

static const parley__room_backend_ops *backend_ops(parley_room_backend b) {
  if (b == PARLEY_ROOM_MESH) return &parley__room_mesh_ops;
#ifdef PARLEY_HAVE_JANUS
  if (b == PARLEY_ROOM_JANUS) return &parley__room_janus_ops;
#endif
  return NULL;
}

int parley_room_join(parley_engine *e, const parley_room_config *cfg, parley_room **out) {
  if (out) *out = NULL;
  if (!e || !cfg || !out) return PARLEY_EINVAL;
  int err = validate(cfg);
  if (err) return err;
  const parley__room_backend_ops *ops = backend_ops(cfg->backend);
  if (!ops || e->rate_hz != PARLEY__ENGINE_RATE_HZ) return PARLEY_ENOTSUP;
  parley_room *r = calloc(1, sizeof *r);
  if (!r) return PARLEY_ENOMEM;
  bool oom = false;
  r->janus_url = parley__dup_or_null(cfg->janus_url, &oom);
  r->janus_pin = parley__dup_or_null(cfg->janus_pin, &oom);
  if (oom) {
    free(r->janus_url);
    free(r->janus_pin);
    free(r);
    return PARLEY_ENOMEM;
  }
  pthread_mutex_init(&r->lock, NULL);
  r->eng = e;
  r->ops = ops;
  r->cfg = *cfg;
  snprintf(r->room_id, sizeof r->room_id, "%s", cfg->room_id);
  snprintf(r->name, sizeof r->name, "%s", cfg->display_name);
  snprintf(r->member_id, sizeof r->member_id, "%s", cfg->member_id ? cfg->member_id : "");
  r->cfg.room_id = r->room_id;
  r->cfg.display_name = r->name;
  r->cfg.member_id = cfg->member_id ? r->member_id : NULL;
  r->cfg.janus_url = r->janus_url;
  r->cfg.janus_pin = r->janus_pin;
  r->max_members = cfg->backend == PARLEY_ROOM_MESH ? PARLEY_ROOM_MESH_MAX_MEMBERS : ROOM_MAX_MEMBERS;
  r->n = 1;
  snprintf(r->m[0].pub.id, sizeof r->m[0].pub.id, "%s", r->member_id);
  snprintf(r->m[0].pub.name, sizeof r->m[0].pub.name, "%s", r->name);
  r->m[0].pub.local = true;
  r->m[0].pub.muted = r->mute_microphone = cfg->mute_microphone;
  r->m[0].pub.volume_pct = 100;
  r->stats.join_ms = -1;
  r->join_us = now_us(r);
  r->tgt.hook = hook;

  pthread_mutex_lock(&e->lock);
  if (e->room || e->session) {
    pthread_mutex_unlock(&e->lock);
    room_free(r);
    return PARLEY_EFULL;
  }
  r->tgt.serial = e->next_serial++;
  e->room = r;
  pthread_mutex_unlock(&e->lock);
  parley__dispatch_register(e, &r->tgt);
  atomic_store(&e->playout_muted, cfg->mute_earphone);
  err = ops->start(r, &r->state);
  if (err) {
    detach(r);
    room_free(r);
    return err;
  }
  *out = r;
  return 0;
}

/* 0 while the room is joined (not left, not closed), else PARLEY_ESTATE. */
static int joined(parley_room *r) {
  pthread_mutex_lock(&r->lock);
  int rc = r->left || r->closed ? PARLEY_ESTATE : 0;
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int parley_room_receive(parley_room *r, const char *from, const char *message) {
  if (!r || !from || !message) return PARLEY_EINVAL;
  int rc = joined(r);
  if (rc) return rc;
  if (!r->ops->receive) return PARLEY_ESTATE;
  rc = r->ops->receive(r->state, from, message);
  if (rc == 0) {
    pthread_mutex_lock(&r->lock);
    r->stats.messages_received++;
    pthread_mutex_unlock(&r->lock);
  }
  return rc;
}

int parley_room_leave(parley_room *r) {
  if (!r) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  int rc = r->left || r->closed ? PARLEY_ESTATE : 0;
  r->left = true;
  pthread_mutex_unlock(&r->lock);
  if (rc) return rc;
  if (r->ops->leave(r->state) != 0) parley__room_closed(r, PARLEY_LEAVE_LEFT, NULL);
  return 0;
}

int parley_room_free(parley_room *r) {
  if (!r) return PARLEY_EINVAL;
  if (parley__target_has_listeners(r->eng, &r->tgt)) return PARLEY_ESTATE;
  pthread_mutex_lock(&r->lock);
  bool closed = r->closed;
  pthread_mutex_unlock(&r->lock);
  if (!closed) return PARLEY_ESTATE;
  r->ops->free(r->state);
  detach(r);
  room_free(r);
  return 0;
}

int parley_room_members(parley_room *r, parley_room_member *out, size_t cap) {
  if (!r || (!out && cap)) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n && i < cap; i++) out[i] = r->m[i].pub;
  int n = (int)r->n;
  pthread_mutex_unlock(&r->lock);
  return n;
}

int parley_room_set_mute_microphone(parley_room *r, bool mute) {
  if (!r) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  int rc = r->closed ? PARLEY_ESTATE : 0;
  bool changed = !rc && r->mute_microphone != mute;
  if (changed) {
    r->mute_microphone = r->m[0].pub.muted = mute;
    post(r, PARLEY_EVENT_MEMBERS_CHANGED, &r->m[0], PARLEY_LEAVE_NONE, PARLEY_INTERRUPT_NONE, NULL);
    if (mute && r->local_speaking) {
      r->local_speaking = false;
      update_speakers(r);
    }
  }
  pthread_mutex_unlock(&r->lock);
  if (rc) return rc;
  return changed ? r->ops->set_mute_microphone(r->state, mute) : 0;
}

int parley_room_set_mute_earphone(parley_room *r, bool mute) {
  if (!r) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  int rc = r->closed ? PARLEY_ESTATE : 0;
  if (!rc) atomic_store(&r->eng->playout_muted, mute);
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int parley_room_set_member_volume(parley_room *r, const char *member_id, int volume_pct) {
  if (!r || !member_id) return PARLEY_EINVAL;
  if (volume_pct < 0 || volume_pct > 200) return PARLEY_ERANGE;
  pthread_mutex_lock(&r->lock);
  int rc = r->closed ? PARLEY_ESTATE : find(r, member_id) ? 0 : PARLEY_ENOTFOUND;
  pthread_mutex_unlock(&r->lock);
  if (rc) return rc;
  rc = r->ops->set_member_volume ? r->ops->set_member_volume(r->state, member_id, volume_pct) : PARLEY_ENOTSUP;
  if (rc) return rc;
  pthread_mutex_lock(&r->lock);
  member *mb = find(r, member_id);
  if (mb) mb->pub.volume_pct = volume_pct;
  int *v = remembered(r, member_id);
  if (!v && r->n_volumes < ROOM_MAX_MEMBERS) {
    snprintf(r->volumes[r->n_volumes].id, PARLEY_ROOM_ID_MAX, "%s", member_id);
    v = &r->volumes[r->n_volumes++].volume_pct;
  }
  if (v) *v = volume_pct;
  pthread_mutex_unlock(&r->lock);
  return 0;
}

int parley_room_on(parley_room *r, parley_event_kind kind, parley_event_fn fn, void *user) {
  if (!r) return PARLEY_EINVAL;
  if (kind != PARLEY_EVENT_MEMBERS_CHANGED && kind != PARLEY_EVENT_SPEAKERS_CHANGED &&
      kind != PARLEY_EVENT_INTERRUPTED && kind != PARLEY_EVENT_RESUMED && kind != PARLEY_EVENT_CLOSED)
    return PARLEY_EINVAL;
  return parley__target_on(r->eng, &r->tgt, kind, fn, user);
}

int parley_room_off(parley_room *r, int listener_id) {
  if (!r) return PARLEY_EINVAL;
  return parley__target_off(r->eng, &r->tgt, listener_id);
}

int parley_room_get_stats(parley_room *r, parley_room_stats *out) {
  if (!r || !out) return PARLEY_EINVAL;
  pthread_mutex_lock(&r->lock);
  *out = r->stats;
  pthread_mutex_unlock(&r->lock);
  out->events_dropped = parley__target_events_dropped(r->eng, &r->tgt);
  return 0;
}
