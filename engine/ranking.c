/* ranking.c: the seqlock behind the published speaker ranking (see ranking.h). Owns nothing; the
 * ranking lives in the engine. publish() runs on the audio thread, read() on the network thread. */
#include "engine/ranking.h"

void parley__ranking_publish(parley__ranking *r, const uint32_t *ids, unsigned n) {
  if (n > PARLEY_SESSION_MAX_SPEAKERS) n = PARLEY_SESSION_MAX_SPEAKERS;
  uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
  atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
  /* The odd sequence is visible before any of the new fields: a reader that sees a new field also
   * sees the sequence move, and discards its copy. */
  atomic_thread_fence(memory_order_release);
  for (unsigned k = 0; k < n; k++) atomic_store_explicit(&r->ids[k], ids[k], memory_order_relaxed);
  atomic_store_explicit(&r->count, n, memory_order_relaxed);
  /* Release: a reader that sees the even sequence sees every field written before it. */
  atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

bool parley__ranking_read(parley__ranking *r, uint64_t *seen, uint32_t *ids, unsigned *n) {
  uint64_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
  if ((s1 & 1) || s1 == *seen) return false;
  unsigned count = atomic_load_explicit(&r->count, memory_order_relaxed);
  if (count > PARLEY_SESSION_MAX_SPEAKERS) count = PARLEY_SESSION_MAX_SPEAKERS;
  for (unsigned k = 0; k < count; k++) ids[k] = atomic_load_explicit(&r->ids[k], memory_order_relaxed);
  /* The copy's loads happen before the re-check: a write that overlapped them has moved seq. */
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s1) return false;
  *n = count;
  *seen = s1;
  return true;
}
