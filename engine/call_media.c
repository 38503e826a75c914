/* call_media.c: a call's media over the network: the audio chains and rings it hands to the audio
 * thread at start (pipeline.h), RTP out of the tx ring and into the rx ring through SDES-SRTP (rtp.h,
 * srtp.h) with the negotiated header extensions (audio level, mid), RTCP reports and BYE with rtcp-mux
 * (rtcp.h), and the call's statistics. Threads: the network
 * thread and app threads, under eng->lock (see call.c); the audio thread only through the rings. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/call_internal.h"
#include "transport/rtcp.h"

/* ---- media ---- */

void parley__call_media_free(parley__call_media *m) {
  if (!m) return;
  parley__send_chain_free(m->send);
  parley__recv_chain_free(m->recv);
  parley__ring_free(m->tx);
  parley__ring_free(m->rx);
  free(m);
}

void parley__call_media_free_any(void *m) { parley__call_media_free(m); }

int parley__call_media_new(parley_call *c, parley__call_media **out) {
  const parley_engine_config *ec = &c->eng->cfg;
  parley__call_media *m = calloc(1, sizeof *m);
  if (!m) return PARLEY_ENOMEM;
  atomic_init(&m->muted, atomic_load(&c->muted));
  atomic_init(&m->volume_pct, atomic_load(&c->volume_pct));
  int err = 0;
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.device_rate_hz = c->eng->rate_hz;
  sc.frame_ms = ec->frame_ms;
  sc.packet_ms = parley__send_packet_ms(ec->frame_ms, c->remote_ptime_ms, c->remote_maxptime_ms);
  sc.opus.low_delay = ec->low_delay;
  sc.echo.aec = ec->echo_cancellation;
  if (ec->echo_tail_ms) sc.echo.tail_ms = ec->echo_tail_ms;
  sc.echo.far_delay_ms = ec->echo_delay_ms;
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
  parley__call_media_free(m);
  return err ? err : PARLEY_ENOMEM;
}

/* ---- RTCP ---- */

static int selected(parley_call *c, int *local, parley__netaddr *remote) {
  if (!c->ice || parley__ice_selected_pair(c->ice, local, remote) != 0) return PARLEY_ENOTFOUND;
  /* RFC 7675: no media once consent expired. */
  if (c->mon && parley__liveness_ice_state(c->mon) == PARLEY_ICE_FAILED) return PARLEY_ESTATE;
  return 0;
}

void parley__call_send_rtcp(parley_call *c, int64_t now, bool bye) {
  PARLEY__ENGINE_LOCKED(c->eng);
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
    c->fraction_lost_received = rep.fraction_lost / 256.0;
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
  parley__call_send(c, local, &remote, pkt, (size_t)n);
}

void parley__call_on_rtcp(parley_call *c, uint8_t *buf, size_t len, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
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
    /* Close the loop: the encoder's in-band FEC follows the loss the peer sees. */
    c->loss_hint_pct = parley__loss_hint_update(&c->loss_tracked, c->fraction_lost);
    if (c->media) (void)parley__send_chain_set_expected_loss(c->media->send, c->loss_hint_pct);
    uint32_t rtt16;
    if (parley__rtcp_rtt(parley__ntp_mid32_from_us(now), b->lsr, b->dlsr, &rtt16) == 0)
      c->rtt_ms = (double)parley__ntp_short_to_us(rtt16) / 1000.0;
  }
  for (size_t i = 0; i < info.n_bye; i++) (void)parley__liveness_on_rtcp_bye(c->mon, now, info.bye_ssrc[i]);
}

void parley__call_on_rtp(parley_call *c, uint8_t *buf, size_t len, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
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
  const uint8_t *lvl;
  if (c->ext_audio_level && parley__rtp_ext_find(&v.hdr, c->ext_audio_level, &lvl) == 1) {
    c->audio_level_received = lvl[0] & 0x7f;
    c->voice_received = (lvl[0] & 0x80) != 0;
  }
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

/* The header extensions we send (one-byte form): the audio level (2 bytes) and the mid (at most 17),
 * padded to a word. */
#define EXT_BODY_MAX 20

void parley__call_drain_tx(parley_call *c, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  int local;
  parley__netaddr remote;
  bool ok = c->tx_srtp && selected(c, &local, &remote) == 0;
  const parley__tx_item *it;
  uint8_t pkt[PARLEY__RTP_FIXED_HEADER_LEN + 4 + EXT_BODY_MAX + PARLEY__OPUS_MAX_PACKET +
              PARLEY__SRTP_RTP_TRAILER_ROOM];
  size_t mid_len = strlen(c->mid);
  for (int i = 0; i < PARLEY__TX_RING_SLOTS && (it = parley__ring_read_slot(c->media->tx)) != NULL; i++) {
    if (ok) {
      parley__rtp_header h;
      memset(&h, 0, sizeof h);
      h.marker = it->marker;
      h.payload_type = (uint8_t)c->pt;
      h.seq = c->seq++;
      h.timestamp = it->timestamp;
      h.ssrc = c->ssrc;
      uint8_t ext[EXT_BODY_MAX];
      uint8_t lvl = parley__rtp_audio_level_byte(it->voice, it->level);
      parley__rtp_ext_elem el[2];
      size_t ne = 0;
      if (c->ext_audio_level) el[ne++] = (parley__rtp_ext_elem){c->ext_audio_level, 1, &lvl};
      if (c->ext_mid && mid_len && mid_len <= PARLEY__RTP_EXT_ONE_BYTE_MAX)
        el[ne++] = (parley__rtp_ext_elem){c->ext_mid, (uint8_t)mid_len, (const uint8_t *)c->mid};
      int xl = parley__rtp_ext_build(el, ne, ext, sizeof ext);
      if (xl > 0) {
        h.has_ext = true;
        h.ext_profile = PARLEY__RTP_EXT_ONE_BYTE;
        h.ext_data = ext;
        h.ext_len = (size_t)xl;
      }
      int n = parley__rtp_build(&h, it->data, it->len, 0, pkt, sizeof pkt - PARLEY__SRTP_RTP_TRAILER_ROOM);
      if (n > 0) n = parley__srtp_protect_rtp(c->tx_srtp, pkt, (size_t)n, sizeof pkt);
      if (n > 0) {
        parley__call_send(c, local, &remote, pkt, (size_t)n);
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

/* ---- statistics ---- */

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
  out->audio_level_received = c->audio_level_received;
  out->voice_received = c->voice_received;
  out->fraction_lost = c->fraction_lost;
  out->fraction_lost_received = c->fraction_lost_received;
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
  out->fec_loss_hint_pct = c->loss_hint_pct;
  int local;
  parley__netaddr remote;
  if (c->ice && parley__ice_selected_pair(c->ice, &local, &remote) == 0)
    out->local_candidate_type = parley__call_turn_is_relay(c, local) ? PARLEY_CANDIDATE_RELAY : PARLEY_CANDIDATE_HOST;
  if (c->media) {
    out->jitter_buffer_ms = (double)atomic_load_explicit(&c->media->jb_delay_us, memory_order_relaxed) / 1000.0;
    out->concealed_frames = atomic_load_explicit(&c->media->concealed, memory_order_relaxed);
    out->concealed_ms = atomic_load_explicit(&c->media->concealed_ms, memory_order_relaxed);
    out->fec_frames = atomic_load_explicit(&c->media->fec, memory_order_relaxed);
  }
  pthread_mutex_unlock(&e->lock);
  out->events_dropped = parley__target_events_dropped(e, &c->tgt);
  return 0;
}
