/* call.c: one call context's life and state: creation and freeing, its listeners, the signaling state
 * (engine/signaling.h), ICE over the call's own UDP sockets (ice.h, udp.h; call_handover.c opens them)
 * with the liveness monitor (liveness.h via ice_liveness.h), the network thread's service of the call,
 * start, ICE restart, hangup and teardown. Its descriptions (SDP offer/answer, candidates) are
 * call_sdp.c; its media over the network (RTP/RTCP/SRTP, the chains it hands to the audio thread)
 * call_media.c; its relayed candidates (TURN allocations, what goes through them) call_turn.c.
 *
 * Owns: the sockets, agent, monitor, SRTP sessions and, from start to hangup, the parley__call_media
 * (chains and the two SPSC rings). Threads: the parley_call_* functions run on app threads and the
 * network-side service functions on the network thread, all under eng->lock; the audio thread only
 * sees the media through the slot table. Nothing here runs on the audio thread.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/call_internal.h"
#include "transport/demux.h"
#include "transport/ice_sdp.h"

/* ---- events ---- */

/* Posts the monitor's queued events, then the ICE state refined by the agent's (events.h,
 * parley__ice_state_reported): completed once checking is over, per W3C. */
void parley__call_drain_events(parley_call *c) {
  parley__event ev;
  while (parley__event_queue_pop(&c->evq, &ev) == 0) {
    if (ev.kind == PARLEY_EVENT_ICE_STATE_CHANGED) c->ice_monitor = c->ice_shown = ev.ice_state;
    if (ev.kind == PARLEY_EVENT_PEER_STATE_CHANGED) { /* combined with DTLS's */
      c->peer_ice = ev.peer_state;
      parley__call_post_peer_state(c, ev.now_us, ev.message);
      continue;
    }
    parley__engine_post(c->eng, c, &ev);
  }
  if (!c->ice) return;
  parley_ice_state want =
      parley__ice_state_reported(c->ice_monitor, parley__ice_get_state(c->ice), c->ice_shown);
  if (want == c->ice_shown) return;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_ICE_STATE_CHANGED;
  ev.now_us = now_us(c->eng);
  ev.ice_state = c->ice_shown = want;
  parley__engine_post(c->eng, c, &ev);
}

void parley__call_post_signaling(parley_call *c, parley__sdp_op op) {
  PARLEY__ENGINE_LOCKED(c->eng);
  parley__event ev;
  int r = parley__signaling_apply(&c->sig, op, now_us(c->eng), &ev);
  if (r == 1) parley__engine_post(c->eng, c, &ev);
}

/* Media flows once the call started, ICE selected a pair and, with DTLS, its handshake is done (which
 * may come first: the offerer's DTLS can finish on the answerer's path before its own agent selects):
 * then a held input file starts (input_file_at_media). */
void parley__call_release_input(parley_call *c) {
  if (c->started && c->ice_pairs_selected > 0 &&
      (!c->dtls || parley__dtls_get_state(c->dtls) == PARLEY__DTLS_CONNECTED))
    parley__device_input_release(c->eng->dev);
}

/* ---- ICE callbacks (network or app thread, under lock) ---- */

void parley__call_send(parley_call *c, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  PARLEY__ENGINE_LOCKED(c->eng);
  if (parley__call_turn_send(c, local, dst, buf, len) || c->eng->relay_only) return; /* call_turn.c */
  if (local < 0 || local >= c->nsocks || c->socks[local].fd < 0) return;
  parley__udp_error uerr;
  if (parley__udp_send(&c->socks[local], dst, buf, len, &uerr) == PARLEY_ENETWORK && c->mon)
    (void)parley__ice_liveness_on_socket_error(&c->il, local, &uerr.peer, uerr.sys_errno, now_us(c->eng));
}

static void ice_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  parley__call_send(ctx, local, dst, buf, len);
}

/* "candidate:..." (RFC 8839 syntax, without "a=") into buf. 0 or PARLEY_EINVAL. */
static int candidate_line(const parley__ice_candidate *ic, char *buf, size_t cap) {
  parley__sdp_candidate sc;
  if (parley__ice_candidate_to_sdp(&sc, ic) != 0) return PARLEY_EINVAL;
  return parley__sdp_candidate_format(&sc, buf, cap) < 0 ? PARLEY_EINVAL : 0;
}

