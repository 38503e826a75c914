/* ice_liveness.c: the ICE agent <-> liveness monitor wiring (see ice_liveness.h). Owns nothing but a
 * short list of outstanding probe sequence numbers; one thread. */
#include "transport/ice_liveness.h"

#include <string.h>

#include "parley/parley.h"

void parley__ice_liveness_init(parley__ice_liveness *g, parley__ice_agent *ice, parley__liveness *mon) {
  if (!g) return;
  memset(g, 0, sizeof *g);
  g->ice = ice;
  g->mon = mon;
}

static bool take_probe(parley__ice_liveness *g, uint32_t seq) {
  for (int i = 0; i < PARLEY__ICE_LIVENESS_TRACKED; i++)
    if (g->probe_seq[i] == seq) {
      g->probe_seq[i] = 0;
      return true;
    }
  return false;
}

int parley__ice_liveness_on_ice_event(parley__ice_liveness *g, const parley__ice_event *ev) {
  if (!g || !ev || !g->mon) return PARLEY_EINVAL;
  switch (ev->kind) {
  case PARLEY__ICE_EV_SELECTED_PAIR: return parley__liveness_on_ice_connected(g->mon, ev->now_us);
  case PARLEY__ICE_EV_STATE:
    return ev->state == PARLEY_ICE_CHECKING ? parley__liveness_on_ice_checking(g->mon, ev->now_us) : 0;
  case PARLEY__ICE_EV_CONSENT:
    if (!ev->ok) return 0; /* an error answer grants nothing; the expiry timer decides */
    parley__liveness_on_rtt(g->mon, ev->rtt_us);
    return take_probe(g, ev->seq) ? parley__liveness_on_probe_response(g->mon, ev->now_us)
                                  : parley__liveness_on_consent_response(g->mon, ev->now_us);
  default: return 0;
  }
}

int parley__ice_liveness_tick(parley__ice_liveness *g, int64_t now_us) {
  if (!g || !g->mon || !g->ice) return PARLEY_EINVAL;
  int actions = parley__liveness_tick(g->mon, now_us);
  if (actions < 0) return actions;
  if (actions & PARLEY__LIVENESS_SEND_PROBE) {
    int seq = parley__ice_send_consent_check(g->ice, now_us);
    if (seq > 0) {
      g->probe_seq[g->next_slot++ % PARLEY__ICE_LIVENESS_TRACKED] = (uint32_t)seq;
      g->probes_sent++;
    }
  }
  if ((actions & PARLEY__LIVENESS_SEND_CONSENT) && parley__ice_send_consent_check(g->ice, now_us) > 0)
    g->consents_sent++;
  return actions;
}

int64_t parley__ice_liveness_next_deadline_us(const parley__ice_liveness *g) {
  if (!g) return INT64_MAX;
  int64_t a = g->ice ? parley__ice_next_deadline_us(g->ice) : INT64_MAX;
  int64_t b = g->mon ? parley__liveness_next_deadline_us(g->mon) : INT64_MAX;
  return a < b ? a : b;
}

int parley__ice_liveness_on_socket_error(parley__ice_liveness *g, int local, const parley__netaddr *peer,
                                         int errno_value, int64_t now_us) {
  if (!g || !g->mon || !g->ice) return PARLEY_EINVAL;
  int sel_local;
  parley__netaddr sel_remote;
  if (parley__ice_selected_pair(g->ice, &sel_local, &sel_remote) != 0 || sel_local != local) return 0;
  if (peer && peer->family != 0 && !parley__netaddr_equal(peer, &sel_remote)) return 0;
  int rc = parley__liveness_on_socket_error(g->mon, now_us, errno_value);
  return rc < 0 ? rc : 1;
}
