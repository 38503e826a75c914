/* events.h: parley's internal event model for call state: track started/stopped, ICE and peer-connection
 * state, signaling state, interrupted/resumed. Producers (the liveness monitor, the signaling helper,
 * later the device layer) fill parley__event records by value and append them to a parley__event_queue,
 * a fixed-capacity FIFO over caller-provided storage; the owner drains it and turns records into public
 * callbacks. Nothing here allocates, locks or makes a system call: every function is real-time safe.
 * A queue belongs to one thread at a time (it is not a cross-thread channel: use parley__ring for that,
 * events are plain data and can be copied into one). */
#ifndef PARLEY_TRANSPORT_EVENTS_H
#define PARLEY_TRANSPORT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum parley__event_kind {
  PARLEY__EV_TRACK_STARTED = 0,  /* "track-started": media from ssrc started (or resumed) flowing */
  PARLEY__EV_TRACK_STOPPED,      /* "track-stopped": media from ssrc stopped, see stop_reason */
  PARLEY__EV_ICE_STATE,          /* "ice-connection-state": ice_state holds the new state */
  PARLEY__EV_PEER_STATE,         /* "peer-connection-state": peer_state holds the new state */
  PARLEY__EV_SIGNALING_STATE,    /* "signaling-state": signaling_state holds the new state */
  PARLEY__EV_INTERRUPTED,        /* "interrupted": the call broke without a hang-up, see code */
  PARLEY__EV_RESUMED,            /* "resumed": the interruption is over (code repeats its cause) */
  PARLEY__EV_KIND_COUNT
} parley__event_kind;

typedef enum parley__track_stop_reason {
  PARLEY__STOP_NONE = 0,     /* "none": not a track-stopped event */
  PARLEY__STOP_BYE,          /* "bye": RTCP BYE, the peer ended the stream */
  PARLEY__STOP_TIMEOUT,      /* "timeout": no media, and no evidence the peer is reachable */
  PARLEY__STOP_INACTIVE,     /* "inactive": the remote description says the peer will not send */
  PARLEY__STOP_SSRC_CHANGED, /* "ssrc-changed": a new ssrc replaced this one */
  PARLEY__STOP_PEER_GONE,    /* "peer-gone": ICMP port unreachable and unanswered probes: the peer is gone */
  PARLEY__STOP_REASON_COUNT
} parley__track_stop_reason;

/* RTCIceConnectionState. */
typedef enum parley__ice_state {
  PARLEY__ICE_NEW = 0,
  PARLEY__ICE_CHECKING,
  PARLEY__ICE_CONNECTED,
  PARLEY__ICE_COMPLETED,
  PARLEY__ICE_DISCONNECTED,
  PARLEY__ICE_FAILED,
  PARLEY__ICE_CLOSED,
  PARLEY__ICE_STATE_COUNT
} parley__ice_state;

/* RTCPeerConnectionState. */
typedef enum parley__peer_state {
  PARLEY__PEER_NEW = 0,
  PARLEY__PEER_CONNECTING,
  PARLEY__PEER_CONNECTED,
  PARLEY__PEER_DISCONNECTED,
  PARLEY__PEER_FAILED,
  PARLEY__PEER_CLOSED,
  PARLEY__PEER_STATE_COUNT
} parley__peer_state;

/* RTCSignalingState, without the provisional-answer states (parley sends no pranswer). */
typedef enum parley__signaling_state {
  PARLEY__SIG_STABLE = 0,
  PARLEY__SIG_HAVE_LOCAL_OFFER,
  PARLEY__SIG_HAVE_REMOTE_OFFER,
  PARLEY__SIG_CLOSED,
  PARLEY__SIG_STATE_COUNT
} parley__signaling_state;

typedef enum parley__interrupt_code {
  PARLEY__INT_NONE = 0,        /* "none": not an interrupted/resumed event */
  PARLEY__INT_NETWORK_LOST,    /* "network-lost": nothing from the peer and probes unanswered */
  PARLEY__INT_PEER_GONE,       /* "peer-gone": the peer's port is closed (ICMP port unreachable) */
  PARLEY__INT_CONSENT_EXPIRED, /* "consent-expired": RFC 7675 consent lapsed */
  PARLEY__INT_DEVICE_LOST,     /* "device-lost": the audio device disappeared */
  PARLEY__INT_DEVICE_BUSY,     /* "device-busy": the audio device is held by someone else */
  PARLEY__INT_CODE_COUNT
} parley__interrupt_code;

