/* ice.c: the ICE agent's public face (see ice.h): its life, local and remote candidates, credentials,
 * getters, consent checks and restart. The checklist is ice_checklist.c, the checks on the wire and
 * the timers ice_checks.c; ice_agent.h holds the insides they share. The agent owns its candidates,
 * pairs, transactions and credentials, all in fixed arrays inside it (allocated once in
 * parley__ice_new). One thread (network/control); no clock reads, no sockets: time comes in as
 * now_us, bytes go out through cfg.send.
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
 *    nominated) does not wait for the next Ta slot: it leaves PARLEY__ICE_PACE_FLOOR_US after the previous check,
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
#include "transport/ice_agent.h"

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

/* ---- credentials ---- */

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
  a->guard.lock = cfg->guard;
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
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (a->started) return PARLEY_ESTATE;
  if (a->nlocal >= PARLEY__ICE_MAX_LOCAL) return PARLEY_EFULL;
  int i = a->nlocal++;
  parley__ice_init_host(a, i, bound);
  return i;
}

void parley__ice_init_host(parley__ice_agent *a, int i, const parley__netaddr *bound) {
  local_sock *ls = &a->locals[i];
  memset(ls, 0, sizeof *ls);
  ls->serial = a->serials++;
  /* RFC 8421-style: IPv6 above IPv4, then registration order. */
  ls->local_pref = (uint16_t)((bound->family == PARLEY__NETADDR_V6 ? 65535 : 32767) - i);
  parley__ice_candidate *c = &ls->host;
  c->addr = *bound; /* make_foundation compares base addresses */
  parley__ice_make_foundation(a, i, 'H', c->foundation);
  c->component = 1;
  c->type = PARLEY__ICE_HOST;
  c->priority = parley__ice_candidate_priority(PARLEY__ICE_HOST, ls->local_pref, 1);
  c->local = i;
  ls->stun_wanted = a->cfg.has_stun_server && a->cfg.stun_server.family == bound->family;
}

int parley__ice_add_local_relay(parley__ice_agent *a, const parley__netaddr *relayed, const parley__netaddr *mapped,
                                int64_t now_us) {
  if (!a || !relayed || !mapped || (relayed->family != PARLEY__NETADDR_V4 && relayed->family != PARLEY__NETADDR_V6) ||
      relayed->port == 0)
    return PARLEY_EINVAL;
  int i = parley__ice_free_local_slot(a);
  if (i < 0) return i;
  local_sock *ls = &a->locals[i];
  memset(ls, 0, sizeof *ls);
  ls->serial = a->serials++;
  ls->local_pref = (uint16_t)((relayed->family == PARLEY__NETADDR_V6 ? 65535 : 32767) - i);
  parley__ice_candidate *c = &ls->host;
  c->addr = *relayed; /* a relayed candidate is its own base (RFC 8445 5.1.1.2) */
  c->related = *mapped;
  parley__ice_make_foundation(a, i, 'R', c->foundation);
  c->component = 1;
  c->type = PARLEY__ICE_RELAY;
  c->priority = parley__ice_candidate_priority(PARLEY__ICE_RELAY, ls->local_pref, 1);
  c->local = i;
  if (a->relays_pending > 0) a->relays_pending--;
  if (a->started) { /* trickled and paired at once */
    a->now_us = now_us;
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = c, .local = i});
    if (a->have_first_valid) /* mid-call: a relay allocated again after a network change */
      parley__ice_check_new_local(a, i);
    else
      for (int r = 0; r < a->nremote; r++) (void)parley__ice_form_pair(a, i, r);
    parley__ice_update_state(a);
    parley__ice_check_gathering_done(a);
  }
  return i;
}

void parley__ice_expect_relays(parley__ice_agent *a, int count) {
  if (a && count >= 0 && !a->gathering_done) a->relays_pending = count;
}

void parley__ice_relay_given_up(parley__ice_agent *a, int64_t now_us) {
  if (!a || a->relays_pending <= 0) return;
  a->relays_pending--;
  a->now_us = now_us;
  if (a->started) parley__ice_check_gathering_done(a);
}

