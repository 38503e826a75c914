/* events.c: the public names of the event vocabulary, the one-line format and the event FIFO (see
 * events.h). Owns nothing: queues run over caller storage. Any thread may call the pure functions; a
 * queue is used by one thread at a time. All real-time safe. */
#include "transport/events.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"

static const char *pick(const char *const *names, int count, int v) {
  return (v >= 0 && v < count) ? names[v] : "unknown";
}

const char *parley_event_kind_name(parley_event_kind k) {
  static const char *const n[] = {"track-started",
                                  "track-stopped",
                                  "ice-connection-state-changed",
                                  "peer-connection-state-changed",
                                  "signaling-state-changed",
                                  "interrupted",
                                  "resumed",
                                  "local-candidate",
                                  "negotiation-needed",
                                  "ice-candidate-error",
                                  "closed",
                                  "members-changed",
                                  "speakers-changed"};
  _Static_assert(sizeof n / sizeof n[0] == PARLEY_EVENT_KIND_COUNT, "a name for every kind");
  return pick(n, PARLEY_EVENT_KIND_COUNT, (int)k);
}

const char *parley_stop_reason_name(parley_stop_reason r) {
  static const char *const n[] = {"none", "bye", "timeout", "inactive", "ssrc-changed", "peer-gone"};
  return pick(n, PARLEY__STOP_REASON_COUNT, (int)r);
}

const char *parley_ice_state_name(parley_ice_state s) {
  static const char *const n[] = {"new",          "checking", "connected", "completed",
                                  "disconnected", "failed",   "closed"};
  return pick(n, PARLEY__ICE_STATE_COUNT, (int)s);
}

const char *parley_peer_state_name(parley_peer_state s) {
  static const char *const n[] = {"new", "connecting", "connected", "disconnected", "failed", "closed"};
  return pick(n, PARLEY__PEER_STATE_COUNT, (int)s);
}

const char *parley_signaling_state_name(parley_signaling_state s) {
  static const char *const n[] = {"stable", "have-local-offer", "have-remote-offer", "closed"};
  return pick(n, PARLEY__SIG_STATE_COUNT, (int)s);
}

const char *parley_interrupt_code_name(parley_interrupt_code c) {
  static const char *const n[] = {"none",        "network-lost", "peer-gone", "consent-expired",
                                  "device-lost", "device-busy"};
  return pick(n, PARLEY__INT_CODE_COUNT, (int)c);
}

parley_peer_state parley__peer_state_from_ice(parley_ice_state ice) {
  switch (ice) {
    case PARLEY_ICE_NEW: return PARLEY_PEER_NEW;
    case PARLEY_ICE_CHECKING: return PARLEY_PEER_CONNECTING;
    case PARLEY_ICE_CONNECTED:
    case PARLEY_ICE_COMPLETED: return PARLEY_PEER_CONNECTED;
    case PARLEY_ICE_DISCONNECTED: return PARLEY_PEER_DISCONNECTED;
    case PARLEY_ICE_FAILED: return PARLEY_PEER_FAILED;
    case PARLEY_ICE_CLOSED:
    default: return PARLEY_PEER_CLOSED;
  }
}

int parley__event_format(const parley__event *ev, char *buf, size_t buf_len) {
  if (!ev || !buf || buf_len == 0) return PARLEY_EINVAL;
  const char *kind = parley_event_kind_name(ev->kind);
  double t_s = (double)ev->now_us / 1e6;
  int n;
  switch (ev->kind) {
    case PARLEY_EVENT_TRACK_STARTED:
      n = snprintf(buf, buf_len, "t=%.6f s %s ssrc=0x%08" PRIx32, t_s, kind, ev->ssrc);
      break;
    case PARLEY_EVENT_TRACK_STOPPED:
      n = snprintf(buf, buf_len, "t=%.6f s %s ssrc=0x%08" PRIx32 " reason=%s", t_s, kind, ev->ssrc,
                   parley_stop_reason_name(ev->stop_reason));
      break;
    case PARLEY_EVENT_ICE_STATE_CHANGED:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind, parley_ice_state_name(ev->ice_state));
      break;
    case PARLEY_EVENT_PEER_STATE_CHANGED:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind, parley_peer_state_name(ev->peer_state));
      break;
    case PARLEY_EVENT_SIGNALING_STATE_CHANGED:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s", t_s, kind,
                   parley_signaling_state_name(ev->signaling_state));
      break;
    case PARLEY_EVENT_INTERRUPTED:
    case PARLEY_EVENT_RESUMED:
      n = snprintf(buf, buf_len, "t=%.6f s %s %s (%s)", t_s, kind,
                   parley_interrupt_code_name(ev->code), ev->message);
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

