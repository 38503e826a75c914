/* liveness.h: the liveness monitor. Tells the app quickly and truthfully when a call breaks without a
 * hang-up (a passive disconnect), and when it comes back, from evidence: arrivals from the peer, answered
 * probes on the selected ICE pair, RFC 7675 consent responses, ICMP errors, RTCP BYE.
 *
 * A pure single-threaded state machine: no sockets, no clock reads, no allocation after create. The
 * owner (the transport thread, later driven by the ICE agent; or whoever holds cfg.guard) feeds inputs
 * with the injected time now_us, calls parley__liveness_tick() at or soon after
 * parley__liveness_next_deadline_us(), and performs the actions tick returns (send a probe / a consent
 * check on the selected pair). Time must not go backwards between calls (PARLEY_EINVAL).
 *
 * Output: events are appended to the caller's parley__event_queue (events.h), borrowed at create. Chosen
 * over a callback so that the monitor never re-enters the owner; drain the queue after each call. One
 * call appends at most 6 events; a queue of >= 16 never overflows if drained after every call. On
 * overflow the event is dropped, the queue counts it, and the call returns PARLEY_EFULL (the state
 * machine still advanced).
 *
 * The monitor watches one remote audio stream (one receive track: parley is a voice engine with one
 * audio m-line); a different ssrc on that stream is an ssrc change. */
#ifndef PARLEY_TRANSPORT_LIVENESS_H
#define PARLEY_TRANSPORT_LIVENESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/events.h"

typedef struct parley__liveness parley__liveness;

typedef struct parley__liveness_config {
  /* Silence (nothing at all from the peer) after which the path is suspect and fast probing starts. */
  int64_t suspect_after_us;        /* default 200 ms */
  int64_t probe_interval_us;       /* fast probe period while suspect; default 20 ms */
  /* Total silence, with probes unanswered, after which the path is declared lost. */
  int64_t lost_after_us;           /* default 760 ms */
  int64_t lost_probe_interval_us;  /* probe period once lost, to notice recovery; default 200 ms */
  /* Media silence (path alive) after which the track is stopped with reason timeout; 0 disables.
   * Only while the remote direction says it sends. A live Opus DTX sender sends >= 1 packet / 400 ms. */
  int64_t media_timeout_us;        /* default 5 s */
  /* RFC 7675 consent freshness: a first check as ICE connects, then: */
  int64_t consent_interval_us;     /* default 5 s, each interval scaled by U[1-j, 1+j] */
  double consent_jitter;           /* j, default 0.2 (0.8 .. 1.2 x) */
  /* When no consent response has come for consent_retry_after_us, checks are sent every
   * consent_retry_interval_us (also randomized) so that one lost check cannot cost consent. */
  int64_t consent_retry_after_us;  /* default 7.5 s */
  int64_t consent_retry_interval_us; /* default 1 s */
  int64_t consent_expiry_us;       /* default 30 s without a consent (or probe) response => failed */
  /* ICMP port unreachable is believed (peer-gone) only after the first probe since the last evidence
   * went unanswered this long: srtt + max(4 rttvar, 20 ms) of the probe round trips once one is
   * measured (parley__liveness_on_rtt, RFC 6298 estimators), this value before; at most lost_after / 2.
   * Default 150 ms. */
  int64_t icmp_confirm_us;
  uint64_t seed;                   /* seeds the parley__rng for the consent timers */
  pthread_mutex_t *guard;          /* optional: the mutex held by every call when threads share the
                                      monitor (checked in PARLEY_THREAD_CHECKS builds); NULL: one owner */
} parley__liveness_config;

/* Fills the defaults above. */
void parley__liveness_config_init(parley__liveness_config *cfg);
/* 0, or PARLEY_EINVAL if a field is out of range: every interval > 0; suspect < lost; media_timeout >= 0;
 * 0 <= jitter < 1; icmp_confirm > 0; consent interval * (1 + jitter) < consent expiry; retry after < expiry. */
int parley__liveness_config_validate(const parley__liveness_config *cfg);

/* Actions returned by tick (a bit mask). */
enum {
  PARLEY__LIVENESS_SEND_PROBE = 1u << 0,   /* send a STUN binding request on the selected pair now */
  PARLEY__LIVENESS_SEND_CONSENT = 1u << 1, /* send an RFC 7675 consent check on the selected pair now */
};

/* Direction attribute of the remote description for the watched stream. */
typedef enum parley__liveness_direction {
  PARLEY__DIR_SENDRECV = 0,
  PARLEY__DIR_SENDONLY, /* the remote sends only: we receive */
  PARLEY__DIR_RECVONLY, /* the remote receives only: it will not send */
  PARLEY__DIR_INACTIVE,
} parley__liveness_direction;

/* Creates a monitor in ICE state new. cfg is copied (NULL: defaults); events is borrowed and must
 * outlive the monitor. Returns NULL and sets *err (PARLEY_EINVAL, PARLEY_ENOMEM) on failure.
 * Not real-time (allocates once). */