int parley__ice_start(parley__ice_agent *a, int64_t now_us) {
  if (!a) return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (a->started || (a->nlocal == 0 && a->relays_pending == 0)) return PARLEY_ESTATE; /* relays: may come later */
  a->now_us = now_us;
  a->started = true;
  a->next_ta_us = now_us;
  for (int i = 0; i < a->nlocal; i++)
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = &a->locals[i].host, .local = i});
  /* Remote candidates may have arrived before start: pair them now. */
  for (int r = 0; r < a->nremote; r++)
    for (int l = 0; l < a->nlocal; l++) (void)parley__ice_form_pair(a, l, r);
  parley__ice_update_state(a);
  parley__ice_check_gathering_done(a);
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
    if (a->locals[i].gone) continue;
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
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (a->remote_creds) return strcmp(ufrag, a->rufrag) == 0 && strcmp(pwd, a->rpwd) == 0 ? 0 : PARLEY_ESTATE;
  strcpy(a->rufrag, ufrag);
  strcpy(a->rpwd, pwd);
  a->remote_creds = true;
  parley__ice_update_state(a);
  return 0;
}

int parley__ice_add_remote_candidate(parley__ice_agent *a, const parley__ice_candidate *c, int64_t now_us) {
  if (!a || !c || c->component != 1 || c->priority == 0 ||
      (c->addr.family != PARLEY__NETADDR_V4 && c->addr.family != PARLEY__NETADDR_V6) || c->addr.port == 0 ||
      c->foundation[0] == '\0' || memchr(c->foundation, '\0', sizeof c->foundation) == NULL)
    return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
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
  if (a->started) {
    for (int l = 0; l < a->nlocal; l++) (void)parley__ice_form_pair(a, l, r);
    parley__ice_on_late_remote(a, r);
  }
  parley__ice_update_state(a);
  return 0;
}

void parley__ice_remote_end_of_candidates(parley__ice_agent *a, int64_t now_us) {
  if (!a) return;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  a->now_us = now_us;
  a->remote_eoc = true;
  parley__ice_update_state(a);
}

/* ---- media gate, getters ---- */

bool parley__ice_accept_media(const parley__ice_agent *a, int local, const parley__netaddr *src) {
  if (!a || !src || !a->has_selected) return false;
  if (local == a->sel_local && parley__netaddr_equal(src, &a->sel_remote)) return true;
  /* RFC 8445 12.2: data may arrive on any valid pair, not only the selected one. A controlling browser
   * sends on whichever pair it likes best (Chromium: its loopback and its LAN socket both reach ours;
   * it nominated one and sends on the other, a pair whose checks only it ran, ours having stopped at
   * the nomination). So: a pair we validated, or one the peer checked with our password. */
  for (int i = 0; i < a->npairs; i++) {
    const pair *p = &a->pairs[i];
    if ((p->valid || p->peer_checked) && p->local == local && parley__netaddr_equal(src, &a->remotes[p->remote].addr))
      return true;
  }
  return false;
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
  if (!a) return PARLEY_ESTATE;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (!a->has_selected) return PARLEY_ESTATE;
  a->now_us = now_us;
  const char *rufrag = a->remote_creds ? a->rufrag : a->prev_remote_creds ? a->prev_rufrag : NULL;
  const char *rpwd = a->remote_creds ? a->rpwd : a->prev_rpwd;
  if (!rufrag) return PARLEY_ESTATE;
  consent_txn *c = &a->consent[a->consent_seq % PARLEY__ICE_MAX_CONSENT];
  txn t;
  parley__ice_new_txn(&t, now_us, 0);
  memcpy(c->id, t.id, 12);
  c->active = true;
  c->seq = ++a->consent_seq;
  c->sent_us = now_us;
  strcpy(c->pwd, rpwd);
  pair probe = {.local = a->sel_local};
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  int n = parley__ice_build_check(a, &probe, rufrag, rpwd, a->role == PARLEY__ICE_CONTROLLING, false, c->id, buf, sizeof buf);
  send_to(a, a->sel_local, &a->sel_remote, buf, n);
  return (int)c->seq;
}

int parley__ice_restart(parley__ice_agent *a, int64_t now_us) {
  if (!a) return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
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
  for (int i = 0; i < a->nlocal; i++) { /* a new network may map us elsewhere: srflx again */
    local_sock *ls = &a->locals[i];
    if (!ls->stun_wanted) continue;
    ls->stun_sent = ls->stun_done = ls->has_srflx = ls->stun.active = false;
    a->gathering_done = false;
  }
  if (a->started) {
    a->state = PARLEY_ICE_NEW; /* forces the CHECKING event */
    parley__ice_update_state(a);
  }
  return 0;
}
