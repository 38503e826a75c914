/* ice.h: a small full ICE agent (RFC 8445) for one component (rtcp-mux: one UDP socket per local
 * address per call), with trickle (RFC 8838 style add-any-time and end-of-candidates), consent
 * freshness hooks (RFC 7675) and ICE restart.
 *
 * Sans-IO and time-injected: the agent never reads a clock and never touches a socket. The owner
 *  - tells it its local sockets' bound addresses (parley__ice_add_local; index = the socket),
 *  - feeds every received datagram to parley__ice_receive (which says whether it was STUN),
 *  - calls parley__ice_tick(now_us) whenever parley__ice_next_deadline_us() has passed,
 *  - sends what the agent asks through cfg.send (local index, destination, bytes),
 *  - learns of progress through cfg.on_event (candidates to trickle, state, selected pair, consent).
 * So the same agent runs over real UDP (transport/udp.h) and over a simulated network.
 *
 * Threads: an agent belongs to one thread (the network/control thread), or to whoever holds
 * cfg.guard; all calls, and the callbacks it makes, happen there. Callbacks must not call back into the agent except the read-only getters.
 * Real-time: parley__ice_accept_media and the getters are real-time safe (no allocation, no system
 * calls). Everything else may allocate only in parley__ice_new and is bounded: the agent holds at
 * most PARLEY__ICE_MAX_LOCAL local sockets, PARLEY__ICE_MAX_REMOTE remote candidates and
 * PARLEY__ICE_MAX_PAIRS pairs. It calls RAND_bytes (credentials, tie-breaker, transaction ids).
 *
 * States (parley_ice_state): NEW until started; CHECKING while checks run; CONNECTED once media may
 * flow on a selected pair: the best valid pair with no better one pending, even before its nomination
 * completes (RFC 8445 8.1.1: data may be sent on any valid pair), so one round trip after this side's
 * checks start; COMPLETED when that pair is nominated, the peer has sent end-of-candidates and no
 * checks remain; FAILED when every pair failed after end-of-candidates. If the pair in use fails
 * before it is nominated, the agent has no selected pair again until another one is valid.
 * "Disconnected" is owned by the liveness monitor (transport/liveness.h), which uses
 * parley__ice_send_consent_check and the CONSENT events.
 *
 * Requests that fail authentication get their 400/401 within a budget per source address and in all
 * (transport/stun_limit.h), so forged requests cannot make the agent reflect traffic at a victim;
 * authenticated requests are always answered.
 */
#ifndef PARLEY_TRANSPORT_ICE_H
#define PARLEY_TRANSPORT_ICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/events.h"
#include "transport/netaddr.h"

#define PARLEY__ICE_MAX_LOCAL 8
#define PARLEY__ICE_MAX_REMOTE 32
#define PARLEY__ICE_MAX_PAIRS 100 /* RFC 8445 14.2 default limit */
#define PARLEY__ICE_UFRAG_LEN 8   /* we generate 8 ice-chars (>= 4) */
#define PARLEY__ICE_PWD_LEN 24    /* we generate 24 ice-chars (>= 22) */
#define PARLEY__ICE_CRED_MAX 256  /* longest remote ufrag/pwd accepted (RFC 8839: 256) */
#define PARLEY__ICE_FOUNDATION_MAX 32
/* Consent checks and liveness probes awaiting an answer. It must cover the liveness monitor's fast
 * probing (liveness.h: one probe per 20 ms for up to 600 ms, answers counted up to 800 ms after the
 * last arrival) at the longest round trip we tolerate: with only 8, any answer slower than 8 probe
 * periods (160 ms) was forgotten and a 300 ms round trip looked like a dead path. */
#define PARLEY__ICE_MAX_CONSENT 64

typedef enum parley__ice_role { PARLEY__ICE_CONTROLLED = 0, PARLEY__ICE_CONTROLLING = 1 } parley__ice_role;

/* States: parley_ice_state from transport/events.h (NEW, CHECKING, CONNECTED, COMPLETED, FAILED;
 * DISCONNECTED and CLOSED belong to the liveness monitor and the call). */

typedef enum parley__ice_cand_type {
  PARLEY__ICE_HOST = 0,
  PARLEY__ICE_SRFLX,
  PARLEY__ICE_PRFLX,
  PARLEY__ICE_RELAY,
} parley__ice_cand_type;

