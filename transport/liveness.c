/* liveness.c: the liveness monitor (see liveness.h). Owns its state and a seeded rng; borrows the
 * event queue. One owner thread calls everything; every call after create is real-time safe (no
 * allocation, lock, system call or clock read; O(1)).
 *
 * Policy: evidence, not a bare media timeout. Any arrival from the peer (decodable RTP, RTCP, a probe
 * response, a consent response) is evidence that the path and the peer are alive. After
 * suspect_after (100 ms) of total silence the monitor asks for STUN binding probes on the selected pair
 * every probe_interval (20 ms); any evidence clears the suspicion. If silence reaches lost_after
 * (760 ms) the path is declared lost: ICE disconnected, peer disconnected, track-stopped timeout, one
 * interrupted network-lost. Then probes go every lost_probe_interval (200 ms) and the first evidence
 * brings back ICE connected, peer connected, resumed (and track-started when media flows). Consent
 * (RFC 7675) keeps its own timers: a check as ICE connects (its answer gives the round trip the ICMP
 * rule below needs), then a randomized check every ~5 s (every ~1 s once a response is 7.5 s
 * overdue), and 30 s without a consent or probe response => ICE failed, peer failed, interrupted
 * consent-expired unless this outage already raised one.
 *
 * Why 100/20/760 (false alarm on paper). Model of the bench's harsh network, per packet and per
 * direction independently: 20 % loss, one-way delay 40 ms + U[0, 150] ms ("150 ms of jitter" taken as
 * uniform 0..150 ms extra delay, which is harsher than a Gaussian of deviation 50 ms clipped at 150).
 * A probe round trip then fails with q = 1 - 0.8^2 = 0.36 and takes RTT = 80 + U1 + U2 <= 380 ms.
 * Take the last evidence at t0 and ignore media entirely (it can only help). Probes go out at
 * t0 + 100, 120, ..., 740 (33 probes); the path is declared lost at t0 + 760 only if no response has
 * arrived by then. The 15 probes sent by t0 + 380 always return in time unless lost: 0.36^15 =
 * 2.2e-7. The 18 later ones return in time with falling probability (P(U1 + U2 <= 680 - s)); the
 * product of their failure probabilities is ~1.9e-3. So one suspicion episode ends in a false
 * disconnect with p ~ 4e-10. Episodes start at least suspect_after apart, so at most 36000 per hour:
 * expected false disconnects <= ~1.5e-5 per hour. (With suspect_after 200 the same method gives
 * ~7e-8 per episode, ~1.3e-3 per hour: earlier suspicion only adds probes.) lost_after is 760, not
 * 800, to keep the harsh-network detection p95 under 1 s with margin (below).
 * Why suspect_after is 100, not 200: a killed peer is proven gone by ICMP bouncing our datagrams, and
 * a silent (DTX) side sends few; its first probe leaves suspect_after after the peer's last packet, so
 * at 200 the kill -> peer-gone p95 of a silent side on the mild network was 329 ms (bench), over the
 * 300 ms goal. The cost is more probes (below).
 * Limits of the model: losses are independent; a loss burst longer than ~600 ms in both directions
 * is indistinguishable from a cut and will (correctly, by this definition) be reported as one.
 * Cost: in DTX (1 packet / 400 ms) suspicion starts after most packets, so the monitor asks for
 * probes in most DTX gaps until the first answer: ~4 per 400 ms at 50 ms RTT, more at long RTT (the
 * bench reports probes per second per side: ~10/s mild, ~17/s on the harsh network in DTX).
 * Detection: the path is declared lost lost_after after the last arrival, so at most lost_after +
 * (the latest arrival still in flight at the cut: a probe answer, up to one RTT) after a cut:
 * <= 900 ms at 100 ms RTT, <= 1180 ms at the harsh network's 380 ms worst RTT.
 * Recovery: the next slow probe after the restore (<= 200 ms) plus one RTT, or earlier with media.
 *
 * `parley-bench disconnect` measures these bounds through two real ICE agents on a mild and a harsh
 * network (false disconnects per simulated hour, cut -> disconnected p95): lost_after is chosen so the
 * harsh network's p95 stays under a second with the latest datagram still in flight at the cut.
 *
 * ICMP port unreachable (ECONNREFUSED on the selected pair) is not authenticated: anyone who knows the
 * two addresses can forge it, so one error only starts probing at once. Peer-gone needs both that ICMP
 * keeps coming (a second error; a dead peer bounces every probe, Linux sends a burst of 6 before its
 * 1/s per-host rate limit) and that the first probe since the last evidence stays unanswered for its
 * round trip with margin (srtt + max(4 rttvar, 20 ms) as RFC 6298 computes a retransmission timeout,
 * icmp_confirm before a sample, at most lost_after / 2): a live peer's
 * answer, or any of its media, clears the count first. An off-path forger then needs the probes' answers
 * lost too. Cost: a killed peer is reported that timeout after our first probe to it, i.e. the margin
 * after its bounce comes back (parley-bench disconnect, kill rows), instead of at the first bounce.
 *
 * Consent under the same loss: checks every ~5 s, then every ~1 s once 7.5 s pass without a response,
 * give >= 20 checks before the 30 s expiry: 0.36^20 ~ 1e-9. Probe responses also refresh consent
 * (they are successful binding transactions on the selected pair). */
