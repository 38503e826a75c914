/* ranking.h: the speaker ranking that the audio thread publishes and the network thread reads, as a
 * seqlock (C11 atomics; Boehm, "Can seqlocks get along with programming language memory models?").
 *
 * The writer makes the sequence odd, writes the ids and count, and makes it even again; a reader
 * takes a copy only if the sequence was even and unchanged across the copy, so every ranking read is
 * one that was published whole, never a mix of two. All fields are atomics (relaxed), so no access
 * is a data race; the fences order them.
 *
 * Threads: one writer (the audio thread), any number of readers. Real-time: publish() is wait-free
 * (no allocation, lock or system call); read() never blocks: it reports a write in progress and the
 * reader tries again on its next loop. */
#ifndef PARLEY_ENGINE_RANKING_H
#define PARLEY_ENGINE_RANKING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "parley/parley.h"

typedef struct parley__ranking {
  atomic_uint_least64_t seq; /* odd while a publication is being written; seq / 2 publications so far */
  atomic_uint count;
  _Atomic uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
} parley__ranking;

/* Publishes ids[0, n) (n is clamped to PARLEY_SESSION_MAX_SPEAKERS). The one writer only. */
void parley__ranking_publish(parley__ranking *r, const uint32_t *ids, unsigned n);

/* Copies the latest publication into ids (room for PARLEY_SESSION_MAX_SPEAKERS) and *n if it is not
 * the one *seen already; then *seen names it and true is returned. false: nothing new, or a
 * publication is being written (read again later). *seen starts at 0 (nothing seen). */
bool parley__ranking_read(parley__ranking *r, uint64_t *seen, uint32_t *ids, unsigned *n);

#endif
