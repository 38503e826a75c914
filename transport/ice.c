/* ice.c: the ICE agent (see ice.h). Owns its candidates, pairs, transactions and credentials, all in
 * fixed arrays inside the agent (allocated once in parley__ice_new). One thread (network/control);
 * no clock reads, no sockets: time comes in as now_us, bytes go out through cfg.send.
 *
 * Shape of the implementation, following RFC 8445:
 *  - local candidates: one host candidate per registered socket, plus a server-reflexive one per
 *    socket when a STUN server answers. Pairs are only ever formed with host candidates: a srflx
 *    candidate's pairs would be replaced by its base anyway (6.1.2.4), so they are pruned at birth.
 *  - one checklist (one data stream, one component). Pair states Frozen/Waiting/In-Progress/
 *    Succeeded/Failed; a triggered-check FIFO (a sequence number per pair); one paced send per Ta.
 *  - check transactions retransmit on a doubling RTO (RFC 8489 6.2.1, capped) for at most
 *    max_check_tx transmissions, then the pair fails.
 *  - media before nomination (8.1.1: data may be sent on any valid pair): each side moves media to the
 *    best valid pair once no better pair is pending (SELECTED_PAIR, CONNECTED), one round trip after
 *    its checks start.
 *  - regular nomination: the controlling side nominates that same pair (or, nominate_after_us after
 *    the first success, the best valid one even with better ones pending) by re-checking it with
 *    USE-CANDIDATE; it is selected for good on both sides when that check succeeds. The check that
 *    completes a nomination (that one, or the controlled side's triggered check on a pair the peer
 *    nominated) does not wait for the next Ta slot: it leaves PACE_FLOOR_US after the previous check,
 *    14.2's floor for all checks, not a round trip plus a Ta later. Every other check is paced at Ta.
 * Simplifications, all allowed by the RFC's MAY/SHOULD or harmless with one component: a request on
 * an In-Progress pair does not cancel and restart its transaction (the running one continues); a
 * peer-reflexive *local* candidate learned from XOR-MAPPED-ADDRESS is not added to the local list
 * (the pair's socket is what carries media, and that is already known).
 */
#include "transport/ice.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/ice_msg.h"
#include "transport/stun_limit.h"

#define STUN_BINDING 0x001
#define PACE_FLOOR_US 5000 /* RFC 8445 14.2: never more than one check per 5 ms, whatever Ta is */
#define MAX_CONSENT PARLEY__ICE_MAX_CONSENT

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

  bool has_selected;    /* a pair carries media (maybe from before a restart) */
  bool usable_now;      /* ... and it is a valid pair of the current generation */
  bool selected_now;    /* ... and it was nominated: the checklist is done */
  int sel_local;
  parley__netaddr sel_remote;

  consent_txn consent[MAX_CONSENT];
  uint32_t consent_seq;
  parley__stun_limit error_budget; /* error replies to requests we cannot authenticate */
  parley__ice_stats stats;
};

/* ---- formulas (RFC 8445 5.1.2, 6.1.2.3) ---- */

uint32_t parley__ice_type_preference(parley__ice_cand_type type) {
  switch (type) {
  case PARLEY__ICE_HOST: return 126;
  case PARLEY__ICE_PRFLX: return 110;
  case PARLEY__ICE_SRFLX: return 100;
  default: return 0;
  }
}

uint32_t parley__ice_candidate_priority(parley__ice_cand_type type, uint16_t local_pref, uint16_t component) {
  if (component < 1) component = 1;
  if (component > 256) component = 256;
  return (parley__ice_type_preference(type) << 24) + ((uint32_t)local_pref << 8) + (256u - component);
}

uint64_t parley__ice_pair_priority(uint32_t g, uint32_t d) {
  uint64_t mn = g < d ? g : d, mx = g < d ? d : g;
  return (mn << 32) + 2 * mx + (g > d ? 1 : 0);
}

/* ---- small helpers ---- */

static void emit(parley__ice_agent *a, parley__ice_event ev) {
  ev.state = a->state;
  ev.role = a->role;
  ev.now_us = a->now_us;
  if (a->cfg.on_event) a->cfg.on_event(a->cfg.ctx, &ev);
}

static int random_ice_chars(char *out, size_t n) {
  static const char ice_chars[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char raw[64];
  if (n > sizeof raw || RAND_bytes(raw, (int)n) != 1) return PARLEY_ECRYPTO;
  for (size_t i = 0; i < n; i++) out[i] = ice_chars[raw[i] & 63]; /* 64 symbols: exactly uniform */
  out[n] = '\0';
  return 0;
}

static int new_credentials(parley__ice_agent *a) {
  int rc = random_ice_chars(a->ufrag, PARLEY__ICE_UFRAG_LEN);
  if (rc == 0) rc = random_ice_chars(a->pwd, PARLEY__ICE_PWD_LEN);
  return rc;
}

static void new_txn(txn *t, int64_t now_us, int64_t rto_us) {
  if (RAND_bytes(t->id, sizeof t->id) != 1) {
    /* Never expected; a counter-derived id still keeps transactions apart. */
    static uint32_t fallback;
    fallback++;
    memset(t->id, 0, sizeof t->id);
    memcpy(t->id, &fallback, sizeof fallback);
  }
  t->active = true;
  t->retransmit = true;
  t->tx_count = 1;
  t->rto_us = rto_us;
  t->next_us = now_us + rto_us;
}

static uint32_t local_priority(const parley__ice_agent *a, int local) { return a->locals[local].host.priority; }

static uint64_t pair_prio(const parley__ice_agent *a, const pair *p) {
  uint32_t l = local_priority(a, p->local), r = a->remotes[p->remote].priority;
  return a->role == PARLEY__ICE_CONTROLLING ? parley__ice_pair_priority(l, r) : parley__ice_pair_priority(r, l);
}

static bool same_foundation(const parley__ice_agent *a, const pair *p, const pair *q) {
  return strcmp(a->locals[p->local].host.foundation, a->locals[q->local].host.foundation) == 0 &&
         strcmp(a->remotes[p->remote].foundation, a->remotes[q->remote].foundation) == 0;
}

static void send_to(parley__ice_agent *a, int local, const parley__netaddr *dst, const uint8_t *buf, int len) {
  if (len > 0) a->cfg.send(a->cfg.ctx, local, dst, buf, (size_t)len);
}

/* ---- state ---- */

static void set_state(parley__ice_agent *a, parley_ice_state s) {
  if (a->state == s) return;
  a->state = s;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_STATE});
}

