/* rtcp.c: compound RTCP build/parse and NTP/RTT arithmetic (see rtcp.h). Owns nothing; stateless; any
 * thread; real-time safe (no allocation, locks, logging or system calls).
 *
 * Every RTCP packet starts with V(2) P(1) count(5) | PT(8) | length(16), the length being the packet's
 * size in 32-bit words minus one (RFC 3550 6.4). Layouts used here:
 *   SR:   header, SSRC, NTP(8), RTP ts, packet count, octet count, count x 24-byte report blocks
 *   RR:   header, SSRC, count x report blocks
 *   SDES: header, count x chunks; chunk = SSRC, items (type, len, text), a 0 octet, zeros to 4 bytes
 *   BYE:  header, count x SSRC, optional (len, reason), zeros to 4 bytes
 *   report block: SSRC, fraction(8) cumulative lost(24, signed), ext highest seq, jitter, LSR, DLSR
 */
#include "transport/rtcp.h"

#include <string.h>

#include "parley/parley.h"
#include "transport/wire.h"

#define HEADER_LEN 4
#define BLOCK_LEN 24
#define SENDER_INFO_LEN 20

/* strlen that stops looking after max bytes (strnlen is POSIX, not C11). */
static size_t bounded_strlen(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) n++;
  return n;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static void write_header(uint8_t *p, unsigned count, uint8_t type, size_t total_len) {
  p[0] = (uint8_t)(0x80 | (count & 0x1f));
  p[1] = type;
  parley__put_be16(p + 2, (uint16_t)(total_len / 4 - 1));
}

static void write_block(uint8_t *p, const parley__rtcp_report_block *b) {
  parley__put_be32(p, b->ssrc);
  /* 24-bit two's complement of cumulative_lost under the fraction octet. */
  parley__put_be32(p + 4, ((uint32_t)b->fraction_lost << 24) | ((uint32_t)b->cumulative_lost & 0xffffffu));
  parley__put_be32(p + 8, b->ext_highest_seq);
  parley__put_be32(p + 12, b->jitter);
  parley__put_be32(p + 16, b->lsr);
  parley__put_be32(p + 20, b->dlsr);
}

static void read_block(const uint8_t *p, parley__rtcp_report_block *b) {
  b->ssrc = parley__get_be32(p);
  b->fraction_lost = p[4];
  uint32_t lost = parley__get_be32(p + 4) & 0xffffffu;
  b->cumulative_lost = (lost & 0x800000u) ? (int32_t)lost - 0x1000000 : (int32_t)lost;
  b->ext_highest_seq = parley__get_be32(p + 8);
  b->jitter = parley__get_be32(p + 12);
  b->lsr = parley__get_be32(p + 16);
  b->dlsr = parley__get_be32(p + 20);
}

int parley__rtcp_build_compound(const parley__rtcp_compound_desc *d, uint8_t *out, size_t cap) {
  if (!d || !out || !d->cname) return PARLEY_EINVAL;
  if (d->n_blocks > PARLEY__RTCP_MAX_BLOCKS || (d->n_blocks && !d->blocks)) return PARLEY_EINVAL;
  for (size_t i = 0; i < d->n_blocks; i++) {
    int32_t l = d->blocks[i].cumulative_lost;
    if (l > 0x7fffff || l < -0x800000) return PARLEY_EINVAL;
  }
  size_t cname_len = bounded_strlen(d->cname, PARLEY__RTCP_MAX_TEXT + 1);
  if (cname_len == 0 || cname_len > PARLEY__RTCP_MAX_TEXT) return PARLEY_EINVAL;
  size_t reason_len = d->bye && d->bye_reason ? bounded_strlen(d->bye_reason, PARLEY__RTCP_MAX_TEXT + 1) : 0;
  if (reason_len > PARLEY__RTCP_MAX_TEXT) return PARLEY_EINVAL;

  size_t report_len = HEADER_LEN + 4 + (d->is_sender ? SENDER_INFO_LEN : 0) + BLOCK_LEN * d->n_blocks;
  /* Chunk: SSRC, CNAME item (type, len, text), at least one 0 octet, padded to 4. */
  size_t sdes_len = HEADER_LEN + pad4(4 + 2 + cname_len + 1);
  size_t bye_len = d->bye ? HEADER_LEN + 4 + (reason_len ? pad4(1 + reason_len) : 0) : 0;
  size_t total = report_len + sdes_len + bye_len;
  if (total > cap) return PARLEY_ENOSPC;

  uint8_t *p = out;
  write_header(p, (unsigned)d->n_blocks, d->is_sender ? PARLEY__RTCP_SR : PARLEY__RTCP_RR, report_len);
  parley__put_be32(p + 4, d->ssrc);
  size_t off = 8;
  if (d->is_sender) {
    parley__put_be32(p + off, (uint32_t)(d->sender.ntp >> 32));
    parley__put_be32(p + off + 4, (uint32_t)d->sender.ntp);
    parley__put_be32(p + off + 8, d->sender.rtp_ts);
    parley__put_be32(p + off + 12, d->sender.packet_count);
    parley__put_be32(p + off + 16, d->sender.octet_count);
    off += SENDER_INFO_LEN;
  }
  for (size_t i = 0; i < d->n_blocks; i++, off += BLOCK_LEN) write_block(p + off, &d->blocks[i]);
  p += report_len;

  memset(p, 0, sdes_len);
  write_header(p, 1, PARLEY__RTCP_SDES, sdes_len);
  parley__put_be32(p + 4, d->ssrc);
  p[8] = PARLEY__RTCP_SDES_CNAME;
  p[9] = (uint8_t)cname_len;
  memcpy(p + 10, d->cname, cname_len);
  p += sdes_len;

  if (d->bye) {
    memset(p, 0, bye_len);
    write_header(p, 1, PARLEY__RTCP_BYE, bye_len);
    parley__put_be32(p + 4, d->ssrc);
    if (reason_len) {
      p[8] = (uint8_t)reason_len;
      memcpy(p + 9, d->bye_reason, reason_len);
    }
  }
  return (int)total;
}