#define _GNU_SOURCE /* strerrorname_np, strerrordesc_np */
#include "transport/liveness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/thread_check.h"
#include "parley/parley.h"

typedef enum phase {
  PH_IDLE,      /* ICE new or checking: no selected pair yet, no timers */
  PH_CONNECTED, /* selected pair, path believed alive (possibly suspect) */
  PH_LOST,      /* disconnected: slow probing until evidence */
  PH_FAILED,    /* consent expired: silent until ICE connects again */
  PH_CLOSED,
} phase;

struct parley__liveness {
  parley__liveness_config cfg;
  parley__guard guard; /* cfg.guard, or the owner thread: checked on every input and tick */
  parley__event_queue *events; /* borrowed */
  parley__rng rng;
  phase ph;
  parley_ice_state ice;
  parley_peer_state peer;
  int64_t now_us; /* latest time seen, to reject time going backwards */
  int64_t last_rx_us;
  int64_t last_consent_rx_us;
  int64_t next_probe_us;
  int64_t next_consent_us;
  int64_t outage_start_us;
  bool suspect;
  /* ICMP port unreachable (ECONNREFUSED) since the last evidence: how many, and when the first probe
   * since the last evidence went out (INT64_MAX: none yet). */
  int icmp_errors;
  int64_t first_probe_us;
  int64_t srtt_us, rttvar_us; /* probe / consent round trip, RFC 6298 estimators; 0 = no sample yet */
  int sock_errno; /* the latest socket error on the selected pair since the last evidence (0: none) */
  int outage_errno; /* sock_errno when the outage was declared (the resumed message names a handover) */
  bool interrupted;
  parley_interrupt_code outage_code;
  bool hung_up; /* the last track ended with BYE: loss of the path is not an interruption */
  bool remote_sending;
  /* The watched stream. */
  bool track_known, track_live;
  uint32_t track_ssrc;
  int64_t last_media_us;
  bool have_retired;
  uint32_t retired_ssrc; /* byed or replaced: its late packets are ignored */
  int push_err;
  parley__liveness_stats stats;
};

void parley__liveness_config_init(parley__liveness_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->suspect_after_us = 100000;
  cfg->probe_interval_us = 20000;
  cfg->lost_after_us = 760000;
  cfg->lost_probe_interval_us = 200000;
  cfg->media_timeout_us = 5000000;
  cfg->consent_interval_us = 5000000;
  cfg->consent_jitter = 0.2;
  cfg->consent_retry_after_us = 7500000;
  cfg->consent_retry_interval_us = 1000000;
  cfg->consent_expiry_us = 30000000;
  cfg->icmp_confirm_us = 150000;
  cfg->seed = 0x6c6976656e657373ull;
}

