/* stun_limit.c: the error-reply budget (see stun_limit.h): GCRA buckets per source slot and in all.
 * Caller-owned state; no allocation, no system calls; one thread per limiter. */
#include "transport/stun_limit.h"

#include <stddef.h>

#define SOURCE_INTERVAL_US (1000000 / PARLEY__STUN_LIMIT_SOURCE_PER_S)
#define GLOBAL_INTERVAL_US (1000000 / PARLEY__STUN_LIMIT_GLOBAL_PER_S)

void parley__stun_limit_init(parley__stun_limit *l) {
  if (!l) return;
  for (size_t i = 0; i < PARLEY__STUN_LIMIT_SOURCES; i++) l->source_tat_us[i] = INT64_MIN / 2;
  l->global_tat_us = INT64_MIN / 2;
  l->refused = 0;
}

/* A bucket holding `burst` tokens, one more every `interval_us`, has one now: its theoretical arrival
 * time is at most (burst - 1) intervals ahead. */
static bool has_token(int64_t tat_us, int64_t now_us, int64_t interval_us, int64_t burst) {
  return tat_us - now_us <= (burst - 1) * interval_us;
}

static void charge(int64_t *tat_us, int64_t now_us, int64_t interval_us) {
  *tat_us = (*tat_us > now_us ? *tat_us : now_us) + interval_us;
}

/* FNV-1a over family and address: spreads sources over the slots; a chosen collision only makes the
 * colliding sources share one bucket. */
static size_t source_slot(const parley__netaddr *a) {
  uint32_t h = 2166136261u;
  h = (h ^ a->family) * 16777619u;
  for (size_t i = 0; i < sizeof a->ip; i++) h = (h ^ a->ip[i]) * 16777619u;
  return h % PARLEY__STUN_LIMIT_SOURCES;
}

bool parley__stun_limit_allow(parley__stun_limit *l, const parley__netaddr *to, int64_t now_us) {
  if (!l || !to) return false;
  int64_t *src = &l->source_tat_us[source_slot(to)];
  if (!has_token(*src, now_us, SOURCE_INTERVAL_US, PARLEY__STUN_LIMIT_SOURCE_BURST) ||
      !has_token(l->global_tat_us, now_us, GLOBAL_INTERVAL_US, PARLEY__STUN_LIMIT_GLOBAL_BURST)) {
    l->refused++;
    return false;
  }
  charge(src, now_us, SOURCE_INTERVAL_US);
  charge(&l->global_tat_us, now_us, GLOBAL_INTERVAL_US);
  return true;
}
