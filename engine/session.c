/* session.c: a mesh session: a set of the engine's calls whose playout goes through one mixer
 * (engine/mixer.h: sum, soft limiter, active-speaker ranking) instead of the plain sum, with
 * members-changed and speakers-changed events. The capture is encoded once per call (each call keeps
 * its own send chain: different peers need their own encoder state and SRTP).
 *
 * Owns the mixer. Threads: the parley_session_* functions run on app threads under eng->lock. The mixer
 * is published to the audio thread through eng->mixer (seq_cst; unpublished and retired like call
 * media: never freed while a period may hold it) and then belongs to the audio thread, which
 * adds/removes participants itself from each slot's media->session_id (so membership changes need no
 * command queue) and publishes the ranking (engine/ranking.h, a seqlock). The network thread turns
 * each new ranking into SPEAKERS_CHANGED.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"

static int64_t now_us(parley_engine *e) { return parley__clock_now(&e->clock); }

static void post_members(parley_session *s, parley_call *c) {
  parley_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_MEMBERS_CHANGED;
  ev.call = c;
  ev.time_us = now_us(s->eng);
  ev.count = s->count;
  parley__engine_post_session(s->eng, s, &ev);
}

int parley_session_new(parley_engine *e, parley_session **out) {
  if (out) *out = NULL;
  if (!e || !out) return PARLEY_EINVAL;
  if (e->rate_hz != PARLEY__ENGINE_RATE_HZ) return PARLEY_ENOTSUP;
  parley_session *s = calloc(1, sizeof *s);
  if (!s) return PARLEY_ENOMEM;
  parley__mixer *mix = parley__mixer_new(PARLEY_ENGINE_MAX_CALLS, e->frame_samples, PARLEY_SESSION_MAX_SPEAKERS);
  if (!mix) {
    free(s);
    return PARLEY_ENOMEM;
  }
  s->eng = e;
  s->tgt.is_session = true;
  pthread_mutex_lock(&e->lock);
  if (e->session) {
    pthread_mutex_unlock(&e->lock);
    parley__mixer_free(mix);
    free(s);
    return PARLEY_EFULL;
  }
  s->tgt.serial = e->next_serial++;
  s->speakers_seen = atomic_load(&e->speakers.seq); /* report only rankings made from now on */
  e->session = s;
  atomic_fetch_add(&e->mixer_gen, 1); /* before the mixer: the audio thread resets its slot map */
  atomic_store(&e->mixer, mix);
  parley__dispatch_register(e, &s->tgt);
  pthread_mutex_unlock(&e->lock);
  *out = s;
  return 0;
}

static void mixer_free_any(void *m) { parley__mixer_free(m); }

static void detach_mixer(parley_engine *e) {
  parley__mixer *mix = atomic_exchange(&e->mixer, NULL);
  atomic_fetch_add(&e->mixer_gen, 1);
  /* Freed once no period can still use it (same rule as call media). */
  parley__engine_retire(e, mix, mixer_free_any);
}

int parley_session_free(parley_session *s) {
  if (!s) return PARLEY_EINVAL;
  parley_engine *e = s->eng;
  if (parley__target_has_listeners(e, &s->tgt)) return PARLEY_ESTATE;
  pthread_mutex_lock(&e->lock);
  if (s->count) {
    pthread_mutex_unlock(&e->lock);
    return PARLEY_ESTATE;
  }
  detach_mixer(e);
  e->session = NULL;
  pthread_mutex_unlock(&e->lock);
  parley__dispatch_unregister(e, &s->tgt);
  free(s);
  return 0;
}

int parley_session_join(parley_session *s, parley_call *c) {
  if (!s || !c || parley__call_engine(c) != s->eng) return PARLEY_EINVAL;
  parley_engine *e = s->eng;
  pthread_mutex_lock(&e->lock);
  int r = 0;
  if (parley__call_session(c) || parley__call_is_hungup(c)) {
    r = PARLEY_ESTATE;
  } else if (s->count >= PARLEY_ENGINE_MAX_CALLS) {
    r = PARLEY_EFULL;
  } else {
    s->members[s->count++] = c;
    parley__call_set_session(c, s);
    post_members(s, c);
  }
  pthread_mutex_unlock(&e->lock);
  return r;
}

/* Under lock. */
static int leave(parley_session *s, parley_call *c) {
  PARLEY__ENGINE_LOCKED(s->eng);
  for (size_t i = 0; i < s->count; i++)
    if (s->members[i] == c) {
      s->members[i] = s->members[--s->count];
      parley__call_set_session(c, NULL);
      post_members(s, c);
      return 0;
    }
  return PARLEY_ENOTFOUND;
}

int parley_session_leave(parley_session *s, parley_call *c) {
  if (!s || !c) return PARLEY_EINVAL;
  pthread_mutex_lock(&s->eng->lock);
  int r = leave(s, c);
  pthread_mutex_unlock(&s->eng->lock);
  return r;
}

void parley__session_drop_call(parley_call *c) {
  parley_session *s = parley__call_session(c);
  if (s) (void)leave(s, c);
}

int parley_session_count(parley_session *s) {
  if (!s) return PARLEY_EINVAL;
  pthread_mutex_lock(&s->eng->lock);
  int n = (int)s->count;
  pthread_mutex_unlock(&s->eng->lock);
  return n;
}

int parley_session_get_stats(parley_session *s, parley_session_stats *out) {
  if (!s || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  out->events_dropped = parley__target_events_dropped(s->eng, &s->tgt);
  return 0;
}

int parley_session_on(parley_session *s, parley_event_kind kind, parley_event_fn fn, void *user) {
  if (!s || (kind != PARLEY_EVENT_MEMBERS_CHANGED && kind != PARLEY_EVENT_SPEAKERS_CHANGED)) return PARLEY_EINVAL;
  return parley__target_on(s->eng, &s->tgt, kind, fn, user);
}

int parley_session_off(parley_session *s, int listener_id) {
  if (!s) return PARLEY_EINVAL;
  return parley__target_off(s->eng, &s->tgt, listener_id);
}

void parley__session_poll(parley_engine *e) {
  PARLEY__ENGINE_NET_THREAD(e);
  PARLEY__ENGINE_LOCKED(e);
  parley_session *s = e->session;
  if (!s) return;
  uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
  unsigned n = 0;
  /* Nothing new, or a ranking being published while we looked: the next loop takes it. */
  if (!parley__ranking_read(&e->speakers, &s->speakers_seen, ids, &n)) return;
  parley_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_SPEAKERS_CHANGED;
  ev.time_us = now_us(e);
  for (unsigned i = 0; i < n; i++)
    for (size_t k = 0; k < s->count; k++)
      if ((uint32_t)parley__call_serial(s->members[k]) == ids[i]) ev.speakers[ev.count++] = s->members[k];
  parley__engine_post_session(e, s, &ev);
}

void parley__session_destroy(parley_engine *e) {
  PARLEY__ENGINE_LOCKED(e);
  parley_session *s = e->session;
  if (!s) return;
  for (size_t i = 0; i < s->count; i++) parley__call_set_session(s->members[i], NULL);
  s->count = 0;
  detach_mixer(e);
  e->session = NULL;
  parley__dispatch_unregister(e, &s->tgt);
  free(s);
}