static void ice_event(void *ctx, const parley__ice_event *ev) {
  parley_call *c = ctx;
  if (!c->mon) return;
  if (ev->kind == PARLEY__ICE_EV_LOCAL_CANDIDATE && ev->candidate) {
    char line[PARLEY__SDP_CANDIDATE_LINE_MAX];
    if (candidate_line(ev->candidate, line, sizeof line) == 0)
      parley__engine_post_candidate(c->eng, c, line, ev->now_us);
  } else if (ev->kind == PARLEY__ICE_EV_GATHERING_DONE) {
    c->gathered = true;
    parley__engine_post_candidate(c->eng, c, "end-of-candidates", ev->now_us);
  }
  if (ev->kind == PARLEY__ICE_EV_SELECTED_PAIR) {
    c->ice_pairs_selected++;
    parley__call_release_input(c);
  }
  (void)parley__ice_liveness_on_ice_event(&c->il, ev);
  /* The monitor owns connected/disconnected; an agent that failed outright is reported here. */
  if (ev->kind == PARLEY__ICE_EV_STATE && ev->state == PARLEY_ICE_FAILED && !c->agent_failed_reported) {
    c->agent_failed_reported = true;
    parley__event out;
    memset(&out, 0, sizeof out);
    out.kind = PARLEY_EVENT_ICE_STATE_CHANGED;
    out.now_us = ev->now_us;
    out.ice_state = c->ice_monitor = c->ice_shown = PARLEY_ICE_FAILED;
    parley__engine_post(c->eng, c, &out);
    c->peer_ice = PARLEY_PEER_FAILED;
    parley__call_post_peer_state(c, ev->now_us, NULL);
  }
  parley__call_drain_events(c);
}

/* ---- transport set-up ---- */

static void liveness_config(const parley_engine_config *ec, parley__liveness_config *lc) {
  parley__liveness_config_init(lc);
  lc->suspect_after_us = (int64_t)ec->suspect_after_ms * 1000;
  lc->lost_after_us = (int64_t)ec->lost_after_ms * 1000;
  lc->media_timeout_us = (int64_t)ec->media_timeout_ms * 1000;
  lc->consent_expiry_us = (int64_t)ec->consent_expiry_ms * 1000;
  /* Keep the consent timers inside a shortened expiry (validate's constraints). */
  if (lc->consent_interval_us * 2 > lc->consent_expiry_us) lc->consent_interval_us = lc->consent_expiry_us / 4;
  if (lc->consent_retry_after_us * 2 > lc->consent_expiry_us)
    lc->consent_retry_after_us = lc->consent_expiry_us / 2;
  if (lc->consent_retry_interval_us * 4 > lc->consent_expiry_us)
    lc->consent_retry_interval_us = lc->consent_expiry_us / 8;
  if (lc->consent_interval_us < 1) lc->consent_interval_us = 1;
  if (lc->consent_retry_interval_us < 1) lc->consent_retry_interval_us = 1;
  lc->seed = ((uint64_t)rand32() << 32) | rand32();
}

int parley__call_make_local_key(parley_call *c, parley__srtp_suite suite, uint32_t tag) {
  parley__srtp_free(c->tx_srtp);
  c->tx_srtp = NULL;
  parley__sdes_crypto_wipe(&c->local_key);
  memset(&c->local_key, 0, sizeof c->local_key);
  c->local_key.tag = tag;
  c->local_key.suite = suite;
  int n = parley__srtp_generate_key(suite, c->local_key.key_salt, sizeof c->local_key.key_salt);
  if (n < 0) return n;
  c->local_key.key_salt_len = (size_t)n;
  int err;
  c->tx_srtp = parley__srtp_new(suite, PARLEY__SRTP_OUTBOUND, c->local_key.key_salt, (size_t)n, &err);
  return c->tx_srtp ? 0 : err;
}

/* Opens the sockets, creates the agent and the monitor, starts gathering. Idempotent. */
int parley__call_ensure_transport(parley_call *c, bool controlling) {
  if (c->ice) return 0;
  parley_engine *e = c->eng;
  int err = 0;
  parley__ice_config ic = {0};
  ic.role = controlling ? PARLEY__ICE_CONTROLLING : PARLEY__ICE_CONTROLLED;
  ic.send = ice_send;
  ic.on_event = ice_event;
  ic.ctx = c;
  ic.guard = &e->lock; /* the network thread and the API's callers share the agent under the lock */
  if (e->has_stun && !e->relay_only) {
    ic.has_stun_server = true;
    ic.stun_server = e->stun;
  }
  c->ice = parley__ice_new(&ic, &err);
  if (!c->ice) return err;
  c->controlling = controlling;
  int n = parley__call_open_socks(c, false, now_us(e));
  if (n <= 0) {
    err = n < 0 ? n : PARLEY_ENETWORK;
    goto fail;
  }
  parley__liveness_config lc;
  liveness_config(&e->cfg, &lc);
  lc.guard = &e->lock;
  parley__event_queue_init(&c->evq, c->evstore, PARLEY__CALL_EVQ);
  c->mon = parley__liveness_new(&lc, &c->evq, &err);
  if (!c->mon) goto fail;
  parley__ice_liveness_init(&c->il, c->ice, c->mon);
  parley__call_turn_start(c, now_us(e));
  err = parley__ice_start(c->ice, now_us(e));
  if (err) goto fail;
  parley__call_drain_events(c);
  parley__engine_wake(e);
  return 0;
fail:
  parley__call_turn_close(c, now_us(e));
  for (int i = 0; i < c->nsocks; i++) parley__udp_close(&c->socks[i]);
  c->nsocks = 0;
  parley__ice_free(c->ice);
  c->ice = NULL;
  parley__liveness_free(c->mon);
  c->mon = NULL;
  return err;
}

