/* call_dtls.c: a call's DTLS-SRTP (transport/dtls.h): the engine's certificate, the session chosen by
 * the peer's a=fingerprint and a=setup, its handshake over the selected ICE pair, the SRTP sessions
 * keyed from it, close_notify both ways, and the peer-connection state that combines ICE and DTLS (W3C:
 * connecting until both are connected; failed when either failed, with DTLS's reason as the message).
 * Threads: the network thread and app threads, under eng->lock (see call.c). */
#define _GNU_SOURCE
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/call_internal.h"

/* ---- the engine's certificate ---- */

int parley__call_cert_init(parley_engine *e) {
  int err = 0;
  e->dtls_cert = parley__dtls_cert_new(e->cfg.dtls_certificate_pem, e->cfg.dtls_private_key_pem, &err);
  e->cfg.dtls_certificate_pem = e->cfg.dtls_private_key_pem = NULL; /* used; the strings are not kept */
  return err;
}

void parley__call_cert_free(parley_engine *e) {
  parley__dtls_cert_free(e->dtls_cert);
  e->dtls_cert = NULL;
}

const char *parley__call_fingerprint(const parley_call *c) {
  return parley__dtls_cert_fingerprint(c->eng->dtls_cert);
}

/* ---- peer-connection state ---- */

/* W3C RTCPeerConnectionState from the ICE side's (the monitor's) and the DTLS transport's. */
static parley_peer_state combined(const parley_call *c) {
  parley_peer_state p = c->peer_ice;
  if (!c->dtls || p == PARLEY_PEER_CLOSED) return p;
  parley__dtls_state d = parley__dtls_get_state(c->dtls);
  if (d == PARLEY__DTLS_FAILED) return PARLEY_PEER_FAILED;
  if (p == PARLEY_PEER_CONNECTED && d != PARLEY__DTLS_CONNECTED && d != PARLEY__DTLS_CLOSED)
    return PARLEY_PEER_CONNECTING;
  return p;
}

void parley__call_post_peer_state(parley_call *c, int64_t now, const char *message) {
  parley_peer_state want = combined(c);
  if (want == c->peer_shown) return;
  parley__event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_PEER_STATE_CHANGED;
  ev.now_us = now;
  ev.peer_state = c->peer_shown = want;
  if (message) snprintf(ev.message, sizeof ev.message, "%s", message);
  parley__engine_post(c->eng, c, &ev);
}

/* ---- the session ---- */

/* Where DTLS datagrams go: the selected pair, or before there is one, where the peer's came from. */
static void dtls_send(void *ctx, const uint8_t *buf, size_t len) {
  parley_call *c = ctx;
  int local = c->dtls_local;
  parley__netaddr remote = c->dtls_remote;
  if (parley__ice_selected_pair(c->ice, &local, &remote) != 0 && !c->dtls_has_path) return;
  parley__call_send(c, local, &remote, buf, len);
}

int parley__call_dtls_configure(parley_call *c, const parley__sdp_media *m, bool offer, const char **why) {
  parley__dtls_fingerprint fp;
  int r = parley__dtls_fingerprint_parse(m->fingerprint, strlen(m->fingerprint), &fp);
  if (r) {
    *why = r == PARLEY_ENOTSUP ? "a=fingerprint: unsupported hash function (sha-1/224/256/384/512 only)"
                               : "malformed a=fingerprint";
    return r;
  }
  /* RFC 5763 / 8842: the offerer says actpass (or imposes a role), the answerer takes active. An
   * offer without a=setup is taken as actpass; an answer without it as active (RFC 4145's default). */
  parley__dtls_role role;
  switch (m->setup) {
  case PARLEY__SDP_SETUP_ACTPASS:
    if (!offer) {
      *why = "a=setup:actpass in an answer";
      return PARLEY_EPARSE;
    }
    role = PARLEY__DTLS_CLIENT;
    break;
  case PARLEY__SDP_SETUP_NONE: role = offer ? PARLEY__DTLS_CLIENT : PARLEY__DTLS_SERVER; break;
  case PARLEY__SDP_SETUP_ACTIVE: role = PARLEY__DTLS_SERVER; break;
  case PARLEY__SDP_SETUP_PASSIVE: role = PARLEY__DTLS_CLIENT; break;
  default: *why = "a=setup:holdconn is not supported"; return PARLEY_ENOTSUP;
  }
  if (c->dtls) {
    /* A re-offer (an ICE restart, a direction change) keeps the association if the peer is the same. */
    if (c->dtls_peer.digest_len == fp.digest_len && memcmp(c->dtls_peer.digest, fp.digest, fp.digest_len) == 0)
      return 0;
    *why = "the peer's certificate changed: a new DTLS association is not supported in a call";
    return PARLEY_ENOTSUP;
  }
  parley__dtls_config dc = {.role = role, .cert = c->eng->dtls_cert, .peer = fp, .send = dtls_send, .ctx = c};
  int err;
  c->dtls = parley__dtls_new(&dc, &err);
  if (!c->dtls) {
    *why = "cannot create the DTLS session";
    return err;
  }
  c->dtls_peer = fp;
  c->dtls_role = role;
  return 0;
}

/* After the session moved: keys into SRTP once connected; the peer's close_notify ends its track like
 * RTCP BYE; a failure fails the call with DTLS's reason. */