static void update_state(parley__ice_agent *a) {
  if (!a->started) return;
  bool busy = false, all_failed = a->npairs > 0 || a->remote_eoc;
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if (p->state == PS_IN_PROGRESS || p->trig_seq) busy = true;
    if (p->state != PS_FAILED) all_failed = false;
  }
  if (a->selected_now) {
    set_state(a, a->remote_eoc && !busy ? PARLEY_ICE_COMPLETED : PARLEY_ICE_CONNECTED);
  } else if (a->usable_now) {
    set_state(a, PARLEY_ICE_CONNECTED);
  } else if (a->remote_eoc && a->remote_creds && all_failed) {
    set_state(a, PARLEY_ICE_FAILED);
  } else {
    set_state(a, PARLEY_ICE_CHECKING);
  }
}

/* ---- pairs ---- */

static void enqueue_triggered(parley__ice_agent *a, pair *p) {
  if (!p->t.active) p->state = PS_WAITING;
  if (!p->trig_seq) p->trig_seq = ++a->trig_counter;
}

static int find_pair(const parley__ice_agent *a, int local, int remote) {
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].local == local && a->pairs[i].remote == remote) return i;
  return -1;
}

static int form_pair(parley__ice_agent *a, int local, int remote) {
  if (a->locals[local].host.addr.family != a->remotes[remote].addr.family) return -1;
  int i = find_pair(a, local, remote);
  if (i >= 0) return i;
  if (a->npairs >= PARLEY__ICE_MAX_PAIRS) return -1;
  pair *p = &a->pairs[a->npairs];
  memset(p, 0, sizeof *p);
  p->local = local;
  p->remote = remote;
  p->priority = pair_prio(a, p);
  /* Frozen while another pair of its foundation is being checked (6.1.2.6, RFC 8838 for trickle). */
  p->state = PS_WAITING;
  for (int k = 0; k < a->npairs; k++) {
    const pair *q = &a->pairs[k];
    if ((q->state == PS_WAITING || q->state == PS_IN_PROGRESS) && same_foundation(a, p, q)) p->state = PS_FROZEN;
  }
  if (a->selected_now) p->cancelled = true; /* checklist done: kept for lookup, never checked */
  return a->npairs++;
}

static void recompute_priorities(parley__ice_agent *a) {
  for (int i = 0; i < a->npairs; i++) a->pairs[i].priority = pair_prio(a, &a->pairs[i]);
}

static void switch_role(parley__ice_agent *a) {
  a->role = a->role == PARLEY__ICE_CONTROLLING ? PARLEY__ICE_CONTROLLED : PARLEY__ICE_CONTROLLING;
  a->stats.role_conflicts++;
  recompute_priorities(a);
  a->nominating = false;
  for (int i = 0; i < a->npairs; i++) a->pairs[i].nominate = false;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_ROLE_CHANGED});
}

static bool is_used(const parley__ice_agent *a, const pair *p) {
  return a->usable_now && a->sel_local == p->local && parley__netaddr_equal(&a->sel_remote, &a->remotes[p->remote].addr);
}

/* Media moves to the valid pair p (RFC 8445 8.1.1: data may be sent on any valid pair, nominated or
 * not). SELECTED_PAIR when it is a change. */
static void use_pair(parley__ice_agent *a, const pair *p) {
  if (is_used(a, p)) return;
  a->has_selected = a->usable_now = true;
  a->prev_valid = false; /* the old generation's credentials retire with its pair */
  a->prev_remote_creds = false;
  a->sel_local = p->local;
  a->sel_remote = a->remotes[p->remote].addr;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_SELECTED_PAIR, .local = a->sel_local, .remote = a->sel_remote});
}

/* p is nominated: it carries media for good. */
static void select_pair(parley__ice_agent *a, pair *p) {
  use_pair(a, p);
  a->selected_now = true;
  a->nominating = false;
  /* 8.1.2: the checklist is done; stop everything else. */
  for (int i = 0; i < a->npairs; i++) {
    pair *q = &a->pairs[i];
    if (q == p) continue;
    q->trig_seq = 0;
    q->cancelled = true;
    q->t.retransmit = false;
  }
  p->trig_seq = 0;
}

static void pair_failed(parley__ice_agent *a, pair *p) {
  if (!a->selected_now && is_used(a, p)) a->usable_now = a->has_selected = false; /* a dead path: no media */
  p->state = PS_FAILED;
  p->valid = false;
  p->t.active = false;
  p->old_active = false;
  p->trig_seq = 0;
  if (!p->cancelled) a->stats.pairs_failed++;
  if (p->nominate) {
    p->nominate = false;
    a->nominating = false;
  }
}

