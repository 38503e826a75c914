/* ice_agent.h: the ICE agent's insides, shared by the files that make it up and by no one else:
 *  - ice.c: its public face (ice.h): life, candidates and credentials, getters, consent, restart;
 *  - ice_checklist.c: the checklist: pairs and their states, which pair carries media and is nominated,
 *    which check goes next, and the agent's state;
 *  - ice_checks.c: the checks on the wire: requests sent and retransmitted, requests answered,
 *    answers received (checks, srflx gathering, consent), and the timers;
 *  - ice_mobility.c: local addresses that come and go mid-call, and a peer that moved.
 * Same thread rules as ice.h: one thread owns an agent, or its cfg.guard serialises the calls. */
#ifndef PARLEY_TRANSPORT_ICE_AGENT_H
#define PARLEY_TRANSPORT_ICE_AGENT_H

#include <string.h>

#include "base/thread_check.h"
#include "transport/ice.h"
#include "transport/ice_msg.h"
#include "transport/stun_limit.h"

#define PARLEY__ICE_BINDING 0x001 /* the STUN method */
#define PARLEY__ICE_PACE_FLOOR_US 5000 /* RFC 8445 14.2: never more than one check per 5 ms, whatever Ta is */

enum pair_state { PS_FROZEN, PS_WAITING, PS_IN_PROGRESS, PS_SUCCEEDED, PS_FAILED };

/* One client transaction: a request awaiting its answer. */
typedef struct txn {
  bool active;
  bool retransmit; /* false: cancelled, waits out its timeout silently */
  uint8_t id[12];
  uint32_t tx_count;
  int64_t rto_us;
  int64_t next_us; /* next retransmission, or the timeout after the last one */
} txn;

typedef struct pair {
  int local, remote;
  uint64_t priority;
  uint8_t state;
  bool valid;        /* a check on it succeeded (it is in the valid list) */
  bool peer_checked; /* we answered an authenticated check of the peer's on it */
  bool nominate;     /* controlling: the next check carries USE-CANDIDATE */
  bool nominated;    /* controlled: the peer sent USE-CANDIDATE on it */
  bool cancelled;    /* removed from the checklist after selection */
  uint32_t trig_seq; /* > 0: waiting in the triggered-check queue, FIFO by this number */
  bool sent_use_cand, sent_controlling;
  bool sent_triggered; /* the running check is a triggered one */
  txn t;
  /* A check cancelled by a triggered one (7.3.1.4): no more retransmissions, but its answer still
   * counts. */
  bool old_active;
  bool old_controlling, old_use_cand;
  uint8_t old_id[12];
} pair;

typedef struct local_sock {
  parley__ice_candidate host;
  uint16_t local_pref;
  bool gone; /* removed (its address went away): a free slot for the next address (ice_mobility.c) */
  int serial; /* order of registration over the agent's life: names foundations (a reused index must
                 not give a new address the foundation of the one it replaced) */
  bool stun_wanted, stun_sent, stun_done, has_srflx;
  txn stun;
  parley__ice_candidate srflx;
} local_sock;

typedef struct consent_txn {
  bool active;
  uint8_t id[12];
  uint32_t seq;
  int64_t sent_us;
  char pwd[PARLEY__ICE_CRED_MAX + 1];
} consent_txn;

struct parley__ice_agent {
  parley__ice_config cfg;
  parley__ice_role role;
  uint64_t tie_breaker;
  parley_ice_state state;
  bool started;
  int64_t now_us; /* of the current (or last) call, stamped on events */

  char ufrag[PARLEY__ICE_UFRAG_LEN + 1], pwd[PARLEY__ICE_PWD_LEN + 1];
  bool prev_valid; /* after a restart: the old local credentials still answer (old pair's consent) */
  char prev_ufrag[PARLEY__ICE_UFRAG_LEN + 1], prev_pwd[PARLEY__ICE_PWD_LEN + 1];
  bool remote_creds;
  char rufrag[PARLEY__ICE_CRED_MAX + 1], rpwd[PARLEY__ICE_CRED_MAX + 1];
  bool prev_remote_creds;
  char prev_rufrag[PARLEY__ICE_CRED_MAX + 1], prev_rpwd[PARLEY__ICE_CRED_MAX + 1];
  bool remote_eoc;

  local_sock locals[PARLEY__ICE_MAX_LOCAL];
  int nlocal;
  int serials; /* local sockets ever registered */
  parley__ice_candidate remotes[PARLEY__ICE_MAX_REMOTE];
  int nremote;
  uint32_t prflx_counter;
  pair pairs[PARLEY__ICE_MAX_PAIRS];
  int npairs;
  uint32_t trig_counter;

  int64_t next_ta_us;
  int64_t last_check_us; /* last paced send (PACE_FLOOR_US applies from it) */
  bool have_first_valid;
  int64_t first_valid_us;
  bool nominating;
  bool gathering_done;
  int relays_pending;   /* relayed candidates the owner is still allocating (parley__ice_expect_relays) */

  bool has_selected;    /* a pair carries media (maybe from before a restart) */
  bool usable_now;      /* ... and it is a valid pair of the current generation */
  bool selected_now;    /* ... and it was nominated: the checklist is done */
  int settled_remotes;  /* nremote when it was nominated: later ones are a peer on the move */
  int sel_local;
  parley__netaddr sel_remote;

