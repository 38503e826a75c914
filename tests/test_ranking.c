/* test_ranking.c: the published speaker ranking (engine/ranking.h). */
#include <criterion/criterion.h>

#include "tests/ranking_stress.h"

Test(ranking, reads_only_whole_publications_under_a_racing_writer, .timeout = 60) {
  uint64_t torn = 0, reads = ranking_stress_run(RANKING_STRESS_PUBLICATIONS, &torn);
  cr_log_info("%llu whole reads of %u publications", (unsigned long long)reads, RANKING_STRESS_PUBLICATIONS);
  cr_expect_gt(reads, 0u);
  cr_expect_eq(torn, 0u, "%llu torn reads", (unsigned long long)torn);
}

Test(ranking, new_publications_only_and_clamped) {
  static parley__ranking r;
  uint64_t seen = 0;
  uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
  unsigned n = 99;
  cr_expect_not(parley__ranking_read(&r, &seen, ids, &n), "nothing published yet");
  uint32_t many[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  parley__ranking_publish(&r, many, 8);
  cr_assert(parley__ranking_read(&r, &seen, ids, &n));
  cr_expect_eq(n, (unsigned)PARLEY_SESSION_MAX_SPEAKERS);
  for (unsigned i = 0; i < n; i++) cr_expect_eq(ids[i], many[i]);
  cr_expect_not(parley__ranking_read(&r, &seen, ids, &n), "read once");
  parley__ranking_publish(&r, many, 0);
  cr_assert(parley__ranking_read(&r, &seen, ids, &n));
  cr_expect_eq(n, 0u);
}
