/* ring.c: SPSC ring of fixed-size slots (see ring.h). Owns its slot array.
 *
 * head: next slot to write, written only by the producer. tail: next slot to read, written only by
 * the consumer. Both count up forever (size_t wrap is harmless: capacity is a power of two, and
 * head - tail is computed modulo 2^N). Each index sits on its own cache line beside the owning side's
 * cached copy of the other index, so in steady state a side touches the other's line only when its
 * cached view says the ring looks full (producer) or empty (consumer).
 */
#include "base/ring.h"
#include "base/thread_check.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define CACHE_LINE 64

struct parley__ring {
  /* Producer's line. */
  alignas(CACHE_LINE) atomic_size_t head;
  size_t tail_cache; /* producer's last view of tail */
  /* Consumer's line. */
  alignas(CACHE_LINE) atomic_size_t tail;
  size_t head_cache; /* consumer's last view of head */
  parley__owner producer, consumer; /* debug builds: who pushes, who pops */
  /* Read-only after creation. */
  alignas(CACHE_LINE) size_t mask;
  size_t slot_size;
  unsigned char *slots;
};

parley__ring *parley__ring_new(size_t slot_size, size_t capacity) {
  if (slot_size == 0 || capacity < 2 || (capacity & (capacity - 1)) != 0) return NULL;
  if (capacity > SIZE_MAX / slot_size) return NULL;
  parley__ring *r = aligned_alloc(CACHE_LINE, sizeof *r);
  if (!r) return NULL;
  memset(r, 0, sizeof *r);
  r->slots = malloc(slot_size * capacity);
  if (!r->slots) {
    free(r);
    return NULL;
  }
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  r->mask = capacity - 1;
  r->slot_size = slot_size;
  return r;
}

void parley__ring_free(parley__ring *r) {
  if (!r) return;
  free(r->slots);
  free(r);
}

size_t parley__ring_capacity(const parley__ring *r) { return r->mask + 1; }
size_t parley__ring_slot_size(const parley__ring *r) { return r->slot_size; }

void *parley__ring_write_slot(parley__ring *r) {
  PARLEY__OWNER_CHECK(&r->producer, "parley__ring_write_slot (the producer's)");
  /* Relaxed: only this thread writes head. */
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (head - r->tail_cache > r->mask) {
    /* Acquire: the consumer's reads of the slots it released happen before we overwrite them. */
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - r->tail_cache > r->mask) return NULL;
  }
  return r->slots + (head & r->mask) * r->slot_size;
}

void parley__ring_commit(parley__ring *r) {
  PARLEY__OWNER_CHECK(&r->producer, "parley__ring_commit (the producer's)");
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  /* Release: the slot's contents are visible before the consumer sees the new head. */
  atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

int parley__ring_push(parley__ring *r, const void *item) {
  void *slot = parley__ring_write_slot(r);
  if (!slot) return PARLEY_EFULL;
  memcpy(slot, item, r->slot_size);
  parley__ring_commit(r);
  return 0;
}

const void *parley__ring_read_slot(parley__ring *r) {
  PARLEY__OWNER_CHECK(&r->consumer, "parley__ring_read_slot (the consumer's)");
  /* Relaxed: only this thread writes tail. */
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (tail == r->head_cache) {
    /* Acquire: pairs with the producer's release in commit, so the slot's contents are visible. */
    r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail == r->head_cache) return NULL;
  }
  return r->slots + (tail & r->mask) * r->slot_size;
}

void parley__ring_release(parley__ring *r) {
  PARLEY__OWNER_CHECK(&r->consumer, "parley__ring_release (the consumer's)");
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  /* Release: our reads of the slot finish before the producer may reuse it. */
  atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

int parley__ring_pop(parley__ring *r, void *item) {
  const void *slot = parley__ring_read_slot(r);
  if (!slot) return PARLEY_EAGAIN;
  memcpy(item, slot, r->slot_size);
  parley__ring_release(r);
  return 0;
}

size_t parley__ring_count(const parley__ring *r) {
  /* Load tail first: head only grows, so head - tail never underflows. */
  size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  return head - tail;
}