/* ---- sending ---- */

static int build_check(const parley__ice_agent *a, const pair *p, const char *rufrag, const char *rpwd,
                       bool controlling, bool use_cand, const uint8_t id[12], uint8_t *out, size_t cap) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_REQUEST;
  m.method = STUN_BINDING;
  memcpy(m.txid, id, 12);
  m.has_username = true;
  snprintf(m.username, sizeof m.username, "%s:%s", rufrag, a->ufrag);
  m.has_priority = true;
  m.priority = parley__ice_candidate_priority(PARLEY__ICE_PRFLX, a->locals[p->local].local_pref, 1);
  m.has_controlling = controlling;
  m.has_controlled = !controlling;
  m.tie_breaker = a->tie_breaker;
  m.use_candidate = use_cand;
  return parley__ice_msg_build(&m, rpwd, out, cap);
}

static void transmit_check(parley__ice_agent *a, pair *p) {
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  int n = build_check(a, p, a->rufrag, a->rpwd, p->sent_controlling, p->sent_use_cand, p->t.id, buf, sizeof buf);
  send_to(a, p->local, &a->remotes[p->remote].addr, buf, n);
}

static void start_check(parley__ice_agent *a, pair *p, int64_t now_us) {
  p->sent_triggered = p->trig_seq != 0;
  if (p->t.active) {
    p->old_active = true;
    memcpy(p->old_id, p->t.id, 12);
    p->old_controlling = p->sent_controlling;
    p->old_use_cand = p->sent_use_cand;
  }
  p->trig_seq = 0;
  p->state = PS_IN_PROGRESS;
  p->sent_controlling = a->role == PARLEY__ICE_CONTROLLING;
  p->sent_use_cand = p->sent_controlling && p->nominate;
  /* 14.3: RTO = MAX(500 ms, Ta * (Num-Waiting + Num-In-Progress)), so every pair gets its first
   * transmission before anyone retransmits. */
  int64_t busy = 0;
  for (int i = 0; i < a->npairs; i++)
    if (!a->pairs[i].cancelled && (a->pairs[i].state == PS_WAITING || a->pairs[i].state == PS_IN_PROGRESS)) busy++;
  int64_t rto = a->cfg.ta_us * busy > a->cfg.rto_us ? a->cfg.ta_us * busy : a->cfg.rto_us;
  new_txn(&p->t, now_us, rto);
  a->stats.checks_sent++;
  transmit_check(a, p);
}

static void transmit_stun(parley__ice_agent *a, int local) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_REQUEST;
  m.method = STUN_BINDING;
  memcpy(m.txid, a->locals[local].stun.id, 12);
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  send_to(a, local, &a->cfg.stun_server, buf, parley__ice_msg_build(&m, NULL, buf, sizeof buf));
}

static void respond_unknown(parley__ice_agent *a, int local, const parley__netaddr *dst, const parley__ice_msg *req,
                            const char *pwd) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_ERROR;
  m.method = STUN_BINDING;
  memcpy(m.txid, req->txid, 12);
  m.error_code = 420;
  m.unknown_count = req->unknown_count;
  memcpy(m.unknown, req->unknown, sizeof m.unknown);
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  send_to(a, local, dst, buf, parley__ice_msg_build(&m, pwd, buf, sizeof buf));
}

static void respond(parley__ice_agent *a, int local, const parley__netaddr *dst, const uint8_t id[12],
                    int error_code, const char *pwd) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = error_code ? PARLEY__ICE_MSG_ERROR : PARLEY__ICE_MSG_SUCCESS;
  m.method = STUN_BINDING;
  memcpy(m.txid, id, 12);
  m.error_code = error_code;
  m.has_mapped = !error_code;
  m.mapped = *dst;
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  send_to(a, local, dst, buf, parley__ice_msg_build(&m, pwd, buf, sizeof buf));
}

/* ---- gathering ---- */

static void check_gathering_done(parley__ice_agent *a) {
  if (a->gathering_done) return;
  for (int i = 0; i < a->nlocal; i++)
    if (a->locals[i].stun_wanted && !a->locals[i].stun_done) return;
  a->gathering_done = true;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_GATHERING_DONE});
}

/* Foundation (5.1.1.3): equal for the same type, base IP and server. We name it by type and the index
 * of the first socket with that base IP, so it is short, stable and made of ice-chars. */
static void make_foundation(const parley__ice_agent *a, int local, char type_letter, char *out) {
  int first = local;
  for (int i = 0; i < local; i++)
    if (parley__netaddr_same_ip(&a->locals[i].host.addr, &a->locals[local].host.addr)) {
      first = i;
      break;
    }
  snprintf(out, PARLEY__ICE_FOUNDATION_MAX + 1, "%c%d", type_letter, first);
}

static void srflx_answer(parley__ice_agent *a, int local, const parley__ice_msg *m) {
  local_sock *ls = &a->locals[local];
  ls->stun.active = false;
  ls->stun_done = true;
  if (m->cls == PARLEY__ICE_MSG_SUCCESS && m->has_mapped && m->mapped.family == ls->host.addr.family &&
      !parley__netaddr_equal(&m->mapped, &ls->host.addr)) { /* equal to the base: redundant, dropped */
    ls->has_srflx = true;
    parley__ice_candidate *c = &ls->srflx;
    memset(c, 0, sizeof *c);
    make_foundation(a, local, 'S', c->foundation);
    c->component = 1;
    c->type = PARLEY__ICE_SRFLX;
    c->priority = parley__ice_candidate_priority(PARLEY__ICE_SRFLX, ls->local_pref, 1);
    c->addr = m->mapped;
    c->related = ls->host.addr;
    c->local = local;
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = c, .local = local});
  }
  check_gathering_done(a);
}

