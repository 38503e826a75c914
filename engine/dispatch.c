/* dispatch.c: the engine's event queue, the listener tables of its calls, and the one place listeners
 * run: the dispatch thread (PARLEY_DISPATCH_THREAD) or parley_engine_dispatch on the app's thread
 * (PARLEY_DISPATCH_APP, woken through an eventfd).
 *
 * Owns the queue of events, which lives in its targets' slots (engine_internal.h: allocated with each
 * call and session, so posting never allocates and CLOSED, in a slot of its own, is never lost; a
 * full target drops its oldest queued state change and counts it). Producers are the network
 * thread and app threads (signaling, hangup, session membership); never the audio thread. Listeners
 * attach to targets: calls and sessions. Everything is guarded by
 * eng->ev_lock, which is released around every listener call: a listener may call any parley_
 * function, including parley_call_off and parley_call_free on its own call. Before each listener runs, the
 * call is looked up again in the registry (pointer and serial) and the next listener is looked up by
 * id, so a listener removed or a call freed meanwhile is not called.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine_internal.h"

/* ---- queue ---- */

static void notify(parley_engine *e) {
  if (e->cfg.dispatch == PARLEY_DISPATCH_APP) {
    uint64_t one = 1;
    ssize_t r = write(e->event_fd, &one, sizeof one);
    (void)r;
  } else {
    pthread_cond_signal(&e->ev_cond);
  }
}

static bool droppable(parley_event_kind k) {
  return k == PARLEY_EVENT_ICE_STATE_CHANGED || k == PARLEY_EVENT_PEER_STATE_CHANGED ||
         k == PARLEY_EVENT_SIGNALING_STATE_CHANGED || k == PARLEY_EVENT_SPEAKERS_CHANGED;
}

static void unlink_event(parley_engine *e, parley__queued_event *q) {
  parley__queued_event **pp = &e->q_head, *prev = NULL;
  while (*pp && *pp != q) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (!*pp) return;
  *pp = q->next;
  if (e->q_tail == q) e->q_tail = prev;
  q->used = false;
}

/* A free slot of t for an event of kind (ev_lock held). Never fails: CLOSED has slot 0 to itself; any
 * other event takes a free slot or, when all are queued, the slot of t's oldest queued state change
 * (the state it reported is stale by now), else of t's oldest queued event; the dropped one is counted. */
static parley__queued_event *take(parley_engine *e, parley__target *t, parley_event_kind kind) {
  parley__queued_event *q = NULL;
  if (kind == PARLEY_EVENT_CLOSED) {
    q = &t->slots[0];
  } else {
    for (int i = 1; i < PARLEY__TARGET_EVENTS && !q; i++)
      if (!t->slots[i].used) q = &t->slots[i];
    parley__queued_event *any = NULL;
    for (parley__queued_event *p = e->q_head; p && !q; p = p->next)
      if (p->target == t && p->ev.kind != PARLEY_EVENT_CLOSED) {
        if (!any) any = p;
        if (droppable(p->ev.kind)) q = p;
      }
    if (!q) q = any ? any : &t->slots[1]; /* all queued: used slots are queued slots */
  }
  if (q->used) {
    unlink_event(e, q);
    t->events_dropped++;
  }
  memset(q, 0, offsetof(parley__queued_event, message));
  q->message[0] = q->candidate[0] = '\0';
  q->used = true;
  q->target = t;
  q->serial = t->serial;
  q->ev.kind = kind;
  q->ev.message = q->message;
  q->ev.candidate = q->candidate;
  return q;
}

/* Queues q (taken and filled under ev_lock, still held) and wakes the dispatcher. */
static void enqueue(parley_engine *e, parley__queued_event *q) {
  q->seq = e->q_seq++;
  if (e->q_tail) e->q_tail->next = q;
  else e->q_head = q;
  e->q_tail = q;
  notify(e);
  pthread_mutex_unlock(&e->ev_lock);
}

