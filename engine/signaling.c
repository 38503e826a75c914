/* signaling.c: the W3C call-state rules (see signaling.h). Stateless. */
#include "engine/signaling.h"

#include <string.h>

#include "parley/parley.h"

static const char *pick(const char *const *names, int count, int v) {
  return (v >= 0 && v < count) ? names[v] : "unknown";
}

const char *parley__sdp_op_name(parley__sdp_op op) {
  static const char *const n[] = {"set-local-offer",   "set-local-answer", "set-remote-offer",
                                  "set-remote-answer", "rollback",         "close"};
  return pick(n, PARLEY__SDP_OP_COUNT, (int)op);
}

parley_ice_state parley__ice_state_reported(parley_ice_state monitor, parley_ice_state agent,
                                             parley_ice_state shown) {
  if (monitor != PARLEY_ICE_CONNECTED) return monitor;
  return agent == PARLEY_ICE_COMPLETED || shown == PARLEY_ICE_COMPLETED ? PARLEY_ICE_COMPLETED : monitor;
}

int parley__signaling_apply(parley_signaling_state *state, parley__sdp_op op, int64_t now_us,
                            parley__event *ev) {
  if (!state || (int)*state < 0 || *state >= PARLEY__SIG_STATE_COUNT || (int)op < 0 ||
      op >= PARLEY__SDP_OP_COUNT)
    return PARLEY_EINVAL;
  parley_signaling_state from = *state, to;
  if (op == PARLEY__SDP_CLOSE) {
    to = PARLEY_SIGNALING_CLOSED;
  } else if (from == PARLEY_SIGNALING_CLOSED) {
    return PARLEY_ESTATE;
  } else if (op == PARLEY__SDP_ROLLBACK) {
    if (from == PARLEY_SIGNALING_STABLE) return PARLEY_ESTATE; /* nothing pending to roll back */
    to = PARLEY_SIGNALING_STABLE;
  } else if (from == PARLEY_SIGNALING_STABLE) {
    if (op == PARLEY__SDP_SET_LOCAL_OFFER) to = PARLEY_SIGNALING_HAVE_LOCAL_OFFER;
    else if (op == PARLEY__SDP_SET_REMOTE_OFFER) to = PARLEY_SIGNALING_HAVE_REMOTE_OFFER;
    else return PARLEY_ESTATE; /* an answer with no offer outstanding */
  } else if (from == PARLEY_SIGNALING_HAVE_LOCAL_OFFER) {
    if (op == PARLEY__SDP_SET_LOCAL_OFFER) to = from;               /* replacing our own offer */
    else if (op == PARLEY__SDP_SET_REMOTE_ANSWER) to = PARLEY_SIGNALING_STABLE;
    else return PARLEY_ESTATE; /* glare (remote offer) or answering our own offer */
  } else { /* have-remote-offer */
    if (op == PARLEY__SDP_SET_REMOTE_OFFER) to = from;              /* the peer replaced its offer */
    else if (op == PARLEY__SDP_SET_LOCAL_ANSWER) to = PARLEY_SIGNALING_STABLE;
    else return PARLEY_ESTATE;
  }
  if (to == from) return 0;
  *state = to;
  if (ev) {
    memset(ev, 0, sizeof *ev);
    ev->kind = PARLEY_EVENT_SIGNALING_STATE_CHANGED;
    ev->now_us = now_us;
    ev->signaling_state = to;
  }
  return 1;
}
