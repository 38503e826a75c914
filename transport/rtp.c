/* rtp.c: RTP packet build/parse and receiver statistics (see rtp.h). Owns nothing: parsed views borrow
 * the caller's buffer, statistics live in caller-owned structs. Any thread, one thread per state object;
 * real-time safe (no allocation, locks, logging or system calls).
 *
 * Layout (RFC 3550 5.1), network byte order:
 *   byte 0: V(2) P(1) X(1) CC(4)   byte 1: M(1) PT(7)   bytes 2-3: seq   4-7: timestamp   8-11: SSRC
 *   then CC x 32-bit CSRC, then if X: 16-bit profile, 16-bit length in words, length x 32-bit words,
 *   then payload, then if P: padding whose last octet counts the padding octets (itself included).
 */
#include "transport/rtp.h"

#include <math.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/wire.h"

#define RTP_SEQ_MOD 65536u
#define MAX_DROPOUT 3000u
#define MAX_MISORDER 100u

int parley__rtp_header_len(const uint8_t *buf, size_t len) {
  if (!buf) return PARLEY_EINVAL;
  if (len < PARLEY__RTP_FIXED_HEADER_LEN) return PARLEY_EPARSE;
  if ((buf[0] >> 6) != PARLEY__RTP_VERSION) return PARLEY_EPARSE;
  size_t cc = buf[0] & 0x0f;
  size_t off = PARLEY__RTP_FIXED_HEADER_LEN + 4 * cc;
  if (off > len) return PARLEY_EPARSE;
  if (buf[0] & 0x10) {
    if (len - off < 4) return PARLEY_EPARSE;
    size_t ext_len = (size_t)parley__get_be16(buf + off + 2) * 4;
    off += 4;
    if (ext_len > len - off) return PARLEY_EPARSE;
    off += ext_len;
  }
  /* off <= 12 + 60 + 4 + 262140, far below INT_MAX. */
  return (int)off;
}

int parley__rtp_parse(const uint8_t *buf, size_t len, parley__rtp_view *out) {
  if (!buf || !out) return PARLEY_EINVAL;
  int hl = parley__rtp_header_len(buf, len);
  if (hl < 0) return hl;
  size_t off = (size_t)hl;

  parley__rtp_header *h = &out->hdr;
  h->marker = (buf[1] & 0x80) != 0;
  h->payload_type = buf[1] & 0x7f;
  h->seq = parley__get_be16(buf + 2);
  h->timestamp = parley__get_be32(buf + 4);
  h->ssrc = parley__get_be32(buf + 8);
  h->csrc_count = buf[0] & 0x0f;
  for (size_t i = 0; i < h->csrc_count; i++) h->csrc[i] = parley__get_be32(buf + 12 + 4 * i);
  h->has_ext = (buf[0] & 0x10) != 0;
  h->ext_profile = 0;
  h->ext_data = NULL;
  h->ext_len = 0;
  if (h->has_ext) {
    size_t x = PARLEY__RTP_FIXED_HEADER_LEN + 4 * (size_t)h->csrc_count;
    h->ext_profile = parley__get_be16(buf + x);
    h->ext_len = (size_t)parley__get_be16(buf + x + 2) * 4;
    h->ext_data = h->ext_len ? buf + x + 4 : NULL;
  }

  size_t pad = 0;
  if (buf[0] & 0x20) {
    /* The count includes itself, so 0 is malformed; it may not eat into the header. */
    if (len == off) return PARLEY_EPARSE;
    pad = buf[len - 1];
    if (pad == 0 || pad > len - off) return PARLEY_EPARSE;
  }
  out->payload_offset = off;
  out->payload_len = len - off - pad;
  out->payload = buf + off;
  out->padding_len = pad;
  return 0;
}

int parley__rtp_build(const parley__rtp_header *hdr, const uint8_t *payload, size_t payload_len,
                      size_t padding_len, uint8_t *out, size_t cap) {
  if (!hdr || !out) return PARLEY_EINVAL;
  if (hdr->payload_type > 127 || hdr->csrc_count > PARLEY__RTP_MAX_CSRC || padding_len > 255)
    return PARLEY_EINVAL;
  if (payload_len && !payload) return PARLEY_EINVAL;
  size_t ext_len = hdr->has_ext ? hdr->ext_len : 0;
  if (ext_len % 4 != 0 || ext_len > PARLEY__RTP_MAX_EXT_LEN || (ext_len && !hdr->ext_data))
    return PARLEY_EINVAL;

  size_t head = PARLEY__RTP_FIXED_HEADER_LEN + 4 * (size_t)hdr->csrc_count + (hdr->has_ext ? 4 + ext_len : 0);
  /* Keep the total representable as an int return value. */
  if (payload_len > (size_t)INT32_MAX - head - padding_len) return PARLEY_ENOSPC;
  size_t total = head + payload_len + padding_len;
  if (total > cap) return PARLEY_ENOSPC;

  out[0] = (uint8_t)((PARLEY__RTP_VERSION << 6) | (padding_len ? 0x20 : 0) | (hdr->has_ext ? 0x10 : 0) |
                     hdr->csrc_count);
  out[1] = (uint8_t)((hdr->marker ? 0x80 : 0) | hdr->payload_type);
  parley__put_be16(out + 2, hdr->seq);
  parley__put_be32(out + 4, hdr->timestamp);
  parley__put_be32(out + 8, hdr->ssrc);
  size_t off = PARLEY__RTP_FIXED_HEADER_LEN;
  for (size_t i = 0; i < hdr->csrc_count; i++, off += 4) parley__put_be32(out + off, hdr->csrc[i]);
  if (hdr->has_ext) {
    parley__put_be16(out + off, hdr->ext_profile);
    parley__put_be16(out + off + 2, (uint16_t)(ext_len / 4));
    off += 4;
    if (ext_len) memcpy(out + off, hdr->ext_data, ext_len);
    off += ext_len;
  }
  if (payload_len) memmove(out + off, payload, payload_len);
  off += payload_len;
  if (padding_len) {
    memset(out + off, 0, padding_len - 1);
    out[off + padding_len - 1] = (uint8_t)padding_len;
    off += padding_len;
  }
  return (int)off;
}

