/* call_sdp.c: a call's descriptions: SDP offers and answers (sdp.h), local and remote, with their ICE
 * credentials and candidates (ice_sdp.h), SRTP keying (DTLS's a=fingerprint/a=setup, or SDES keys),
 * Opus parameters, the WebRTC lines (BUNDLE, msid, trickle, rtcp-rsize, the audio-level and mid
 * extensions), and trickled candidates.
 *
 * Keying: our offers are DTLS-SRTP (UDP/TLS/RTP/SAVPF, a=fingerprint, a=setup:actpass): browsers and
 * WebRTC stacks require it and ignore a=crypto beside it (JSEP), some refuse an offer that has both,
 * and an SDES key in the SDP gives no forward secrecy. Never both in one offer: with the engine's
 * offer_sdes, for peers that do not do DTLS, the offer is SDES only (RTP/SAVPF, a=crypto). We answer
 * both: DTLS when the offer carries a=fingerprint, SDES (a=crypto) otherwise.
 * Threads: app threads, under eng->lock (see call.c). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/call_internal.h"
#include "transport/ice_sdp.h"

static void ip_text(const parley__netaddr *a, char *buf, size_t cap) {
  if (!inet_ntop(a->family == PARLEY__NETADDR_V6 ? AF_INET6 : AF_INET, a->ip, buf, (socklen_t)cap))
    snprintf(buf, cap, "0.0.0.0");
}


/* ---- public: SDP ---- */

/* The address and port an m-line shows: the first socket's, or with the relay policy none (RFC 8840's
 * 0.0.0.0 and 9, the host address never leaks: the relayed candidates trickle). */
static uint16_t default_addr(parley_call *c, char *ip, size_t ipcap) {
  if (c->eng->relay_only) {
    snprintf(ip, ipcap, "0.0.0.0");
    return 9;
  }
  ip_text(&c->socks[0].local, ip, ipcap);
  return c->socks[0].local.port;
}

static int local_sdp_common(parley_call *c, parley__sdp *s, char *ip, size_t ipcap) {
  parley__sdp_init(s);
  s->sess_id = c->sess_id;
  s->sess_version = ++c->sess_version;
  (void)default_addr(c, ip, ipcap);
  snprintf(s->origin_addr, sizeof s->origin_addr, "%s", ip);
  return 0;
}

static size_t local_candidates(parley_call *c, parley__sdp_candidate *out, size_t cap) {
  parley__ice_candidate ic[PARLEY__SDP_MAX_CANDIDATES];
  int n = parley__ice_local_candidates(c->ice, ic, PARLEY__SDP_MAX_CANDIDATES);
  if (n < 0) return 0;
  size_t k = 0;
  for (int i = 0; i < n && i < PARLEY__SDP_MAX_CANDIDATES && k < cap; i++)
    if (parley__ice_candidate_to_sdp(&out[k], &ic[i]) == 0) k++;
  return k;
}

static bool gathering_done(parley_call *c) { return c->gathered; }

static void local_crypto(parley_call *c, parley__sdp_crypto *out) {
  char val[PARLEY__SDP_CRYPTO_MAX + 96];
  memset(out, 0, sizeof *out);
  out->tag = c->local_key.tag;
  snprintf(out->suite, sizeof out->suite, "%s", parley__srtp_suite_name(c->local_key.suite));
  if (parley__sdes_crypto_format(&c->local_key, val, sizeof val) < 0) return;
  /* "tag suite key-params": keep the third field. */
  const char *p = strchr(val, ' ');
  p = p ? strchr(p + 1, ' ') : NULL;
  snprintf(out->key_params, sizeof out->key_params, "%s", p ? p + 1 : "");
  OPENSSL_cleanse(val, sizeof val);
}

/* a=msid: one stream and one track per call, named after the session and our SSRC. */
static void local_msid(const parley_call *c, char *buf, size_t cap) {
  snprintf(buf, cap, "parley-%llu audio-%08x", (unsigned long long)c->sess_id, (unsigned)c->ssrc);
}