int parley__liveness_config_validate(const parley__liveness_config *c) {
  if (!c) return PARLEY_EINVAL;
  if (c->suspect_after_us <= 0 || c->probe_interval_us <= 0 || c->lost_after_us <= 0 ||
      c->lost_probe_interval_us <= 0 || c->consent_interval_us <= 0 ||
      c->consent_retry_after_us <= 0 || c->consent_retry_interval_us <= 0 ||
      c->consent_expiry_us <= 0 || c->media_timeout_us < 0 || c->icmp_confirm_us <= 0)
    return PARLEY_EINVAL;
  if (c->suspect_after_us >= c->lost_after_us) return PARLEY_EINVAL;
  if (!(c->consent_jitter >= 0.0 && c->consent_jitter < 1.0)) return PARLEY_EINVAL; /* rejects NaN */
  if ((double)c->consent_interval_us * (1.0 + c->consent_jitter) >= (double)c->consent_expiry_us)
    return PARLEY_EINVAL;
  if (c->consent_retry_after_us >= c->consent_expiry_us) return PARLEY_EINVAL;
  return 0;
}

parley__liveness *parley__liveness_new(const parley__liveness_config *cfg, parley__event_queue *events,
                                       int *err) {
  parley__liveness_config def;
  if (!cfg) {
    parley__liveness_config_init(&def);
    cfg = &def;
  }
  int rc = parley__liveness_config_validate(cfg);
  if (rc == 0 && (!events || !events->slots || events->capacity == 0)) rc = PARLEY_EINVAL;
  if (rc) {
    if (err) *err = rc;
    return NULL;
  }
  parley__liveness *m = calloc(1, sizeof *m);
  if (!m) {
    if (err) *err = PARLEY_ENOMEM;
    return NULL;
  }
  m->cfg = *cfg;
  m->guard.lock = cfg->guard;
  m->events = events;
  parley__rng_seed(&m->rng, cfg->seed);
  m->ph = PH_IDLE;
  m->ice = PARLEY_ICE_NEW;
  m->peer = PARLEY_PEER_NEW;
  m->now_us = INT64_MIN;
  m->first_probe_us = INT64_MAX;
  m->remote_sending = true;
  if (err) *err = 0;
  return m;
}

void parley__liveness_free(parley__liveness *m) { free(m); }

/* ---- event helpers ---- */

static void emit(parley__liveness *m, const parley__event *ev) {
  if (parley__event_queue_push(m->events, ev) != 0) m->push_err = PARLEY_EFULL;
}

static parley__event make(parley_event_kind kind, int64_t now_us) {
  parley__event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.now_us = now_us;
  return ev;
}

static void set_ice(parley__liveness *m, int64_t now_us, parley_ice_state s) {
  if (m->ice == s) return;
  m->ice = s;
  parley__event ev = make(PARLEY_EVENT_ICE_STATE_CHANGED, now_us);
  ev.ice_state = s;
  emit(m, &ev);
  parley_peer_state p = parley__peer_state_from_ice(s);
  if (p == m->peer) return;
  m->peer = p;
  ev = make(PARLEY_EVENT_PEER_STATE_CHANGED, now_us);
  ev.peer_state = p;
  emit(m, &ev);
}

static void track_start(parley__liveness *m, int64_t now_us, uint32_t ssrc) {
  m->track_known = true;
  m->track_live = true;
  m->track_ssrc = ssrc;
  m->last_media_us = now_us;
  m->hung_up = false;
  parley__event ev = make(PARLEY_EVENT_TRACK_STARTED, now_us);
  ev.ssrc = ssrc;
  emit(m, &ev);
}

static void track_stop(parley__liveness *m, int64_t now_us, parley_stop_reason why) {
  if (!m->track_live) return;
  m->track_live = false;
  parley__event ev = make(PARLEY_EVENT_TRACK_STOPPED, now_us);
  ev.ssrc = m->track_ssrc;
  ev.stop_reason = why;
  emit(m, &ev);
}

static void interrupt(parley__liveness *m, int64_t now_us, parley_interrupt_code code,
                      const char *msg) {
  if (m->interrupted || m->hung_up) return; /* one per outage; none after the peer hung up */
  m->interrupted = true;
  m->outage_code = code;
  parley__event ev = make(PARLEY_EVENT_INTERRUPTED, now_us);
  ev.code = code;
  snprintf(ev.message, sizeof ev.message, "%s", msg);
  emit(m, &ev);
}