/* ---- network thread service (under lock) ---- */

int parley__call_fds(parley_call *c, int *fds, int cap) {
  int n = 0;
  for (int i = 0; i < c->nsocks && n < cap; i++)
    if (c->socks[i].fd >= 0) fds[n++] = c->socks[i].fd;
  return n + parley__call_turn_fds(c, fds + n, cap - n);
}

int64_t parley__call_net_deadline(parley_call *c, int64_t now) {
  if (!c->ice) return INT64_MAX;
  int64_t d = parley__ice_liveness_next_deadline_us(&c->il);
  if (c->media) {
    /* Drain just after the next audio period's predicted end (engine.c). */
    int64_t next = atomic_load_explicit(&c->eng->audio_next_end_us, memory_order_relaxed);
    int64_t tx = next + PARLEY__CALL_TX_AFTER_TICK_US;
    if (next == 0 || tx <= now) tx = now + PARLEY__CALL_MEDIA_POLL_US; /* overdue (or no period yet): retry shortly */
    if (tx < d) d = tx;
    if (c->next_rtcp_us < d) d = c->next_rtcp_us;
  }
  int64_t dt = parley__call_dtls_deadline(c, now);
  if (dt < d) d = dt;
  int64_t tt = parley__call_turn_deadline(c);
  if (tt < d) d = tt;
  int64_t dh = parley__call_handover_deadline(c);
  return dh < d ? dh : d;
}

void parley__call_demux(parley_call *c, int local, const parley__netaddr *src, uint8_t *buf, size_t n, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  switch (parley__demux_classify(buf, n)) {
  case PARLEY__DEMUX_STUN: (void)parley__ice_receive(c->ice, local, src, buf, n, now); break;
  case PARLEY__DEMUX_RTP:
    if (parley__ice_accept_media(c->ice, local, src)) parley__call_on_rtp(c, buf, n, now);
    break;
  case PARLEY__DEMUX_RTCP:
    if (parley__ice_accept_media(c->ice, local, src)) parley__call_on_rtcp(c, buf, n, now);
    break;
  case PARLEY__DEMUX_DTLS: parley__call_dtls_receive(c, local, src, buf, n, now); break;
  default: break;
  }
  parley__call_drain_events(c);
}

void parley__call_net_service(parley_call *c, int64_t now) {
  PARLEY__ENGINE_NET_THREAD(c->eng);
  PARLEY__ENGINE_LOCKED(c->eng);
  if (!c->ice) return;
  uint8_t buf[2048];
  for (int i = 0; i < c->nsocks; i++) {
    for (int k = 0; k < 256 && c->socks[i].fd >= 0; k++) {
      parley__netaddr src;
      parley__udp_error uerr;
      int n = parley__udp_recv(&c->socks[i], buf, sizeof buf, &src, &uerr);
      if (n == PARLEY_EAGAIN) break;
      if (n == PARLEY_ENETWORK) {
        if (!parley__call_turn_socket_error(c, i, &uerr, now))
          (void)parley__ice_liveness_on_socket_error(&c->il, i, &uerr.peer, uerr.sys_errno, now);
        continue;
      }
      if (n <= 0) continue;
      /* What a TURN server relays comes unwrapped, on the relayed candidate's local index. */
      int local = i;
      parley__netaddr from = src;
      uint8_t *p = buf;
      size_t len = (size_t)n;
      int t = parley__call_turn_receive(c, i, &src, buf, len, now, &local, &from, &p, &len);
      if (t == 0 || (t < 0 && c->eng->relay_only)) continue;
      parley__call_demux(c, local, &from, p, len, now);
    }
  }
  parley__call_turn_service(c, now);
  if (parley__ice_next_deadline_us(c->ice) <= now) parley__ice_tick(c->ice, now);
  if (parley__liveness_next_deadline_us(c->mon) <= now) (void)parley__ice_liveness_tick(&c->il, now);
  parley__call_dtls_service(c, now);
  parley__call_handover_service(c, now);
  if (c->media) {
    parley__call_drain_tx(c, now);
    if (now >= c->next_rtcp_us) {
      parley__call_send_rtcp(c, now, false);
      c->next_rtcp_us = now + PARLEY__CALL_RTCP_INTERVAL_US / 2 + (int64_t)(rand32() % PARLEY__CALL_RTCP_INTERVAL_US);
    }
  }
  parley__call_drain_events(c);
}