int parley_call_create_offer(parley_call *c, char *sdp, size_t cap) {
  if (!c || !sdp || cap == 0) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r;
  parley__sdp *s = NULL;
  if (c->hungup || (c->sig != PARLEY_SIGNALING_STABLE && c->sig != PARLEY_SIGNALING_HAVE_LOCAL_OFFER)) {
    r = PARLEY_ESTATE;
    goto out;
  }
  r = parley__call_ensure_transport(c, true);
  if (r) goto out;
  /* SDES when the app asked for it (peers without DTLS), and in the re-offers (ICE restarts) of a call
   * that an SDES offer set up: its peer has no DTLS. */
  const bool sdes = e->cfg.offer_sdes || (c->remote_applied && !c->dtls && c->tx_srtp);
  if (sdes && !c->tx_srtp) {
    r = parley__call_make_local_key(c, PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, 1);
    if (r) goto out;
  }
  s = malloc(sizeof *s);
  if (!s) {
    r = PARLEY_ENOMEM;
    goto out;
  }
  char ip[64];
  local_sdp_common(c, s, ip, sizeof ip);
  s->media_count = 1;
  parley__sdp_media *m = &s->media[0];
  parley__sdp_media_init(m);
  snprintf(m->type, sizeof m->type, "audio");
  m->port = default_addr(c, ip, sizeof ip);
  if (sdes) { /* the app asked for SDES keys in the SDP (peers without DTLS, e.g. SIP gear) */
    snprintf(m->proto_text, sizeof m->proto_text, "RTP/SAVPF");
    m->proto = PARLEY__SDP_PROTO_RTP_SAVPF;
    local_crypto(c, &m->crypto[0]);
    m->crypto_count = 1;
  } else {
    snprintf(m->proto_text, sizeof m->proto_text, "UDP/TLS/RTP/SAVPF");
    m->proto = PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF;
    snprintf(m->fingerprint, sizeof m->fingerprint, "sha-256 %s", parley__call_fingerprint(c));
    m->setup = PARLEY__SDP_SETUP_ACTPASS;
  }
  snprintf(m->conn_addr, sizeof m->conn_addr, "%s", ip);
  parley__sdp_format *f = &m->formats[0];
  snprintf(f->id, sizeof f->id, "%d", PARLEY__CALL_OPUS_PT);
  f->pt = PARLEY__CALL_OPUS_PT;
  snprintf(f->encoding, sizeof f->encoding, "opus");
  f->clock_hz = 48000;
  f->channels = 2;
  parley__sdp_opus_fmtp(f->fmtp, sizeof f->fmtp, e->cfg.opus_fec, e->cfg.opus_dtx);
  m->format_count = 1;
  m->opus_pt = PARLEY__CALL_OPUS_PT;
  snprintf(m->mid, sizeof m->mid, "0");
  m->ptime_ms = (uint32_t)e->cfg.frame_ms;
  m->maxptime_ms = PARLEY__OPUS_MAX_FRAME_MS;
  const char *ufrag, *pwd;
  parley__ice_local_credentials(c->ice, &ufrag, &pwd);
  snprintf(m->ice_ufrag, sizeof m->ice_ufrag, "%s", ufrag);
  snprintf(m->ice_pwd, sizeof m->ice_pwd, "%s", pwd);
  m->candidate_count = local_candidates(c, m->candidates, PARLEY__SDP_MAX_CANDIDATES);
  m->end_of_candidates = gathering_done(c);
  m->rtcp_mux = true;
  m->dir = PARLEY__SDP_SENDRECV;
  /* What browsers look for (JSEP): one BUNDLE of our one mid, trickle, reduced-size RTCP, the stream's
   * msid, and the two header extensions parley sends and reads. */
  snprintf(s->bundle[0], sizeof s->bundle[0], "%s", m->mid);
  s->bundle_count = 1;
  m->ice_trickle = true;
  m->rtcp_rsize = true;
  local_msid(c, m->msid, sizeof m->msid);
  m->ext_audio_level = PARLEY__CALL_EXT_AUDIO_LEVEL;
  m->ext_mid = PARLEY__CALL_EXT_MID;
  r = parley__sdp_write(s, sdp, cap);
  OPENSSL_cleanse(m->crypto, sizeof m->crypto);
  if (r >= 0) {
    c->offer_made = true;
    c->offered_dtls = !sdes;
  }
out:
  free(s);
  pthread_mutex_unlock(&e->lock);
  return r;
}