/* ---- timers ---- */

/* The next time a periodic timer fires: keep the cadence unless the owner ticked late. */
static int64_t advance(int64_t due_us, int64_t period_us, int64_t now_us) {
  int64_t n = due_us + period_us;
  return n > now_us ? n : now_us + period_us;
}

static void schedule_consent(parley__liveness *m, int64_t now_us) {
  const parley__liveness_config *c = &m->cfg;
  bool overdue = now_us - m->last_consent_rx_us >= c->consent_retry_after_us;
  int64_t base = overdue ? c->consent_retry_interval_us : c->consent_interval_us;
  double scale = 1.0 + c->consent_jitter * (2.0 * parley__rng_uniform(&m->rng) - 1.0);
  int64_t period = (int64_t)((double)base * scale);
  if (period < 1) period = 1;
  int64_t next = now_us + period;
  int64_t retry_at = m->last_consent_rx_us + c->consent_retry_after_us;
  if (!overdue && next > retry_at) next = retry_at; /* an unanswered check is retried sooner */
  m->next_consent_us = next;
}

/* Evidence (or a new phase) ends a suspicion: ICMP errors counted so far no longer count. */
static void clear_suspicion(parley__liveness *m) {
  m->suspect = false;
  m->icmp_errors = 0;
  m->sock_errno = 0;
  m->first_probe_us = INT64_MAX;
}

static void start_timers(parley__liveness *m, int64_t now_us) {
  m->last_rx_us = now_us;
  m->last_consent_rx_us = now_us;
  clear_suspicion(m);
  m->next_consent_us = now_us; /* one check at once: its answer measures the round trip (ICMP window) */
}

/* ---- transitions ---- */

/* The outage message's tail: the socket error that came with the silence, by name and text, so the
 * app can tell a refused port from a lost route (glibc's tables: no allocation, no locale). */
static void socket_error_tail(const parley__liveness *m, char *msg, size_t cap) {
  if (m->sock_errno <= 0) return;
  size_t n = strlen(msg);
  const char *name = strerrorname_np(m->sock_errno), *text = strerrordesc_np(m->sock_errno);
  if (name && text) snprintf(msg + n, cap - n, "; %s: %s", name, text);
  else snprintf(msg + n, cap - n, "; errno %d", m->sock_errno);
}

static void declare_outage(parley__liveness *m, int64_t now_us, parley_interrupt_code code) {
  char msg[PARLEY__EVENT_MESSAGE_MAX];
  if (code == PARLEY_INTERRUPT_PEER_GONE)
    snprintf(msg, sizeof msg, "peer gone: its port is unreachable, probes unanswered");
  else
    snprintf(msg, sizeof msg, "nothing from the peer for %lld ms, probes unanswered",
             (long long)((now_us - m->last_rx_us) / 1000));
  socket_error_tail(m, msg, sizeof msg);
  m->outage_errno = m->sock_errno;
  m->ph = PH_LOST;
  clear_suspicion(m);
  m->outage_start_us = now_us;
  m->next_probe_us = now_us + m->cfg.lost_probe_interval_us;
  m->stats.outages++;
  set_ice(m, now_us, PARLEY_ICE_DISCONNECTED);
  track_stop(m, now_us, code == PARLEY_INTERRUPT_PEER_GONE ? PARLEY_STOP_PEER_GONE : PARLEY_STOP_TIMEOUT);
  interrupt(m, now_us, code, msg);
}

static void fail_consent(parley__liveness *m, int64_t now_us) {
  char msg[PARLEY__EVENT_MESSAGE_MAX];
  snprintf(msg, sizeof msg, "consent expired: no answer for %lld ms, stopped sending",
           (long long)((now_us - m->last_consent_rx_us) / 1000));
  socket_error_tail(m, msg, sizeof msg);
  if (m->ph != PH_LOST) m->outage_start_us = now_us;
  m->ph = PH_FAILED;
  clear_suspicion(m);
  set_ice(m, now_us, PARLEY_ICE_FAILED);
  track_stop(m, now_us, PARLEY_STOP_TIMEOUT);
  interrupt(m, now_us, PARLEY_INTERRUPT_CONSENT_EXPIRED, msg);
}

