/* call_handover.c: a call across a change of the host's addresses (Wi-Fi to cellular mid-call). Owns the
 * call's host sockets' coming and going: it gathers again (sockets on addresses that went away close,
 * new addresses get sockets the agent trickles and checks, transport/ice_mobility.c), and, when the
 * selected pair's address went and the peer's media has not come back on a new pair within
 * fallback_us (a peer whose checklist stays closed after nomination), restarts
 * ICE itself and asks the app for an offer (NEGOTIATION_NEEDED).
 *
 * Threads: the network thread (netwatch, the fallback timer) and app threads (parley_engine_network_
 * changed, parley_call_restart_ice), always under eng->lock. Never the audio thread.
 *
 * Relayed candidates (TURN): an allocation made from a socket that closed is lost with it, so after the
 * host sockets changed parley__call_regather has call_turn.c allocate again from a live socket (also in
 * relay-only calls, whose sockets are only the relays' bases) and trickle the new relayed candidate. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "engine/call_internal.h"
#include "transport/ice_gather.h"

/* How long the peer's media may take to come back on a new pair before the fallback restart: a peer
 * that follows trickled candidates answers in a round trip or two, plus the checks' pacing (see the
 * both-sides rows of parley-bench handover), so 600 ms plus four round trips (RTCP's measure), at most
 * 1 s, and 1 s before the first round trip is known. */
#define PARLEY__CALL_HANDOVER_FALLBACK_MIN_US 600000
#define PARLEY__CALL_HANDOVER_FALLBACK_MAX_US 1000000
#define PARLEY__CALL_HANDOVER_RETRY_US 100000     /* an offer/answer in flight: look again after it */

/* The host addresses the call may use: loopback ones only with loopback_candidates (tests, one host). */
static int usable_addrs(parley_engine *e, parley__netaddr *out, int max) {
  parley__ice_gather_opts go = {.ipv4 = true, .ipv6 = e->cfg.ipv6, .loopback = e->cfg.loopback_candidates};
  int n = parley__ice_gather_host_addrs(&go, out, (size_t)max);
  if (n < 0) return n;
  int kept = 0;
  for (int i = 0; i < n; i++)
    if (e->cfg.loopback_candidates == parley__netaddr_is_loopback(&out[i])) out[kept++] = out[i];
  return kept;
}

static bool has_socket_on(const parley_call *c, const parley__netaddr *ip) {
  for (int i = 0; i < c->nsocks; i++)
    if (c->socks[i].fd >= 0 && parley__netaddr_same_ip(&c->socks[i].local, ip)) return true;
  return false;
}

static int open_socks_on(parley_call *c, const parley__netaddr *addrs, int n, bool live, int64_t now) {
  int added = 0;
  for (int i = 0; i < n; i++) {
    if (has_socket_on(c, &addrs[i])) continue;
    parley__udp s;
    if (parley__udp_open(&s, &addrs[i]) != 0) continue; /* e.g. IPv6 still tentative: its DAD's end is a change too */
    if (c->eng->relay_only) { /* only the TURN clients' bases, not candidates: kept out of the agent */
      int k = 0;
      while (k < c->nsocks && c->socks[k].fd >= 0) k++; /* a closed one's slot, else a new one */
      if (k < PARLEY__CALL_MAX_SOCKS) {
        c->socks[k] = s;
        if (k == c->nsocks) c->nsocks++;
        added++;
      } else {
        parley__udp_close(&s);
      }
      continue;
    }
    int idx = live ? parley__ice_add_local_live(c->ice, &s.local, now) : parley__ice_add_local(c->ice, &s.local);
    if (idx < 0 || idx >= PARLEY__CALL_MAX_SOCKS) {
      if (idx >= 0) (void)parley__ice_remove_local(c->ice, idx, now);
      parley__udp_close(&s);
      continue;
    }
    c->socks[idx] = s;
    if (idx >= c->nsocks) c->nsocks = idx + 1;
    added++;
  }
  return added;
}

int parley__call_open_socks(parley_call *c, bool live, int64_t now) {
  parley__netaddr addrs[PARLEY__CALL_MAX_SOCKS * 2];
  int n = usable_addrs(c->eng, addrs, (int)(sizeof addrs / sizeof addrs[0]));
  return n < 0 ? n : open_socks_on(c, addrs, n, live, now);
}