static void after(parley_call *c, parley__dtls_state before, int64_t now) {
  parley__dtls_state st = parley__dtls_get_state(c->dtls);
  if (st == before) return;
  const char *msg = NULL;
  if (st == PARLEY__DTLS_CONNECTED) {
    parley__srtp_suite suite;
    uint8_t local[PARLEY__SRTP_MAX_KEY_SALT_LEN], remote[PARLEY__SRTP_MAX_KEY_SALT_LEN];
    size_t n = 0;
    int err = parley__dtls_srtp_keys(c->dtls, &suite, local, remote, &n);
    parley__srtp *tx = err ? NULL : parley__srtp_new(suite, PARLEY__SRTP_OUTBOUND, local, n, &err);
    parley__srtp *rx = err ? NULL : parley__srtp_new(suite, PARLEY__SRTP_INBOUND, remote, n, &err);
    OPENSSL_cleanse(local, sizeof local);
    OPENSSL_cleanse(remote, sizeof remote);
    if (!tx || !rx) {
      parley__srtp_free(tx);
      parley__srtp_free(rx);
      (void)parley__dtls_close(c->dtls, now);
      c->peer_ice = PARLEY_PEER_FAILED;
      msg = "cannot key SRTP from the DTLS handshake";
    } else {
      parley__srtp_free(c->tx_srtp);
      parley__srtp_free(c->rx_srtp);
      c->tx_srtp = tx;
      c->rx_srtp = rx;
      parley__call_release_input(c);
    }
  } else if (st == PARLEY__DTLS_CLOSED && parley__dtls_closed_by_peer(c->dtls)) {
    if (c->mon && c->rx_valid) (void)parley__liveness_on_rtcp_bye(c->mon, now, c->remote_ssrc);
  } else if (st == PARLEY__DTLS_FAILED) {
    msg = parley__dtls_failure_reason(c->dtls);
  }
  parley__call_drain_events(c);
  parley__call_post_peer_state(c, now, msg);
}

void parley__call_dtls_receive(parley_call *c, int local, const parley__netaddr *src, uint8_t *buf, size_t len,
                               int64_t now) {
  if (!c->dtls) {
    /* We offered and the answer is not here yet, but the answerer's ICE already chose a pair and sent
     * its ClientHello: keep it (the last one) rather than make it wait for a retransmission. */
    if (c->sig == PARLEY_SIGNALING_HAVE_LOCAL_OFFER && len <= sizeof c->dtls_early) {
      memcpy(c->dtls_early, buf, len);
      c->dtls_early_len = len;
      c->dtls_early_local = local;
      c->dtls_early_src = *src;
    }
    return;
  }
  /* Before our agent selected a pair the peer's may have: answer where its first flight came from. */
  if (parley__ice_selected_pair(c->ice, NULL, NULL) != 0) {
    if (c->dtls_has_path && (c->dtls_local != local || !parley__netaddr_equal(&c->dtls_remote, src))) return;
    c->dtls_local = local;
    c->dtls_remote = *src;
    c->dtls_has_path = true;
  } else if (!parley__ice_accept_media(c->ice, local, src)) {
    return;
  }
  parley__dtls_state before = parley__dtls_get_state(c->dtls);
  if (before == PARLEY__DTLS_NEW) (void)parley__dtls_start(c->dtls, now);
  (void)parley__dtls_receive(c->dtls, buf, len, now);
  after(c, before, now);
}

int64_t parley__call_dtls_deadline(const parley_call *c, int64_t now) {
  if (!c->dtls) return INT64_MAX;
  if (c->dtls_early_len) return now;
  /* Not started yet: start as soon as ICE has selected a pair (the service runs on ICE's events). */
  if (parley__dtls_get_state(c->dtls) == PARLEY__DTLS_NEW)
    return parley__ice_selected_pair(c->ice, NULL, NULL) == 0 ? now : INT64_MAX;
  return parley__dtls_next_deadline_us(c->dtls);
}

void parley__call_dtls_service(parley_call *c, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  if (!c->dtls) return;
  if (c->dtls_early_len) { /* what came before our session */
    size_t n = c->dtls_early_len;
    c->dtls_early_len = 0;
    parley__call_dtls_receive(c, c->dtls_early_local, &c->dtls_early_src, c->dtls_early, n, now);
  }
  parley__dtls_state before = parley__dtls_get_state(c->dtls);
  if (before == PARLEY__DTLS_NEW) {
    if (parley__ice_selected_pair(c->ice, NULL, NULL) != 0) return;
    (void)parley__dtls_start(c->dtls, now); /* the client sends its ClientHello */
  } else if (parley__dtls_next_deadline_us(c->dtls) <= now) {
    (void)parley__dtls_tick(c->dtls, now);
  }
  after(c, before, now);
}

void parley__call_dtls_close(parley_call *c, int64_t now) {
  if (c->dtls) (void)parley__dtls_close(c->dtls, now);
}

void parley__call_dtls_free(parley_call *c) {
  parley__dtls_free(c->dtls);
  c->dtls = NULL;
  c->dtls_has_path = false;
  OPENSSL_cleanse(c->dtls_early, c->dtls_early_len);
  c->dtls_early_len = 0;
}
