/* ranking_stress.h: a writer publishing speaker rankings as fast as it can against a reader reading
 * them, shared by the Criterion test (test_ranking.c) and the plain driver run under ThreadSanitizer
 * (tsan/ranking_stress_main.c). Publication k is recognisable whole: count 1 + k % MAX, ids k * 16 + i.
 * The reader counts every copy that is not one publication whole (a torn read). Bounded: exactly
 * `publications` are written; the reader stops when the writer has finished. */
#ifndef PARLEY_TESTS_RANKING_STRESS_H
#define PARLEY_TESTS_RANKING_STRESS_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/ranking.h"

#define RANKING_STRESS_PUBLICATIONS 100000u

typedef struct ranking_stress_job {
  parley__ranking ranking;
  uint64_t publications;
  atomic_bool done;
  atomic_uint_least64_t attempts; /* reader loops, so the writer can leave it turns */
  uint64_t reads, torn;
} ranking_stress_job;

static void *ranking_stress_writer(void *arg) {
  ranking_stress_job *job = arg;
  for (uint64_t k = 1; k <= job->publications; k++) {
    uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
    unsigned n = 1 + (unsigned)(k % PARLEY_SESSION_MAX_SPEAKERS);
    for (unsigned i = 0; i < n; i++) ids[i] = (uint32_t)(k * 16 + i);
    parley__ranking_publish(&job->ranking, ids, n);
    /* Gaps of varying length between publications (the audio thread publishes once a period), so
     * the reader's copies land both inside and across writes; and the reader gets turns even on a
     * loaded machine (bounded: a few yields). */
    for (volatile unsigned spin = (uint32_t)(k * 2654435761u) >> 24; spin > 0; spin--) {
    }
    uint64_t a = atomic_load(&job->attempts);
    for (int y = 0; y < 4 && atomic_load(&job->attempts) == a; y++) sched_yield();
  }
  atomic_store(&job->done, true);
  return NULL;
}

static void *ranking_stress_reader(void *arg) {
  ranking_stress_job *job = arg;
  uint64_t seen = 0;
  for (;;) {
    bool last = atomic_load(&job->done); /* one more read after the writer finished */
    atomic_fetch_add(&job->attempts, 1);
    uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
    unsigned n = 0;
    if (parley__ranking_read(&job->ranking, &seen, ids, &n)) {
      job->reads++;
      uint64_t k = n ? ids[0] / 16 : 0;
      bool whole = n == 1 + (unsigned)(k % PARLEY_SESSION_MAX_SPEAKERS);
      for (unsigned i = 0; i < n; i++) whole = whole && ids[i] == (uint32_t)(k * 16 + i);
      job->torn += !whole;
    }
    if (last) break;
  }
  return NULL;
}

/* Runs the two threads; returns the reader's count of whole reads and sets *torn. */
static uint64_t ranking_stress_run(uint64_t publications, uint64_t *torn) {
  static ranking_stress_job job;
  job = (ranking_stress_job){.publications = publications};
  pthread_t w, r;
  pthread_create(&r, NULL, ranking_stress_reader, &job);
  pthread_create(&w, NULL, ranking_stress_writer, &job);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  *torn = job.torn;
  return job.reads;
}

#endif
