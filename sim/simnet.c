/* simnet.c: the simulated network (see simnet.h). Owns its endpoint table, a pool of datagram slots
 * with their payload buffers, and a binary min-heap of slot indices keyed by (delivery time, sequence
 * number), so equal delivery times keep send order. All memory is allocated at create; send and
 * deliver never allocate. Single-threaded. */
#define _POSIX_C_SOURCE 200809L
#include "sim/simnet.h"
#include "sim/due_heap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

typedef struct endpoint {
  bool used;
  struct sockaddr_storage addr;
  parley__simnet_recv_fn recv;
  parley__simnet_error_fn on_error;
  void *ctx;
} endpoint;

typedef struct slot {
  struct sockaddr_storage from, to;
  int64_t at_us;
  uint64_t seq;
  size_t len;
  uint8_t *data; /* into payload */
} slot;

typedef struct block {
  bool used;
  struct sockaddr_storage from, to;
} block;

struct parley__simnet {
  block blocks[PARLEY__SIMNET_MAX_BLOCKS];
  endpoint *eps;
  size_t max_endpoints;
  slot *slots;
  uint8_t *payload;
  size_t max_queued, max_datagram;
  parley__due_heap due; /* slot indices by (delivery time, sequence) */
  size_t *free_stack;
  size_t free_n;
  uint64_t next_seq;
  bool cut;
  parley__simnet_fate_fn fate;
  void *fate_ctx;
  parley__simnet_link link;
  parley__rng rng;
  parley__simnet_stats stats;
};

/* ---- addresses ---- */

static size_t addr_len(const struct sockaddr *a) {
  if (!a) return 0;
  if (a->sa_family == AF_INET) return sizeof(struct sockaddr_in);
  if (a->sa_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return 0;
}

int parley__simnet_addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (!a || !b || a->sa_family != b->sa_family) return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return 0;
}

int parley__simnet_addr4(struct sockaddr_storage *out, const char *ip, uint16_t port) {
  if (!out || !ip) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *sin = (struct sockaddr_in *)out;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) return PARLEY_EINVAL;
  return 0;
}

static void copy_addr(struct sockaddr_storage *dst, const struct sockaddr *src) {
  memset(dst, 0, sizeof *dst);
  memcpy(dst, src, addr_len(src));
}

static endpoint *find_endpoint(parley__simnet *net, const struct sockaddr *a) {
  for (size_t i = 0; i < net->max_endpoints; i++)
    if (net->eps[i].used && parley__simnet_addr_equal((const struct sockaddr *)&net->eps[i].addr, a))
      return &net->eps[i];
  return NULL;
}

/* ---- create ---- */

parley__simnet *parley__simnet_new(size_t max_endpoints, size_t max_queued, size_t max_datagram,
                                   uint64_t seed, int *err) {
  int rc = 0;
  if (max_endpoints == 0 || max_queued == 0 || max_datagram == 0 || max_endpoints > 65536 ||
      max_queued > (SIZE_MAX / 4) / max_datagram)
    rc = PARLEY_EINVAL;
  parley__simnet *net = NULL;
  if (!rc) {
    net = calloc(1, sizeof *net);
    if (net) {
      net->eps = calloc(max_endpoints, sizeof *net->eps);
      net->slots = calloc(max_queued, sizeof *net->slots);
      net->payload = malloc(max_queued * max_datagram);
      net->free_stack = malloc(max_queued * sizeof *net->free_stack);
    }
    if (!net || !net->eps || !net->slots || !net->payload || !net->free_stack ||
        parley__due_heap_init(&net->due, max_queued) != 0) {
      parley__simnet_free(net);
      net = NULL;
      rc = PARLEY_ENOMEM;
    }
  }
  if (err) *err = rc;
  if (rc) return NULL;
  net->max_endpoints = max_endpoints;
  net->max_queued = max_queued;
  net->max_datagram = max_datagram;
  for (size_t i = 0; i < max_queued; i++) {
    net->slots[i].data = net->payload + i * max_datagram;
    net->free_stack[i] = max_queued - 1 - i;
  }
  net->free_n = max_queued;
  parley__rng_seed(&net->rng, seed);
  return net;
}

void parley__simnet_free(parley__simnet *net) {
  if (!net) return;
  free(net->eps);
  free(net->slots);
  free(net->payload);
  parley__due_heap_free(&net->due);
  free(net->free_stack);
  free(net);
}

int parley__simnet_add_endpoint(parley__simnet *net, const struct sockaddr *addr,
                                parley__simnet_recv_fn recv, parley__simnet_error_fn on_error, void *ctx) {
  if (!net || addr_len(addr) == 0 || find_endpoint(net, addr)) return PARLEY_EINVAL;
  for (size_t i = 0; i < net->max_endpoints; i++) {
    endpoint *e = &net->eps[i];
    if (e->used) continue;
    e->used = true;
    copy_addr(&e->addr, addr);
    e->recv = recv;
    e->on_error = on_error;
    e->ctx = ctx;
    return (int)i;
  }
  return PARLEY_EFULL;
}

int parley__simnet_remove_endpoint(parley__simnet *net, int id) {
  if (!net || id < 0 || (size_t)id >= net->max_endpoints || !net->eps[id].used) return PARLEY_EINVAL;
  memset(&net->eps[id], 0, sizeof net->eps[id]);
  return 0;
}

/* ---- fate ---- */