/* ---- RFC 8285 header extensions ---- */

int parley__rtp_ext_build(const parley__rtp_ext_elem *elems, size_t n, uint8_t *out, size_t cap) {
  if ((n && !elems) || !out) return PARLEY_EINVAL;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const parley__rtp_ext_elem *e = &elems[i];
    if (e->id < 1 || e->id > 14 || e->len < 1 || e->len > PARLEY__RTP_EXT_ONE_BYTE_MAX || !e->data)
      return PARLEY_EINVAL;
    if (cap - off < 1u + e->len) return PARLEY_ENOSPC;
    out[off] = (uint8_t)(e->id << 4 | (e->len - 1));
    memcpy(out + off + 1, e->data, e->len);
    off += 1u + e->len;
  }
  size_t padded = (off + 3) & ~(size_t)3;
  if (padded > cap) return PARLEY_ENOSPC;
  memset(out + off, 0, padded - off);
  return (int)padded;
}

int parley__rtp_ext_find(const parley__rtp_header *hdr, uint8_t id, const uint8_t **data) {
  if (!hdr || !data || id == 0) return PARLEY_EINVAL;
  if (!hdr->has_ext || !hdr->ext_data) return PARLEY_ENOTFOUND;
  const uint8_t *p = hdr->ext_data;
  size_t len = hdr->ext_len, off = 0;
  bool one_byte = hdr->ext_profile == PARLEY__RTP_EXT_ONE_BYTE;
  if (!one_byte && (hdr->ext_profile & 0xfff0u) != PARLEY__RTP_EXT_TWO_BYTE) return PARLEY_ENOTFOUND;
  while (off < len) {
    uint8_t b = p[off];
    if (b == 0) { /* a padding byte, in either form */
      off++;
      continue;
    }
    uint8_t eid;
    size_t elen;
    if (one_byte) {
      eid = b >> 4;
      if (eid == 15) break; /* reserved: stop reading the block */
      elen = (size_t)(b & 0x0f) + 1;
      off += 1;
    } else {
      if (len - off < 2) return PARLEY_EPARSE;
      eid = b;
      elen = p[off + 1];
      off += 2;
    }
    if (elen > len - off) return PARLEY_EPARSE;
    if (eid == id) {
      *data = p + off;
      return (int)elen;
    }
    off += elen;
  }
  return PARLEY_ENOTFOUND;
}

uint8_t parley__rtp_audio_level(const float *pcm, size_t n) {
  if (!pcm || n == 0) return 127;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
  double mean = sum / (double)n;
  if (mean <= 0) return 127;
  double db = -10.0 * log10(mean); /* = -20 log10(rms) */
  if (db < 0) return 0;
  long lvl = lround(db);
  return (uint8_t)(lvl > 127 ? 127 : lvl);
}

/* ---- Receiver statistics ---- */

int parley__rtp_rx_init(parley__rtp_rx *rx, uint32_t clock_rate_hz, uint32_t min_sequential) {
  if (!rx || clock_rate_hz == 0) return PARLEY_EINVAL;
  memset(rx, 0, sizeof *rx);
  rx->clock_rate_hz = clock_rate_hz;
  rx->min_sequential = min_sequential;
  rx->bad_seq = RTP_SEQ_MOD + 1;
  return 0;
}

/* Starts counting afresh at seq (RFC 3550 A.1 init_seq). */
static void restart_at(parley__rtp_rx *rx, uint16_t seq) {
  rx->base_seq = seq;
  rx->max_seq = seq;
  rx->bad_seq = RTP_SEQ_MOD + 1; /* matches no 16-bit value */
  rx->cycles = 0;
  rx->received = 0;
  rx->received_prior = 0;
  rx->expected_prior = 0;
}