int parley_call_create_answer(parley_call *c, char *sdp, size_t cap) {
  if (!c || !sdp || cap == 0) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r;
  parley__sdp *s = NULL;
  if (c->hungup || c->sig != PARLEY_SIGNALING_HAVE_REMOTE_OFFER || !c->remote_offer || !c->ice) {
    r = PARLEY_ESTATE;
    goto out;
  }
  s = malloc(sizeof *s);
  if (!s) {
    r = PARLEY_ENOMEM;
    goto out;
  }
  char ip[64];
  uint16_t port = default_addr(c, ip, sizeof ip);
  parley__sdp_crypto cr;
  local_crypto(c, &cr);
  char fp[PARLEY__SDP_FINGERPRINT_MAX];
  snprintf(fp, sizeof fp, "sha-256 %s", parley__call_fingerprint(c));
  parley__sdp_candidate cands[PARLEY__SDP_MAX_CANDIDATES];
  char msid[PARLEY__SDP_MSID_MAX];
  local_msid(c, msid, sizeof msid);
  const char *ufrag, *pwd;
  parley__ice_local_credentials(c->ice, &ufrag, &pwd);
  parley__sdp_answer_params p = {
      .sess_id = c->sess_id,
      .sess_version = ++c->sess_version,
      .addr = ip,
      .port = port,
      .ice_ufrag = ufrag,
      .ice_pwd = pwd,
      .dir = PARLEY__SDP_SENDRECV,
      .ptime_ms = (uint32_t)e->cfg.frame_ms,
      .maxptime_ms = PARLEY__OPUS_MAX_FRAME_MS,
      .useinbandfec = e->cfg.opus_fec,
      .usedtx = e->cfg.opus_dtx,
      .crypto = c->dtls ? NULL : &cr,
      .fingerprint = c->dtls ? fp : NULL,
      .setup = !c->dtls ? PARLEY__SDP_SETUP_NONE
               : c->dtls_role == PARLEY__DTLS_CLIENT ? PARLEY__SDP_SETUP_ACTIVE
                                                     : PARLEY__SDP_SETUP_PASSIVE,
      .candidates = cands,
      .candidate_count = local_candidates(c, cands, PARLEY__SDP_MAX_CANDIDATES),
      .end_of_candidates = gathering_done(c),
      .msid = msid,
      .ice_trickle = true,
  };
  r = parley__sdp_answer(c->remote_offer, &p, s);
  OPENSSL_cleanse(&cr, sizeof cr);
  if (r < 0) goto out;
  for (size_t i = 0; i < s->media_count; i++)
    if (s->media[i].port) snprintf(s->media[i].conn_addr, sizeof s->media[i].conn_addr, "%s", ip);
  r = parley__sdp_write(s, sdp, cap);
  for (size_t i = 0; i < s->media_count; i++) OPENSSL_cleanse(s->media[i].crypto, sizeof s->media[i].crypto);
  if (r >= 0) c->answer_made = true;
out:
  free(s);
  pthread_mutex_unlock(&e->lock);
  return r;
}

static void fill_err(parley_sdp_error *err, int line, const char *msg) {
  if (!err) return;
  err->line = line;
  snprintf(err->message, sizeof err->message, "%s", msg);
}

