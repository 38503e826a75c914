/* signaling.h: a call's state as W3C defines it: the signaling state machine (setLocalDescription /
 * setRemoteDescription, RFC 3264 offer/answer) and the ICE state a call reports. Pure functions over
 * caller state; any thread, real-time safe. */
#ifndef PARLEY_ENGINE_SIGNALING_H
#define PARLEY_ENGINE_SIGNALING_H

#include <stdint.h>

#include "parley/parley.h"
#include "transport/events.h"

/* The ICE state a call reports (W3C RTCIceConnectionState, checking -> connected -> completed): the
 * liveness monitor's state (it owns new/checking/connected/disconnected/failed/closed), refined while it
 * is connected by the agent's own: completed once the agent has finished checking (no pair in progress
 * and the peer's end-of-candidates seen). shown is the state reported last: completed stays through an
 * ICE restart, as connected does (the monitor's rule), until the monitor leaves connected. Pure. */
parley_ice_state parley__ice_state_reported(parley_ice_state monitor, parley_ice_state agent,
                                            parley_ice_state shown);

/* Signaling state machine. */
typedef enum parley__sdp_op {
  PARLEY__SDP_SET_LOCAL_OFFER = 0,
  PARLEY__SDP_SET_LOCAL_ANSWER,
  PARLEY__SDP_SET_REMOTE_OFFER,
  PARLEY__SDP_SET_REMOTE_ANSWER,
  PARLEY__SDP_ROLLBACK, /* abandon the pending offer (either side's) */
  PARLEY__SDP_CLOSE,
  PARLEY__SDP_OP_COUNT
} parley__sdp_op;

/* "set-local-offer", "set-local-answer", "set-remote-offer", "set-remote-answer", "rollback", "close". */
const char *parley__sdp_op_name(parley__sdp_op op);

/* Applies op to *state. Allowed: stable + local offer -> have-local-offer; stable + remote offer ->
 * have-remote-offer; have-local-offer + local offer (re-offer) -> same; have-local-offer + remote answer
 * -> stable; have-remote-offer + remote offer -> same; have-remote-offer + local answer -> stable;
 * rollback from either have-* -> stable; close from any state -> closed (again: no change).
 * Everything else (answers in stable, glare, rollback in stable, anything after close) returns
 * PARLEY_ESTATE and leaves *state unchanged. On a change, returns 1 and, if ev is non-NULL, fills *ev
 * with a signaling-state event stamped now_us; returns 0 when the op is valid but the state is the
 * same (no event). PARLEY_EINVAL for a NULL state or an unknown state/op. */
int parley__signaling_apply(parley_signaling_state *state, parley__sdp_op op, int64_t now_us,
                            parley__event *ev);

#endif
