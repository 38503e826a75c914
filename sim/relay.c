/* relay.c: the relay core (see relay.h). Owns two impairment models, a fixed pool of queue slots with
 * their payload storage, a free list and a binary min-heap of queued slots keyed by (due time, arrival
 * order). Everything is allocated in parley__relay_new; receive and pop_due only move slot indices and
 * copy bytes, so they are safe in a tight I/O loop. One thread at a time. */
#include "sim/relay.h"
#include "sim/due_heap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define B2A_SEED_STEP UINT64_C(0x9E3779B97F4A7C15)

typedef struct slot {
  int64_t due_us;
  int64_t recv_us;
  uint64_t order; /* tie-break for equal due times: arrival order */
  uint64_t seq;   /* per-direction receive sequence, for counting reordering */
  size_t len;
  parley__relay_dir dir;
} slot;

typedef struct dir_state {
  parley__relay_dir_stats st;
  int64_t delay_sum_us;
  uint64_t next_seq;
  uint64_t max_seq_out;
  bool any_out;
} dir_state;

struct parley__relay {
  parley__impair *model[2];
  int64_t start_us;
  size_t max_queued, max_datagram;
  slot *slots;
  unsigned char *data; /* max_queued * max_datagram */
  size_t *free_list;
  size_t n_free;
  parley__due_heap due; /* queued slots by (due time, arrival order) */
  uint64_t next_order;
  dir_state dirs[2];
};

parley__relay *parley__relay_new(const parley__relay_config *cfg, int64_t start_us, int *err) {
  int e = 0;
  parley__relay *r = NULL;
  if (!cfg || cfg->max_queued == 0 || cfg->max_datagram == 0 || cfg->max_datagram > PARLEY__RELAY_MAX_DATAGRAM ||
      cfg->max_queued > SIZE_MAX / 2 / cfg->max_datagram || cfg->max_queued > SIZE_MAX / sizeof(slot)) {
    e = PARLEY_EINVAL;
  }
  if (e == 0 && !(r = calloc(1, sizeof *r))) e = PARLEY_ENOMEM;
  if (e == 0) {
    r->start_us = start_us;
    r->max_queued = cfg->max_queued;
    r->max_datagram = cfg->max_datagram;
    r->model[0] = parley__impair_new(&cfg->impair[0], cfg->seed, &e);
  }
  if (e == 0) r->model[1] = parley__impair_new(&cfg->impair[1], cfg->seed + B2A_SEED_STEP, &e);
  if (e == 0) {
    r->slots = calloc(cfg->max_queued, sizeof *r->slots);
    r->data = malloc(cfg->max_queued * cfg->max_datagram);
    r->free_list = malloc(cfg->max_queued * sizeof *r->free_list);
    if (!r->slots || !r->data || !r->free_list || parley__due_heap_init(&r->due, cfg->max_queued) != 0)
      e = PARLEY_ENOMEM;
  }
  if (e != 0) {
    parley__relay_free(r);
    if (err) *err = e;
    return NULL;
  }
  /* Free list popped from the end: hand out slot 0 first. */
  for (size_t i = 0; i < r->max_queued; i++) r->free_list[i] = r->max_queued - 1 - i;
  r->n_free = r->max_queued;
  if (err) *err = 0;
  return r;
}

void parley__relay_free(parley__relay *r) {
  if (!r) return;
  parley__impair_free(r->model[0]);
  parley__impair_free(r->model[1]);
  free(r->slots);
  free(r->data);
  free(r->free_list);
  parley__due_heap_free(&r->due);
  free(r);
}

int parley__relay_receive(parley__relay *r, parley__relay_dir dir, const void *data, size_t len, int64_t now_us) {
  if (!r || (dir != PARLEY__RELAY_A2B && dir != PARLEY__RELAY_B2A) || (!data && len > 0)) return PARLEY_EINVAL;
  dir_state *d = &r->dirs[dir];
  d->st.received++;
  d->st.bytes_in += len;
  if (len > r->max_datagram) {
    d->st.dropped++;
    return PARLEY_ENOSPC;
  }
  uint64_t seq = d->next_seq++;
  parley__impair_verdict v;
  int n = parley__impair_packet(r->model[dir], now_us - r->start_us, len, &v);
  if (n < 0) return n;
  if (n == 0) {
    d->st.dropped++;
    return 0;
  }
  if (n == 2) d->st.duplicated++;
  int queued = 0;
  for (int k = 0; k < n; k++) {
    if (r->n_free == 0) {
      d->st.dropped_full++;
      continue;
    }
    size_t s = r->free_list[--r->n_free];
    slot *sl = &r->slots[s];
    sl->due_us = v.deliver_us[k] + r->start_us;
    sl->recv_us = now_us;
    sl->order = r->next_order++;
    sl->seq = seq;
    sl->len = len;
    sl->dir = dir;
    if (len > 0) memcpy(r->data + s * r->max_datagram, data, len);
    (void)parley__due_heap_push(&r->due, sl->due_us, sl->order, s); /* room: one entry per slot */
    queued++;
  }
  return queued;
}

int64_t parley__relay_next_due_us(const parley__relay *r) {
  const parley__due_entry *top = r ? parley__due_heap_top(&r->due) : NULL;
  return top ? top->due_us : INT64_MAX;
}

int parley__relay_pop_due(parley__relay *r, int64_t now_us, parley__relay_dir *dir, void *buf, size_t cap) {
  if (!r || !dir || (!buf && cap > 0)) return PARLEY_EINVAL;
  const parley__due_entry *top = parley__due_heap_top(&r->due);
  if (!top) return PARLEY_EAGAIN;
  size_t s = top->slot;
  const slot *sl = &r->slots[s];
  if (sl->due_us > now_us) return PARLEY_EAGAIN;
  if (sl->len > cap) return PARLEY_ENOSPC;
  if (sl->len > 0) memcpy(buf, r->data + s * r->max_datagram, sl->len);
  parley__due_heap_pop(&r->due);
  r->free_list[r->n_free++] = s;

  dir_state *d = &r->dirs[sl->dir];
  d->st.forwarded++;
  d->st.bytes_out += sl->len;
  int64_t delay = sl->due_us - sl->recv_us;
  d->delay_sum_us += delay;
  if (delay > d->st.max_delay_us) d->st.max_delay_us = delay;
  int64_t late = now_us - sl->due_us;
  if (late > d->st.max_late_us) d->st.max_late_us = late;
  if (d->any_out && sl->seq < d->max_seq_out) d->st.reordered++;
  if (!d->any_out || sl->seq > d->max_seq_out) d->max_seq_out = sl->seq;
  d->any_out = true;
  *dir = sl->dir;
  return (int)sl->len;
}

size_t parley__relay_queued(const parley__relay *r) { return r ? r->due.n : 0; }

void parley__relay_get_stats(const parley__relay *r, parley__relay_dir dir, parley__relay_dir_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!r || (dir != PARLEY__RELAY_A2B && dir != PARLEY__RELAY_B2A)) return;
  const dir_state *d = &r->dirs[dir];
  *out = d->st;
  out->mean_delay_us = d->st.forwarded ? (double)d->delay_sum_us / (double)d->st.forwarded : 0.0;
}