/* ---- teardown ---- */

/* close_notify, then RTCP BYE (both while the keys still exist). */
static void say_bye(parley_call *c, int64_t now) {
  parley__call_dtls_close(c, now);
  if (c->started) parley__call_send_rtcp(c, now, true);
}

static void teardown(parley_call *c, bool send_bye) {
  if (send_bye && !c->hungup) say_bye(c, now_us(c->eng));
  if (c->media) {
    atomic_store(&c->media->session_id, 0);
    parley__engine_detach_media(c->eng, c->slot);
    parley__engine_retire(c->eng, c->media, parley__call_media_free_any);
    c->media = NULL;
    c->slot = -1;
  }
  parley__call_turn_close(c, now_us(c->eng)); /* the release goes out before its socket closes */
  for (int i = 0; i < c->nsocks; i++) parley__udp_close(&c->socks[i]);
  c->nsocks = 0;
  parley__ice_free(c->ice);
  c->ice = NULL;
  parley__liveness_free(c->mon);
  c->mon = NULL;
  parley__call_dtls_free(c);
  parley__srtp_free(c->tx_srtp);
  parley__srtp_free(c->rx_srtp);
  c->tx_srtp = c->rx_srtp = NULL;
  parley__sdes_crypto_wipe(&c->local_key);
  free(c->remote_offer);
  c->remote_offer = NULL;
}

void parley__call_destroy(parley_call *c) {
  PARLEY__ENGINE_LOCKED(c->eng);
  teardown(c, true);
  parley__dispatch_unregister(c->eng, &c->tgt);
  free(c);
}

/* ---- what the engine, dispatch and sessions see of a call ---- */

parley__target *parley__call_target(parley_call *c) { return &c->tgt; }
uint64_t parley__call_serial(const parley_call *c) { return c->tgt.serial; }
parley_engine *parley__call_engine(const parley_call *c) { return c->eng; }
bool parley__call_is_hungup(const parley_call *c) { return c->hungup; }
parley_session *parley__call_session(const parley_call *c) { return c->session; }

void parley__call_set_session(parley_call *c, parley_session *s) {
  c->session = s;
  if (c->media) atomic_store(&c->media->session_id, s ? (uint32_t)c->tgt.serial : 0);
}

/* ---- public: lifecycle ---- */

int parley_call_new(parley_engine *e, parley_call **out) {
  if (out) *out = NULL;
  if (!e || !out) return PARLEY_EINVAL;
  parley_call *c = calloc(1, sizeof *c);
  if (!c) return PARLEY_ENOMEM;
  c->eng = e;
  c->sig = PARLEY_SIGNALING_STABLE;
  atomic_init(&c->volume_pct, 100);
  c->slot = -1;
  c->pt = PARLEY__CALL_OPUS_PT;
  c->audio_level_received = -1;
  parley__encoder_config oc;
  parley__encoder_config_init(&oc);
  c->loss_hint_pct = oc.expected_loss_pct; /* until the peer reports */
  c->loss_tracked = oc.expected_loss_pct / 100.0;
  c->rtt_ms = -1;
  c->fraction_lost = c->fraction_lost_received = -1;
  c->ssrc = rand32();
  c->seq = c->first_seq = (uint16_t)rand32();
  c->sess_id = rand32() & 0x7fffffffu;
  snprintf(c->cname, sizeof c->cname, "parley-%08x", rand32());
  for (int i = 0; i < PARLEY__CALL_MAX_SOCKS; i++) c->socks[i].fd = -1;
  pthread_mutex_lock(&e->lock);
  int slot = -1;
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (!e->calls[i]) {
      slot = i;
      break;
    }
  if (slot < 0) {
    pthread_mutex_unlock(&e->lock);
    free(c);
    return PARLEY_EFULL;
  }
  c->tgt.serial = e->next_serial++;
  e->calls[slot] = c;
  parley__dispatch_register(e, &c->tgt);
  pthread_mutex_unlock(&e->lock);
  *out = c;
  return 0;
}

