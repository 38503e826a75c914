/* ring.h: lock-free single-producer/single-consumer ring of fixed-size slots.
 *
 * The hand-over point between threads: network thread -> audio thread (packets), audio thread ->
 * network thread (encoded frames), the app's audio thread <-> the engine (PARLEY_AUDIO_APP frames).
 * Exactly one producer thread and one
 * consumer thread; their identities cannot be swapped while the ring is live. The ring owns its slot
 * memory, allocated once by parley__ring_new(); push and pop never allocate, lock or make system calls
 * (real-time safe). Slots are copied in and out; the zero-copy pair (write_slot/commit, read_slot/release)
 * lets a side fill or read a slot in place.
 */
#ifndef PARLEY_BASE_RING_H
#define PARLEY_BASE_RING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct parley__ring parley__ring;

/* capacity: number of slots, a power of two >= 2; slot_size: bytes per slot, > 0.
 * Returns NULL on bad arguments or when out of memory. Any thread, before the ring is shared. */
parley__ring *parley__ring_new(size_t slot_size, size_t capacity);
/* Quiescent only: neither side may be using the ring. NULL is ignored. */
void parley__ring_free(parley__ring *r);

size_t parley__ring_capacity(const parley__ring *r);
size_t parley__ring_slot_size(const parley__ring *r);

/* Producer only. Copies slot_size bytes from item. 0, or PARLEY_EFULL (nothing written). */
int parley__ring_push(parley__ring *r, const void *item);
/* Producer only. The next free slot to fill in place, or NULL when full; publish it with commit. */
void *parley__ring_write_slot(parley__ring *r);
void parley__ring_commit(parley__ring *r);

/* Consumer only. Copies the oldest item into item. 0, or PARLEY_EAGAIN (ring empty). */
int parley__ring_pop(parley__ring *r, void *item);
/* Consumer only. The oldest item in place, or NULL when empty; hand the slot back with release. */
const void *parley__ring_read_slot(parley__ring *r);
void parley__ring_release(parley__ring *r);

/* Either side: items in the ring at some instant during the call (exact for a quiescent ring). */
size_t parley__ring_count(const parley__ring *r);

#endif