/* ---- public: lifecycle ---- */

parley__ice_agent *parley__ice_new(const parley__ice_config *cfg, int *err) {
  int dummy;
  if (!err) err = &dummy;
  *err = PARLEY_EINVAL;
  if (!cfg || !cfg->send || (cfg->role != PARLEY__ICE_CONTROLLED && cfg->role != PARLEY__ICE_CONTROLLING) ||
      cfg->ta_us < 0 || cfg->rto_us < 0 || cfg->rto_max_us < 0 || cfg->nominate_after_us < 0 ||
      (cfg->has_stun_server && cfg->stun_server.family != PARLEY__NETADDR_V4 &&
       cfg->stun_server.family != PARLEY__NETADDR_V6))
    return NULL;
  parley__ice_agent *a = calloc(1, sizeof *a);
  if (!a) {
    *err = PARLEY_ENOMEM;
    return NULL;
  }
  a->cfg = *cfg;
  if (!a->cfg.ta_us) a->cfg.ta_us = 50000;
  if (!a->cfg.rto_us) a->cfg.rto_us = 500000;
  if (!a->cfg.rto_max_us) a->cfg.rto_max_us = 3000000;
  if (a->cfg.rto_max_us < a->cfg.rto_us) a->cfg.rto_max_us = a->cfg.rto_us;
  if (!a->cfg.max_check_tx) a->cfg.max_check_tx = 7;
  if (!a->cfg.nominate_after_us) a->cfg.nominate_after_us = 500000;
  a->role = cfg->role;
  a->tie_breaker = cfg->tie_breaker;
  if ((!a->tie_breaker && RAND_bytes((unsigned char *)&a->tie_breaker, sizeof a->tie_breaker) != 1) ||
      new_credentials(a) != 0) {
    free(a);
    *err = PARLEY_ECRYPTO;
    return NULL;
  }
  a->state = PARLEY_ICE_NEW;
  a->last_check_us = INT64_MIN / 2;
  parley__stun_limit_init(&a->error_budget);
  *err = 0;
  return a;
}

void parley__ice_free(parley__ice_agent *a) { free(a); }

int parley__ice_add_local(parley__ice_agent *a, const parley__netaddr *bound) {
  if (!a || !bound || (bound->family != PARLEY__NETADDR_V4 && bound->family != PARLEY__NETADDR_V6) ||
      bound->port == 0)
    return PARLEY_EINVAL;
  if (a->started) return PARLEY_ESTATE;
  if (a->nlocal >= PARLEY__ICE_MAX_LOCAL) return PARLEY_EFULL;
  int i = a->nlocal++;
  local_sock *ls = &a->locals[i];
  memset(ls, 0, sizeof *ls);
  /* RFC 8421-style: IPv6 above IPv4, then registration order. */
  ls->local_pref = (uint16_t)((bound->family == PARLEY__NETADDR_V6 ? 65535 : 32767) - i);
  parley__ice_candidate *c = &ls->host;
  c->addr = *bound; /* make_foundation compares base addresses */
  make_foundation(a, i, 'H', c->foundation);
  c->component = 1;
  c->type = PARLEY__ICE_HOST;
  c->priority = parley__ice_candidate_priority(PARLEY__ICE_HOST, ls->local_pref, 1);
  c->local = i;
  ls->stun_wanted = a->cfg.has_stun_server && a->cfg.stun_server.family == bound->family;
  return i;
}

int parley__ice_start(parley__ice_agent *a, int64_t now_us) {
  if (!a) return PARLEY_EINVAL;
  if (a->started || a->nlocal == 0) return PARLEY_ESTATE;
  a->now_us = now_us;
  a->started = true;
  a->next_ta_us = now_us;
  for (int i = 0; i < a->nlocal; i++)
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = &a->locals[i].host, .local = i});
  /* Remote candidates may have arrived before start: pair them now. */
  for (int r = 0; r < a->nremote; r++)
    for (int l = 0; l < a->nlocal; l++) (void)form_pair(a, l, r);
  update_state(a);
  check_gathering_done(a);
  return 0;
}

void parley__ice_local_credentials(const parley__ice_agent *a, const char **ufrag, const char **pwd) {
  if (ufrag) *ufrag = a ? a->ufrag : NULL;
  if (pwd) *pwd = a ? a->pwd : NULL;
}

int parley__ice_local_candidates(const parley__ice_agent *a, parley__ice_candidate *out, size_t max) {
  if (!a || (!out && max)) return PARLEY_EINVAL;
  size_t n = 0;
  for (int i = 0; i < a->nlocal; i++) {
    if (n < max) out[n] = a->locals[i].host;
    n++;
    if (a->locals[i].has_srflx) {
      if (n < max) out[n] = a->locals[i].srflx;
      n++;
    }
  }
  return (int)n;
}