int parley__call_regather(parley_call *c, int64_t now, bool *lost_selected) {
  if (lost_selected) *lost_selected = false;
  if (!c->ice) return 0;
  parley__netaddr addrs[PARLEY__CALL_MAX_SOCKS * 2];
  int n = usable_addrs(c->eng, addrs, (int)(sizeof addrs / sizeof addrs[0]));
  if (n < 0) return 0; /* getifaddrs failed: keep what we have */
  int sel = -1, changed = 0;
  parley__netaddr sel_remote;
  if (parley__ice_selected_pair(c->ice, &sel, &sel_remote) != 0) sel = -1;
  for (int i = 0; i < c->nsocks; i++) {
    if (c->socks[i].fd < 0) continue;
    bool there = false;
    for (int k = 0; k < n && !there; k++) there = parley__netaddr_same_ip(&addrs[k], &c->socks[i].local);
    if (there) continue;
    if (!c->eng->relay_only) { /* relay-only: a relay's base, not the agent's (the relay is, below) */
      if (i == sel) {
        /* The monitor probes at once and, if the gap lasts, names the cause (liveness.h). */
        (void)parley__ice_liveness_on_socket_error(&c->il, i, &sel_remote, EADDRNOTAVAIL, now);
        if (lost_selected) *lost_selected = true;
      }
      (void)parley__ice_remove_local(c->ice, i, now);
    }
    parley__udp_close(&c->socks[i]);
    changed++;
  }
  changed += open_socks_on(c, addrs, n, true, now);
  return changed + parley__call_turn_regather(c, now, sel, &sel_remote, lost_selected);
}

static int64_t fallback_us(const parley_call *c) {
  if (!(c->rtt_ms >= 0)) return PARLEY__CALL_HANDOVER_FALLBACK_MAX_US;
  int64_t us = PARLEY__CALL_HANDOVER_FALLBACK_MIN_US + (int64_t)(4000.0 * c->rtt_ms);
  return us < PARLEY__CALL_HANDOVER_FALLBACK_MAX_US ? us : PARLEY__CALL_HANDOVER_FALLBACK_MAX_US;
}

void parley__call_network_changed(parley_call *c, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  if (!c->ice || c->hungup) return;
  bool lost = false;
  if (parley__call_regather(c, now, &lost) == 0) return;
  if (lost && !c->handover_due_us) {
    c->handover_due_us = now + fallback_us(c);
    c->handover_pkts = c->pkts_recv;
  }
  parley__call_drain_events(c);
  parley__engine_wake(c->eng);
}

/* Media is back: a selected pair, and (once the call started) the peer's packets on it. */
static bool resumed(const parley_call *c) {
  if (parley__ice_selected_pair(c->ice, NULL, NULL) != 0) return false;
  return !c->started || c->pkts_recv > c->handover_pkts;
}

int64_t parley__call_handover_deadline(const parley_call *c) {
  return c->handover_due_us ? c->handover_due_us : INT64_MAX;
}

void parley__call_handover_service(parley_call *c, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  if (!c->handover_due_us || !c->ice) return;
  if (resumed(c)) {
    c->handover_due_us = 0;
    return;
  }
  if (now < c->handover_due_us) return;
  bool have_socket = false;
  for (int i = 0; i < c->nsocks && !have_socket; i++) have_socket = c->socks[i].fd >= 0;
  /* No address yet (between networks), or an exchange in flight: look again later. */
  if (!have_socket || c->sig != PARLEY_SIGNALING_STABLE || !c->remote_applied) {
    c->handover_due_us = now + PARLEY__CALL_HANDOVER_RETRY_US;
    return;
  }
  c->handover_due_us = 0;
  if (parley__ice_restart(c->ice, now) != 0) return;
  parley__event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_NEGOTIATION_NEEDED;
  ev.now_us = now;
  snprintf(ev.message, sizeof ev.message,
           "local address gone, peer did not follow: ICE restarted, send an offer");
  parley__engine_post(c->eng, c, &ev);
  parley__call_drain_events(c);
}
