/* simnet_impair.c: the simnet fate backed by two parley__impair models (see simnet_impair.h). Owns the
 * models and copies of the two addresses. Single-threaded like the simnet; the fate call does only the
 * model's arithmetic (no allocation, locks or system calls). */
#include "sim/simnet_impair.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

/* Derives the second direction's seed (golden-ratio increment, as splitmix64 steps). */
#define B2A_SEED_STEP UINT64_C(0x9E3779B97F4A7C15)

struct parley__simnet_impair {
  struct sockaddr_storage a, b;
  parley__impair *model[2]; /* [0] a -> b, [1] b -> a */
};

static int copy_ip(struct sockaddr_storage *dst, const struct sockaddr *src) {
  if (!src) return PARLEY_EINVAL;
  size_t len;
  if (src->sa_family == AF_INET) len = sizeof(struct sockaddr_in);
  else if (src->sa_family == AF_INET6) len = sizeof(struct sockaddr_in6);
  else return PARLEY_EINVAL;
  memset(dst, 0, sizeof *dst);
  memcpy(dst, src, len);
  return 0;
}

parley__simnet_impair *parley__simnet_impair_new(const struct sockaddr *a, const struct sockaddr *b,
                                                 const parley__impair_config *a2b,
                                                 const parley__impair_config *b2a, uint64_t seed,
                                                 int *err) {
  static const parley__impair_config clean = {0};
  int e = 0;
  parley__simnet_impair *si = calloc(1, sizeof *si);
  if (!si) e = PARLEY_ENOMEM;
  if (e == 0) e = copy_ip(&si->a, a);
  if (e == 0) e = copy_ip(&si->b, b);
  if (e == 0 && parley__simnet_addr_equal((const struct sockaddr *)&si->a, (const struct sockaddr *)&si->b)) {
    e = PARLEY_EINVAL;
  }
  if (e == 0) si->model[0] = parley__impair_new(a2b ? a2b : &clean, seed, &e);
  if (e == 0) si->model[1] = parley__impair_new(b2a ? b2a : &clean, seed + B2A_SEED_STEP, &e);
  if (e != 0) {
    parley__simnet_impair_free(si);
    if (err) *err = e;
    return NULL;
  }
  if (err) *err = 0;
  return si;
}

void parley__simnet_impair_free(parley__simnet_impair *si) {
  if (!si) return;
  parley__impair_free(si->model[0]);
  parley__impair_free(si->model[1]);
  free(si);
}

void parley__simnet_impair_attach(parley__simnet_impair *si, parley__simnet *net) {
  parley__simnet_set_fate(net, si ? parley__simnet_impair_fate : NULL, si);
}

void parley__simnet_impair_fate(void *ctx, const struct sockaddr *from, const struct sockaddr *to,
                                size_t len, int64_t now_us, parley__simnet_fate *out) {
  parley__simnet_impair *si = ctx;
  if (!out) return;
  out->copies = 1;
  out->deliver_at_us[0] = now_us;
  if (!si || !from || !to) return;
  const struct sockaddr *a = (const struct sockaddr *)&si->a;
  const struct sockaddr *b = (const struct sockaddr *)&si->b;
  parley__impair *m = NULL;
  if (parley__simnet_addr_equal(from, a) && parley__simnet_addr_equal(to, b)) m = si->model[0];
  else if (parley__simnet_addr_equal(from, b) && parley__simnet_addr_equal(to, a)) m = si->model[1];
  if (!m) return;
  parley__impair_verdict v;
  int n = parley__impair_packet(m, now_us, len, &v);
  out->copies = n > 0 ? n : 0;
  for (int i = 0; i < out->copies; i++) out->deliver_at_us[i] = v.deliver_us[i];
}

void parley__simnet_impair_get_stats(const parley__simnet_impair *si, int b_to_a, parley__impair_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!si) return;
  parley__impair_get_stats(si->model[b_to_a ? 1 : 0], out);
}