static bool cred_ok(const char *s, size_t min) {
  size_t n = s ? strlen(s) : 0;
  if (n < min || n > PARLEY__ICE_CRED_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ':' || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

int parley__ice_set_remote_credentials(parley__ice_agent *a, const char *ufrag, const char *pwd) {
  if (!a || !cred_ok(ufrag, 4) || !cred_ok(pwd, 22)) return PARLEY_EINVAL;
  if (a->remote_creds) return strcmp(ufrag, a->rufrag) == 0 && strcmp(pwd, a->rpwd) == 0 ? 0 : PARLEY_ESTATE;
  strcpy(a->rufrag, ufrag);
  strcpy(a->rpwd, pwd);
  a->remote_creds = true;
  update_state(a);
  return 0;
}

int parley__ice_add_remote_candidate(parley__ice_agent *a, const parley__ice_candidate *c, int64_t now_us) {
  if (!a || !c || c->component != 1 || c->priority == 0 ||
      (c->addr.family != PARLEY__NETADDR_V4 && c->addr.family != PARLEY__NETADDR_V6) || c->addr.port == 0 ||
      c->foundation[0] == '\0' || memchr(c->foundation, '\0', sizeof c->foundation) == NULL)
    return PARLEY_EINVAL;
  for (int i = 0; i < a->nremote; i++) {
    parley__ice_candidate *r = &a->remotes[i];
    if (!parley__netaddr_equal(&r->addr, &c->addr)) continue;
    if (r->type == PARLEY__ICE_PRFLX && c->type != PARLEY__ICE_PRFLX) {
      /* A learned peer-reflexive candidate now signalled: adopt its type and foundation. */
      r->type = c->type;
      memcpy(r->foundation, c->foundation, sizeof r->foundation);
    }
    return 1;
  }
  if (a->nremote >= PARLEY__ICE_MAX_REMOTE) return PARLEY_EFULL;
  a->now_us = now_us;
  int r = a->nremote++;
  a->remotes[r] = *c;
  a->remotes[r].local = -1;
  if (a->started)
    for (int l = 0; l < a->nlocal; l++) (void)form_pair(a, l, r);
  update_state(a);
  return 0;
}

void parley__ice_remote_end_of_candidates(parley__ice_agent *a, int64_t now_us) {
  if (!a) return;
  a->now_us = now_us;
  a->remote_eoc = true;
  update_state(a);
}

/* ---- choosing the pair ---- */

/* Both roles move media to the best valid pair once no better pair is pending, which is the pair the
 * controlling side then nominates: media and CONNECTED need one round trip, not the nomination's
 * second one. The controlling side also nominates it, or, nominate_after_us after the first success,
 * the best valid pair even with better ones pending. */
static void choose_pair(parley__ice_agent *a, int64_t now_us) {
  bool controlling = a->role == PARLEY__ICE_CONTROLLING;
  if (a->selected_now || !a->remote_creds || (controlling && a->nominating)) return;
  pair *best = NULL;
  for (int i = 0; i < a->npairs; i++) {
    pair *p = &a->pairs[i];
    if (p->valid && p->state == PS_SUCCEEDED && (!best || p->priority > best->priority)) best = p;
  }
  if (!best) return;
  bool better_pending = false;
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if (p->priority > best->priority &&
        (p->state == PS_FROZEN || p->state == PS_WAITING || p->state == PS_IN_PROGRESS))
      better_pending = true;
  }
  if (better_pending && (!controlling || now_us < a->first_valid_us + a->cfg.nominate_after_us)) return;
  use_pair(a, best);
  if (!controlling) return;
  best->nominate = true;
  a->nominating = true;
  enqueue_triggered(a, best);
}

/* ---- receiving ---- */

static void handle_request(parley__ice_agent *a, int local, const parley__netaddr *src, const uint8_t *buf,
                           size_t len, const parley__ice_msg *m, int64_t now_us) {
  /* Anyone can send these, from any forged source: their error replies are rationed (stun_limit.h) so
   * that we cannot be used to reflect traffic at a victim. */
  if (!m->has_username || !m->has_integrity) {
    if (parley__stun_limit_allow(&a->error_budget, src, now_us)) respond(a, local, src, m->txid, 400, NULL);
    a->stats.auth_failures++;
    return;
  }
  /* USERNAME is "our-ufrag:their-ufrag"; our part selects the password (current or pre-restart). */
  const char *colon = strchr(m->username, ':');
  size_t ul = colon ? (size_t)(colon - m->username) : strlen(m->username);
  const char *pwd = NULL;
  bool current = false;
  if (ul == strlen(a->ufrag) && memcmp(m->username, a->ufrag, ul) == 0) {
    pwd = a->pwd;
    current = true;
  } else if (a->prev_valid && ul == strlen(a->prev_ufrag) && memcmp(m->username, a->prev_ufrag, ul) == 0) {
    pwd = a->prev_pwd;
  }
  if (!pwd || !parley__ice_msg_integrity_ok(buf, len, pwd)) {
    if (parley__stun_limit_allow(&a->error_budget, src, now_us))
      respond(a, local, src, m->txid, 401, NULL); /* RFC 8489 9.1.3: no integrity on the 401 */
    a->stats.auth_failures++;
    return;
  }
  a->stats.requests_received++;
  if (m->unknown_count > 0) { /* RFC 8489 6.3.1: 420 listing what we did not understand */
    respond_unknown(a, local, src, m, pwd);
    return;
  }

  if (current && m->has_controlling == m->has_controlled) {
    respond(a, local, src, m->txid, 400, pwd); /* ICE needs exactly one role attribute */
    return;
  }
  /* 7.3.1.1 role conflict. */
  if (current && a->role == PARLEY__ICE_CONTROLLING && m->has_controlling) {
    if (a->tie_breaker >= m->tie_breaker) {
      a->stats.role_conflicts++;
      respond(a, local, src, m->txid, 487, pwd);
      return;
    }
    switch_role(a);
  } else if (current && a->role == PARLEY__ICE_CONTROLLED && m->has_controlled) {
    if (a->tie_breaker >= m->tie_breaker) {
      switch_role(a);
    } else {
      a->stats.role_conflicts++;
      respond(a, local, src, m->txid, 487, pwd);
      return;
    }
  }
  respond(a, local, src, m->txid, 0, pwd);
  if (!current || !a->started) return; /* old generation: answered (consent), nothing to learn */

  /* 7.3.1.3: learn a peer-reflexive candidate. */
  int r = -1;
  for (int i = 0; i < a->nremote; i++)
    if (parley__netaddr_equal(&a->remotes[i].addr, src)) r = i;
  if (r < 0) {
    if (a->nremote >= PARLEY__ICE_MAX_REMOTE || !m->has_priority || m->priority == 0) return;
    r = a->nremote++;
    parley__ice_candidate *c = &a->remotes[r];
    memset(c, 0, sizeof *c);
    snprintf(c->foundation, sizeof c->foundation, "prflx%u", (unsigned)++a->prflx_counter);
    c->component = 1;
    c->priority = m->priority;
    c->type = PARLEY__ICE_PRFLX;
    c->addr = *src;
    c->local = -1;
    a->stats.prflx_learned++;
  }
  int pi = form_pair(a, local, r);
  if (pi < 0) return;
  pair *p = &a->pairs[pi];
  bool nominate_now = m->use_candidate && a->role == PARLEY__ICE_CONTROLLED;
  if (nominate_now) p->nominated = true;
  /* 7.3.1.4 triggered checks; 7.3.1.5 nomination on the controlled side. */
  if (p->state == PS_SUCCEEDED && p->valid) {
    if (nominate_now && !a->selected_now) select_pair(a, p);
  } else if (!p->cancelled && (p->state != PS_IN_PROGRESS || !p->sent_triggered)) {
    /* An In-Progress ordinary check is superseded by a triggered one (its answer still counts); a
     * running triggered check is left alone so a peer's retransmissions cannot churn it. */
    enqueue_triggered(a, p);
  }
}

static void handle_pair_answer(parley__ice_agent *a, pair *p, bool old, int local, const parley__netaddr *src,
                               const uint8_t *buf, size_t len, const parley__ice_msg *m, int64_t now_us) {
  if (!m->has_integrity || !parley__ice_msg_integrity_ok(buf, len, a->rpwd)) {
    a->stats.auth_failures++; /* forged or corrupted: drop, the transaction keeps running */
    return;
  }
  bool sent_controlling = old ? p->old_controlling : p->sent_controlling;
  bool sent_use_cand = old ? p->old_use_cand : p->sent_use_cand;
  if (old) p->old_active = false;
  else p->t.active = false;
  /* 7.2.5.2.1: the answer must come back on the same path. */
  if (local != p->local || !parley__netaddr_equal(src, &a->remotes[p->remote].addr)) {
    pair_failed(a, p);
    return;
  }
  if (m->cls == PARLEY__ICE_MSG_ERROR) {
    if (old && p->t.active) return; /* the check that replaced it decides */
    if (m->error_code == 487) {
      /* 7.2.5.1: switch role only if we still hold the role the request claimed. */
      if (sent_controlling == (a->role == PARLEY__ICE_CONTROLLING)) switch_role(a);
      else a->stats.role_conflicts++;
      enqueue_triggered(a, p);
    } else {
      pair_failed(a, p);
    }
    return;
  }
  p->state = PS_SUCCEEDED;
  p->valid = true;
  p->old_active = false;
  /* The replacing check is redundant now, unless it is the nomination. */
  if (p->t.active && !(p->sent_use_cand && !sent_use_cand)) p->t.active = false;
  if (p->t.active) p->state = PS_IN_PROGRESS;
  if (!a->have_first_valid) {
    a->have_first_valid = true;
    a->first_valid_us = now_us;
  }
  for (int i = 0; i < a->npairs; i++) { /* 7.2.5.3.3: unfreeze the foundation */
    pair *q = &a->pairs[i];
    if (q->state == PS_FROZEN && same_foundation(a, p, q)) q->state = PS_WAITING;
  }
  if (a->selected_now) return;
  if ((sent_use_cand && a->role == PARLEY__ICE_CONTROLLING) || (p->nominated && a->role == PARLEY__ICE_CONTROLLED))
    select_pair(a, p);
}

static void handle_answer(parley__ice_agent *a, int local, const parley__netaddr *src, const uint8_t *buf,
                          size_t len, const parley__ice_msg *m, int64_t now_us) {
  for (int i = 0; i < a->npairs; i++) {
    pair *p = &a->pairs[i];
    if (p->t.active && memcmp(p->t.id, m->txid, 12) == 0) {
      handle_pair_answer(a, p, false, local, src, buf, len, m, now_us);
      return;
    }
    if (p->old_active && memcmp(p->old_id, m->txid, 12) == 0) {
      handle_pair_answer(a, p, true, local, src, buf, len, m, now_us);
      return;
    }
  }
  for (int i = 0; i < a->nlocal; i++) {
    local_sock *ls = &a->locals[i];
    if (ls->stun.active && memcmp(ls->stun.id, m->txid, 12) == 0 && i == local &&
        parley__netaddr_equal(src, &a->cfg.stun_server)) {
      srflx_answer(a, i, m);
      return;
    }
  }
  for (int i = 0; i < MAX_CONSENT; i++) {
    consent_txn *c = &a->consent[i];
    if (!c->active || memcmp(c->id, m->txid, 12) != 0) continue;
    if (!m->has_integrity || !parley__ice_msg_integrity_ok(buf, len, c->pwd)) {
      a->stats.auth_failures++;
      return;
    }
    if (!a->has_selected || local != a->sel_local || !parley__netaddr_equal(src, &a->sel_remote)) return;
    c->active = false;
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_CONSENT, .ok = m->cls == PARLEY__ICE_MSG_SUCCESS,
                                .rtt_us = now_us - c->sent_us, .seq = c->seq, .local = local, .remote = *src});
    return;
  }
  /* Unknown transaction: a late answer to a retired check. Dropped. */
}

