/* test_ring.c: the SPSC ring, single-threaded semantics and a two-thread stress test. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "base/ring.h"
#include "parley/parley.h"
#include "tests/ring_stress.h"

Test(ring, rejects_bad_arguments) {
  cr_expect_null(parley__ring_new(0, 8));
  cr_expect_null(parley__ring_new(4, 0));
  cr_expect_null(parley__ring_new(4, 1));
  cr_expect_null(parley__ring_new(4, 6));
  cr_expect_null(parley__ring_new(SIZE_MAX / 2, 8));
  parley__ring_free(NULL);
}

Test(ring, fifo_full_and_empty) {
  parley__ring *r = parley__ring_new(sizeof(uint32_t), 4);
  cr_assert_not_null(r);
  uint32_t v = 0;
  cr_expect_eq(parley__ring_pop(r, &v), PARLEY_EAGAIN);
  for (uint32_t i = 0; i < 4; i++) cr_expect_eq(parley__ring_push(r, &i), 0);
  uint32_t extra = 99;
  cr_expect_eq(parley__ring_push(r, &extra), PARLEY_EFULL);
  cr_expect_eq(parley__ring_count(r), 4);
  for (uint32_t i = 0; i < 4; i++) {
    cr_expect_eq(parley__ring_pop(r, &v), 0);
    cr_expect_eq(v, i);
  }
  cr_expect_eq(parley__ring_pop(r, &v), PARLEY_EAGAIN);
  cr_expect_eq(parley__ring_count(r), 0);
  parley__ring_free(r);
}

Test(ring, wraps_many_times_with_zero_copy_api) {
  parley__ring *r = parley__ring_new(sizeof(uint64_t), 8);
  cr_assert_not_null(r);
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; round++) {
    int n = 1 + round % 8;
    for (int i = 0; i < n; i++) {
      uint64_t *slot = parley__ring_write_slot(r);
      cr_assert_not_null(slot);
      *slot = next_in++;
      parley__ring_commit(r);
    }
    for (int i = 0; i < n; i++) {
      const uint64_t *slot = parley__ring_read_slot(r);
      cr_assert_not_null(slot);
      cr_assert_eq(*slot, next_out++);
      parley__ring_release(r);
    }
  }
  cr_expect_null(parley__ring_read_slot(r));
  parley__ring_free(r);
}

Test(ring, two_thread_stress_order_and_integrity, .timeout = 240) {
  uint64_t bad = 0, moved = ring_stress_run(RING_STRESS_ITEMS, &bad);
  cr_expect_eq(moved, RING_STRESS_ITEMS);
  cr_expect_eq(bad, 0, "%llu items out of order or corrupted", (unsigned long long)bad);
}