int parley_call_set_local_description(parley_call *c, const char *sdp) {
  if (!c || !sdp) return PARLEY_EINVAL;
  parley__sdp *s = malloc(sizeof *s);
  if (!s) return PARLEY_ENOMEM;
  int r = parley__sdp_parse(sdp, strlen(sdp), s, NULL);
  free(s);
  if (r) return r;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  if (c->hungup) {
    r = PARLEY_ESTATE;
  } else if ((c->sig == PARLEY_SIGNALING_STABLE || c->sig == PARLEY_SIGNALING_HAVE_LOCAL_OFFER) && c->offer_made) {
    parley__call_post_signaling(c, PARLEY__SDP_SET_LOCAL_OFFER);
    c->local_applied = true;
  } else if (c->sig == PARLEY_SIGNALING_HAVE_REMOTE_OFFER && c->answer_made) {
    parley__call_post_signaling(c, PARLEY__SDP_SET_LOCAL_ANSWER);
    c->answer_made = false;
    c->local_applied = true;
    free(c->remote_offer);
    c->remote_offer = NULL;
  } else {
    r = PARLEY_ESTATE;
  }
  pthread_mutex_unlock(&e->lock);
  return r;
}

/* The first acceptable audio m-line: audio, port, SRTP proto, Opus. */
static int pick_media(const parley__sdp *s) {
  for (size_t i = 0; i < s->media_count; i++) {
    const parley__sdp_media *m = &s->media[i];
    if (strcmp(m->type, "audio") == 0 && m->port != 0 && m->opus_pt >= 0 &&
        (m->proto == PARLEY__SDP_PROTO_RTP_SAVP || m->proto == PARLEY__SDP_PROTO_RTP_SAVPF ||
         m->proto == PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF))
      return (int)i;
  }
  return -1;
}

static int pick_crypto(const parley__sdp_media *m, parley__sdes_crypto *out) {
  char val[PARLEY__SDP_CRYPTO_MAX * 2 + 96];
  for (size_t i = 0; i < m->crypto_count; i++) {
    const parley__sdp_crypto *cr = &m->crypto[i];
    if (cr->session_params[0]) continue;
    int n = snprintf(val, sizeof val, "%u %s %s", (unsigned)cr->tag, cr->suite, cr->key_params);
    if (n > 0 && parley__sdes_crypto_parse(val, (size_t)n, out) == 0) {
      OPENSSL_cleanse(val, sizeof val);
      return 0;
    }
  }
  OPENSSL_cleanse(val, sizeof val);
  return PARLEY_ENOTSUP;
}

static void add_candidates(parley_call *c, const parley__sdp_media *m, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  for (size_t i = 0; i < m->candidate_count; i++) {
    parley__ice_candidate ic;
    if (parley__ice_candidate_from_sdp(&ic, &m->candidates[i]) == 0) {
      parley__call_turn_permit(c, &ic.addr, now);
      (void)parley__ice_add_remote_candidate(c->ice, &ic, now);
    }
  }
  if (m->end_of_candidates) parley__ice_remote_end_of_candidates(c->ice, now);
}

static parley__liveness_direction live_dir(parley__sdp_dir d) {
  switch (d) {
  case PARLEY__SDP_SENDONLY: return PARLEY__DIR_SENDONLY;
  case PARLEY__SDP_RECVONLY: return PARLEY__DIR_RECVONLY;
  case PARLEY__SDP_INACTIVE: return PARLEY__DIR_INACTIVE;
  default: return PARLEY__DIR_SENDRECV;
  }
}

