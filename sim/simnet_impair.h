/* simnet_impair.h: plugs the shared impairment model (sim/impair.h) into the simulated network
 * (sim/simnet.h) as its fate function, one model per direction between two addresses A and B, so
 * a simnet test and the parley-netsim relay impair packets identically for the same config and seed.
 *
 * Datagrams sent from A to B go through the a2b model, from B to A through the b2a model (exact
 * addresses); datagrams between any other pair pass untouched (delivered at their send time). The impairment
 * timeline (blackouts, spikes, trace) starts at the simulated time 0.
 *
 * Ownership: the adapter owns its two models; the caller keeps the configs. Lifetime: it must outlive
 * its use as the net's fate (detach with parley__simnet_set_fate(net, NULL, NULL) or free the net
 * first). Threads: the same single thread as the simnet. The fate call never allocates. */
#ifndef PARLEY_SIM_SIMNET_IMPAIR_H
#define PARLEY_SIM_SIMNET_IMPAIR_H

#include <stdint.h>
#include <sys/socket.h>

#include "sim/impair.h"
#include "sim/simnet.h"

typedef struct parley__simnet_impair parley__simnet_impair;

/* a and b: IPv4/IPv6 addresses (copied), distinct. a2b / b2a: model configs (copied; NULL = clean
 * direction). The a2b model is seeded with seed, b2a with a value derived from it, so the two
 * directions draw independent streams. NULL and *err (PARLEY_EINVAL, PARLEY_ENOMEM, or the model's
 * own error) on failure. Not real-time. */
parley__simnet_impair *parley__simnet_impair_new(const struct sockaddr *a, const struct sockaddr *b,
                                                 const parley__impair_config *a2b,
                                                 const parley__impair_config *b2a, uint64_t seed,
                                                 int *err);
void parley__simnet_impair_free(parley__simnet_impair *si); /* NULL ignored */

/* Installs si as net's fate (si borrowed). */
void parley__simnet_impair_attach(parley__simnet_impair *si, parley__simnet *net);

/* The fate function itself (ctx is a parley__simnet_impair *), for callers composing their own. */
void parley__simnet_impair_fate(void *ctx, const struct sockaddr *from, const struct sockaddr *to,
                                size_t len, int64_t now_us, parley__simnet_fate *out);

/* Model statistics for one direction: b_to_a 0 = a2b, 1 = b2a. Zeroed for NULL si. */
void parley__simnet_impair_get_stats(const parley__simnet_impair *si, int b_to_a, parley__impair_stats *out);

#endif
