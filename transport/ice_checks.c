/* ice_checks.c: the ICE agent's checks on the wire (see ice_agent.h): builds, sends and retransmits
 * connectivity checks and srflx requests, answers requests (authentication, rationed error replies,
 * role conflicts, peer-reflexive candidates, triggered checks), takes answers (checks, srflx
 * gathering, consent), and runs the timers: parley__ice_receive, parley__ice_tick and
 * parley__ice_next_deadline_us. One thread, the agent's owner; no allocation.
 */
#include "transport/ice_agent.h"

#include <openssl/rand.h>
#include <stdio.h>

#include "parley/parley.h"

void parley__ice_new_txn(txn *t, int64_t now_us, int64_t rto_us) {
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

int parley__ice_build_check(const parley__ice_agent *a, const pair *p, const char *rufrag, const char *rpwd,
                       bool controlling, bool use_cand, const uint8_t id[12], uint8_t *out, size_t cap) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_REQUEST;
  m.method = PARLEY__ICE_BINDING;
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
  int n = parley__ice_build_check(a, p, a->rufrag, a->rpwd, p->sent_controlling, p->sent_use_cand, p->t.id, buf, sizeof buf);
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
  parley__ice_new_txn(&p->t, now_us, rto);
  a->stats.checks_sent++;
  transmit_check(a, p);
}

static void transmit_stun(parley__ice_agent *a, int local) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_REQUEST;
  m.method = PARLEY__ICE_BINDING;
  memcpy(m.txid, a->locals[local].stun.id, 12);
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  send_to(a, local, &a->cfg.stun_server, buf, parley__ice_msg_build(&m, NULL, buf, sizeof buf));
}

static void respond_unknown(parley__ice_agent *a, int local, const parley__netaddr *dst, const parley__ice_msg *req,
                            const char *pwd) {
  parley__ice_msg m;
  memset(&m, 0, sizeof m);
  m.cls = PARLEY__ICE_MSG_ERROR;
  m.method = PARLEY__ICE_BINDING;
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
  m.method = PARLEY__ICE_BINDING;
  memcpy(m.txid, id, 12);
  m.error_code = error_code;
  m.has_mapped = !error_code;
  m.mapped = *dst;
  uint8_t buf[PARLEY__ICE_MSG_MAX];
  send_to(a, local, dst, buf, parley__ice_msg_build(&m, pwd, buf, sizeof buf));
}

void parley__ice_check_gathering_done(parley__ice_agent *a) {
  if (a->gathering_done || a->relays_pending > 0) return;
  for (int i = 0; i < a->nlocal; i++)
    if (a->locals[i].stun_wanted && !a->locals[i].stun_done) return;
  a->gathering_done = true;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_GATHERING_DONE});
}

/* Foundation (5.1.1.3): equal for the same type, base IP and server. We name it by type and the serial
 * of the first socket registered with that base IP, so it is short, stable and made of ice-chars. */
