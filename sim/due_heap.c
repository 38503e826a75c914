/* due_heap.c: the (due time, order) min-heap (see due_heap.h). Owns its entry array. */
#include "sim/due_heap.h"

#include <stdlib.h>

#include "parley/parley.h"

int parley__due_heap_init(parley__due_heap *h, size_t cap) {
  if (!h || cap == 0) return PARLEY_EINVAL;
  h->e = malloc(cap * sizeof *h->e);
  h->n = 0;
  h->cap = h->e ? cap : 0;
  return h->e ? 0 : PARLEY_ENOMEM;
}

void parley__due_heap_free(parley__due_heap *h) {
  if (!h) return;
  free(h->e);
  h->e = NULL;
  h->n = h->cap = 0;
}

static bool before(const parley__due_entry *x, const parley__due_entry *y) {
  return x->due_us != y->due_us ? x->due_us < y->due_us : x->order < y->order;
}

static void swap(parley__due_entry *a, parley__due_entry *b) {
  parley__due_entry t = *a;
  *a = *b;
  *b = t;
}

bool parley__due_heap_push(parley__due_heap *h, int64_t due_us, uint64_t order, size_t slot) {
  if (h->n == h->cap) return false;
  size_t i = h->n++;
  h->e[i] = (parley__due_entry){due_us, order, slot};
  while (i > 0 && before(&h->e[i], &h->e[(i - 1) / 2])) {
    swap(&h->e[i], &h->e[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  return true;
}

void parley__due_heap_pop(parley__due_heap *h) {
  if (h->n == 0) return;
  h->e[0] = h->e[--h->n];
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && before(&h->e[l], &h->e[m])) m = l;
    if (r < h->n && before(&h->e[r], &h->e[m])) m = r;
    if (m == i) break;
    swap(&h->e[i], &h->e[m]);
    i = m;
  }
}