typedef struct parley__ice_candidate {
  char foundation[PARLEY__ICE_FOUNDATION_MAX + 1];
  uint16_t component;    /* always 1 here (rtcp-mux) */
  uint32_t priority;
  parley__ice_cand_type type;
  parley__netaddr addr;  /* the candidate's transport address */
  parley__netaddr related; /* srflx/prflx: the base (raddr/rport); unset for host */
  int local;             /* local candidates: the socket index; remote: -1 */
} parley__ice_candidate;

typedef enum parley__ice_event_kind {
  PARLEY__ICE_EV_STATE = 1,        /* .state changed */
  PARLEY__ICE_EV_LOCAL_CANDIDATE,  /* .candidate gathered: trickle it to the peer */
  PARLEY__ICE_EV_GATHERING_DONE,   /* all local candidates found: send end-of-candidates */
  PARLEY__ICE_EV_SELECTED_PAIR,    /* .local/.remote is the new selected pair */
  PARLEY__ICE_EV_ROLE_CHANGED,     /* .role after role-conflict repair */
  PARLEY__ICE_EV_CONSENT,          /* answer to parley__ice_send_consent_check: .ok, .rtt_us, .seq */
} parley__ice_event_kind;

typedef struct parley__ice_event {
  parley__ice_event_kind kind;
  int64_t now_us;   /* the now_us of the agent call that produced the event */
  parley_ice_state state;
  parley__ice_role role;
  const parley__ice_candidate *candidate; /* borrowed for the callback's duration */
  int local;
  parley__netaddr remote;
  bool ok;          /* CONSENT: success response (false: authenticated error response) */
  int64_t rtt_us;   /* CONSENT: now - send time */
  uint32_t seq;     /* CONSENT: the number parley__ice_send_consent_check returned */
} parley__ice_event;

/* Emits one datagram from local socket `local` to `dst`. `buf` is borrowed for the call. */
typedef void (*parley__ice_send_fn)(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf,
                                    size_t len);
typedef void (*parley__ice_event_fn)(void *ctx, const parley__ice_event *ev);

typedef struct parley__ice_config {
  parley__ice_role role;
  int64_t ta_us;            /* check pacing; 0 = 50 ms (RFC 8445 14.2's default: another value must be
                               agreed with the peer). The check completing a nomination is exempt: it
                               leaves as soon as its pair is chosen, 5 ms at the earliest after the last */
  int64_t rto_us;           /* floor of the first check RTO; 0 = 500 ms. RFC 8445 14.3: the RTO is
                               MAX(rto_us, Ta * (Waiting + In-Progress pairs)) */
  int64_t rto_max_us;       /* cap on the doubling RTO; 0 = 3 s */
  uint32_t max_check_tx;    /* transmissions per check transaction; 0 = 7 (RFC 8489 Rc) */
  int64_t nominate_after_us; /* controlling: the best valid pair is nominated as soon as no better pair
                                is pending, or at the latest this long after the first pair succeeded,
                                even if better pairs are still pending; 0 = 500 ms */
  uint64_t tie_breaker;     /* 0 = random (RAND_bytes); tests may fix it */
  bool has_stun_server;
  parley__netaddr stun_server; /* for a server-reflexive candidate (same family sockets only) */
  parley__ice_send_fn send; /* required */
  parley__ice_event_fn on_event; /* optional */
  void *ctx;
  pthread_mutex_t *guard; /* optional: the mutex held by every call into the agent when threads share
                             it (checked in PARLEY_THREAD_CHECKS builds); NULL: one thread owns it */
} parley__ice_config;

typedef struct parley__ice_stats {
  uint32_t checks_sent;       /* new check transactions */
  uint32_t retransmits;       /* check retransmissions */
  uint32_t requests_received; /* authenticated Binding requests */
  uint32_t auth_failures;     /* messages dropped or refused for a bad USERNAME or MESSAGE-INTEGRITY */
  uint32_t error_replies_refused; /* 400/401 replies to such requests not sent: over budget (stun_limit.h) */
  uint32_t role_conflicts;    /* 487s sent or received, and role switches */
  uint32_t prflx_learned;     /* peer-reflexive remote candidates */
  uint32_t pairs_failed;
} parley__ice_stats;

typedef struct parley__ice_agent parley__ice_agent;