/* ---- Parsing ---- */

static void add_blocks(parley__rtcp_info *info, const uint8_t *p, size_t count, uint32_t sender) {
  for (size_t i = 0; i < count; i++) {
    if (info->n_blocks < PARLEY__RTCP_MAX_BLOCKS) {
      read_block(p + BLOCK_LEN * i, &info->blocks[info->n_blocks]);
      info->block_sender_ssrc[info->n_blocks] = sender;
      info->n_blocks++;
    } else {
      info->n_blocks_dropped++;
    }
  }
}

/* body: the packet after its 4-byte header, padding removed. */
static int parse_sr(parley__rtcp_info *info, const uint8_t *body, size_t len, size_t count) {
  if (len < 4 + SENDER_INFO_LEN + BLOCK_LEN * count) return PARLEY_EPARSE;
  uint32_t ssrc = parley__get_be32(body);
  if (!info->has_sr) {
    info->has_sr = true;
    info->sr_ssrc = ssrc;
    info->sender.ntp = ((uint64_t)parley__get_be32(body + 4) << 32) | parley__get_be32(body + 8);
    info->sender.rtp_ts = parley__get_be32(body + 12);
    info->sender.packet_count = parley__get_be32(body + 16);
    info->sender.octet_count = parley__get_be32(body + 20);
  }
  /* Anything after the blocks is a profile-specific extension: skipped. */
  add_blocks(info, body + 4 + SENDER_INFO_LEN, count, ssrc);
  return 0;
}

static int parse_rr(parley__rtcp_info *info, const uint8_t *body, size_t len, size_t count) {
  if (len < 4 + BLOCK_LEN * count) return PARLEY_EPARSE;
  add_blocks(info, body + 4, count, parley__get_be32(body));
  return 0;
}

static int parse_sdes(parley__rtcp_info *info, const uint8_t *body, size_t len, size_t count) {
  size_t off = 0;
  for (size_t c = 0; c < count; c++) {
    if (len - off < 4) return PARLEY_EPARSE;
    uint32_t ssrc = parley__get_be32(body + off);
    off += 4;
    for (;;) {
      if (off >= len) return PARLEY_EPARSE; /* no terminating null item */
      uint8_t type = body[off];
      if (type == 0) {
        /* The null item, then zeros up to the next 32-bit boundary (body starts 4-aligned). */
        off = pad4(off + 1);
        if (off > len) return PARLEY_EPARSE;
        break;
      }
      if (len - off < 2) return PARLEY_EPARSE;
      size_t ilen = body[off + 1];
      if (len - off - 2 < ilen) return PARLEY_EPARSE;
      if (type == PARLEY__RTCP_SDES_CNAME && !info->has_cname) {
        info->has_cname = true;
        info->cname_ssrc = ssrc;
        info->cname_len = ilen;
        memcpy(info->cname, body + off + 2, ilen);
        info->cname[ilen] = '\0';
      }
      off += 2 + ilen;
    }
  }
  return 0;
}

