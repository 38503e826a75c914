/* call.c: one call context: SDP offer/answer (sdp.h) and signaling state, ICE over the call's own UDP
 * sockets (ice.h, udp.h, ice_gather.h, ice_sdp.h), the liveness monitor (liveness.h via ice_liveness.h),
 * SDES-SRTP (srtp.h), RTP/RTCP with rtcp-mux (rtp.h, rtcp.h, demux.h), and the audio chains it hands
 * to the audio thread at start (pipeline.h).
 *
 * Owns: the sockets, agent, monitor, SRTP sessions and, from start to hangup, the parley__call_media
 * (chains and the two SPSC rings). Threads: the parley_call_* functions run on app threads and the
 * network-side service functions on the network thread, all under eng->lock; the audio thread only
 * sees the media through the slot table. Nothing here runs on the audio thread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "transport/demux.h"
#include "transport/ice_gather.h"
#include "transport/ice_sdp.h"
#include "transport/rtcp.h"

#define OPUS_PT_DEFAULT 111
#define RTCP_INTERVAL_US 1000000 /* reports every 0.5..1.5 s: a voice call's RTT should stay fresh */
#define MEDIA_POLL_US 500        /* tx ring drain retry while an audio period is overdue */
#define TX_AFTER_TICK_US 200     /* drain this long after a period is due to have ended */

static uint32_t rand32(void) {
  uint32_t v = 0;
  if (RAND_bytes((unsigned char *)&v, sizeof v) != 1) v = (uint32_t)(uintptr_t)&v ^ 0x9e3779b9u;
  return v;
}

static int64_t now_us(parley_engine *e) { return parley__clock_now(&e->clock); }

static void ip_text(const parley__netaddr *a, char *buf, size_t cap) {
  if (!inet_ntop(a->family == PARLEY__NETADDR_V6 ? AF_INET6 : AF_INET, a->ip, buf, (socklen_t)cap))
    snprintf(buf, cap, "0.0.0.0");
}

/* ---- events ---- */

/* Posts the monitor's queued events, then the ICE state refined by the agent's (events.h,
 * parley__ice_state_reported): completed once checking is over, per W3C. */