  consent_txn consent[PARLEY__ICE_MAX_CONSENT];
  uint32_t consent_seq;
  parley__stun_limit error_budget; /* error replies to requests we cannot authenticate */
  parley__ice_stats stats;
  parley__guard guard; /* cfg.guard, or the owner thread: checked on every call that changes the agent */
};

static inline void emit(parley__ice_agent *a, parley__ice_event ev) {
  ev.state = a->state;
  ev.role = a->role;
  ev.now_us = a->now_us;
  if (a->cfg.on_event) a->cfg.on_event(a->cfg.ctx, &ev);
}

static inline uint32_t local_priority(const parley__ice_agent *a, int local) { return a->locals[local].host.priority; }

static inline uint64_t pair_prio(const parley__ice_agent *a, const pair *p) {
  uint32_t l = local_priority(a, p->local), r = a->remotes[p->remote].priority;
  return a->role == PARLEY__ICE_CONTROLLING ? parley__ice_pair_priority(l, r) : parley__ice_pair_priority(r, l);
}

static inline bool same_foundation(const parley__ice_agent *a, const pair *p, const pair *q) {
  return strcmp(a->locals[p->local].host.foundation, a->locals[q->local].host.foundation) == 0 &&
         strcmp(a->remotes[p->remote].foundation, a->remotes[q->remote].foundation) == 0;
}

static inline void send_to(parley__ice_agent *a, int local, const parley__netaddr *dst, const uint8_t *buf, int len) {
  if (len > 0) a->cfg.send(a->cfg.ctx, local, dst, buf, (size_t)len);
}

/* ---- ice.c ---- */

/* Local slot i becomes a host candidate for the socket bound to `bound`. */
void parley__ice_init_host(parley__ice_agent *a, int i, const parley__netaddr *bound);

/* ---- ice_checklist.c ---- */

/* The agent's state from its pairs; an event when it changes. */
void parley__ice_update_state(parley__ice_agent *a);
/* The pair of local socket `local` and remote candidate `remote` (found or formed, Frozen or Waiting);
 * its index, or -1 (different families, or the pair table is full). */
int parley__ice_form_pair(parley__ice_agent *a, int local, int remote);
/* 7.3.1.1 / 7.2.5.1: take the other role (priorities recomputed, nomination restarted). */
void parley__ice_switch_role(parley__ice_agent *a);
/* Queues a triggered check on p (FIFO). */
void parley__ice_enqueue_triggered(parley__ice_agent *a, pair *p);
/* p is nominated: it carries media for good and the checklist stops. */
void parley__ice_select_pair(parley__ice_agent *a, pair *p);
void parley__ice_pair_failed(parley__ice_agent *a, pair *p);
/* Moves media to the best valid pair when no better one is pending; the controlling side nominates it. */
void parley__ice_choose_pair(parley__ice_agent *a, int64_t now_us);
/* The next paced send: a pair index, -(1 + socket) for a srflx request, or INT32_MIN (none). */
int parley__ice_pick_paced(const parley__ice_agent *a);
/* When the paced send `pick` may go (INT64_MAX for none). */
int64_t parley__ice_paced_due_us(const parley__ice_agent *a, int pick);
bool parley__ice_has_valid_pair(const parley__ice_agent *a);

/* ---- ice_checks.c ---- */

/* A new client transaction (random id) sent now, first retransmission after rto_us. */
void parley__ice_new_txn(txn *t, int64_t now_us, int64_t rto_us);
/* A Binding request on p's socket, signed with rpwd: the message length, or a negative error. */
int parley__ice_build_check(const parley__ice_agent *a, const pair *p, const char *rufrag, const char *rpwd,
                            bool controlling, bool use_cand, const uint8_t id[12], uint8_t *out, size_t cap);
/* The foundation of local socket `local`'s candidate of type type_letter (5.1.1.3). */
void parley__ice_make_foundation(const parley__ice_agent *a, int local, char type_letter, char *out);
/* GATHERING_DONE once every wanted srflx request is answered or timed out. */
void parley__ice_check_gathering_done(parley__ice_agent *a);

/* ---- ice_mobility.c ---- */

/* The checklist opens again after selection (a local address came or went, or the peer moved):
 * cancelled pairs may be checked, and the controlling side nominates again. */
void parley__ice_reopen(parley__ice_agent *a);
/* A local added mid-call (a new host socket, a relay allocated again): the checklist reopened and its
 * pairs checked at once, the peer's newest candidates first. */
void parley__ice_check_new_local(parley__ice_agent *a, int local);
/* The index for a new local: a slot a removed one left, else the next; PARLEY_EFULL. */
int parley__ice_free_local_slot(parley__ice_agent *a);
/* handle_request's hook, once the request authenticated with the current credentials and r is its
 * remote: after selection, a request from a remote learned since (the peer's address changed) or a
 * nomination of another pair (controlled) reopens the checklist. */
void parley__ice_on_peer_request(parley__ice_agent *a, int local, int r, bool use_candidate);
/* A remote candidate trickled once the call was up (the peer gathered again: it moved): its pairs are
 * checked next, ahead of the older pairs waiting for the pacer. */
void parley__ice_on_late_remote(parley__ice_agent *a, int r);
/* A local socket that is not gone, for FAILED: without one the agent waits for an address. */
bool parley__ice_has_live_local(const parley__ice_agent *a);

#endif