static void recover(parley__liveness *m, int64_t now_us) {
  m->ph = PH_CONNECTED;
  m->last_rx_us = now_us;
  clear_suspicion(m);
  set_ice(m, now_us, PARLEY_ICE_CONNECTED);
  if (m->interrupted) {
    m->interrupted = false;
    parley__event ev = make(PARLEY_EVENT_RESUMED, now_us);
    ev.code = m->outage_code;
    snprintf(ev.message, sizeof ev.message, "the peer answered again after %lld ms%s",
             (long long)((now_us - m->outage_start_us) / 1000),
             m->outage_errno == EADDRNOTAVAIL ? ", on a new path after a local address change" : "");
    emit(m, &ev);
  }
}

/* Any authenticated arrival from the peer. */
static void evidence(parley__liveness *m, int64_t now_us) {
  if (m->ph == PH_CONNECTED) {
    m->last_rx_us = now_us;
    clear_suspicion(m);
  } else if (m->ph == PH_LOST) {
    recover(m, now_us);
  }
}

/* Common entry check: monitor, time order, not closed. */
static int enter(parley__liveness *m, int64_t now_us) {
  if (!m) return PARLEY_EINVAL;
  PARLEY__GUARD_CHECK(&m->guard, "a parley__liveness input or tick");
  if (now_us < m->now_us) return PARLEY_EINVAL;
  if (m->ph == PH_CLOSED) return PARLEY_ESTATE;
  m->now_us = now_us;
  m->push_err = 0;
  return 0;
}

/* ---- inputs ---- */

int parley__liveness_on_ice_checking(parley__liveness *m, int64_t now_us) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  /* W3C: an ICE restart while connected keeps the connected state; only new/failed move to checking. */
  if (m->ph == PH_IDLE || m->ph == PH_FAILED) set_ice(m, now_us, PARLEY_ICE_CHECKING);
  return m->push_err;
}

int parley__liveness_on_ice_connected(parley__liveness *m, int64_t now_us) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  switch (m->ph) {
    case PH_IDLE:
      m->ph = PH_CONNECTED;
      set_ice(m, now_us, PARLEY_ICE_CONNECTED);
      start_timers(m, now_us);
      break;
    case PH_FAILED:
      recover(m, now_us);
      start_timers(m, now_us);
      break;
    default: /* a (new) selected pair: the successful check is evidence and consent */
      evidence(m, now_us);
      m->last_consent_rx_us = now_us;
      break;
  }
  return m->push_err;
}

int parley__liveness_on_rtp(parley__liveness *m, int64_t now_us, uint32_t ssrc, bool decodable) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  if (!decodable) {
    m->stats.undecodable_rtp++;
    return 0;
  }
  evidence(m, now_us);
  if (m->ph != PH_CONNECTED || !m->remote_sending) return m->push_err;
  if (m->have_retired && ssrc == m->retired_ssrc) return m->push_err; /* late packets of an ended ssrc */
  if (m->track_live && ssrc == m->track_ssrc) {
    m->last_media_us = now_us;
  } else {
    if (m->track_live) {
      track_stop(m, now_us, PARLEY_STOP_SSRC_CHANGED);
      m->have_retired = true;
      m->retired_ssrc = m->track_ssrc;
    }
    track_start(m, now_us, ssrc);
  }
  return m->push_err;
}

int parley__liveness_on_rtcp(parley__liveness *m, int64_t now_us) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  evidence(m, now_us);
  return m->push_err;
}

int parley__liveness_on_rtcp_bye(parley__liveness *m, int64_t now_us, uint32_t ssrc) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  evidence(m, now_us);
  if (m->track_known && ssrc == m->track_ssrc) {
    track_stop(m, now_us, PARLEY_STOP_BYE);
    m->hung_up = true;
    m->have_retired = true;
    m->retired_ssrc = ssrc;
  }
  return m->push_err;
}

