/* ice_mobility.c: the ICE agent across network changes mid-call (see ice.h, "Network changes"): local
 * sockets added after start and removed when their address went away, the checklist opened again
 * after selection, and a peer that moved (checks from an address learned after the nomination).
 * Owns nothing of its own: it edits the agent's locals, pairs and selection (ice_agent.h). One thread,
 * the agent's owner; no allocation, no clock, no sockets.
 *
 * Why the checklist reopens rather than restarting ICE: both ends keep their credentials, so a check
 * from a new address authenticates at once and the peer answers it (RFC 8445 7.3: any address may
 * send a check). The side that moved checks its new pairs; the other learns the address as
 * peer-reflexive (or from the trickled candidate), sees that it came after the nomination, and
 * checks back. The controlling side nominates the new pair; the controlled side follows a nomination
 * of another pair. One round trip and a nomination, no signalling. */
#include "transport/ice_agent.h"

#include <stdint.h>

#include "parley/parley.h"

bool parley__ice_has_live_local(const parley__ice_agent *a) {
  for (int i = 0; i < a->nlocal; i++)
    if (!a->locals[i].gone) return true;
  return false;
}

void parley__ice_reopen(parley__ice_agent *a) {
  if (!a->selected_now) return;
  a->selected_now = false;
  a->nominating = false;
  for (int i = 0; i < a->npairs; i++) {
    pair *q = &a->pairs[i];
    q->cancelled = false;
    q->nominate = q->nominated = false; /* a nomination from before the change no longer holds */
    if (q->t.active) q->t.retransmit = true;
  }
}

static bool is_selected(const parley__ice_agent *a, int local, const parley__netaddr *remote) {
  return a->has_selected && a->sel_local == local && parley__netaddr_equal(&a->sel_remote, remote);
}

void parley__ice_on_peer_request(parley__ice_agent *a, int local, int r, bool use_candidate) {
  if (!a->selected_now) return;
  /* A peer that moved checks from a new host address (learned: peer-reflexive). A late srflx or relay
   * candidate is slow gathering (a browser's TURN allocation), not a move. */
  parley__ice_cand_type t = a->remotes[r].type;
  bool moved = r >= a->settled_remotes && (t == PARLEY__ICE_HOST || t == PARLEY__ICE_PRFLX);
  bool renominated = use_candidate && a->role == PARLEY__ICE_CONTROLLED && !is_selected(a, local, &a->remotes[r].addr);
  if (!moved && !renominated) return;
  if (moved) {
    /* The peer checks from a new address, so its old one is likely gone: the pair in use must prove
     * itself again (it keeps carrying media until another pair is valid; media from it is still
     * accepted, peer_checked). */
    for (int i = 0; i < a->npairs; i++) {
      pair *p = &a->pairs[i];
      if (!is_selected(a, p->local, &a->remotes[p->remote].addr)) continue;
      p->valid = false;
      p->state = PS_FAILED;
    }
  }
  parley__ice_reopen(a);
}

int parley__ice_add_local_live(parley__ice_agent *a, const parley__netaddr *bound, int64_t now_us) {
  if (!a || !bound || (bound->family != PARLEY__NETADDR_V4 && bound->family != PARLEY__NETADDR_V6) ||
      bound->port == 0)
    return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  if (!a->started) return PARLEY_ESTATE;
  int i = parley__ice_free_local_slot(a);
  if (i < 0) return i;
  a->now_us = now_us;
  parley__ice_init_host(a, i, bound);
  if (a->locals[i].stun_wanted) a->gathering_done = false; /* end-of-candidates again after its srflx */
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_LOCAL_CANDIDATE, .candidate = &a->locals[i].host, .local = i});
  parley__ice_check_new_local(a, i);
  parley__ice_update_state(a);
  return i;
}

void parley__ice_check_new_local(parley__ice_agent *a, int i) {
  parley__ice_reopen(a);
  /* Newest remote candidates first (triggered checks go in FIFO order): after a move the peer's
   * latest addresses are the likeliest to answer, its old ones may be gone. */
  for (int r = a->nremote - 1; r >= 0; r--) {
    int pi = parley__ice_form_pair(a, i, r);
    if (pi >= 0) parley__ice_enqueue_triggered(a, &a->pairs[pi]);
  }
}

int parley__ice_free_local_slot(parley__ice_agent *a) {
  for (int k = 0; k < a->nlocal; k++)
    if (a->locals[k].gone) return k;
  return a->nlocal < PARLEY__ICE_MAX_LOCAL ? a->nlocal++ : PARLEY_EFULL;
}

/* Queues a triggered check on p ahead of those already queued. */
static void enqueue_first(parley__ice_agent *a, pair *p) {
  uint32_t lowest = UINT32_MAX;
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].trig_seq && a->pairs[i].trig_seq < lowest) lowest = a->pairs[i].trig_seq;
  if (lowest == UINT32_MAX || p->trig_seq == lowest) {
    parley__ice_enqueue_triggered(a, p);
    return;
  }
  if (lowest == 1) { /* no number below the first: move the queue up one */
    for (int i = 0; i < a->npairs; i++)
      if (a->pairs[i].trig_seq) a->pairs[i].trig_seq++;
    a->trig_counter++;
    lowest = 2;
  }
  if (!p->t.active) p->state = PS_WAITING;
  p->trig_seq = lowest - 1;
}

void parley__ice_on_late_remote(parley__ice_agent *a, int r) {
  if (!a->have_first_valid) return; /* still the first checks: the pacer's priority order is right */
  for (int i = 0; i < a->npairs; i++) {
    pair *p = &a->pairs[i];
    if (p->remote == r && !p->cancelled && p->state != PS_FAILED && p->state != PS_SUCCEEDED) enqueue_first(a, p);
  }
}

int parley__ice_remove_local(parley__ice_agent *a, int local, int64_t now_us) {
  if (!a || local < 0 || local >= a->nlocal || a->locals[local].gone) return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&a->guard, __func__);
  a->now_us = now_us;
  local_sock *ls = &a->locals[local];
  ls->gone = true;
  ls->stun_wanted = ls->has_srflx = false;
  ls->stun.active = false;
  int kept = 0;
  for (int i = 0; i < a->npairs; i++) {
    if (a->pairs[i].local != local) a->pairs[kept++] = a->pairs[i];
    else if (a->pairs[i].nominate) a->nominating = false;
  }
  a->npairs = kept;
  if (a->has_selected && a->sel_local == local) {
    a->has_selected = a->usable_now = false;
    parley__ice_reopen(a); /* before selected_now goes: it un-cancels the pairs left */
    a->selected_now = false;
  }
  if (a->started) {
    parley__ice_choose_pair(a, now_us); /* another valid pair carries media at once, if there is one */
    parley__ice_update_state(a);
    parley__ice_check_gathering_done(a);
  }
  return 0;
}