#define PARLEY__EVENT_MESSAGE_MAX 96

/* One event, plain data (copyable, no pointers). Fields not relevant to the kind are zero. */
typedef struct parley__event {
  parley__event_kind kind;
  int64_t now_us;                   /* injected time at which the producer saw the change */
  uint32_t ssrc;                    /* track events: the remote ssrc */
  parley__track_stop_reason stop_reason;     /* TRACK_STOPPED */
  parley__ice_state ice_state;               /* ICE_STATE: the new state */
  parley__peer_state peer_state;             /* PEER_STATE: the new state */
  parley__signaling_state signaling_state;   /* SIGNALING_STATE: the new state */
  parley__interrupt_code code;               /* INTERRUPTED, RESUMED */
  char message[PARLEY__EVENT_MESSAGE_MAX];   /* readable, NUL-terminated, may be empty */
} parley__event;

/* Stable lowercase names ("track-stopped", "network-lost", "have-local-offer", ...); "unknown" for a
 * value out of range; never NULL. */
const char *parley__event_kind_name(parley__event_kind k);
const char *parley__track_stop_reason_name(parley__track_stop_reason r);
const char *parley__ice_state_name(parley__ice_state s);
const char *parley__peer_state_name(parley__peer_state s);
const char *parley__signaling_state_name(parley__signaling_state s);
const char *parley__interrupt_code_name(parley__interrupt_code c);

/* The peer-connection state for a connection with a single ICE transport and no DTLS transport, per the
 * W3C RTCPeerConnectionState rules: closed <- closed; failed <- failed; disconnected <- disconnected;
 * new <- new; connecting <- checking; connected <- connected or completed. */
parley__peer_state parley__peer_state_from_ice(parley__ice_state ice);

/* The ICE state a call reports (W3C RTCIceConnectionState, checking -> connected -> completed): the
 * liveness monitor's state (it owns new/checking/connected/disconnected/failed/closed), refined while it
 * is connected by the agent's own: completed once the agent has finished checking (no pair in progress
 * and the peer's end-of-candidates seen). shown is the state reported last: completed stays through an
 * ICE restart, as connected does (the monitor's rule), until the monitor leaves connected. Pure. */
parley__ice_state parley__ice_state_reported(parley__ice_state monitor, parley__ice_state agent,
                                             parley__ice_state shown);

/* Writes a one-line description, e.g. "t=1.250000 s track-stopped ssrc=0x1234 reason=timeout".
 * Returns the snprintf-style length, or PARLEY_EINVAL. Real-time safe (no allocation). */
int parley__event_format(const parley__event *ev, char *buf, size_t buf_len);

/* A fixed-capacity FIFO of events over storage the caller owns (borrowed for the queue's life).
 * Push copies the event in; when full the event is dropped, `dropped` counts it and PARLEY_EFULL is
 * returned. Single thread. */
typedef struct parley__event_queue {
  parley__event *slots; /* borrowed */
  size_t capacity;
  size_t head;  /* index of the oldest event */
  size_t count;
  uint64_t dropped;
} parley__event_queue;

/* capacity >= 1. 0 or PARLEY_EINVAL. */
int parley__event_queue_init(parley__event_queue *q, parley__event *storage, size_t capacity);
/* 0 or PARLEY_EFULL (event dropped and counted) or PARLEY_EINVAL. */
int parley__event_queue_push(parley__event_queue *q, const parley__event *ev);
/* Copies the oldest event into *out and removes it: 0, or PARLEY_EAGAIN when empty, or PARLEY_EINVAL. */
int parley__event_queue_pop(parley__event_queue *q, parley__event *out);
size_t parley__event_queue_count(const parley__event_queue *q);

/* Signaling state machine (W3C setLocalDescription / setRemoteDescription, RFC 3264 offer/answer). */
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
int parley__signaling_apply(parley__signaling_state *state, parley__sdp_op op, int64_t now_us,
                            parley__event *ev);

#endif