void parley__ice_make_foundation(const parley__ice_agent *a, int local, char type_letter, char *out) {
  int first = a->locals[local].serial;
  for (int i = 0; i < a->nlocal; i++)
    if (!a->locals[i].gone && a->locals[i].serial < first &&
        parley__netaddr_same_ip(&a->locals[i].host.addr, &a->locals[local].host.addr))
      first = a->locals[i].serial;
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
    parley__ice_make_foundation(a, local, 'S', c->foundation);
    c->component = 1;
    c->type = PARLEY__ICE_SRFLX;
    c->priority = parley__ice_candidate_priority(PARLEY__ICE_SRFLX, ls->local_pref, 1);
    c->addr = m->mapped;
    c->related = ls->host.addr;
    c->local = local;
    emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = c, .local = local});
  }
  parley__ice_check_gathering_done(a);
}

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
    parley__ice_switch_role(a);
  } else if (current && a->role == PARLEY__ICE_CONTROLLED && m->has_controlled) {
    if (a->tie_breaker >= m->tie_breaker) {
      parley__ice_switch_role(a);
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
  parley__ice_on_peer_request(a, local, r, m->use_candidate);
  int pi = parley__ice_form_pair(a, local, r);
  if (pi < 0) return;
  pair *p = &a->pairs[pi];
  p->peer_checked = true; /* the peer proved our password from there: its media may come that way */
  bool nominate_now = m->use_candidate && a->role == PARLEY__ICE_CONTROLLED;
  if (nominate_now) p->nominated = true;
  /* 7.3.1.4 triggered checks; 7.3.1.5 nomination on the controlled side. */
  if (p->state == PS_SUCCEEDED && p->valid) {
    if (nominate_now && !a->selected_now) parley__ice_select_pair(a, p);
  } else if (!p->cancelled && (p->state != PS_IN_PROGRESS || !p->sent_triggered)) {
    /* An In-Progress ordinary check is superseded by a triggered one (its answer still counts); a
     * running triggered check is left alone so a peer's retransmissions cannot churn it. */
    parley__ice_enqueue_triggered(a, p);
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
    parley__ice_pair_failed(a, p);
    return;
  }
  if (m->cls == PARLEY__ICE_MSG_ERROR) {
    if (old && p->t.active) return; /* the check that replaced it decides */
    if (m->error_code == 487) {
      /* 7.2.5.1: switch role only if we still hold the role the request claimed. */
      if (sent_controlling == (a->role == PARLEY__ICE_CONTROLLING)) parley__ice_switch_role(a);
      else a->stats.role_conflicts++;
      parley__ice_enqueue_triggered(a, p);
    } else {
      parley__ice_pair_failed(a, p);
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
    parley__ice_select_pair(a, p);
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
  for (int i = 0; i < PARLEY__ICE_MAX_CONSENT; i++) {
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
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (!parley__ice_msg_is_stun(buf, len)) return 0;
  a->now_us = now_us;
  parley__ice_msg m;
  if (parley__ice_msg_parse(buf, len, &m) != 0 || m.method != PARLEY__ICE_BINDING) return 1;
  if (m.cls == PARLEY__ICE_MSG_REQUEST) {
    handle_request(a, local, src, buf, len, &m, now_us);
  } else if (m.cls == PARLEY__ICE_MSG_SUCCESS || m.cls == PARLEY__ICE_MSG_ERROR) {
    handle_answer(a, local, src, buf, len, &m, now_us);
  } /* indications (keepalives) need nothing */
  parley__ice_choose_pair(a, now_us);
  parley__ice_update_state(a);
  return 1;
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
  if (!a) return;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (!a->started) return;
  a->now_us = now_us;
  bool expired;
  for (int i = 0; i < a->npairs; i++) {
    run_txn_timer(a, &a->pairs[i].t, now_us, resend_pair, i, &expired);
    if (expired) parley__ice_pair_failed(a, &a->pairs[i]);
  }
  for (int i = 0; i < a->nlocal; i++) {
    run_txn_timer(a, &a->locals[i].stun, now_us, resend_stun, i, &expired);
    if (expired) {
      a->locals[i].stun_done = true;
      parley__ice_check_gathering_done(a);
    }
  }
  parley__ice_choose_pair(a, now_us);
  int pick = parley__ice_pick_paced(a);
  if (now_us >= parley__ice_paced_due_us(a, pick)) {
    if (pick < 0) {
      local_sock *ls = &a->locals[-pick - 1];
      ls->stun_sent = true;
      parley__ice_new_txn(&ls->stun, now_us, a->cfg.rto_us);
      transmit_stun(a, -pick - 1);
    } else {
      start_check(a, &a->pairs[pick], now_us);
    }
    a->next_ta_us = now_us + a->cfg.ta_us;
    a->last_check_us = now_us;
  }
  parley__ice_update_state(a);
}

int64_t parley__ice_next_deadline_us(const parley__ice_agent *a) {
  if (!a || !a->started) return INT64_MAX;
  int64_t d = INT64_MAX;
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].t.active && a->pairs[i].t.next_us < d) d = a->pairs[i].t.next_us;
  for (int i = 0; i < a->nlocal; i++)
    if (a->locals[i].stun.active && a->locals[i].stun.next_us < d) d = a->locals[i].stun.next_us;
  int64_t paced = parley__ice_paced_due_us(a, parley__ice_pick_paced(a));
  if (paced < d) d = paced;
  /* The nomination timer runs only while a valid pair waits for it: after that pair failed (say its
   * nomination check was never answered) a stale first_valid_us would be a deadline in the past that
   * no tick can clear, and the owner's loop would spin. */
  if (a->role == PARLEY__ICE_CONTROLLING && a->have_first_valid && !a->selected_now && !a->nominating &&
      parley__ice_has_valid_pair(a)) {
    int64_t n = a->first_valid_us + a->cfg.nominate_after_us;
    if (n < d) d = n;
  }
  return d;
}
