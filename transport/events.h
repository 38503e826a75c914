/* events.h: the event records the transport produces for a call (track started/stopped, ICE state,
 * interrupted/resumed), in the public API's vocabulary. Producers (the liveness monitor, the ICE
 * glue; above them the call's signaling and the device) fill parley__event records by value and append
 * them to a parley__event_queue,
 * a fixed-capacity FIFO over caller-provided storage; the owner drains it and turns records into public
 * callbacks. Nothing here allocates, locks or makes a system call: every function is real-time safe.
 * A queue belongs to one thread at a time (it is not a cross-thread channel: use parley__ring for that,
 * events are plain data and can be copied into one). */
#ifndef PARLEY_TRANSPORT_EVENTS_H
#define PARLEY_TRANSPORT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/parley.h"

/* The vocabulary is the public API's (parley/engine.h): an event here is what the app will see. */
#define PARLEY__STOP_REASON_COUNT (PARLEY_STOP_PEER_GONE + 1)
#define PARLEY__ICE_STATE_COUNT (PARLEY_ICE_CLOSED + 1)
#define PARLEY__PEER_STATE_COUNT (PARLEY_PEER_CLOSED + 1)
#define PARLEY__SIG_STATE_COUNT (PARLEY_SIGNALING_CLOSED + 1)
#define PARLEY__INT_CODE_COUNT (PARLEY_INTERRUPT_DEVICE_BUSY + 1)

#define PARLEY__EVENT_MESSAGE_MAX 192 /* a TURN server's URL and why it failed fit */

/* One event, plain data (copyable, no pointers). Fields not relevant to the kind are zero. */
typedef struct parley__event {
  parley_event_kind kind;
  int64_t now_us;                   /* injected time at which the producer saw the change */
  uint32_t ssrc;                    /* track events: the remote ssrc */
  parley_stop_reason stop_reason;     /* TRACK_STOPPED */
  parley_ice_state ice_state;               /* ICE_STATE: the new state */
  parley_peer_state peer_state;             /* PEER_STATE: the new state */
  parley_signaling_state signaling_state;   /* SIGNALING_STATE: the new state */
  parley_interrupt_code code;               /* INTERRUPTED, RESUMED */
  char message[PARLEY__EVENT_MESSAGE_MAX];   /* readable, NUL-terminated, may be empty */
} parley__event;

/* The peer-connection state for a connection with a single ICE transport and no DTLS transport, per the
 * W3C RTCPeerConnectionState rules: closed <- closed; failed <- failed; disconnected <- disconnected;
 * new <- new; connecting <- checking; connected <- connected or completed. */
parley_peer_state parley__peer_state_from_ice(parley_ice_state ice);

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

#endif
