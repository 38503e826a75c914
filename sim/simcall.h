/* simcall.h: a whole simulated call for tests and benches: two real ICE agents (ice.h), each wired to
 * its own liveness monitor (ice_liveness.h), over the in-memory network (simnet.h) impaired by the
 * shared model (impair.h, one model per direction through simnet_impair.h), in simulated time.
 *
 * Side 0 ("A", controlling, 10.0.0.1:5000) and side 1 ("B", controlled, 10.0.0.2:6000) start ICE at
 * t = 0 with instant signalling (credentials, candidates, end-of-candidates). Once a side's agent has a
 * selected pair it sends Opus-like RTP (rtp.h, payload type 111, 48 kHz clock) on it as a live DTX
 * sender would: one small packet (3-byte payload) every 400 ms in silence and, when talkspurts are on,
 * talkspurts of one 80-byte packet every 20 ms (talk U[0.5, 2.5] s, silence U[1, 6] s). Each side
 * passes every arrival to its agent (STUN: checks, probes, consent); anything else through
 * parley__ice_accept_media, then the RTP parser, then the monitor's on_rtp. Bounced datagrams
 * (ECONNREFUSED) reach the glue's on_socket_error. No SRTP: media counts as decodable once it parses.
 *
 * The caller cuts and restores the network between runs (simnet cut semantics: in-flight datagrams
 * still arrive) and sees every monitor event, in order, through on_event.
 *
 * Not real-time code (the agents sign and check STUN messages). Single-threaded; deterministic in
 * simulated time for a given config (the agents' random transaction ids and credentials do not
 * influence timing). */
#ifndef PARLEY_SIM_SIMCALL_H
#define PARLEY_SIM_SIMCALL_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/events.h"
#include "transport/ice.h"
#include "sim/impair.h"
#include "transport/liveness.h"

typedef struct parley__simcall parley__simcall;

/* A monitor event from side 0 (A) or 1 (B); ev is borrowed for the call. The callback must not call
 * back into the simcall. */
typedef void (*parley__simcall_event_fn)(void *ctx, int side, const parley__event *ev);

typedef struct parley__simcall_config {
  parley__impair_config a2b, b2a; /* the network each way (copied; zero = clean) */
  parley__liveness_config live;   /* both monitors (seeds derived from seed); zero = defaults */
  bool has_live;                  /* live is set (otherwise defaults) */
  bool talkspurts;                /* false: DTX only (1 packet / 400 ms) */
  bool mute[2];                   /* side i sends no RTP at all: its peer sees only STUN */
  uint64_t seed;                  /* network, traffic and monitor timers */
  parley__simcall_event_fn on_event; /* optional */
  void *ctx;
} parley__simcall_config;

typedef struct parley__simcall_stats {
  uint64_t rtp_sent[2], rtp_accepted[2]; /* by sender, by receiver */
  uint64_t probes_sent[2], consents_sent[2];
  uint64_t datagrams; /* handed to the network */
} parley__simcall_stats;

/* NULL with *err = PARLEY_EINVAL (bad impair or liveness config), PARLEY_ENOMEM or an agent error on
 * failure. Nothing runs until parley__simcall_run_until. */
parley__simcall *parley__simcall_new(const parley__simcall_config *cfg, int *err);
void parley__simcall_free(parley__simcall *c); /* NULL ignored */

/* Runs agents, monitors, media and network up to and including t_end_us (>= now), then sets now to
 * t_end_us. 0, PARLEY_EINVAL (t_end before now) or PARLEY_ESTATE (the simulation stopped making
 * progress, or a component reported an error). */
int parley__simcall_run_until(parley__simcall *c, int64_t t_end_us);
int64_t parley__simcall_now_us(const parley__simcall *c);

/* Whole-network cut both ways at now (datagrams in flight still arrive) and its end. */
void parley__simcall_cut(parley__simcall *c);
void parley__simcall_restore(parley__simcall *c);

/* Side `which`'s process dies at now (no BYE): its endpoint leaves the network, so datagrams reaching
 * it bounce to their sender as ECONNREFUSED (simnet reports the bounce at arrival time: the ICMP's
 * way back is not modelled), and it sends and answers nothing more. 0 or PARLEY_EINVAL. */
int parley__simcall_kill(parley__simcall *c, int which);
/* A socket error (positive errno, e.g. a forged ICMP port unreachable: ECONNREFUSED) reported now on
 * side `which` about its selected pair, through the glue as the kernel's error queue would. 0,
 * PARLEY_EINVAL (bad side, killed side), PARLEY_ESTATE (no selected pair) or the monitor's error. */
int parley__simcall_socket_error(parley__simcall *c, int which, int errno_value);

/* Whether side `which` is in a talkspurt (20 ms packets) rather than DTX now. */
bool parley__simcall_talking(const parley__simcall *c, int which);

/* Borrowed views of side 0 or 1 (NULL for a bad side). */
parley__ice_agent *parley__simcall_agent(const parley__simcall *c, int side);
parley__liveness *parley__simcall_monitor(const parley__simcall *c, int side);
void parley__simcall_get_stats(const parley__simcall *c, parley__simcall_stats *out);

#endif