parley__liveness *parley__liveness_new(const parley__liveness_config *cfg, parley__event_queue *events,
                                       int *err);
void parley__liveness_free(parley__liveness *m); /* NULL ignored */

/* Inputs. Owner thread only; real-time safe. Each returns 0, PARLEY_EFULL (an event was dropped),
 * PARLEY_EINVAL (NULL monitor, time went backwards, bad argument) or PARLEY_ESTATE (after close).
 * After any input, re-read next_deadline_us: some inputs move it (e.g. to now). */

/* ICE is checking (first checks, or an ICE restart after failure). */
int parley__liveness_on_ice_checking(parley__liveness *m, int64_t now_us);
/* A selected pair is established (ICE connected), or a new one was selected. Counts as evidence and as a
 * consent grant (the successful check). Recovers from disconnected or failed. */
int parley__liveness_on_ice_connected(parley__liveness *m, int64_t now_us);
/* An RTP packet from the peer. decodable: it authenticated (SRTP) and parsed; only decodable packets
 * count as evidence (an undecodable one may be spoofed) and start tracks. Arrivals before ICE connects
 * and after consent failed are ignored (the next packet after connecting starts the track). */
int parley__liveness_on_rtp(parley__liveness *m, int64_t now_us, uint32_t ssrc, bool decodable);
/* An authenticated RTCP packet from the peer (call this for a compound packet carrying a BYE too). */
int parley__liveness_on_rtcp(parley__liveness *m, int64_t now_us);
/* An RTCP BYE for ssrc: track-stopped bye if it is the live track. The peer hung up: a later loss of the
 * path still changes the ICE/peer states but raises no interrupted until a new track starts. Later media
 * with the byed ssrc is ignored (stragglers); a new ssrc starts a new track. */
int parley__liveness_on_rtcp_bye(parley__liveness *m, int64_t now_us, uint32_t ssrc);
/* The remote description's direction changed. recvonly/inactive => the peer will not send: the live
 * track stops with reason inactive, and media silence is no longer held against the track. */
int parley__liveness_on_remote_direction(parley__liveness *m, int64_t now_us,
                                         parley__liveness_direction dir);
/* A STUN binding response to one of our probes on the selected pair. Evidence; also refreshes consent
 * (RFC 7675: any successful binding response on the pair is a consent response). */
int parley__liveness_on_probe_response(parley__liveness *m, int64_t now_us);
/* A response to a consent check. Evidence and consent refresh. */
int parley__liveness_on_consent_response(parley__liveness *m, int64_t now_us);
/* A socket error on the selected pair's socket, as a positive errno value. ECONNREFUSED (ICMP port
 * unreachable: the peer process may be gone, or someone forged it) starts suspicion (probing at once);
 * the outage is declared with code peer-gone (track-stopped peer-gone) only when ICMP keeps coming (a
 * second error) and the first probe since the last evidence stays unanswered for icmp_confirm (its
 * round trip with margin). Any evidence clears the count. ENETUNREACH, EHOSTUNREACH, ENETDOWN and
 * EADDRNOTAVAIL (the socket's local address went away: a network change; the resumed event then says
 * so) start suspicion at once; others change no timer. The latest error since the last evidence is named in the
 * outage's message (interrupted, e.g. "...; EHOSTUNREACH: No route to host"). */
int parley__liveness_on_socket_error(parley__liveness *m, int64_t now_us, int errno_value);
/* A measured probe or consent round trip (the agent's rtt of the answer): sets the ICMP confirmation
 * window. Samples <= 0 or > 10 s are ignored. Real-time safe. */
void parley__liveness_on_rtt(parley__liveness *m, int64_t rtt_us);
/* Closes: ICE closed, peer closed. Later inputs return PARLEY_ESTATE; a second close returns 0. */
int parley__liveness_close(parley__liveness *m, int64_t now_us);

/* Advances timers to now_us: may declare the path lost, consent expired or a track timed out, and
 * returns a mask of PARLEY__LIVENESS_SEND_* actions to perform now (>= 0), or PARLEY_EINVAL,
 * PARLEY_EFULL (events dropped; actions are then lost too: use a big enough queue). Owner thread;
 * real-time safe. Calling it early is harmless; after close it does nothing and returns 0. */
int parley__liveness_tick(parley__liveness *m, int64_t now_us);
/* When tick must next be called; INT64_MAX when no timer runs (before ICE connects, failed, closed). */
int64_t parley__liveness_next_deadline_us(const parley__liveness *m);

parley_ice_state parley__liveness_ice_state(const parley__liveness *m);
parley_peer_state parley__liveness_peer_state(const parley__liveness *m);
/* True between an interrupted event and its resumed event. */
bool parley__liveness_interrupted(const parley__liveness *m);

typedef struct parley__liveness_stats {
  uint64_t probes_requested;
  uint64_t consent_checks_requested;
  uint64_t undecodable_rtp;
  uint64_t outages;        /* times the path was declared lost (or peer gone) */
} parley__liveness_stats;
void parley__liveness_get_stats(const parley__liveness *m, parley__liveness_stats *out);

#endif