static int parse_bye(parley__rtcp_info *info, const uint8_t *body, size_t len, size_t count) {
  if (len < 4 * count) return PARLEY_EPARSE;
  for (size_t i = 0; i < count; i++) {
    if (info->n_bye < PARLEY__RTCP_MAX_BYE) info->bye_ssrc[info->n_bye++] = parley__get_be32(body + 4 * i);
  }
  info->has_bye = true;
  size_t off = 4 * count;
  if (off < len) {
    size_t rlen = body[off];
    if (len - off - 1 < rlen) return PARLEY_EPARSE;
    if (info->bye_reason_len == 0 && rlen) {
      memcpy(info->bye_reason, body + off + 1, rlen);
      info->bye_reason[rlen] = '\0';
      info->bye_reason_len = rlen;
    }
  }
  return 0;
}

int parley__rtcp_parse_compound(const uint8_t *buf, size_t len, parley__rtcp_info *out) {
  if (!buf || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  if (len < HEADER_LEN) return PARLEY_EPARSE;
  size_t off = 0;
  while (off < len) {
    if (len - off < HEADER_LEN) return PARLEY_EPARSE;
    const uint8_t *p = buf + off;
    if ((p[0] >> 6) != 2) return PARLEY_EPARSE;
    size_t count = p[0] & 0x1f;
    uint8_t type = p[1];
    size_t plen = ((size_t)parley__get_be16(p + 2) + 1) * 4;
    if (plen > len - off) return PARLEY_EPARSE;
    bool last = plen == len - off;
    size_t body_len = plen - HEADER_LEN;
    if (p[0] & 0x20) {
      /* Padding only at the very end of the compound; the count includes itself. */
      if (!last) return PARLEY_EPARSE;
      size_t pad = p[plen - 1];
      if (pad == 0 || pad > body_len) return PARLEY_EPARSE;
      body_len -= pad;
    }
    if (off == 0) {
      /* RFC 5506 reduced-size RTCP (a=rtcp-rsize) may start with any packet, e.g. a lone feedback
       * message; every RTCP packet type parley meets begins with an SSRC. */
      out->first_type = type;
      if (body_len < 4) return PARLEY_EPARSE;
      out->ssrc = parley__get_be32(p + HEADER_LEN);
    }
    const uint8_t *body = p + HEADER_LEN;
    int rc = 0;
    switch (type) {
    case PARLEY__RTCP_SR: rc = parse_sr(out, body, body_len, count); break;
    case PARLEY__RTCP_RR: rc = parse_rr(out, body, body_len, count); break;
    case PARLEY__RTCP_SDES: rc = parse_sdes(out, body, body_len, count); break;
    case PARLEY__RTCP_BYE: rc = parse_bye(out, body, body_len, count); break;
    default: out->n_other++; break;
    }
    if (rc < 0) return rc;
    out->n_packets++;
    off += plen;
  }
  return 0;
}

/* ---- NTP arithmetic ---- */

uint64_t parley__ntp_from_us(int64_t us) {
  if (us < 0) return 0;
  uint64_t sec = (uint64_t)us / 1000000u;
  uint64_t rem = (uint64_t)us % 1000000u;
  /* rem < 10^6 < 2^20, so rem << 32 fits in 64 bits. */
  uint64_t frac = (rem << 32) / 1000000u;
  return (sec << 32) | frac;
}

int64_t parley__ntp_to_us(uint64_t ntp) {
  uint64_t sec = ntp >> 32;
  uint64_t frac = ntp & 0xffffffffu;
  return (int64_t)(sec * 1000000u + ((frac * 1000000u) >> 32));
}

uint32_t parley__ntp_short_from_us(int64_t us) {
  if (us <= 0) return 0;
  /* Split to avoid overflow: whole seconds, then the remainder. */
  uint64_t sec = (uint64_t)us / 1000000u;
  uint64_t rem = (uint64_t)us % 1000000u;
  if (sec >= 65536) return UINT32_MAX;
  uint64_t v = (sec << 16) + ((rem << 16) / 1000000u);
  return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int64_t parley__ntp_short_to_us(uint32_t v) { return (int64_t)(((uint64_t)v * 1000000u) >> 16); }

int parley__rtcp_rtt(uint32_t arrival_mid32, uint32_t lsr, uint32_t dlsr, uint32_t *rtt_ntp16) {
  if (!rtt_ntp16) return PARLEY_EINVAL;
  if (lsr == 0) return PARLEY_ENOTFOUND;
  uint32_t rtt = arrival_mid32 - lsr - dlsr;
  if ((int32_t)rtt < 0) return PARLEY_ERANGE;
  *rtt_ntp16 = rtt;
  return 0;
}