static void builtin_fate(parley__simnet *net, int64_t now_us, parley__simnet_fate *out) {
  const parley__simnet_link *l = &net->link;
  if (l->loss_prob > 0.0 && parley__rng_uniform(&net->rng) < l->loss_prob) return;
  int64_t jitter = 0;
  if (l->jitter_us > 0) jitter = (int64_t)(parley__rng_uniform(&net->rng) * (double)(l->jitter_us + 1));
  out->copies = 1;
  out->deliver_at_us[0] = now_us + l->delay_us + jitter;
}

void parley__simnet_set_fate(parley__simnet *net, parley__simnet_fate_fn fn, void *ctx) {
  if (!net) return;
  net->fate = fn;
  net->fate_ctx = ctx;
}

int parley__simnet_set_link(parley__simnet *net, const parley__simnet_link *link) {
  if (!net || !link || link->delay_us < 0 || link->jitter_us < 0 ||
      !(link->loss_prob >= 0.0 && link->loss_prob <= 1.0))
    return PARLEY_EINVAL;
  net->link = *link;
  return 0;
}

parley__rng *parley__simnet_rng(parley__simnet *net) { return net ? &net->rng : NULL; }

void parley__simnet_cut(parley__simnet *net) {
  if (net) net->cut = true;
}
void parley__simnet_restore(parley__simnet *net) {
  if (net) net->cut = false;
}
int parley__simnet_is_cut(const parley__simnet *net) { return net && net->cut; }

static block *find_block(parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to) {
  for (int i = 0; i < PARLEY__SIMNET_MAX_BLOCKS; i++) {
    block *b = &net->blocks[i];
    if (b->used && parley__simnet_addr_equal((const struct sockaddr *)&b->from, from) &&
        parley__simnet_addr_equal((const struct sockaddr *)&b->to, to))
      return b;
  }
  return NULL;
}

int parley__simnet_block(parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                         int blocked) {
  if (!net || addr_len(from) == 0 || addr_len(to) == 0) return PARLEY_EINVAL;
  block *b = find_block(net, from, to);
  if (!blocked) {
    if (!b) return PARLEY_EINVAL;
    b->used = false;
    return 0;
  }
  if (b) return 0;
  for (int i = 0; i < PARLEY__SIMNET_MAX_BLOCKS; i++) {
    if (net->blocks[i].used) continue;
    net->blocks[i].used = true;
    copy_addr(&net->blocks[i].from, from);
    copy_addr(&net->blocks[i].to, to);
    return 0;
  }
  return PARLEY_EFULL;
}

/* ---- send / deliver ---- */

int parley__simnet_send(parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                        const void *data, size_t len, int64_t now_us) {
  if (!net || addr_len(from) == 0 || addr_len(to) == 0 || (!data && len > 0)) return PARLEY_EINVAL;
  if (len > net->max_datagram) return PARLEY_ENOSPC;
  net->stats.sent++;
  if (net->cut || find_block(net, from, to)) {
    net->stats.dropped_cut++;
    return 0;
  }
  parley__simnet_fate fate;
  memset(&fate, 0, sizeof fate);
  if (net->fate) net->fate(net->fate_ctx, from, to, len, now_us, &fate);
  else builtin_fate(net, now_us, &fate);
  if (fate.copies <= 0) {
    net->stats.dropped_fate++;
    return 0;
  }
  int copies = fate.copies > PARLEY__SIMNET_MAX_COPIES ? PARLEY__SIMNET_MAX_COPIES : fate.copies;
  int queued = 0;
  for (int c = 0; c < copies; c++) {
    if (net->free_n == 0) {
      net->stats.dropped_full++;
      continue;
    }
    size_t idx = net->free_stack[--net->free_n];
    slot *s = &net->slots[idx];
    copy_addr(&s->from, from);
    copy_addr(&s->to, to);
    s->at_us = fate.deliver_at_us[c] < now_us ? now_us : fate.deliver_at_us[c];
    s->seq = net->next_seq++;
    s->len = len;
    if (len) memcpy(s->data, data, len);
    (void)parley__due_heap_push(&net->due, s->at_us, s->seq, idx); /* room: one entry per slot */
    queued++;
  }
  return queued ? 0 : PARLEY_EFULL;
}

int64_t parley__simnet_next_delivery_us(const parley__simnet *net) {
  const parley__due_entry *top = net ? parley__due_heap_top(&net->due) : NULL;
  return top ? top->due_us : INT64_MAX;
}

size_t parley__simnet_in_flight(const parley__simnet *net) { return net ? net->due.n : 0; }

int parley__simnet_deliver_until(parley__simnet *net, int64_t now_us) {
  if (!net) return PARLEY_EINVAL;
  int handled = 0;
  const parley__due_entry *top;
  while ((top = parley__due_heap_top(&net->due)) != NULL && handled < 1000000 && top->due_us <= now_us) {
    size_t idx = top->slot;
    parley__due_heap_pop(&net->due);
    slot *s = &net->slots[idx];
    const struct sockaddr *from = (const struct sockaddr *)&s->from;
    const struct sockaddr *to = (const struct sockaddr *)&s->to;
    endpoint *dst = find_endpoint(net, to);
    if (dst) {
      net->stats.delivered++;
      if (dst->recv) dst->recv(dst->ctx, net, from, to, s->data, s->len, s->at_us);
    } else {
      net->stats.unreachable++;
      endpoint *src = find_endpoint(net, from);
      if (src && src->on_error) src->on_error(src->ctx, net, to, ECONNREFUSED, s->at_us);
    }
    /* The slot stays reserved during the callback (data is borrowed there); release it after. */
    net->free_stack[net->free_n++] = idx;
    handled++;
  }
  return handled;
}

void parley__simnet_get_stats(const parley__simnet *net, parley__simnet_stats *out) {
  if (!out) return;
  if (!net) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = net->stats;
}