int parley__liveness_on_remote_direction(parley__liveness *m, int64_t now_us,
                                         parley__liveness_direction dir) {
  if ((int)dir < (int)PARLEY__DIR_SENDRECV || (int)dir > (int)PARLEY__DIR_INACTIVE) return PARLEY_EINVAL;
  int rc = enter(m, now_us);
  if (rc) return rc;
  bool sending = dir == PARLEY__DIR_SENDRECV || dir == PARLEY__DIR_SENDONLY;
  if (!sending) track_stop(m, now_us, PARLEY_STOP_INACTIVE);
  m->remote_sending = sending;
  return m->push_err;
}

static int consent_evidence(parley__liveness *m, int64_t now_us) {
  int rc = enter(m, now_us);
  if (rc) return rc;
  if (m->ph != PH_CONNECTED && m->ph != PH_LOST) return 0; /* nothing outstanding: stale answer */
  evidence(m, now_us);
  m->last_consent_rx_us = now_us;
  return m->push_err;
}

int parley__liveness_on_probe_response(parley__liveness *m, int64_t now_us) {
  return consent_evidence(m, now_us);
}

int parley__liveness_on_consent_response(parley__liveness *m, int64_t now_us) {
  return consent_evidence(m, now_us);
}

/* How long the first probe since the last evidence may go unanswered before ICMP errors are believed:
 * its retransmission timeout in RFC 6298 terms (srtt + 4 rttvar, at least 20 ms over srtt), so that a
 * live peer's answer, delayed by jitter, still beats it. At most lost_after / 2. */
static int64_t icmp_confirm_us(const parley__liveness *m) {
  if (m->srtt_us == 0) return m->cfg.icmp_confirm_us;
  int64_t margin = 4 * m->rttvar_us;
  int64_t w = m->srtt_us + (margin > 20000 ? margin : 20000);
  int64_t cap = m->cfg.lost_after_us / 2; /* decide before the silence makes it network-lost */
  return w < cap ? w : cap;
}

/* Peer-gone once ICMP keeps coming (>= 2 errors) and the probes fail too (the first one unanswered for
 * its round trip): with nothing from the peer in between, as evidence clears the count. */
static bool icmp_proved(const parley__liveness *m, int64_t now_us) {
  return m->icmp_errors >= 2 && m->first_probe_us != INT64_MAX &&
         now_us - m->first_probe_us >= icmp_confirm_us(m);
}

static void start_probing(parley__liveness *m, int64_t now_us) {
  if (m->suspect) return;
  m->suspect = true;
  m->next_probe_us = now_us;
}

int parley__liveness_on_socket_error(parley__liveness *m, int64_t now_us, int errno_value) {
  if (errno_value <= 0) return PARLEY_EINVAL;
  int rc = enter(m, now_us);
  if (rc) return rc;
  if (m->ph != PH_CONNECTED) return 0;
  m->sock_errno = errno_value;
  if (errno_value == ECONNREFUSED) {
    /* Anyone can forge one (it only has to quote our addresses): a reason to probe, not a verdict. */
    if (m->icmp_errors < INT32_MAX) m->icmp_errors++;
    start_probing(m, now_us);
    if (icmp_proved(m, now_us)) declare_outage(m, now_us, PARLEY_INTERRUPT_PEER_GONE);
  } else if (errno_value == ENETUNREACH || errno_value == EHOSTUNREACH || errno_value == ENETDOWN ||
             errno_value == EADDRNOTAVAIL) {
    start_probing(m, now_us);
  }
  return m->push_err;
}

void parley__liveness_on_rtt(parley__liveness *m, int64_t rtt_us) {
  if (!m || rtt_us <= 0 || rtt_us > 10000000) return;
  PARLEY__GUARD_CHECK(&m->guard, __func__);
  if (m->srtt_us == 0) { /* RFC 6298 2.2 and 2.3 */
    m->srtt_us = rtt_us;
    m->rttvar_us = rtt_us / 2;
    return;
  }
  int64_t dev = m->srtt_us > rtt_us ? m->srtt_us - rtt_us : rtt_us - m->srtt_us;
  m->rttvar_us += (dev - m->rttvar_us) / 4;
  m->srtt_us += (rtt_us - m->srtt_us) / 8;
}