/* Copies cfg, draws local credentials and the tie-breaker. NULL with *err = PARLEY_EINVAL (no send
 * callback, bad role, negative times), PARLEY_ENOMEM or PARLEY_ECRYPTO. err may be NULL. */
parley__ice_agent *parley__ice_new(const parley__ice_config *cfg, int *err);
void parley__ice_free(parley__ice_agent *a);

/* Registers a local socket bound to `bound` (a concrete address and port, not a wildcard) and makes
 * its host candidate. Returns the socket index (0, 1, ...) the agent will use in send and receive, or
 * PARLEY_EINVAL / PARLEY_EFULL / PARLEY_ESTATE (after parley__ice_start). Local preference follows
 * RFC 8421: IPv6 above IPv4, earlier sockets above later ones. */
int parley__ice_add_local(parley__ice_agent *a, const parley__netaddr *bound);
/* A relayed candidate (RFC 8656) on a TURN allocation the owner made: `relayed` is its address on
 * the server, `mapped` our address as the server saw it (its raddr). It is a local of its own, with
 * the index returned: the agent sends its checks and answers through cfg.send with that index, and
 * the owner wraps them for the TURN server (transport/turn.h); what the server relays from a peer goes
 * to parley__ice_receive / parley__ice_accept_media with that index. Before or after start (then it
 * is trickled and paired at once; mid-call, after a network change, checked at once too). It may take
 * the index of a local removed before. Returns the index, PARLEY_EINVAL or PARLEY_EFULL. */
int parley__ice_add_local_relay(parley__ice_agent *a, const parley__netaddr *relayed, const parley__netaddr *mapped,
                                int64_t now_us);
/* The owner is allocating `count` relayed candidates: gathering is done (GATHERING_DONE, so
 * end-of-candidates) only once each was added or given up on. Before gathering is done. */
void parley__ice_expect_relays(parley__ice_agent *a, int count);
void parley__ice_relay_given_up(parley__ice_agent *a, int64_t now_us);

/* Starts gathering (server-reflexive, if a STUN server is set; LOCAL_CANDIDATE events for every host
 * candidate first) and, once remote credentials are known, connectivity checks. 0, or PARLEY_ESTATE
 * (started already, or no local socket and no relay expected). */
int parley__ice_start(parley__ice_agent *a, int64_t now_us);

/* Local ufrag and pwd (NUL-terminated, owned by the agent, valid until the next restart or free). */
void parley__ice_local_credentials(const parley__ice_agent *a, const char **ufrag, const char **pwd);
/* Copies up to max local candidates gathered so far; returns the total count. */
int parley__ice_local_candidates(const parley__ice_agent *a, parley__ice_candidate *out, size_t max);

/* The peer's ufrag (>= 4 chars) and pwd (>= 22 chars) from its SDP, copied. Setting different ones
 * while some are already set is PARLEY_ESTATE: the peer restarted, call parley__ice_restart first. */
int parley__ice_set_remote_credentials(parley__ice_agent *a, const char *ufrag, const char *pwd);
/* A remote candidate from SDP or trickle, copied (addr, priority, foundation, type; component must
 * be 1). Pairs are formed at once. 0, PARLEY_EINVAL, PARLEY_EFULL, or 1 if it was already known. */
int parley__ice_add_remote_candidate(parley__ice_agent *a, const parley__ice_candidate *c, int64_t now_us);
/* The peer's end-of-candidates: from now on, all pairs failing means FAILED. */
void parley__ice_remote_end_of_candidates(parley__ice_agent *a, int64_t now_us);

/* One received datagram: socket `local`, source `src`. Returns 1 when it was STUN and consumed
 * (including dropped ones), 0 when it is not STUN (the caller then asks parley__ice_accept_media),
 * PARLEY_EINVAL on bad arguments. May call send and on_event. */
int parley__ice_receive(parley__ice_agent *a, int local, const parley__netaddr *src, const uint8_t *buf,
                        size_t len, int64_t now_us);
/* Runs timers: paced checks, retransmissions, nomination. Call at or after next_deadline. */
void parley__ice_tick(parley__ice_agent *a, int64_t now_us);
/* When tick next has work; INT64_MAX when nothing is scheduled. */
int64_t parley__ice_next_deadline_us(const parley__ice_agent *a);

