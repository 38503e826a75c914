/* stun_limit.h: the budget for STUN error replies to requests we cannot authenticate (RFC 8489 9.1.3's
 * 400 and 401), so that an ICE agent cannot be used as a reflector: a spoofed request would otherwise
 * earn its forged source a reply larger than itself, at any rate.
 *
 * Two token buckets in series, as GCRA (a "theoretical arrival time" per bucket, integers only):
 *  - one per source IP address (the port is ignored: a reflection victim is an address, and a flood
 *    can vary ports), PARLEY__STUN_LIMIT_SOURCES slots in a fixed table; addresses whose hash meets in
 *    a slot share its bucket, which only ever makes them stricter;
 *  - one for all sources together.
 * A reply is allowed only when both have a token; both are then charged. Over any interval of D
 * seconds the replies number at most GLOBAL_BURST + D * GLOBAL_PER_S in all, and at most
 * SOURCE_BURST + D * SOURCE_PER_S per slot (so per source address).
 *
 * Time is injected (now_us, monotonic). Caller-owned memory, no allocation, no locks, no system calls;
 * one thread per limiter (the agent's). */
#ifndef PARLEY_TRANSPORT_STUN_LIMIT_H
#define PARLEY_TRANSPORT_STUN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/netaddr.h"

#define PARLEY__STUN_LIMIT_SOURCES 64
#define PARLEY__STUN_LIMIT_SOURCE_BURST 4 /* a misconfigured real peer still hears why, a few times */
#define PARLEY__STUN_LIMIT_SOURCE_PER_S 1
#define PARLEY__STUN_LIMIT_GLOBAL_BURST 20
#define PARLEY__STUN_LIMIT_GLOBAL_PER_S 20

typedef struct parley__stun_limit {
  int64_t source_tat_us[PARLEY__STUN_LIMIT_SOURCES];
  int64_t global_tat_us;
  uint32_t refused; /* replies not sent */
} parley__stun_limit;

/* Full buckets. */
void parley__stun_limit_init(parley__stun_limit *l);
/* May an error reply go to `to` now? Charges both buckets when it may, counts a refusal when not. */
bool parley__stun_limit_allow(parley__stun_limit *l, const parley__netaddr *to, int64_t now_us);

#endif