static void drain_events(parley_call *c) {
  parley__event ev;
  while (parley__event_queue_pop(&c->evq, &ev) == 0) {
    if (ev.kind == PARLEY_EVENT_ICE_STATE_CHANGED) c->ice_monitor = c->ice_shown = ev.ice_state;
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

static void post_signaling(parley_call *c, parley__sdp_op op) {
  parley__event ev;
  int r = parley__signaling_apply(&c->sig, op, now_us(c->eng), &ev);
  if (r == 1) parley__engine_post(c->eng, c, &ev);
}

/* ---- ICE callbacks (network or app thread, under lock) ---- */

static void ice_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  parley_call *c = ctx;
  if (local < 0 || local >= c->nsocks) return;
  parley__udp_error uerr;
  if (parley__udp_send(&c->socks[local], dst, buf, len, &uerr) == PARLEY_ENETWORK && c->mon)
    (void)parley__ice_liveness_on_socket_error(&c->il, local, &uerr.peer, uerr.sys_errno, now_us(c->eng));
}

static const char *cand_type(parley__sdp_cand_type t) {
  switch (t) {
  case PARLEY__SDP_CAND_SRFLX: return "srflx";
  case PARLEY__SDP_CAND_PRFLX: return "prflx";
  case PARLEY__SDP_CAND_RELAY: return "relay";
  default: return "host";
  }
}

/* "candidate:..." (RFC 8839 syntax, without "a=") into buf. 0 or PARLEY_EINVAL. */
static int candidate_line(const parley__ice_candidate *ic, char *buf, size_t cap) {
  parley__sdp_candidate sc;
  if (parley__ice_candidate_to_sdp(&sc, ic) != 0) return PARLEY_EINVAL;
  int n = snprintf(buf, cap, "candidate:%s %u %s %u %s %u typ %s", sc.foundation, (unsigned)sc.component,
                   sc.transport, (unsigned)sc.priority, sc.addr, (unsigned)sc.port, cand_type(sc.type));
  if (n > 0 && (size_t)n < cap && sc.has_raddr)
    snprintf(buf + n, cap - (size_t)n, " raddr %s rport %u", sc.raddr, (unsigned)sc.rport);
  return 0;
}

static void ice_event(void *ctx, const parley__ice_event *ev) {
  parley_call *c = ctx;
  if (!c->mon) return;
  if (ev->kind == PARLEY__ICE_EV_LOCAL_CANDIDATE && ev->candidate) {
    char line[256];
    if (candidate_line(ev->candidate, line, sizeof line) == 0)
      parley__engine_post_candidate(c->eng, c, line, ev->now_us);
  } else if (ev->kind == PARLEY__ICE_EV_GATHERING_DONE) {
    parley__engine_post_candidate(c->eng, c, "end-of-candidates", ev->now_us);
  }
  if (ev->kind == PARLEY__ICE_EV_SELECTED_PAIR) {
    c->ice_pairs_selected++;
    if (c->started) parley__device_input_release(c->eng->dev); /* media flows: a held input file starts */
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
    out.kind = PARLEY_EVENT_PEER_STATE_CHANGED;
    out.peer_state = PARLEY_PEER_FAILED;
    parley__engine_post(c->eng, c, &out);
  }
  drain_events(c);
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

static int make_local_key(parley_call *c, parley__srtp_suite suite, uint32_t tag) {
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
static int ensure_transport(parley_call *c, bool controlling) {
  if (c->ice) return 0;
  parley_engine *e = c->eng;
  parley__netaddr addrs[PARLEY__CALL_MAX_SOCKS * 2];
  parley__ice_gather_opts go = {.ipv4 = true, .ipv6 = e->cfg.ipv6, .loopback = e->cfg.loopback_candidates};
  int n = parley__ice_gather_host_addrs(&go, addrs, sizeof addrs / sizeof addrs[0]);
  if (n < 0) return PARLEY_ENETWORK;
  int err = 0;
  parley__ice_config ic = {0};
  ic.role = controlling ? PARLEY__ICE_CONTROLLING : PARLEY__ICE_CONTROLLED;
  ic.send = ice_send;
  ic.on_event = ice_event;
  ic.ctx = c;
  if (e->has_stun) {
    ic.has_stun_server = true;
    ic.stun_server = e->stun;
  }
  c->ice = parley__ice_new(&ic, &err);
  if (!c->ice) return err;
  c->controlling = controlling;
  for (int i = 0; i < n && c->nsocks < PARLEY__CALL_MAX_SOCKS; i++) {
    /* loopback_candidates: loopback addresses only, so that tests and same-host calls stay local. */
    if (e->cfg.loopback_candidates != parley__netaddr_is_loopback(&addrs[i])) continue;
    parley__udp *s = &c->socks[c->nsocks];
    if (parley__udp_open(s, &addrs[i]) != 0) continue;
    if (parley__ice_add_local(c->ice, &s->local) < 0) {
      parley__udp_close(s);
      continue;
    }
    c->nsocks++;
  }
  if (c->nsocks == 0) {
    err = PARLEY_ENETWORK;
    goto fail;
  }
  parley__liveness_config lc;
  liveness_config(&e->cfg, &lc);
  parley__event_queue_init(&c->evq, c->evstore, PARLEY__CALL_EVQ);
  c->mon = parley__liveness_new(&lc, &c->evq, &err);
  if (!c->mon) goto fail;
  parley__ice_liveness_init(&c->il, c->ice, c->mon);
  err = parley__ice_start(c->ice, now_us(e));
  if (err) goto fail;
  drain_events(c);
  parley__engine_wake(e);
  return 0;
fail:
  for (int i = 0; i < c->nsocks; i++) parley__udp_close(&c->socks[i]);
  c->nsocks = 0;
  parley__ice_free(c->ice);
  c->ice = NULL;
  parley__liveness_free(c->mon);
  c->mon = NULL;
  return err;
}

/* ---- media ---- */

static void media_free(parley__call_media *m) {
  if (!m) return;
  parley__send_chain_free(m->send);
  parley__recv_chain_free(m->recv);
  parley__ring_free(m->tx);
  parley__ring_free(m->rx);
  free(m);
}

static void media_free_any(void *m) { media_free(m); }

static int media_new(parley_call *c, parley__call_media **out) {
  const parley_engine_config *ec = &c->eng->cfg;
  parley__call_media *m = calloc(1, sizeof *m);
  if (!m) return PARLEY_ENOMEM;
  m->muted = &c->muted;
  int err = 0;
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.device_rate_hz = c->eng->rate_hz;
  sc.frame_ms = ec->frame_ms;
  /* The peer's a=maxptime bounds our packets: 10 ms Opus frames on a 20 ms engine when it asks. */
  sc.packet_ms = c->remote_maxptime_ms > 0 && c->remote_maxptime_ms < ec->frame_ms ? 10 : ec->frame_ms;
  sc.echo.aec = ec->echo_cancellation;
  sc.echo.residual_echo_suppression = ec->echo_cancellation;
  sc.echo.noise_suppression = ec->noise_suppression;
  sc.echo.agc = ec->agc;
  sc.opus.bitrate_bps = ec->opus_bitrate_bps;
  sc.opus.inband_fec = ec->opus_fec;
  sc.opus.dtx = ec->opus_dtx;
  sc.first_timestamp = rand32();
  m->send = parley__send_chain_new(&sc, &err);
  if (!m->send) goto fail;
  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.device_rate_hz = c->eng->rate_hz;
  rc.frame_ms = ec->frame_ms;
  m->recv = parley__recv_chain_new(&rc, &err);
  if (!m->recv) goto fail;
  /* At 48 kHz the audio thread feeds the canceller the whole device output (every call's playout);
   * otherwise the receive chain feeds its own call's canceller before resampling. */
  if (ec->echo_cancellation && !c->eng->echo_from_output)
    parley__recv_chain_link_echo(m->recv, parley__send_chain_echo(m->send));
  m->tx = parley__ring_new(sizeof(parley__tx_item), PARLEY__TX_RING_SLOTS);
  m->rx = parley__ring_new(sizeof(parley__rx_item), PARLEY__RX_RING_SLOTS);
  if (!m->tx || !m->rx) {
    err = PARLEY_ENOMEM;
    goto fail;
  }
  *out = m;
  return 0;
fail:
  media_free(m);
  return err ? err : PARLEY_ENOMEM;
}

/* ---- RTCP ---- */

static int selected(parley_call *c, int *local, parley__netaddr *remote) {
  if (!c->ice || parley__ice_selected_pair(c->ice, local, remote) != 0) return PARLEY_ENOTFOUND;
  /* RFC 7675: no media once consent expired. */
  if (c->mon && parley__liveness_ice_state(c->mon) == PARLEY_ICE_FAILED) return PARLEY_ESTATE;
  return 0;
}

static void send_packet(parley_call *c, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  parley__udp_error uerr;
  int r = parley__udp_send(&c->socks[local], dst, buf, len, &uerr);
  if (r == PARLEY_ENETWORK && c->mon)
    (void)parley__ice_liveness_on_socket_error(&c->il, local, &uerr.peer, uerr.sys_errno, now_us(c->eng));
}

static void send_rtcp(parley_call *c, int64_t now, bool bye) {
  int local;
  parley__netaddr remote;
  if (!c->tx_srtp || selected(c, &local, &remote) != 0) return;
  parley__rtcp_report_block blk;
  memset(&blk, 0, sizeof blk);
  parley__rtcp_compound_desc d;
  memset(&d, 0, sizeof d);
  d.ssrc = c->ssrc;
  d.cname = c->cname;
  if (c->rx_valid && c->rx.received > 0) {
    parley__rtp_rx_report rep;
    parley__rtp_rx_make_report(&c->rx, &rep);
    blk.ssrc = c->remote_ssrc;
    blk.fraction_lost = rep.fraction_lost;
    blk.cumulative_lost = rep.cumulative_lost;
    blk.ext_highest_seq = rep.ext_highest_seq;
    blk.jitter = rep.jitter;
    blk.lsr = c->last_sr_mid;
    blk.dlsr = c->last_sr_mid ? parley__ntp_short_from_us(now - c->last_sr_arrival_us) : 0;
    d.blocks = &blk;
    d.n_blocks = 1;
  }
  if (c->rtp_packets > 0) {
    d.is_sender = true;
    d.sender.ntp = parley__ntp_from_us(now);
    d.sender.rtp_ts = c->last_tx_ts + (uint32_t)((now - c->last_tx_us) * 48 / 1000);
    d.sender.packet_count = c->rtp_packets;
    d.sender.octet_count = c->rtp_octets;
  }
  d.bye = bye;
  d.bye_reason = bye ? "hangup" : NULL;
  uint8_t pkt[1024];
  int n = parley__rtcp_build_compound(&d, pkt, sizeof pkt - PARLEY__SRTP_RTCP_TRAILER_ROOM);
  if (n < 0) return;
  n = parley__srtp_protect_rtcp(c->tx_srtp, pkt, (size_t)n, sizeof pkt);
  if (n < 0) return;
  send_packet(c, local, &remote, pkt, (size_t)n);
}

static void on_rtcp(parley_call *c, uint8_t *buf, size_t len, int64_t now) {
  if (!c->rx_srtp) return;
  int n = parley__srtp_unprotect_rtcp(c->rx_srtp, buf, len);
  if (n < 0) return;
  parley__rtcp_info info;
  if (parley__rtcp_parse_compound(buf, (size_t)n, &info) != 0) return;
  (void)parley__liveness_on_rtcp(c->mon, now);
  if (info.has_sr) {
    c->last_sr_mid = parley__ntp_mid32(info.sender.ntp);
    c->last_sr_arrival_us = now;
  }
  for (size_t i = 0; i < info.n_blocks; i++) {
    const parley__rtcp_report_block *b = &info.blocks[i];
    if (b->ssrc != c->ssrc) continue;
    c->fraction_lost = b->fraction_lost / 256.0;
    c->peer_cum_lost = b->cumulative_lost;
    c->peer_ext_highest = b->ext_highest_seq;
    c->peer_reported = true;
    uint32_t rtt16;
    if (parley__rtcp_rtt(parley__ntp_mid32_from_us(now), b->lsr, b->dlsr, &rtt16) == 0)
      c->rtt_ms = (double)parley__ntp_short_to_us(rtt16) / 1000.0;
  }
  for (size_t i = 0; i < info.n_bye; i++) (void)parley__liveness_on_rtcp_bye(c->mon, now, info.bye_ssrc[i]);
}

static void on_rtp(parley_call *c, uint8_t *buf, size_t len, int64_t now) {
  if (!c->rx_srtp || len < PARLEY__RTP_FIXED_HEADER_LEN) return;
  uint32_t ssrc_clear = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
  int n = parley__srtp_unprotect_rtp(c->rx_srtp, buf, len);
  parley__rtp_view v;
  if (n < 0 || parley__rtp_parse(buf, (size_t)n, &v) != 0 || v.hdr.payload_type != c->pt) {
    (void)parley__liveness_on_rtp(c->mon, now, ssrc_clear, false);
    return;
  }
  c->pkts_recv++;
  c->bytes_recv += len;
  if (!c->rx_valid || v.hdr.ssrc != c->remote_ssrc) {
    parley__rtp_rx_init(&c->rx, 48000, 2);
    c->rx_valid = true;
    c->remote_ssrc = v.hdr.ssrc;
  }
  (void)parley__rtp_rx_update(&c->rx, v.hdr.seq, v.hdr.timestamp, now);
  (void)parley__liveness_on_rtp(c->mon, now, v.hdr.ssrc, true);
  if (!c->media || v.payload_len == 0 || v.payload_len > PARLEY__OPUS_MAX_PACKET) return;
  parley__rx_item *it = parley__ring_write_slot(c->media->rx);
  if (!it) return; /* the audio thread is behind: drop, the jitter buffer conceals */
  it->arrival_us = now;
  it->timestamp = v.hdr.timestamp;
  it->ssrc = v.hdr.ssrc;
  it->seq = v.hdr.seq;
  it->marker = v.hdr.marker;
  it->len = (uint16_t)v.payload_len;
  memcpy(it->data, v.payload, v.payload_len);
  parley__ring_commit(c->media->rx);
}

static void drain_tx(parley_call *c, int64_t now) {
  int local;
  parley__netaddr remote;
  bool ok = c->tx_srtp && selected(c, &local, &remote) == 0;
  const parley__tx_item *it;
  uint8_t pkt[PARLEY__RTP_FIXED_HEADER_LEN + PARLEY__OPUS_MAX_PACKET + PARLEY__SRTP_RTP_TRAILER_ROOM];
  for (int i = 0; i < PARLEY__TX_RING_SLOTS && (it = parley__ring_read_slot(c->media->tx)) != NULL; i++) {
    if (ok) {
      parley__rtp_header h;
      memset(&h, 0, sizeof h);
      h.marker = it->marker;
      h.payload_type = (uint8_t)c->pt;
      h.seq = c->seq++;
      h.timestamp = it->timestamp;
      h.ssrc = c->ssrc;
      int n = parley__rtp_build(&h, it->data, it->len, 0, pkt, sizeof pkt - PARLEY__SRTP_RTP_TRAILER_ROOM);
      if (n > 0) n = parley__srtp_protect_rtp(c->tx_srtp, pkt, (size_t)n, sizeof pkt);
      if (n > 0) {
        send_packet(c, local, &remote, pkt, (size_t)n);
        c->pkts_sent++;
        c->bytes_sent += (uint64_t)n;
        c->rtp_packets++;
        c->rtp_octets += it->len;
        c->last_tx_ts = it->timestamp;
        c->last_tx_us = now;
      }
    }
    parley__ring_release(c->media->tx);
  }
}

/* ---- network thread service (under lock) ---- */

int parley__call_fds(parley_call *c, int *fds, int cap) {
  int n = 0;
  for (int i = 0; i < c->nsocks && n < cap; i++)
    if (c->socks[i].fd >= 0) fds[n++] = c->socks[i].fd;
  return n;
}

int64_t parley__call_net_deadline(parley_call *c, int64_t now) {
  if (!c->ice) return INT64_MAX;
  int64_t d = parley__ice_liveness_next_deadline_us(&c->il);
  if (c->media) {
    /* Drain just after the next audio period's predicted end (engine.c). */
    int64_t next = atomic_load_explicit(&c->eng->audio_next_end_us, memory_order_relaxed);
    int64_t tx = next + TX_AFTER_TICK_US;
    if (next == 0 || tx <= now) tx = now + MEDIA_POLL_US; /* overdue (or no period yet): retry shortly */
    if (tx < d) d = tx;
    if (c->next_rtcp_us < d) d = c->next_rtcp_us;
  }
  return d;
}

void parley__call_net_service(parley_call *c, int64_t now) {
  if (!c->ice) return;
  uint8_t buf[2048];
  for (int i = 0; i < c->nsocks; i++) {
    for (int k = 0; k < 256; k++) {
      parley__netaddr src;
      parley__udp_error uerr;
      int n = parley__udp_recv(&c->socks[i], buf, sizeof buf, &src, &uerr);
      if (n == PARLEY_EAGAIN) break;
      if (n == PARLEY_ENETWORK) {
        (void)parley__ice_liveness_on_socket_error(&c->il, i, &uerr.peer, uerr.sys_errno, now);
        continue;
      }
      if (n <= 0) continue;
      switch (parley__demux_classify(buf, (size_t)n)) {
      case PARLEY__DEMUX_STUN: (void)parley__ice_receive(c->ice, i, &src, buf, (size_t)n, now); break;
      case PARLEY__DEMUX_RTP:
        if (parley__ice_accept_media(c->ice, i, &src)) on_rtp(c, buf, (size_t)n, now);
        break;
      case PARLEY__DEMUX_RTCP:
        if (parley__ice_accept_media(c->ice, i, &src)) on_rtcp(c, buf, (size_t)n, now);
        break;
      default: break;
      }
      drain_events(c);
    }
  }
  if (parley__ice_next_deadline_us(c->ice) <= now) parley__ice_tick(c->ice, now);
  if (parley__liveness_next_deadline_us(c->mon) <= now) (void)parley__ice_liveness_tick(&c->il, now);
  if (c->media) {
    drain_tx(c, now);
    if (now >= c->next_rtcp_us) {
      send_rtcp(c, now, false);
      c->next_rtcp_us = now + RTCP_INTERVAL_US / 2 + (int64_t)(rand32() % RTCP_INTERVAL_US);
    }
  }
  drain_events(c);
}

/* ---- teardown ---- */

void parley__call_teardown(parley_call *c, bool send_bye) {
  if (send_bye && c->started && !c->hungup) send_rtcp(c, now_us(c->eng), true);
  if (c->media) {
    atomic_store(&c->media->session_id, 0);
    parley__engine_detach_media(c->eng, c->slot);
    parley__engine_retire(c->eng, c->media, media_free_any);
    c->media = NULL;
    c->slot = -1;
  }
  for (int i = 0; i < c->nsocks; i++) parley__udp_close(&c->socks[i]);
  c->nsocks = 0;
  parley__ice_free(c->ice);
  c->ice = NULL;
  parley__liveness_free(c->mon);
  c->mon = NULL;
  parley__srtp_free(c->tx_srtp);
  parley__srtp_free(c->rx_srtp);
  c->tx_srtp = c->rx_srtp = NULL;
  parley__sdes_crypto_wipe(&c->local_key);
  free(c->remote_offer);
  c->remote_offer = NULL;
}

/* ---- public: lifecycle ---- */

int parley_call_new(parley_engine *e, parley_call **out) {
  if (out) *out = NULL;
  if (!e || !out) return PARLEY_EINVAL;
  parley_call *c = calloc(1, sizeof *c);
  if (!c) return PARLEY_ENOMEM;
  c->eng = e;
  c->sig = PARLEY_SIGNALING_STABLE;
  c->slot = -1;
  c->pt = OPUS_PT_DEFAULT;
  c->rtt_ms = -1;
  c->fraction_lost = -1;
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
  parley__call_teardown(c, true);
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (e->calls[i] == c) e->calls[i] = NULL;
  pthread_mutex_unlock(&e->lock);
  parley__dispatch_unregister(e, &c->tgt);
  free(c);
  return 0;
}

int parley_on(parley_call *call, parley_event_kind kind, parley_event_fn fn, void *user) {
  if (!call || (int)kind < 0 || kind >= PARLEY_EVENT_CALL_KIND_COUNT) return PARLEY_EINVAL;
  return parley__target_on(call->eng, &call->tgt, kind, fn, user);
}

int parley_off(parley_call *call, int listener_id) {
  if (!call) return PARLEY_EINVAL;
  return parley__target_off(call->eng, &call->tgt, listener_id);
}

/* ---- public: SDP ---- */

static int local_sdp_common(parley_call *c, parley__sdp *s, char *ip, size_t ipcap) {
  parley__sdp_init(s);
  s->sess_id = c->sess_id;
  s->sess_version = ++c->sess_version;
  ip_text(&c->socks[0].local, ip, ipcap);
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

static bool gathering_done(parley_call *c) { return !c->eng->has_stun; }

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
  r = ensure_transport(c, true);
  if (r) goto out;
  if (!c->tx_srtp) {
    r = make_local_key(c, PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, 1);
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
  m->port = c->socks[0].local.port;
  snprintf(m->proto_text, sizeof m->proto_text, "RTP/SAVPF");
  m->proto = PARLEY__SDP_PROTO_RTP_SAVPF;
  snprintf(m->conn_addr, sizeof m->conn_addr, "%s", ip);
  parley__sdp_format *f = &m->formats[0];
  snprintf(f->id, sizeof f->id, "%d", OPUS_PT_DEFAULT);
  f->pt = OPUS_PT_DEFAULT;
  snprintf(f->encoding, sizeof f->encoding, "opus");
  f->clock_hz = 48000;
  f->channels = 2;
  parley__sdp_opus_fmtp(f->fmtp, sizeof f->fmtp, e->cfg.opus_fec, e->cfg.opus_dtx);
  m->format_count = 1;
  m->opus_pt = OPUS_PT_DEFAULT;
  snprintf(m->mid, sizeof m->mid, "0");
  m->ptime_ms = (uint32_t)e->cfg.frame_ms;
  m->maxptime_ms = PARLEY__OPUS_MAX_FRAME_MS;
  const char *ufrag, *pwd;
  parley__ice_local_credentials(c->ice, &ufrag, &pwd);
  snprintf(m->ice_ufrag, sizeof m->ice_ufrag, "%s", ufrag);
  snprintf(m->ice_pwd, sizeof m->ice_pwd, "%s", pwd);
  m->candidate_count = local_candidates(c, m->candidates, PARLEY__SDP_MAX_CANDIDATES);
  m->end_of_candidates = gathering_done(c);
  local_crypto(c, &m->crypto[0]);
  m->crypto_count = 1;
  m->rtcp_mux = true;
  m->dir = PARLEY__SDP_SENDRECV;
  r = parley__sdp_write(s, sdp, cap);
  OPENSSL_cleanse(m->crypto, sizeof m->crypto);
  if (r >= 0) c->offer_made = true;
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
  ip_text(&c->socks[0].local, ip, sizeof ip);
  parley__sdp_crypto cr;
  local_crypto(c, &cr);
  parley__sdp_candidate cands[PARLEY__SDP_MAX_CANDIDATES];
  const char *ufrag, *pwd;
  parley__ice_local_credentials(c->ice, &ufrag, &pwd);
  parley__sdp_answer_params p = {
      .sess_id = c->sess_id,
      .sess_version = ++c->sess_version,
      .addr = ip,
      .port = c->socks[0].local.port,
      .ice_ufrag = ufrag,
      .ice_pwd = pwd,
      .dir = PARLEY__SDP_SENDRECV,
      .ptime_ms = (uint32_t)e->cfg.frame_ms,
      .maxptime_ms = PARLEY__OPUS_MAX_FRAME_MS,
      .useinbandfec = e->cfg.opus_fec,
      .usedtx = e->cfg.opus_dtx,
      .crypto = &cr,
      .candidates = cands,
      .candidate_count = local_candidates(c, cands, PARLEY__SDP_MAX_CANDIDATES),
      .end_of_candidates = gathering_done(c),
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
    post_signaling(c, PARLEY__SDP_SET_LOCAL_OFFER);
    c->local_applied = true;
  } else if (c->sig == PARLEY_SIGNALING_HAVE_REMOTE_OFFER && c->answer_made) {
    post_signaling(c, PARLEY__SDP_SET_LOCAL_ANSWER);
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
        (m->proto == PARLEY__SDP_PROTO_RTP_SAVP || m->proto == PARLEY__SDP_PROTO_RTP_SAVPF))
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
  for (size_t i = 0; i < m->candidate_count; i++) {
    parley__ice_candidate ic;
    if (parley__ice_candidate_from_sdp(&ic, &m->candidates[i]) == 0)
      (void)parley__ice_add_remote_candidate(c->ice, &ic, now);
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
    fill_err(err, 0, "no audio m-line with Opus over RTP/SAVP(F)");
    free(s);
    return PARLEY_ENOTSUP;
  }
  const parley__sdp_media *m = &s->media[mi];
  if (!m->ice_ufrag[0] || !m->ice_pwd[0]) {
    fill_err(err, 0, "no a=ice-ufrag / a=ice-pwd");
    free(s);
    return PARLEY_ENOTSUP;
  }
  parley__sdes_crypto remote_key;
  if (pick_crypto(m, &remote_key) != 0) {
    fill_err(err, 0, "no supported a=crypto (SDES) line");
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
  r = ensure_transport(c, offer ? false : true);
  if (r) {
    fill_err(err, 0, "cannot open the call's sockets / ICE agent");
    goto out;
  }
  if (offer && (!c->tx_srtp || c->local_key.suite != remote_key.suite || c->local_key.tag != remote_key.tag)) {
    r = make_local_key(c, remote_key.suite, remote_key.tag);
    if (r) {
      fill_err(err, 0, "cannot make the local SRTP key");
      goto out;
    }
  }
  int serr;
  parley__srtp *rx = parley__srtp_new(remote_key.suite, PARLEY__SRTP_INBOUND, remote_key.key_salt,
                                      remote_key.key_salt_len, &serr);
  if (!rx) {
    r = serr;
    fill_err(err, 0, "libsrtp refused the remote key");
    goto out;
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
  parley__srtp_free(c->rx_srtp);
  c->rx_srtp = rx;
  add_candidates(c, m, now);
  c->pt = m->opus_pt;
  c->remote_maxptime_ms = (int)m->maxptime_ms;
  (void)parley__liveness_on_remote_direction(c->mon, now, live_dir(m->dir));
  c->remote_applied = true;
  post_signaling(c, offer ? PARLEY__SDP_SET_REMOTE_OFFER : PARLEY__SDP_SET_REMOTE_ANSWER);
  if (offer) {
    free(c->remote_offer);
    c->remote_offer = s;
    s = NULL;
    c->answer_made = false;
  } else {
    c->offer_made = false;
  }
  drain_events(c);
  parley__engine_wake(e);
out:
  pthread_mutex_unlock(&e->lock);
  parley__sdes_crypto_wipe(&remote_key);
  free(s);
  return r;
}

int parley_call_add_remote_candidate(parley_call *c, const char *line) {
  if (!c || !line) return PARLEY_EINVAL;
  const char *p = line;
  if (strncmp(p, "a=", 2) == 0) p += 2;
  size_t len = strcspn(p, "\r\n");
  bool eoc = len == strlen("end-of-candidates") && strncmp(p, "end-of-candidates", len) == 0;
  if (!eoc && strncmp(p, "candidate:", 10) != 0) return PARLEY_EPARSE;
  parley__ice_candidate ic;
  if (!eoc) {
    /* Reuse the SDP parser: one m-line holding just this attribute. */
    char text[512];
    int n = snprintf(text, sizeof text, "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/SAVPF 111\r\na=%.*s\r\n",
                     (int)len, p);
    if (n < 0 || (size_t)n >= sizeof text) return PARLEY_EPARSE;
    parley__sdp *s = malloc(sizeof *s);
    if (!s) return PARLEY_ENOMEM;
    int r = parley__sdp_parse(text, (size_t)n, s, NULL);
    if (r == 0 && (s->media_count != 1 || s->media[0].candidate_count != 1)) r = PARLEY_EPARSE;
    if (r == 0) r = parley__ice_candidate_from_sdp(&ic, &s->media[0].candidates[0]);
    free(s);
    if (r) return r;
  }
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = 0;
  if (c->hungup || !c->ice || !c->remote_applied) {
    r = PARLEY_ESTATE;
  } else {
    int64_t now = now_us(e);
    if (eoc) parley__ice_remote_end_of_candidates(c->ice, now);
    else r = parley__ice_add_remote_candidate(c->ice, &ic, now);
    drain_events(c);
    parley__engine_wake(e);
  }
  pthread_mutex_unlock(&e->lock);
  return r;
}

/* ---- public: media ---- */

int parley_call_start(parley_call *c) {
  if (!c) return PARLEY_EINVAL;
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  int r = 0;
  parley__call_media *m = NULL;
  if (c->hungup || c->started || c->sig != PARLEY_SIGNALING_STABLE || !c->remote_applied || !c->local_applied ||
      !c->tx_srtp || !c->rx_srtp) {
    r = PARLEY_ESTATE;
    goto out;
  }
  r = media_new(c, &m);
  if (r) goto out;
  int slot = parley__engine_attach_media(e, m);
  if (slot < 0) {
    media_free(m);
    r = slot;
    goto out;
  }
  if (c->session) atomic_store(&m->session_id, (uint32_t)c->tgt.serial);
  c->media = m;
  c->slot = slot;
  c->started = true;
  c->next_rtcp_us = now_us(e) + RTCP_INTERVAL_US / 2;
  if (c->ice_pairs_selected > 0) parley__device_input_release(e->dev); /* ICE connected first */
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
  parley_engine *e = c->eng;
  if (c->hungup) return PARLEY_ESTATE;
  int64_t now = now_us(e);
  if (c->started) send_rtcp(c, now, true);
  if (c->mon) {
    (void)parley__liveness_close(c->mon, now);
    drain_events(c);
  }
  post_signaling(c, PARLEY__SDP_CLOSE);
  parley__call_teardown(c, false);
  c->hungup = true;
  parley__engine_post_closed(e, c, now);
  return 0;
}

int parley_call_set_mute(parley_call *c, bool mute) {
  if (!c) return PARLEY_EINVAL;
  atomic_store_explicit(&c->muted, mute, memory_order_relaxed);
  return 0;
}

/* lost / expected clamped to 0..1 (duplicates make lost negative); -1 while nothing was expected. */
static double loss_ratio(int64_t lost, uint32_t expected) {
  if (expected == 0) return -1;
  double r = (double)lost / expected;
  return r < 0 ? 0 : r > 1 ? 1 : r;
}

int parley_call_get_stats(parley_call *c, parley_call_stats *out) {
  if (!c || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  parley_engine *e = c->eng;
  pthread_mutex_lock(&e->lock);
  out->rtt_ms = c->rtt_ms;
  out->fraction_lost = c->fraction_lost;
  out->loss_received = out->loss_sent = -1;
  out->packets_lost_sent = -1;
  if (c->rx_valid) {
    out->packets_lost = parley__rtp_rx_lost(&c->rx);
    out->jitter_ms = parley__rtp_rx_jitter(&c->rx) / 48.0;
    out->loss_received = loss_ratio(out->packets_lost, parley__rtp_rx_expected(&c->rx));
  }
  if (c->peer_reported) {
    /* The peer's extended highest sequence counts cycles from our first packet's: what it expected
     * is the span from that packet (RFC 3550 A.3, seen from the sender). */
    out->packets_lost_sent = c->peer_cum_lost;
    out->loss_sent = loss_ratio(c->peer_cum_lost, c->peer_ext_highest - c->first_seq + 1u);
  }
  out->packets_sent = c->pkts_sent;
  out->bytes_sent = c->bytes_sent;
  out->packets_received = c->pkts_recv;
  out->bytes_received = c->bytes_recv;
  out->ice_pairs_selected = c->ice_pairs_selected;
  if (c->media) {
    out->jitter_buffer_ms = (double)atomic_load_explicit(&c->media->jb_delay_us, memory_order_relaxed) / 1000.0;
    out->concealed_frames = atomic_load_explicit(&c->media->concealed, memory_order_relaxed);
    out->concealed_ms = atomic_load_explicit(&c->media->concealed_ms, memory_order_relaxed);
    out->fec_frames = atomic_load_explicit(&c->media->fec, memory_order_relaxed);
  }
  pthread_mutex_unlock(&e->lock);
  return 0;
}