int parley_call_set_remote_description(parley_call *c, parley_sdp_type type, const char *sdp,
                                       parley_sdp_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!c || !sdp || (type != PARLEY_SDP_OFFER && type != PARLEY_SDP_ANSWER)) {
    fill_err(err, 0, "NULL call or SDP, or unknown type");
    return PARLEY_EINVAL;
  }
  parley__sdp *s = malloc(sizeof *s);
  if (!s) return PARLEY_ENOMEM;
  parley__sdp_error pe;
  memset(&pe, 0, sizeof pe);
  int r = parley__sdp_parse(sdp, strlen(sdp), s, &pe);
  if (r) {
    fill_err(err, pe.line, pe.msg);
    free(s);
    return r;
  }
  int mi = pick_media(s);
  if (mi < 0) {
    fill_err(err, 0, "no audio m-line with Opus over UDP/TLS/RTP/SAVPF or RTP/SAVP(F)");
    free(s);
    return PARLEY_ENOTSUP;
  }
  const parley__sdp_media *m = &s->media[mi];
  if (!m->ice_ufrag[0] || !m->ice_pwd[0]) {
    fill_err(err, 0, "no a=ice-ufrag / a=ice-pwd");
    free(s);
    return PARLEY_ENOTSUP;
  }
  bool dtls = m->fingerprint[0] != '\0';
  parley__sdes_crypto remote_key;
  memset(&remote_key, 0, sizeof remote_key);
  if (!dtls && pick_crypto(m, &remote_key) != 0) {
    fill_err(err, 0, "no a=fingerprint (DTLS-SRTP) and no supported a=crypto (SDES) line");
    free(s);
    return PARLEY_ENOTSUP;
  }
  if (!m->rtcp_mux) { /* one ICE component: RTCP shares the RTP port (RFC 5761, required by JSEP) */
    parley__sdes_crypto_wipe(&remote_key);
    fill_err(err, 0, "no a=rtcp-mux: parley sends and receives RTCP on the RTP port");
    free(s);
    return PARLEY_ENOTSUP;
  }

  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int64_t now = now_us(e);
  bool offer = type == PARLEY_SDP_OFFER;
  if (c->hungup) {
    r = PARLEY_ESTATE;
    fill_err(err, 0, "the call is closed");
    goto out;
  }
  if (offer && c->sig != PARLEY_SIGNALING_STABLE) {
    r = PARLEY_ESTATE;
    fill_err(err, 0, c->sig == PARLEY_SIGNALING_HAVE_LOCAL_OFFER ? "glare: our own offer is pending"
                                                            : "the peer's previous offer is unanswered");
    goto out;
  }
  if (!offer && (c->sig != PARLEY_SIGNALING_HAVE_LOCAL_OFFER || !c->ice)) {
    r = PARLEY_ESTATE;
    fill_err(err, 0, "an answer, but no local offer is pending");
    goto out;
  }
  if (!offer && dtls != c->offered_dtls) {
    r = PARLEY_ENOTSUP;
    fill_err(err, 0, dtls ? "a=fingerprint in the answer to an SDES offer"
                          : "the answer has no a=fingerprint (our offer is DTLS-SRTP)");
    goto out;
  }
  r = parley__call_ensure_transport(c, offer ? false : true);
  if (r) {
    fill_err(err, 0, "cannot open the call's sockets / ICE agent");
    goto out;
  }
  parley__srtp *rx = NULL;
  if (dtls) {
    const char *why = NULL;
    r = parley__call_dtls_configure(c, m, offer, &why);
    if (r) {
      fill_err(err, 0, why);
      goto out;
    }
  } else {
    if (c->dtls) {
      r = PARLEY_ENOTSUP;
      fill_err(err, 0, "a=crypto after DTLS-SRTP: the call cannot change its keying");
      goto out;
    }
    if (offer && (!c->tx_srtp || c->local_key.suite != remote_key.suite || c->local_key.tag != remote_key.tag)) {
      r = parley__call_make_local_key(c, remote_key.suite, remote_key.tag);
      if (r) {
        fill_err(err, 0, "cannot make the local SRTP key");
        goto out;
      }
    }
    int serr;
    rx = parley__srtp_new(remote_key.suite, PARLEY__SRTP_INBOUND, remote_key.key_salt, remote_key.key_salt_len,
                          &serr);
    if (!rx) {
      r = serr;
      fill_err(err, 0, "libsrtp refused the remote key");
      goto out;
    }
  }
  r = parley__ice_set_remote_credentials(c->ice, m->ice_ufrag, m->ice_pwd);
  if (r == PARLEY_ESTATE) { /* new credentials: the peer restarted ICE */
    (void)parley__ice_restart(c->ice, now);
    r = parley__ice_set_remote_credentials(c->ice, m->ice_ufrag, m->ice_pwd);
  }
  if (r) {
    parley__srtp_free(rx);
    fill_err(err, 0, "bad ICE credentials");
    r = PARLEY_EINVAL;
    goto out;
  }
  if (rx) {
    parley__srtp_free(c->rx_srtp);
    c->rx_srtp = rx;
  }
  add_candidates(c, m, now);
  c->pt = m->opus_pt;
  c->remote_ptime_ms = (int)m->ptime_ms;
  c->remote_maxptime_ms = (int)m->maxptime_ms;
  /* An offer's extensions are what our answer accepts (it mirrors them); an answer's are the agreement. */
  c->ext_audio_level = m->ext_audio_level;
  c->ext_mid = m->mid[0] ? m->ext_mid : 0;
  snprintf(c->mid, sizeof c->mid, "%s", m->mid);
  (void)parley__liveness_on_remote_direction(c->mon, now, live_dir(m->dir));
  c->remote_applied = true;
  parley__call_post_signaling(c, offer ? PARLEY__SDP_SET_REMOTE_OFFER : PARLEY__SDP_SET_REMOTE_ANSWER);
  if (offer) {
    free(c->remote_offer);
    c->remote_offer = s;
    s = NULL;
    c->answer_made = false;
  } else {
    c->offer_made = false;
  }
  parley__call_drain_events(c);
  parley__engine_wake(e);