int parley__liveness_close(parley__liveness *m, int64_t now_us) {
  if (m && m->ph == PH_CLOSED) return 0;
  int rc = enter(m, now_us);
  if (rc) return rc;
  m->track_live = false; /* the app ended the call: no track-stopped */
  clear_suspicion(m);
  m->ph = PH_CLOSED;
  set_ice(m, now_us, PARLEY_ICE_CLOSED);
  return m->push_err;
}

/* ---- time ---- */

int parley__liveness_tick(parley__liveness *m, int64_t now_us) {
  int rc = enter(m, now_us);
  if (rc == PARLEY_ESTATE) return 0;
  if (rc) return rc;
  if (m->ph != PH_CONNECTED && m->ph != PH_LOST) return 0;
  const parley__liveness_config *c = &m->cfg;
  int actions = 0;
  if (now_us - m->last_consent_rx_us >= c->consent_expiry_us) {
    fail_consent(m, now_us);
    return m->push_err ? m->push_err : 0;
  }
  if (m->ph == PH_CONNECTED) {
    int64_t silence = now_us - m->last_rx_us;
    if (icmp_proved(m, now_us)) {
      declare_outage(m, now_us, PARLEY_INTERRUPT_PEER_GONE);
    } else if (silence >= c->lost_after_us) {
      declare_outage(m, now_us, PARLEY_INTERRUPT_NETWORK_LOST);
    } else if (m->suspect || silence >= c->suspect_after_us) {
      start_probing(m, now_us);
      if (now_us >= m->next_probe_us) {
        actions |= PARLEY__LIVENESS_SEND_PROBE;
        m->next_probe_us = advance(m->next_probe_us, c->probe_interval_us, now_us);
        if (m->first_probe_us == INT64_MAX) m->first_probe_us = now_us;
      }
    }
    if (m->ph == PH_CONNECTED && m->track_live && m->remote_sending && c->media_timeout_us > 0 &&
        now_us - m->last_media_us >= c->media_timeout_us)
      track_stop(m, now_us, PARLEY_STOP_TIMEOUT); /* path alive, sender silent: no interruption */
  } else if (now_us >= m->next_probe_us) {
    actions |= PARLEY__LIVENESS_SEND_PROBE;
    m->next_probe_us = advance(m->next_probe_us, c->lost_probe_interval_us, now_us);
  }
  if (now_us >= m->next_consent_us) {
    actions |= PARLEY__LIVENESS_SEND_CONSENT;
    schedule_consent(m, now_us);
  }
  if (actions & PARLEY__LIVENESS_SEND_PROBE) m->stats.probes_requested++;
  if (actions & PARLEY__LIVENESS_SEND_CONSENT) m->stats.consent_checks_requested++;
  return m->push_err ? m->push_err : actions;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t parley__liveness_next_deadline_us(const parley__liveness *m) {
  if (!m) return INT64_MAX;
  const parley__liveness_config *c = &m->cfg;
  if (m->ph == PH_CONNECTED) {
    int64_t d = min64(m->next_consent_us, m->last_consent_rx_us + c->consent_expiry_us);
    d = min64(d, m->last_rx_us + c->lost_after_us);
    d = min64(d, m->suspect ? m->next_probe_us : m->last_rx_us + c->suspect_after_us);
    if (m->icmp_errors >= 2 && m->first_probe_us != INT64_MAX)
      d = min64(d, m->first_probe_us + icmp_confirm_us(m));
    if (m->track_live && m->remote_sending && c->media_timeout_us > 0)
      d = min64(d, m->last_media_us + c->media_timeout_us);
    return d;
  }
  if (m->ph == PH_LOST)
    return min64(min64(m->next_probe_us, m->next_consent_us),
                 m->last_consent_rx_us + c->consent_expiry_us);
  return INT64_MAX;
}

parley_ice_state parley__liveness_ice_state(const parley__liveness *m) {
  return m ? m->ice : PARLEY_ICE_CLOSED;
}

parley_peer_state parley__liveness_peer_state(const parley__liveness *m) {
  return m ? m->peer : PARLEY_PEER_CLOSED;
}

bool parley__liveness_interrupted(const parley__liveness *m) { return m && m->interrupted; }

void parley__liveness_get_stats(const parley__liveness *m, parley__liveness_stats *out) {
  if (!out) return;
  if (!m) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = m->stats;
}
