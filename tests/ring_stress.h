/* ring_stress.h: the two-thread SPSC ring stress, shared by the Criterion test (test_ring.c) and the
 * plain driver run under ThreadSanitizer (ring_stress_main.c; Criterion's own runtime does not start
 * under TSan). Items carry a sequence number and check words derived from it; the consumer checks the
 * order and integrity of every one. Bounded: exactly `items` items move. */
#ifndef PARLEY_TESTS_RING_STRESS_H
#define PARLEY_TESTS_RING_STRESS_H

#include <pthread.h>
#include <stdint.h>

#include "base/ring.h"

#define RING_STRESS_ITEMS 10000000u

typedef struct ring_stress_item {
  uint64_t seq;
  uint64_t check[3];
} ring_stress_item;

typedef struct ring_stress_job {
  parley__ring *ring;
  uint64_t items;
} ring_stress_job;

static uint64_t ring_stress_mix(uint64_t x) { return (x ^ (x >> 31)) * 0x9e3779b97f4a7c15ull; }

static void *ring_stress_producer(void *arg) {
  ring_stress_job *job = arg;
  for (uint64_t i = 0; i < job->items;) {
    ring_stress_item it = {i, {ring_stress_mix(i), ring_stress_mix(i + 1), ~i}};
    if (parley__ring_push(job->ring, &it) == 0) i++;
  }
  return 0;
}

/* Moves `items` items from a producer thread to this thread. Returns the count received (or 0 if the
 * ring or thread could not be made) and sets *bad to the items out of order or corrupted. */
static uint64_t ring_stress_run(uint64_t items, uint64_t *bad) {
  ring_stress_job job = {parley__ring_new(sizeof(ring_stress_item), 1024), items};
  *bad = 0;
  if (!job.ring) return 0;
  pthread_t t;
  if (pthread_create(&t, 0, ring_stress_producer, &job) != 0) {
    parley__ring_free(job.ring);
    return 0;
  }
  uint64_t expect = 0;
  while (expect < items) {
    ring_stress_item it;
    if (parley__ring_pop(job.ring, &it) != 0) continue;
    if (it.seq != expect || it.check[0] != ring_stress_mix(expect) ||
        it.check[1] != ring_stress_mix(expect + 1) || it.check[2] != ~expect)
      (*bad)++;
    expect++;
  }
  pthread_join(t, 0);
  if (parley__ring_count(job.ring) != 0) (*bad)++;
  parley__ring_free(job.ring);
  return expect;
}

#endif
