/* due_heap.h: a binary min-heap of slot indices keyed by (due time, order), over storage allocated at
 * init: the schedule behind the simulated network and the relay, which hold their queued datagrams in
 * slots of their own and keep here only when each is due. Equal due times come out in order, so a
 * schedule is deterministic. Single thread; push and pop are O(log n) and never allocate. */
#ifndef PARLEY_SIM_DUE_HEAP_H
#define PARLEY_SIM_DUE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__due_entry {
  int64_t due_us;
  uint64_t order; /* tie-break for equal due times, e.g. arrival order */
  size_t slot;
} parley__due_entry;

typedef struct parley__due_heap {
  parley__due_entry *e;
  size_t n, cap;
} parley__due_heap;

/* Allocates room for cap entries: 0 or PARLEY_ENOMEM / PARLEY_EINVAL (cap 0). */
int parley__due_heap_init(parley__due_heap *h, size_t cap);
void parley__due_heap_free(parley__due_heap *h);
/* false when full (nothing pushed). */
bool parley__due_heap_push(parley__due_heap *h, int64_t due_us, uint64_t order, size_t slot);
/* The earliest entry, or NULL when empty. */
static inline const parley__due_entry *parley__due_heap_top(const parley__due_heap *h) {
  return h->n ? &h->e[0] : NULL;
}
/* Removes the earliest entry (none: no-op). */
void parley__due_heap_pop(parley__due_heap *h);

#endif