static parley__queued_event *begin(parley_engine *e, parley__target *t, parley_event_kind kind, int64_t now_us) {
  pthread_mutex_lock(&e->ev_lock);
  parley__queued_event *q = take(e, t, kind);
  q->ev.time_us = now_us;
  return q;
}

void parley__engine_post(parley_engine *e, parley_call *call, const parley__event *iev) {
  parley__queued_event *q = begin(e, parley__call_target(call), iev->kind, iev->now_us);
  q->ev.call = call;
  q->ev.ssrc = iev->ssrc;
  q->ev.reason = iev->stop_reason;
  q->ev.ice_state = iev->ice_state;
  q->ev.peer_state = iev->peer_state;
  q->ev.signaling_state = iev->signaling_state;
  q->ev.code = iev->code;
  memcpy(q->message, iev->message, sizeof q->message);
  q->message[sizeof q->message - 1] = '\0';
  enqueue(e, q);
}

void parley__engine_post_candidate(parley_engine *e, parley_call *call, const char *line, int64_t now_us) {
  parley__queued_event *q = begin(e, parley__call_target(call), PARLEY_EVENT_LOCAL_CANDIDATE, now_us);
  q->ev.call = call;
  snprintf(q->candidate, sizeof q->candidate, "%s", line);
  enqueue(e, q);
}

void parley__engine_post_closed(parley_engine *e, parley_call *call, int64_t now_us) {
  parley__queued_event *q = begin(e, parley__call_target(call), PARLEY_EVENT_CLOSED, now_us);
  q->ev.call = call;
  enqueue(e, q);
}

void parley__engine_post_session(parley_engine *e, parley_session *s, const parley_event *ev) {
  parley__queued_event *q = begin(e, &s->tgt, ev->kind, ev->time_us);
  q->ev = *ev;
  q->ev.session = s;
  q->ev.message = q->message;
  q->ev.candidate = q->candidate;
  enqueue(e, q);
}

void parley__engine_post_room(parley_engine *e, parley__target *t, const parley_event *ev) {
  parley__queued_event *q = begin(e, t, ev->kind, ev->time_us);
  q->ev = *ev;
  snprintf(q->message, sizeof q->message, "%s", ev->message ? ev->message : "");
  if (ev->member) q->member = *ev->member;
  for (size_t i = 0; ev->kind == PARLEY_EVENT_SPEAKERS_CHANGED && i < ev->count && i < PARLEY_SESSION_MAX_SPEAKERS; i++)
    snprintf(q->speaker_ids[i], sizeof q->speaker_ids[i], "%s", ev->speaker_ids[i]);
  enqueue(e, q);
}

/* Points q's event at q's own copies of its strings and member. */
static void repoint(parley__queued_event *q) {
  q->ev.message = q->message;
  if (!q->ev.room) {
    q->ev.candidate = q->candidate;
    return;
  }
  q->ev.candidate = "";
  if (q->ev.member) q->ev.member = &q->member;
  for (size_t i = 0; i < PARLEY_SESSION_MAX_SPEAKERS; i++)
    q->ev.speaker_ids[i] = q->ev.kind == PARLEY_EVENT_SPEAKERS_CHANGED && i < q->ev.count ? q->speaker_ids[i] : NULL;
}

/* Moves the oldest queued event into *out (its slot is free again: the target may be freed while the
 * copy is delivered). ev_lock held. false when the queue is empty. */
static bool pop(parley_engine *e, parley__queued_event *out) {
  parley__queued_event *q = e->q_head;
  if (!q) return false;
  e->q_head = q->next;
  if (!e->q_head) e->q_tail = NULL;
  q->used = false;
  *out = *q;
  out->next = NULL;
  repoint(out);
  return true;
}

/* ---- registry ---- */

#define LIVE_MAX PARLEY__LIVE_MAX

void parley__dispatch_register(parley_engine *e, parley__target *t) {
  pthread_mutex_lock(&e->ev_lock);
  for (int i = 0; i < LIVE_MAX; i++)
    if (!e->live[i]) {
      e->live[i] = t;
      e->live_serial[i] = t->serial;
      break;
    }
  pthread_mutex_unlock(&e->ev_lock);
}