int parley__ice_receive(parley__ice_agent *a, int local, const parley__netaddr *src, const uint8_t *buf,
                        size_t len, int64_t now_us) {
  if (!a || !src || (!buf && len) || local < 0 || local >= a->nlocal) return PARLEY_EINVAL;
  if (!parley__ice_msg_is_stun(buf, len)) return 0;
  a->now_us = now_us;
  parley__ice_msg m;
  if (parley__ice_msg_parse(buf, len, &m) != 0 || m.method != STUN_BINDING) return 1;
  if (m.cls == PARLEY__ICE_MSG_REQUEST) {
    handle_request(a, local, src, buf, len, &m, now_us);
  } else if (m.cls == PARLEY__ICE_MSG_SUCCESS || m.cls == PARLEY__ICE_MSG_ERROR) {
    handle_answer(a, local, src, buf, len, &m, now_us);
  } /* indications (keepalives) need nothing */
  choose_pair(a, now_us);
  update_state(a);
  return 1;
}

/* ---- timers ---- */

/* A queued check that would complete a nomination: the controlling side's USE-CANDIDATE check, or
 * the controlled side's triggered check on a pair the peer nominated. */
static bool completes_nomination(const parley__ice_agent *a, const pair *p) {
  return p->trig_seq && !p->cancelled && (a->role == PARLEY__ICE_CONTROLLING ? p->nominate : p->nominated);
}