int parley_call_free(parley_call *c) {
  if (!c) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  if (parley__target_has_listeners(e, &c->tgt)) return PARLEY_ESTATE;
  pthread_mutex_lock(&e->lock);
  parley__session_drop_call(c);
  teardown(c, true);
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (e->calls[i] == c) e->calls[i] = NULL;
  pthread_mutex_unlock(&e->lock);
  parley__dispatch_unregister(e, &c->tgt);
  free(c);
  return 0;
}

int parley_call_on(parley_call *call, parley_event_kind kind, parley_event_fn fn, void *user) {
  if (!call || (int)kind < 0 || kind >= PARLEY_EVENT_CALL_KIND_COUNT) return PARLEY_EINVAL;
  return parley__target_on(call->eng, &call->tgt, kind, fn, user);
}

int parley_call_off(parley_call *call, int listener_id) {
  if (!call) return PARLEY_EINVAL;
  return parley__target_off(call->eng, &call->tgt, listener_id);
}


/* ---- public: media ---- */

int parley_call_start(parley_call *c) {
  if (!c) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = 0;
  parley__call_media *m = NULL;
  if (c->hungup || c->started || c->sig != PARLEY_SIGNALING_STABLE || !c->remote_applied || !c->local_applied ||
      (!c->dtls && (!c->tx_srtp || !c->rx_srtp))) { /* DTLS: keys once its handshake is done */
    r = PARLEY_ESTATE;
    goto out;
  }
  r = parley__call_media_new(c, &m);
  if (r) goto out;
  int slot = parley__engine_attach_media(e, m);
  if (slot < 0) {
    parley__call_media_free(m);
    r = slot;
    goto out;
  }
  if (c->session) atomic_store(&m->session_id, (uint32_t)c->tgt.serial);
  c->media = m;
  c->slot = slot;
  c->started = true;
  c->next_rtcp_us = now_us(e) + PARLEY__CALL_RTCP_INTERVAL_US / 2;
  parley__call_release_input(c); /* ICE (and DTLS) connected first */
  parley__engine_wake(e);
out:
  pthread_mutex_unlock(&e->lock);
  return r;
}

int parley_call_restart_ice(parley_call *c) {
  if (!c) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = PARLEY_ESTATE;
  if (!c->hungup && c->ice && c->remote_applied && c->sig == PARLEY_SIGNALING_STABLE) {
    (void)parley__call_regather(c, now_us(e), NULL); /* no socket on an address that went away */
    r = parley__ice_restart(c->ice, now_us(e));
    if (r == 0) parley__engine_wake(e);
  }
  pthread_mutex_unlock(&e->lock);
  return r;
}

int parley_call_hangup(parley_call *c) {
  if (!c) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = parley__call_hangup_locked(c);
  pthread_mutex_unlock(&e->lock);
  return r;
}

int parley__call_hangup_locked(parley_call *c) {
  PARLEY__ENGINE_LOCKED(c->eng);
  parley_engine *e = c->eng;
  if (c->hungup) return PARLEY_ESTATE;
  int64_t now = now_us(e);
  say_bye(c, now);
  if (c->mon) {
    (void)parley__liveness_close(c->mon, now);
    parley__call_drain_events(c);
  }
  parley__call_post_signaling(c, PARLEY__SDP_CLOSE);
  teardown(c, false);
  c->hungup = true;
  parley__engine_post_closed(e, c, now);
  return 0;
}

/* The call's copy, and its media's while started (under the lock: media comes and goes with it). */
void parley__call_set_volume(parley_call *c, int volume_pct) {
  pthread_mutex_lock(&c->eng->lock);
  atomic_store_explicit(&c->volume_pct, volume_pct, memory_order_relaxed);
  if (c->media) atomic_store_explicit(&c->media->volume_pct, volume_pct, memory_order_relaxed);
  pthread_mutex_unlock(&c->eng->lock);
}

int parley_call_set_mute(parley_call *c, bool mute) {
  if (!c) return PARLEY_EINVAL;
  pthread_mutex_lock(&c->eng->lock);
  atomic_store_explicit(&c->muted, mute, memory_order_relaxed);
  if (c->media) atomic_store_explicit(&c->media->muted, mute, memory_order_relaxed);
  pthread_mutex_unlock(&c->eng->lock);
  return 0;
}

/* lost / expected clamped to 0..1 (duplicates make lost negative); -1 while nothing was expected. */
