/* ice_checklist.c: the ICE agent's checklist (see ice_agent.h): forms pairs and keeps their states
 * (Frozen/Waiting/In-Progress/Succeeded/Failed, the triggered-check FIFO), decides which valid pair
 * carries media and which one the controlling side nominates, which check the pacer sends next, and
 * the agent's state (NEW, CHECKING, CONNECTED, COMPLETED, FAILED). Touches no wire: the checks are
 * ice_checks.c's. One thread, the agent's owner; no allocation.
 */
#include "transport/ice_agent.h"

#include <stdint.h>

#include "parley/parley.h"

static void set_state(parley__ice_agent *a, parley_ice_state s) {
  if (a->state == s) return;
  a->state = s;
  emit(a, (parley__ice_event){.kind = PARLEY__ICE_EV_STATE});
}

void parley__ice_update_state(parley__ice_agent *a) {
  if (!a->started) return;
  bool busy = false, all_failed = (a->npairs > 0 || a->remote_eoc) && parley__ice_has_live_local(a);
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

void parley__ice_enqueue_triggered(parley__ice_agent *a, pair *p) {
  if (!p->t.active) p->state = PS_WAITING;
  if (!p->trig_seq) p->trig_seq = ++a->trig_counter;
}

static int find_pair(const parley__ice_agent *a, int local, int remote) {
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].local == local && a->pairs[i].remote == remote) return i;
  return -1;
}

int parley__ice_form_pair(parley__ice_agent *a, int local, int remote) {
  if (a->locals[local].gone || a->locals[local].host.addr.family != a->remotes[remote].addr.family) return -1;
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

void parley__ice_switch_role(parley__ice_agent *a) {
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
void parley__ice_select_pair(parley__ice_agent *a, pair *p) {
  use_pair(a, p);
  a->selected_now = true;
  a->settled_remotes = a->nremote;
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

void parley__ice_pair_failed(parley__ice_agent *a, pair *p) {
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

/* Both roles move media to the best valid pair once no better pair is pending, which is the pair the
 * controlling side then nominates: media and CONNECTED need one round trip, not the nomination's
 * second one. The controlling side also nominates it, or, nominate_after_us after the first success,
 * the best valid pair even with better ones pending. */
void parley__ice_choose_pair(parley__ice_agent *a, int64_t now_us) {
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
  parley__ice_enqueue_triggered(a, best);
}

/* A queued check that would complete a nomination: the controlling side's USE-CANDIDATE check, or
 * the controlled side's triggered check on a pair the peer nominated. */
static bool completes_nomination(const parley__ice_agent *a, const pair *p) {
  return p->trig_seq && !p->cancelled && (a->role == PARLEY__ICE_CONTROLLING ? p->nominate : p->nominated);
}

/* When the paced send `pick` may go: at the Ta slot, or for a nomination PARLEY__ICE_PACE_FLOOR_US after the last. */
int64_t parley__ice_paced_due_us(const parley__ice_agent *a, int pick) {
  if (pick == INT32_MIN) return INT64_MAX;
  if (pick >= 0 && completes_nomination(a, &a->pairs[pick])) {
    int64_t floor = a->last_check_us + PARLEY__ICE_PACE_FLOOR_US;
    return floor < a->next_ta_us ? floor : a->next_ta_us;
  }
  return a->next_ta_us;
}

/* The next paced send: a nomination, a srflx request, a triggered check, the best Waiting pair, or an unfreezable
 * Frozen pair (6.1.4.2). Returns a pair index, -(1 + socket) for a srflx request, or INT32_MIN. */
int parley__ice_pick_paced(const parley__ice_agent *a) {
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

bool parley__ice_has_valid_pair(const parley__ice_agent *a) {
  for (int i = 0; i < a->npairs; i++)
    if (a->pairs[i].valid && a->pairs[i].state == PS_SUCCEEDED) return true;
  return false;
}