/* When the paced send `pick` may go: at the Ta slot, or for a nomination PACE_FLOOR_US after the last. */
static int64_t paced_due_us(const parley__ice_agent *a, int pick) {
  if (pick == INT32_MIN) return INT64_MAX;
  if (pick >= 0 && completes_nomination(a, &a->pairs[pick])) {
    int64_t floor = a->last_check_us + PACE_FLOOR_US;
    return floor < a->next_ta_us ? floor : a->next_ta_us;
  }
  return a->next_ta_us;
}

/* The next paced send: a nomination, a srflx request, a triggered check, the best Waiting pair, or an unfreezable
 * Frozen pair (6.1.4.2). Returns a pair index, -(1 + socket) for a srflx request, or INT32_MIN. */
static int pick_paced(const parley__ice_agent *a) {
  for (int i = 0; i < a->npairs; i++)
    if (completes_nomination(a, &a->pairs[i])) return i;
  for (int i = 0; i < a->nlocal; i++)
    if (a->locals[i].stun_wanted && !a->locals[i].stun_sent) return -(1 + i);
  if (!a->remote_creds) return INT32_MIN;
  int best = -1;
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if (p->trig_seq && !p->cancelled && (best < 0 || p->trig_seq < a->pairs[best].trig_seq)) best = i;
  }
  if (best >= 0 || a->selected_now) return best >= 0 ? best : INT32_MIN;
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if (p->state == PS_WAITING && !p->cancelled && (best < 0 || p->priority > a->pairs[best].priority)) best = i;
  }
  if (best >= 0) return best;
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if (p->state != PS_FROZEN || p->cancelled) continue;
    bool blocked = false;
    for (int k = 0; k < a->npairs && !blocked; k++) {
      const pair *q = &a->pairs[k];
      blocked = (q->state == PS_WAITING || q->state == PS_IN_PROGRESS) && same_foundation(a, p, q);
    }
    if (!blocked && (best < 0 || p->priority > a->pairs[best].priority)) best = i;
  }
  return best >= 0 ? best : INT32_MIN;
}

static void run_txn_timer(parley__ice_agent *a, txn *t, int64_t now_us, void (*resend)(parley__ice_agent *, int),
                          int arg, bool *expired) {
  *expired = false;
  if (!t->active || now_us < t->next_us) return;
  if (t->retransmit && t->tx_count < a->cfg.max_check_tx) {
    t->tx_count++;
    int64_t cap = a->cfg.rto_max_us > t->rto_us ? a->cfg.rto_max_us : t->rto_us; /* never shrinks */
    t->rto_us = t->rto_us * 2 > cap ? cap : t->rto_us * 2;
    t->next_us = now_us + t->rto_us;
    resend(a, arg);
  } else {
    t->active = false;
    *expired = true;
  }
}

static void resend_pair(parley__ice_agent *a, int i) {
  a->stats.retransmits++;
  transmit_check(a, &a->pairs[i]);
}

static void resend_stun(parley__ice_agent *a, int i) { transmit_stun(a, i); }

