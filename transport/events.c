/* events.c: names, the ICE -> peer-connection aggregation, the event FIFO and the signaling state
 * machine (see events.h). Owns nothing: queues run over caller storage. Any thread may call the pure
 * functions; a queue is used by one thread at a time. All real-time safe. */
#include "transport/events.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"

static const char *pick(const char *const *names, int count, int v) {
  return (v >= 0 && v < count) ? names[v] : "unknown";
}

const char *parley__event_kind_name(parley__event_kind k) {
  static const char *const n[] = {"track-started",  "track-stopped", "ice-connection-state",
                                  "peer-connection-state", "signaling-state", "interrupted",
                                  "resumed"};
  return pick(n, PARLEY__EV_KIND_COUNT, (int)k);
}

const char *parley__track_stop_reason_name(parley__track_stop_reason r) {
  static const char *const n[] = {"none", "bye", "timeout", "inactive", "ssrc-changed", "peer-gone"};
  return pick(n, PARLEY__STOP_REASON_COUNT, (int)r);
}

const char *parley__ice_state_name(parley__ice_state s) {
  static const char *const n[] = {"new",          "checking", "connected", "completed",
                                  "disconnected", "failed",   "closed"};
  return pick(n, PARLEY__ICE_STATE_COUNT, (int)s);
}

const char *parley__peer_state_name(parley__peer_state s) {
  static const char *const n[] = {"new", "connecting", "connected", "disconnected", "failed", "closed"};
  return pick(n, PARLEY__PEER_STATE_COUNT, (int)s);
}

const char *parley__signaling_state_name(parley__signaling_state s) {
  static const char *const n[] = {"stable", "have-local-offer", "have-remote-offer", "closed"};
  return pick(n, PARLEY__SIG_STATE_COUNT, (int)s);
}

const char *parley__interrupt_code_name(parley__interrupt_code c) {
  static const char *const n[] = {"none",        "network-lost", "peer-gone", "consent-expired",
                                  "device-lost", "device-busy"};
  return pick(n, PARLEY__INT_CODE_COUNT, (int)c);
}

const char *parley__sdp_op_name(parley__sdp_op op) {
  static const char *const n[] = {"set-local-offer",   "set-local-answer", "set-remote-offer",
                                  "set-remote-answer", "rollback",         "close"};
  return pick(n, PARLEY__SDP_OP_COUNT, (int)op);
}

parley__peer_state parley__peer_state_from_ice(parley__ice_state ice) {
  switch (ice) {
    case PARLEY__ICE_NEW: return PARLEY__PEER_NEW;
    case PARLEY__ICE_CHECKING: return PARLEY__PEER_CONNECTING;
    case PARLEY__ICE_CONNECTED:
    case PARLEY__ICE_COMPLETED: return PARLEY__PEER_CONNECTED;
    case PARLEY__ICE_DISCONNECTED: return PARLEY__PEER_DISCONNECTED;
    case PARLEY__ICE_FAILED: return PARLEY__PEER_FAILED;
    case PARLEY__ICE_CLOSED:
    default: return PARLEY__PEER_CLOSED;
  }
}

parley__ice_state parley__ice_state_reported(parley__ice_state monitor, parley__ice_state agent,
                                             parley__ice_state shown) {
  if (monitor != PARLEY__ICE_CONNECTED) return monitor;
  return agent == PARLEY__ICE_COMPLETED || shown == PARLEY__ICE_COMPLETED ? PARLEY__ICE_COMPLETED : monitor;
}