/* Removes the target and drops its pending events. */
void parley__dispatch_unregister(parley_engine *e, parley__target *t) {
  pthread_mutex_lock(&e->ev_lock);
  for (int i = 0; i < LIVE_MAX; i++)
    if (e->live[i] == t) e->live[i] = NULL;
  parley__queued_event **pp = &e->q_head, *last = NULL;
  while (*pp) {
    parley__queued_event *q = *pp;
    if (q->target == t) {
      *pp = q->next;
      q->used = false;
    } else {
      last = q;
      pp = &q->next;
    }
  }
  e->q_tail = last;
  pthread_mutex_unlock(&e->ev_lock);
}

static bool alive(parley_engine *e, parley__target *t, uint64_t serial) {
  for (int i = 0; i < LIVE_MAX; i++)
    if (e->live[i] == t && e->live_serial[i] == serial) return true;
  return false;
}

uint64_t parley__target_events_dropped(parley_engine *e, parley__target *t) {
  pthread_mutex_lock(&e->ev_lock);
  uint64_t n = t->events_dropped;
  pthread_mutex_unlock(&e->ev_lock);
  return n;
}

bool parley__target_has_listeners(parley_engine *e, parley__target *t) {
  pthread_mutex_lock(&e->ev_lock);
  bool any = false;
  for (int i = 0; i < PARLEY_CALL_MAX_LISTENERS; i++)
    if (t->listeners[i].id) any = true;
  pthread_mutex_unlock(&e->ev_lock);
  return any;
}

/* ---- listeners ---- */

int parley__target_on(parley_engine *e, parley__target *t, parley_event_kind kind, parley_event_fn fn,
                      void *user) {
  if (!fn) return PARLEY_EINVAL;
  int r = PARLEY_EFULL;
  pthread_mutex_lock(&e->ev_lock);
  if (t->closed_delivered) {
    r = PARLEY_ESTATE;
  } else {
    for (int i = 0; i < PARLEY_CALL_MAX_LISTENERS; i++)
      if (!t->listeners[i].id) {
        r = ++t->next_listener_id; /* increasing ids: registration order */
        t->listeners[i] = (parley__listener){.id = r, .kind = kind, .fn = fn, .user = user};
        break;
      }
  }
  pthread_mutex_unlock(&e->ev_lock);
  return r;
}

int parley__target_off(parley_engine *e, parley__target *t, int listener_id) {
  if (listener_id <= 0) return PARLEY_EINVAL;
  int r = PARLEY_ENOTFOUND;
  pthread_mutex_lock(&e->ev_lock);
  for (int i = 0; i < PARLEY_CALL_MAX_LISTENERS; i++)
    if (t->listeners[i].id == listener_id) {
      t->listeners[i].id = 0;
      r = 0;
    }
  pthread_mutex_unlock(&e->ev_lock);
  return r;
}

/* Runs the listeners of one event. ev_lock is NOT held on entry or exit. */
static void deliver(parley_engine *e, parley__queued_event *q) {
  if (e->disp_running) PARLEY__OWNER_CHECK(&e->disp_owner, "listeners (the dispatch thread)");
  pthread_mutex_lock(&e->ev_lock);
  void (*hook)(parley__target *, const parley_event *) = alive(e, q->target, q->serial) ? q->target->hook : NULL;
  pthread_mutex_unlock(&e->ev_lock);
  if (hook) hook(q->target, &q->ev);
  int last_id = 0;
  for (int guard = 0; guard < PARLEY_CALL_MAX_LISTENERS * 4; guard++) {
    pthread_mutex_lock(&e->ev_lock);
    if (!alive(e, q->target, q->serial)) {
      pthread_mutex_unlock(&e->ev_lock);
      return;
    }
    parley__listener pick = {0};
    for (int i = 0; i < PARLEY_CALL_MAX_LISTENERS; i++) {
      const parley__listener *l = &q->target->listeners[i];
      if (l->id > last_id && l->kind == q->ev.kind && (!pick.id || l->id < pick.id)) pick = *l;
    }
    if (!pick.id) {
      if (q->ev.kind == PARLEY_EVENT_CLOSED) q->target->closed_delivered = true;
      pthread_mutex_unlock(&e->ev_lock);
      return;
    }
    last_id = pick.id;
    pthread_mutex_unlock(&e->ev_lock);
    pick.fn(&q->ev, pick.user);
  }
}