/* The media gate: true for a datagram that arrived on a valid pair (RFC 8445 12.2: a check of ours on
 * it succeeded, or the peer's authenticated check on it was answered), from that pair's remote address
 * to its socket, once a pair is selected. Anything else is dropped. Real-time safe (a scan of at most
 * PARLEY__ICE_MAX_PAIRS pairs). */
bool parley__ice_accept_media(const parley__ice_agent *a, int local, const parley__netaddr *src);
/* The selected pair: 0 with *local and *remote filled, or PARLEY_ENOTFOUND. Real-time safe. */
int parley__ice_selected_pair(const parley__ice_agent *a, int *local, parley__netaddr *remote);

parley_ice_state parley__ice_get_state(const parley__ice_agent *a);
parley__ice_role parley__ice_get_role(const parley__ice_agent *a);
uint64_t parley__ice_tie_breaker(const parley__ice_agent *a);
void parley__ice_get_stats(const parley__ice_agent *a, parley__ice_stats *out);

/* Consent freshness (RFC 7675) and liveness probes: sends one authenticated Binding request on the
 * selected pair now (no retransmission: the caller's monitor owns timing). Returns a positive
 * sequence number echoed in the CONSENT event when the answer comes, or PARLEY_ESTATE (no selected
 * pair or no credentials). At most PARLEY__ICE_MAX_CONSENT outstanding; older ones are forgotten (their
 * late answers are dropped). */
int parley__ice_send_consent_check(parley__ice_agent *a, int64_t now_us);

/* ICE restart: new local credentials, remote candidates, credentials and checks cleared (set the new
 * remote ones from the peer's SDP), state CHECKING. The old selected pair keeps carrying media (and
 * consent checks) until a new pair is selected. Local candidates are kept (the owner adds and removes
 * sockets for the addresses that changed first); with a STUN server their server-reflexive candidates
 * are gathered again (a new network may map them elsewhere). 0 or PARLEY_ECRYPTO. */
int parley__ice_restart(parley__ice_agent *a, int64_t now_us);

/* Network changes mid-call (ice_mobility.c). The agent keeps checking after selection when a path
 * changes, so both ends of a call move to a new pair without an ICE restart:
 *  - the side whose address changed removes the old socket and adds the new one: its pairs are
 *    checked (the peer answers any check that carries its password, from any address);
 *  - the peer sees checks from a host or peer-reflexive address it learned after nomination (or,
 *    controlled, a nomination of another pair): the peer moved; its old selected pair stops counting
 *    as valid and the checklist opens again, so the new pair is checked, used and (controlling side)
 *    nominated. Late srflx and relay candidates are slow gathering, not a move.
 * A peer that does neither (its checklist stays closed) needs an ICE restart: the owner's call. So does
 * a controlled side that loses one of two addresses it had from the start: its peer sees checks from
 * an address it knew and keeps its nomination. */
/* A socket for an address that appeared after start (bound: concrete address and port): reuses a
 * removed local's index, or the next one; trickles its host candidate (LOCAL_CANDIDATE), gathers its
 * srflx one (STUN server), pairs it with every remote candidate and reopens the checklist. Returns the
 * index, PARLEY_EINVAL, PARLEY_EFULL or PARLEY_ESTATE (not started: use parley__ice_add_local). */
int parley__ice_add_local_live(parley__ice_agent *a, const parley__netaddr *bound, int64_t now_us);
/* Local socket `local` is gone (its address went away; the owner closes the socket): its candidates
 * and pairs are forgotten and its index is free for parley__ice_add_local_live. When it carried media
 * the agent has no selected pair until another valid one is chosen (at once when one is valid). 0,
 * PARLEY_EINVAL (no such local, already gone). */
int parley__ice_remove_local(parley__ice_agent *a, int local, int64_t now_us);

/* RFC 8445 5.1.2.1: (2^24)*type_pref + (2^8)*local_pref + (256 - component). Pure. */
uint32_t parley__ice_candidate_priority(parley__ice_cand_type type, uint16_t local_pref, uint16_t component);
/* RFC 8445 6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0); G controlling's, D controlled's. Pure. */
uint64_t parley__ice_pair_priority(uint32_t controlling_prio, uint32_t controlled_prio);
/* Type preference (RFC 8445 5.1.2.2 recommended values): host 126, prflx 110, srflx 100, relay 0. */
uint32_t parley__ice_type_preference(parley__ice_cand_type type);

#endif