void parley__ice_tick(parley__ice_agent *a, int64_t now_us) {
  if (!a || !a->started) return;
  a->now_us = now_us;
  bool expired;
  for (int i = 0; i < a->npairs; i++) {
    run_txn_timer(a, &a->pairs[i].t, now_us, resend_pair, i, &expired);
    if (expired) pair_failed(a, &a->pairs[i]);
  }
  for (int i = 0; i < a->nlocal; i++) {
    run_txn_timer(a, &a->locals[i].stun, now_us, resend_stun, i, &expired);
    if (expired) {
      a->locals[i].stun_done = true;
      check_gathering_done(a);
    }
  }
  choose_pair(a, now_us);
  int pick = pick_paced(a);
  if (now_us >= paced_due_us(a, pick)) {
    if (pick < 0) {
      local_sock *ls = &a->locals[-pick - 1];
      ls->stun_sent = true;
      new_txn(&ls->stun, now_us, a->cfg.rto_us);
      transmit_stun(a, -pick - 1);
    } else {
      start_check(a, &a->pairs[pick], now_us);
    }
    a->next_ta_us = now_us + a->cfg.ta_us;
    a->last_check_us = now_us;
  }
  update_state(a);
}

static bool has_valid_pair(const parley__ice_agent *a) {
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].valid && a->pairs[i].state == PS_SUCCEEDED) return true;
  return false;
}

int64_t parley__ice_next_deadline_us(const parley__ice_agent *a) {
  if (!a || !a->started) return INT64_MAX;
  int64_t d = INT64_MAX;
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].t.active && a->pairs[i].t.next_us < d) d = a->pairs[i].t.next_us;
  for (int i = 0; i < a->nlocal; i++)
    if (a->locals[i].stun.active && a->locals[i].stun.next_us < d) d = a->locals[i].stun.next_us;
  int64_t paced = paced_due_us(a, pick_paced(a));
  if (paced < d) d = paced;
  /* The nomination timer runs only while a valid pair waits for it: after that pair failed (say its
   * nomination check was never answered) a stale first_valid_us would be a deadline in the past that
   * no tick can clear, and the owner's loop would spin. */
  if (a->role == PARLEY__ICE_CONTROLLING && a->have_first_valid && !a->selected_now && !a->nominating &&
      has_valid_pair(a)) {
    int64_t n = a->first_valid_us + a->cfg.nominate_after_us;
    if (n < d) d = n;
  }
  return d;
}

/* ---- media gate, getters ---- */

bool parley__ice_accept_media(const parley__ice_agent *a, int local, const parley__netaddr *src) {
  return a && src && a->has_selected && local == a->sel_local && parley__netaddr_equal(src, &a->sel_remote);
}

int parley__ice_selected_pair(const parley__ice_agent *a, int *local, parley__netaddr *remote) {
  if (!a || !a->has_selected) return PARLEY_ENOTFOUND;
  if (local) *local = a->sel_local;
  if (remote) *remote = a->sel_remote;
  return 0;
}

parley_ice_state parley__ice_get_state(const parley__ice_agent *a) { return a ? a->state : PARLEY_ICE_NEW; }
parley__ice_role parley__ice_get_role(const parley__ice_agent *a) { return a ? a->role : PARLEY__ICE_CONTROLLED; }
uint64_t parley__ice_tie_breaker(const parley__ice_agent *a) { return a ? a->tie_breaker : 0; }

void parley__ice_get_stats(const parley__ice_agent *a, parley__ice_stats *out) {
  if (!a || !out) return;
  *out = a->stats;
  out->error_replies_refused = a->error_budget.refused;
}

/* ---- consent, restart ---- */

int parley__ice_send_consent_check(parley__ice_agent *a, int64_t now_us) {
  if (!a || !a->has_selected) return PARLEY_ESTATE;
  a->now_us = now_us;
  const char *rufrag = a->remote_creds ? a->rufrag : a->prev_remote_creds ? a->prev_rufrag : NULL;
  const char *rpwd = a->remote_creds ? a->rpwd : a->prev_rpwd;
  if (!rufrag) return PARLEY_ESTATE;
  consent_txn *c = &a->consent[a->consent_seq % MAX_CONSENT];
  txn t;
  new_txn(&t, now_us, 0);
  memcpy(c->id, t.id, 12);
  c->active = true;
  c->seq = ++a->consent_seq;
  c->sent_us = now_us;
  strcpy(c->pwd, rpwd);
  pair probe = {.local = a->sel_local};
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  int n = build_check(a, &probe, rufrag, rpwd, a->role == PARLEY__ICE_CONTROLLING, false, c->id, buf, sizeof buf);
  send_to(a, a->sel_local, &a->sel_remote, buf, n);
  return (int)c->seq;
}

int parley__ice_restart(parley__ice_agent *a, int64_t now_us) {
  if (!a) return PARLEY_EINVAL;
  char old_ufrag[sizeof a->ufrag], old_pwd[sizeof a->pwd];
  strcpy(old_ufrag, a->ufrag);
  strcpy(old_pwd, a->pwd);
  if (new_credentials(a) != 0) return PARLEY_ECRYPTO;
  a->now_us = now_us;
  if (a->has_selected) {
    strcpy(a->prev_ufrag, old_ufrag);
    strcpy(a->prev_pwd, old_pwd);
    a->prev_valid = true;
    if (a->remote_creds) {
      strcpy(a->prev_rufrag, a->rufrag);
      strcpy(a->prev_rpwd, a->rpwd);
      a->prev_remote_creds = true;
    }
  }
  a->remote_creds = false;
  a->remote_eoc = false;
  a->nremote = 0;
  a->npairs = 0;
  a->trig_counter = 0;
  a->have_first_valid = false;
  a->nominating = false;
  a->usable_now = false;
  a->selected_now = false;
  a->next_ta_us = now_us;
  if (a->started) {
    a->state = PARLEY_ICE_NEW; /* forces the CHECKING event */
    update_state(a);
  }
  return 0;
}