out:
  pthread_mutex_unlock(&e->lock);
  parley__sdes_crypto_wipe(&remote_key);
  free(s);
  return r;
}

/* A browser's host candidate hidden behind an mDNS name (RFC 6762 ".local"). Resolving it would block
 * or need a resolver thread; the browser's own checks reach us anyway and make its address known as
 * peer-reflexive (RFC 8445 7.3.1.3), so such a candidate is skipped, never an error. */
static bool is_mdns_name(const char *addr) {
  size_t n = strlen(addr);
  return n > 6 && strcasecmp(addr + n - 6, ".local") == 0;
}

int parley_call_add_remote_candidate(parley_call *c, const char *line) {
  if (!c || !line) return PARLEY_EINVAL;
  const char *p = line;
  if (strncmp(p, "a=", 2) == 0) p += 2;
  size_t len = strcspn(p, "\r\n");
  bool eoc = len == strlen("end-of-candidates") && strncmp(p, "end-of-candidates", len) == 0;
  parley__ice_candidate ic;
  bool mdns = false;
  if (!eoc) {
    parley__sdp_candidate sc;
    int r = parley__sdp_candidate_parse(p, len, &sc);
    if (r == 0) r = parley__ice_candidate_from_sdp(&ic, &sc);
    mdns = r == PARLEY_ENOTSUP && is_mdns_name(sc.addr) && strcasecmp(sc.transport, "udp") == 0;
    if (r && !mdns) return r;
  }
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = 0;
  if (c->hungup || !c->ice || !c->remote_applied) {
    r = PARLEY_ESTATE;
  } else {
    int64_t now = now_us(e);
    if (eoc) parley__ice_remote_end_of_candidates(c->ice, now);
    else if (!mdns) {
      parley__call_turn_permit(c, &ic.addr, now);
      r = parley__ice_add_remote_candidate(c->ice, &ic, now);
    }
    parley__call_drain_events(c);
    parley__engine_wake(e);
  }
  pthread_mutex_unlock(&e->lock);
  return r;
}