/* Sequence validation of RFC 3550 A.1: 1 when the packet counts, 0 when not. */
static int update_seq(parley__rtp_rx *rx, uint16_t seq) {
  if (!rx->started) {
    rx->started = true;
    if (rx->min_sequential <= 1) {
      restart_at(rx, seq);
      rx->probation = 0;
      rx->received = 1;
      return 1;
    }
    restart_at(rx, seq);
    rx->max_seq = (uint16_t)(seq - 1);
    rx->probation = rx->min_sequential;
  }
  if (rx->probation) {
    if (seq == (uint16_t)(rx->max_seq + 1)) {
      rx->probation--;
      rx->max_seq = seq;
      if (rx->probation == 0) {
        restart_at(rx, seq);
        rx->received = 1;
        return 1;
      }
    } else {
      /* Out of sequence: start probation over, counting this packet as the first in sequence. */
      rx->probation = rx->min_sequential - 1;
      rx->max_seq = seq;
    }
    return 0;
  }
  uint16_t udelta = (uint16_t)(seq - rx->max_seq);
  if (udelta < MAX_DROPOUT) {
    /* In order, possibly with a gap. */
    if (seq < rx->max_seq) rx->cycles += RTP_SEQ_MOD;
    rx->max_seq = seq;
  } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
    /* A big jump: believe it only if the next packet follows it (the sender restarted). */
    if (seq == rx->bad_seq) {
      restart_at(rx, seq);
    } else {
      rx->bad_seq = (seq + 1u) & (RTP_SEQ_MOD - 1);
      return 0;
    }
  }
  /* else: duplicate or reordered within MAX_MISORDER; counted, max unchanged. */
  rx->received++;
  return 1;
}

/* Arrival time in timestamp units, modulo 2^32, without overflowing for any int64 now_us. */
static uint32_t arrival_ts(int64_t now_us, uint32_t rate_hz) {
  int64_t sec = now_us / 1000000;
  int64_t rem = now_us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    sec -= 1;
  }
  uint64_t whole = (uint64_t)sec * rate_hz;
  uint64_t part = ((uint64_t)rem * rate_hz) / 1000000u;
  return (uint32_t)(whole + part);
}

int parley__rtp_rx_update(parley__rtp_rx *rx, uint16_t seq, uint32_t rtp_ts, int64_t now_us) {
  if (!rx) return PARLEY_EINVAL;
  int counted = update_seq(rx, seq);
  if (!counted) return 0;
  /* RFC 3550 A.8: D = (Rj - Ri) - (Sj - Si) = transit_j - transit_i; J += (|D| - J) / 16, kept times 16. */
  uint32_t transit = arrival_ts(now_us, rx->clock_rate_hz) - rtp_ts;
  if (rx->have_transit) {
    int32_t d = (int32_t)(transit - rx->transit);
    uint32_t ad = d < 0 ? (uint32_t)(-(int64_t)d) : (uint32_t)d;
    int64_t j = (int64_t)rx->jitter_q4 + (int64_t)ad - (int64_t)((rx->jitter_q4 + 8) >> 4);
    rx->jitter_q4 = j < 0 ? 0 : (j > UINT32_MAX ? UINT32_MAX : (uint32_t)j);
  }
  rx->transit = transit;
  rx->have_transit = true;
  return 1;
}

uint32_t parley__rtp_rx_ext_max(const parley__rtp_rx *rx) { return rx->cycles + rx->max_seq; }

uint32_t parley__rtp_rx_expected(const parley__rtp_rx *rx) {
  if (!rx->started || rx->probation) return 0;
  return parley__rtp_rx_ext_max(rx) - rx->base_seq + 1;
}

int64_t parley__rtp_rx_lost(const parley__rtp_rx *rx) {
  return (int64_t)parley__rtp_rx_expected(rx) - (int64_t)rx->received;
}

uint32_t parley__rtp_rx_jitter(const parley__rtp_rx *rx) { return rx->jitter_q4 >> 4; }

void parley__rtp_rx_make_report(parley__rtp_rx *rx, parley__rtp_rx_report *out) {
  uint32_t expected = parley__rtp_rx_expected(rx);
  int64_t lost = parley__rtp_rx_lost(rx);
  if (lost > 0x7fffff) lost = 0x7fffff;
  if (lost < -0x800000) lost = -0x800000;
  /* RFC 3550 A.3: fraction over the interval; 0 when nothing expected or more arrived than expected. */
  uint32_t expected_interval = expected - rx->expected_prior;
  uint32_t received_interval = rx->received - rx->received_prior;
  int64_t lost_interval = (int64_t)expected_interval - (int64_t)received_interval;
  uint8_t fraction = 0;
  if (expected_interval != 0 && lost_interval > 0) {
    /* Everything lost gives 256/256: saturate rather than wrap to 0. */
    uint64_t f = ((uint64_t)lost_interval << 8) / expected_interval;
    fraction = (uint8_t)(f > 255 ? 255 : f);
  }
  rx->expected_prior = expected;
  rx->received_prior = rx->received;

  out->fraction_lost = fraction;
  out->cumulative_lost = (int32_t)lost;
  out->ext_highest_seq = parley__rtp_rx_ext_max(rx);
  out->jitter = parley__rtp_rx_jitter(rx);
}