int parley__event_format(const parley__event *ev, char *buf, size_t buf_len) {
  if (!ev || !buf || buf_len == 0) return PARLEY_EINVAL;
  const char *kind = parley__event_kind_name(ev->kind);
  double t_s = (double)ev->now_us / 1e6;
  int n;
  switch (ev->kind) {
    case PARLEY__EV_TRACK_STARTED:
      n = snprintf(buf, buf_len, "t=%.6f s %s ssrc=0x%08" PRIx32, t_s, kind, ev->ssrc);
      break;
    case PARLEY__EV_TRACK_STOPPED:
      n = snprintf(buf, buf_len, "t=%.6f s %s ssrc=0x%08" PRIx32 " reason=%s", t_s, kind, ev->ssrc,
                   parley__track_stop_reason_name(ev->stop_reason));
      break;
    case PARLEY__EV_ICE_STATE:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind, parley__ice_state_name(ev->ice_state));
      break;
    case PARLEY__EV_PEER_STATE:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind, parley__peer_state_name(ev->peer_state));
      break;
    case PARLEY__EV_SIGNALING_STATE:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind,
                   parley__signaling_state_name(ev->signaling_state));
      break;
    case PARLEY__EV_INTERRUPTED:
    case PARLEY__EV_RESUMED:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s (%s)", t_s, kind,
                   parley__interrupt_code_name(ev->code), ev->message);
      break;
    default: n = snprintf(buf, buf_len, "t=%.6f s %s", t_s, kind); break;
  }
  return n < 0 ? PARLEY_EINVAL : n;
}

int parley__event_queue_init(parley__event_queue *q, parley__event *storage, size_t capacity) {
  if (!q || !storage || capacity == 0) return PARLEY_EINVAL;
  q->slots = storage;
  q->capacity = capacity;
  q->head = 0;
  q->count = 0;
  q->dropped = 0;
  return 0;
}

int parley__event_queue_push(parley__event_queue *q, const parley__event *ev) {
  if (!q || !ev || !q->slots) return PARLEY_EINVAL;
  if (q->count == q->capacity) {
    q->dropped++;
    return PARLEY_EFULL;
  }
  q->slots[(q->head + q->count) % q->capacity] = *ev;
  q->count++;
  return 0;
}

int parley__event_queue_pop(parley__event_queue *q, parley__event *out) {
  if (!q || !out || !q->slots) return PARLEY_EINVAL;
  if (q->count == 0) return PARLEY_EAGAIN;
  *out = q->slots[q->head];
  q->head = (q->head + 1) % q->capacity;
  q->count--;
  return 0;
}

size_t parley__event_queue_count(const parley__event_queue *q) { return q ? q->count : 0; }

int parley__signaling_apply(parley__signaling_state *state, parley__sdp_op op, int64_t now_us,
                            parley__event *ev) {
  if (!state || (int)*state < 0 || *state >= PARLEY__SIG_STATE_COUNT || (int)op < 0 ||
      op >= PARLEY__SDP_OP_COUNT)
    return PARLEY_EINVAL;
  parley__signaling_state from = *state, to;
  if (op == PARLEY__SDP_CLOSE) {
    to = PARLEY__SIG_CLOSED;
  } else if (from == PARLEY__SIG_CLOSED) {
    return PARLEY_ESTATE;
  } else if (op == PARLEY__SDP_ROLLBACK) {
    if (from == PARLEY__SIG_STABLE) return PARLEY_ESTATE; /* nothing pending to roll back */
    to = PARLEY__SIG_STABLE;
  } else if (from == PARLEY__SIG_STABLE) {
    if (op == PARLEY__SDP_SET_LOCAL_OFFER) to = PARLEY__SIG_HAVE_LOCAL_OFFER;
    else if (op == PARLEY__SDP_SET_REMOTE_OFFER) to = PARLEY__SIG_HAVE_REMOTE_OFFER;
    else return PARLEY_ESTATE; /* an answer with no offer outstanding */
  } else if (from == PARLEY__SIG_HAVE_LOCAL_OFFER) {
    if (op == PARLEY__SDP_SET_LOCAL_OFFER) to = from;               /* replacing our own offer */
    else if (op == PARLEY__SDP_SET_REMOTE_ANSWER) to = PARLEY__SIG_STABLE;
    else return PARLEY_ESTATE; /* glare (remote offer) or answering our own offer */
  } else { /* have-remote-offer */
    if (op == PARLEY__SDP_SET_REMOTE_OFFER) to = from;              /* the peer replaced its offer */
    else if (op == PARLEY__SDP_SET_LOCAL_ANSWER) to = PARLEY__SIG_STABLE;
    else return PARLEY_ESTATE;
  }
  if (to == from) return 0;
  *state = to;
  if (ev) {
    memset(ev, 0, sizeof *ev);
    ev->kind = PARLEY__EV_SIGNALING_STATE;
    ev->now_us = now_us;
    ev->signaling_state = to;
  }
  return 1;
}
