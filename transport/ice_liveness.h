/* ice_liveness.h: wires the ICE agent (ice.h) to the liveness monitor (liveness.h). The monitor asks
 * for probes and consent checks on the selected pair; the agent sends them and reports the answers;
 * the agent's selected pair and state changes tell the monitor when ICE is connected or checking;
 * socket errors (ECONNREFUSED...) reach the monitor only when they concern the selected pair.
 *
 * Plain data over two borrowed objects; the same single thread that owns both. Not real-time code
 * (sending a check builds a STUN message and calls the send callback). */
#ifndef PARLEY_TRANSPORT_ICE_LIVENESS_H
#define PARLEY_TRANSPORT_ICE_LIVENESS_H

#include <stdint.h>

#include "transport/ice.h"
#include "transport/liveness.h"

#define PARLEY__ICE_LIVENESS_TRACKED PARLEY__ICE_MAX_CONSENT

typedef struct parley__ice_liveness {
  parley__ice_agent *ice; /* borrowed */
  parley__liveness *mon;  /* borrowed */
  /* Sequence numbers of outstanding probes (anything else answered is a consent check). */
  uint32_t probe_seq[PARLEY__ICE_LIVENESS_TRACKED];
  unsigned next_slot;
  uint64_t probes_sent, consents_sent;
} parley__ice_liveness;

/* Both borrowed; they must outlive g. */
void parley__ice_liveness_init(parley__ice_liveness *g, parley__ice_agent *ice, parley__liveness *mon);
/* Hand every agent event here (e.g. from the agent's on_event callback): SELECTED_PAIR -> ICE
 * connected; STATE checking -> ICE checking; CONSENT ok -> probe or consent response. Other events
 * are ignored. Returns the monitor's result (0, PARLEY_EFULL, ...). */
int parley__ice_liveness_on_ice_event(parley__ice_liveness *g, const parley__ice_event *ev);
/* Ticks the monitor at now_us and performs the actions it asks for through the agent. Returns the
 * action mask performed (>= 0) or the monitor's error. */
int parley__ice_liveness_tick(parley__ice_liveness *g, int64_t now_us);
/* The earlier of the agent's and the monitor's deadlines (tick both when it passes). */
int64_t parley__ice_liveness_next_deadline_us(const parley__ice_liveness *g);
/* A send/receive error on local socket `local` about destination `peer` (may be NULL/unset when the OS
 * did not say): forwarded to the monitor only when it concerns the selected pair. Returns 1 when
 * forwarded, 0 when ignored, or the monitor's error. */
int parley__ice_liveness_on_socket_error(parley__ice_liveness *g, int local, const parley__netaddr *peer,
                                         int errno_value, int64_t now_us);

#endif