/* ---- dispatch thread ---- */

static void *disp_main(void *arg) {
  parley_engine *e = arg;
  pthread_mutex_lock(&e->ev_lock);
  for (;;) {
    while (!e->q_head && !e->disp_stop) pthread_cond_wait(&e->ev_cond, &e->ev_lock);
    if (e->disp_stop) break;
    parley__queued_event q;
    (void)pop(e, &q);
    pthread_mutex_unlock(&e->ev_lock);
    deliver(e, &q);
    pthread_mutex_lock(&e->ev_lock);
  }
  pthread_mutex_unlock(&e->ev_lock);
  return NULL;
}

int parley__dispatch_start(parley_engine *e) {
  if (e->cfg.dispatch == PARLEY_DISPATCH_APP) return 0;
  if (pthread_create(&e->disp, NULL, disp_main, e) != 0) return PARLEY_ENOMEM; /* as engine.c's threads */
  e->disp_running = true;
  return 0;
}

void parley__dispatch_stop(parley_engine *e) {
  if (e->disp_running) {
    pthread_mutex_lock(&e->ev_lock);
    e->disp_stop = true;
    pthread_cond_signal(&e->ev_cond);
    pthread_mutex_unlock(&e->ev_lock);
    pthread_join(e->disp, NULL);
    e->disp_running = false;
  }
  pthread_mutex_lock(&e->ev_lock);
  parley__queued_event q;
  while (pop(e, &q)) continue;
  pthread_mutex_unlock(&e->ev_lock);
}

bool parley__dispatch_on_dispatch_thread(parley_engine *e) {
  if (e->disp_running && pthread_equal(e->disp, pthread_self())) return true;
  return atomic_load(&e->app_dispatching) && pthread_equal(e->app_dispatcher, pthread_self());
}

/* ---- app dispatch ---- */

int parley_engine_event_fd(const parley_engine *eng) {
  if (!eng) return PARLEY_EINVAL;
  if (eng->cfg.dispatch != PARLEY_DISPATCH_APP) return PARLEY_ESTATE;
  return eng->event_fd;
}

int parley_engine_dispatch(parley_engine *e) {
  if (!e) return PARLEY_EINVAL;
  if (e->cfg.dispatch != PARLEY_DISPATCH_APP) return PARLEY_ESTATE;
  if (parley__dispatch_on_dispatch_thread(e)) return PARLEY_ESTATE;
  e->app_dispatcher = pthread_self();
  atomic_store(&e->app_dispatching, true);
  /* Clear the fd first: an event posted after this read makes it readable again. */
  uint64_t v;
  ssize_t r = read(e->event_fd, &v, sizeof v);
  (void)r;
  int n = 0;
  /* Bounded: events posted by the listeners themselves wait for the next call. */
  pthread_mutex_lock(&e->ev_lock);
  bool any = e->q_tail != NULL;
  uint64_t end = any ? e->q_tail->seq : 0;
  pthread_mutex_unlock(&e->ev_lock);
  while (any) {
    parley__queued_event q;
    pthread_mutex_lock(&e->ev_lock);
    bool got = e->q_head && e->q_head->seq <= end && pop(e, &q);
    pthread_mutex_unlock(&e->ev_lock);
    if (!got) break;
    deliver(e, &q);
    n++;
  }
  atomic_store(&e->app_dispatching, false);
  return n;
}
