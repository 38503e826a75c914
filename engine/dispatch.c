/* dispatch.c: the engine's event queue, the listener tables of its calls, and the one place listeners
 * run: the dispatch thread (PARLEY_DISPATCH_THREAD) or parley_engine_dispatch on the app's thread
 * (PARLEY_DISPATCH_APP, woken through an eventfd).
 *
 * Owns the queued events (malloc'd by the poster, freed after dispatch). Producers are the network
 * thread and app threads (signaling, hangup, session membership); never the audio thread. Listeners
 * attach to targets: calls and sessions. Everything is guarded by
 * eng->ev_lock, which is released around every listener call: a listener may call any parley_
 * function, including parley_off and parley_call_free on its own call. Before each listener runs, the
 * call is looked up again in the registry (pointer and serial) and the next listener is looked up by
 * id, so a listener removed or a call freed meanwhile is not called.
 */
#define _GNU_SOURCE
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

static void enqueue(parley_engine *e, parley__queued_event *q) {
  pthread_mutex_lock(&e->ev_lock);
  if (e->q_tail) e->q_tail->next = q;
  else e->q_head = q;
  e->q_tail = q;
  notify(e);
  pthread_mutex_unlock(&e->ev_lock);
}

static parley__queued_event *make(parley__target *t, parley_event_kind kind, int64_t now_us) {
  parley__queued_event *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->target = t;
  q->serial = t->serial;
  q->ev.kind = kind;
  q->ev.time_us = now_us;
  q->ev.message = q->message;
  q->ev.candidate = q->candidate;
  return q;
}

void parley__engine_post(parley_engine *e, parley_call *call, const parley__event *iev) {
  parley__queued_event *q = make(parley__call_target(call), iev->kind, iev->now_us);
  if (!q) return; /* out of memory: the event is lost (nothing better to do on the network thread) */
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
  parley__queued_event *q = make(parley__call_target(call), PARLEY_EVENT_LOCAL_CANDIDATE, now_us);
  if (!q) return;
  q->ev.call = call;
  snprintf(q->candidate, sizeof q->candidate, "%s", line);
  enqueue(e, q);
}

void parley__engine_post_closed(parley_engine *e, parley_call *call, int64_t now_us) {
  parley__queued_event *q = make(parley__call_target(call), PARLEY_EVENT_CLOSED, now_us);
  if (!q) return;
  q->ev.call = call;
  enqueue(e, q);
}

void parley__engine_post_session(parley_engine *e, parley_session *s, const parley_event *ev) {
  parley__queued_event *q = make(&s->tgt, ev->kind, ev->time_us);
  if (!q) return;
  q->ev = *ev;
  q->ev.session = s;
  q->ev.message = q->message;
  q->ev.candidate = q->candidate;
  enqueue(e, q);
}

static parley__queued_event *pop(parley_engine *e) {
  parley__queued_event *q = e->q_head;
  if (q) {
    e->q_head = q->next;
    if (!e->q_head) e->q_tail = NULL;
  }
  return q;
}

/* ---- registry ---- */

#define LIVE_MAX (PARLEY_ENGINE_MAX_CALLS + 1)

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
      free(q);
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
    parley__queued_event *q = pop(e);
    pthread_mutex_unlock(&e->ev_lock);
    deliver(e, q);
    free(q);
    pthread_mutex_lock(&e->ev_lock);
  }
  pthread_mutex_unlock(&e->ev_lock);
  return NULL;
}

int parley__dispatch_start(parley_engine *e) {
  if (e->cfg.dispatch == PARLEY_DISPATCH_APP) return 0;
  if (pthread_create(&e->disp, NULL, disp_main, e) != 0) return PARLEY_ENETWORK;
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
  parley__queued_event *q;
  while ((q = pop(e)) != NULL) free(q);
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
  parley__queued_event *end = e->q_tail;
  pthread_mutex_unlock(&e->ev_lock);
  while (end) {
    pthread_mutex_lock(&e->ev_lock);
    parley__queued_event *q = pop(e);
    pthread_mutex_unlock(&e->ev_lock);
    if (!q) break;
    deliver(e, q);
    n++;
    bool last = q == end;
    free(q);
    if (last) break;
  }
  atomic_store(&e->app_dispatching, false);
  return n;
}
