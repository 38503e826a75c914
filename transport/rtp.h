/* rtp.h: RTP packets (RFC 3550 section 5.1; Opus payload per RFC 7587 is opaque bytes here) and the
 * receiver-side sequence/jitter/loss bookkeeping of RFC 3550 appendices A.1, A.3 and A.8.
 *
 * Parsing never copies the payload: a parley__rtp_view borrows the caller's buffer and is valid only as
 * long as that buffer is. Building writes into a caller-owned buffer. Every length is checked; malformed
 * input gives PARLEY_EPARSE, a too-small output buffer PARLEY_ENOSPC.
 *
 * Threads: all functions are stateless or act only on caller-owned state; any thread, one thread per
 * state object. Real-time safe: no allocation, locks or system calls.
 */
#ifndef PARLEY_TRANSPORT_RTP_H
#define PARLEY_TRANSPORT_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__RTP_VERSION 2
#define PARLEY__RTP_FIXED_HEADER_LEN 12
#define PARLEY__RTP_MAX_CSRC 15
/* The extension length field counts 32-bit words in 16 bits. */
#define PARLEY__RTP_MAX_EXT_LEN (65535u * 4u)

/* The header fields of one RTP packet. For parse, ext_data borrows the parsed buffer; for build, it
 * borrows the caller's bytes (copied into the packet). */
typedef struct parley__rtp_header {
  bool marker;
  uint8_t payload_type; /* 0..127 */
  uint16_t seq;
  uint32_t timestamp; /* media clock units (48000 Hz for Opus, RFC 7587) */
  uint32_t ssrc;
  uint8_t csrc_count; /* 0..15 */
  uint32_t csrc[PARLEY__RTP_MAX_CSRC];
  bool has_ext;
  uint16_t ext_profile;     /* the 16-bit "defined by profile" field, e.g. 0xBEDE (RFC 8285) */
  const uint8_t *ext_data;  /* extension body, borrowed; NULL when ext_len == 0 */
  size_t ext_len;           /* body bytes: a multiple of 4, at most PARLEY__RTP_MAX_EXT_LEN */
} parley__rtp_header;

/* A parsed packet: header plus where the payload lies in the caller's buffer (borrowed). */
typedef struct parley__rtp_view {
  parley__rtp_header hdr;
  const uint8_t *payload; /* buf + payload_offset; borrowed */
  size_t payload_offset;  /* bytes from the start of the packet */
  size_t payload_len;     /* payload bytes, padding excluded; may be 0 */
  size_t padding_len;     /* padding bytes at the end (0 when the P bit is clear), count octet included */
} parley__rtp_view;

/* Length of the header (fixed part + CSRC list + extension) of the packet in buf, after checking the
 * version and that every part fits in len. Padding and payload are not examined (they are encrypted in
 * SRTP). Returns the length, or PARLEY_EPARSE / PARLEY_EINVAL (NULL buf). */
int parley__rtp_header_len(const uint8_t *buf, size_t len);

/* Parses a whole RTP packet. out borrows buf. 0 on success; PARLEY_EPARSE for a wrong version, a header
 * or extension running past len, or a padding count of 0 or larger than what follows the header;
 * PARLEY_EINVAL for NULL arguments. On failure *out is unspecified. */
int parley__rtp_parse(const uint8_t *buf, size_t len, parley__rtp_view *out);

/* Writes hdr + payload + padding_len bytes of padding (0 = no padding, else 1..255; the P bit is set and
 * the last octet holds the count) into out. Returns the packet length, PARLEY_ENOSPC when cap is too
 * small (nothing meaningful written), PARLEY_EINVAL for bad fields (payload_type > 127, csrc_count > 15,
 * ext_len not a multiple of 4 or too big, padding_len > 255, NULL pointers with non-zero lengths). */
int parley__rtp_build(const parley__rtp_header *hdr, const uint8_t *payload, size_t payload_len,
                      size_t padding_len, uint8_t *out, size_t cap);

/* ---- RFC 8285 header extensions ---- */

#define PARLEY__RTP_EXT_ONE_BYTE 0xBEDEu  /* profile of the one-byte form: ids 1..14, 1..16 data bytes */
#define PARLEY__RTP_EXT_TWO_BYTE 0x1000u  /* the two-byte form: 0x100 in the top 12 bits, 4 app bits */
#define PARLEY__RTP_EXT_ONE_BYTE_MAX 16   /* data bytes in one one-byte element */

/* One element to write: id 1..14, 1..16 bytes of data (borrowed). */
typedef struct parley__rtp_ext_elem {
  uint8_t id;
  uint8_t len;
  const uint8_t *data;
} parley__rtp_ext_elem;

/* Writes n elements in the one-byte form, zero-padded to a multiple of 4, into out: the extension body
 * to pass as ext_data with ext_profile PARLEY__RTP_EXT_ONE_BYTE. Returns its length (0 for n == 0),
 * PARLEY_ENOSPC, or PARLEY_EINVAL (an id or length out of range, NULL data). */
int parley__rtp_ext_build(const parley__rtp_ext_elem *elems, size_t n, uint8_t *out, size_t cap);

/* Finds element id (1..255) in a parsed header's extension, one-byte or two-byte form; padding bytes
 * are skipped and a one-byte id 15 ends the walk (RFC 8285 4.2). Returns the element's data length with
 * *data pointing into the packet; PARLEY_ENOTFOUND when there is no such element, no extension, or an
 * extension of another profile; PARLEY_EPARSE when an element runs past the block. The payload offset
 * of the packet never depends on this walk (the block's length word alone bounds it). */
int parley__rtp_ext_find(const parley__rtp_header *hdr, uint8_t id, const uint8_t **data);

/* RFC 6464: the level of n samples (-1..1 full scale) in -dBov, 0 (a full-scale square wave) ..127
 * (silence and below -127 dBov), rounded to the nearest dB; and the one-byte element that carries it,
 * the voice-activity flag in the top bit. Real-time safe (arithmetic only). */
uint8_t parley__rtp_audio_level(const float *pcm, size_t n);
static inline uint8_t parley__rtp_audio_level_byte(bool voice, uint8_t level) {
  return (uint8_t)((voice ? 0x80 : 0) | (level > 127 ? 127 : level));
}

/* Wrap-safe sequence arithmetic (RFC 1982 style on 16 bits): the signed distance from b to a, in
 * [-32768, 32767], and "a comes before b". */
static inline int32_t parley__rtp_seq_diff(uint16_t a, uint16_t b) {
  int32_t d = (int32_t)a - (int32_t)b;
  if (d > 32767) d -= 65536;
  if (d < -32768) d += 65536;
  return d;
}
static inline bool parley__rtp_seq_lt(uint16_t a, uint16_t b) { return parley__rtp_seq_diff(a, b) < 0; }

/* Receiver state for one remote SSRC (RFC 3550 A.1, A.3, A.8). Caller-owned, plain data; initialise
 * with parley__rtp_rx_init. One thread. */
typedef struct parley__rtp_rx {
  uint32_t clock_rate_hz;  /* media clock, for converting arrival time to timestamp units */
  uint32_t min_sequential; /* packets in sequence needed before a source is valid (RFC: 2) */
  bool started;            /* any packet seen */
  uint16_t max_seq;        /* highest sequence number seen */
  uint32_t cycles;         /* wraps of max_seq, times 65536 */
  uint32_t base_seq;       /* first sequence number counted */
  uint32_t bad_seq;        /* last "jump" sequence number + 1; 65537 when none */
  uint32_t probation;      /* sequential packets still needed */
  uint32_t received;       /* valid packets counted */
  uint32_t expected_prior; /* expected at the last report */
  uint32_t received_prior; /* received at the last report */
  bool have_transit;       /* a transit time has been recorded */
  uint32_t transit;        /* last (arrival - timestamp), timestamp units, modulo 2^32 */
  uint32_t jitter_q4;      /* interarrival jitter times 16 (A.8's integer form) */
} parley__rtp_rx;

/* clock_rate_hz > 0; min_sequential 0 or 1 accepts the first packet at once, 2 is RFC 3550's default.
 * PARLEY_EINVAL on bad arguments. */
int parley__rtp_rx_init(parley__rtp_rx *rx, uint32_t clock_rate_hz, uint32_t min_sequential);

/* Feeds one received packet. now_us: arrival time in microseconds (any fixed epoch). Returns 1 when the
 * packet is counted (source valid; jitter updated), 0 when it is not (probation, or a large jump awaiting
 * confirmation by the next packet), PARLEY_EINVAL for NULL. */
int parley__rtp_rx_update(parley__rtp_rx *rx, uint16_t seq, uint32_t rtp_ts, int64_t now_us);

/* Extended highest sequence number received (cycles + max_seq). */
uint32_t parley__rtp_rx_ext_max(const parley__rtp_rx *rx);
/* Packets expected since base_seq: ext_max - base_seq + 1 (0 before the source is valid). */
uint32_t parley__rtp_rx_expected(const parley__rtp_rx *rx);
/* Cumulative lost = expected - received; may be negative with duplicates. Not clamped. */
int64_t parley__rtp_rx_lost(const parley__rtp_rx *rx);
/* Interarrival jitter in timestamp units (A.8's J, rounded down). */
uint32_t parley__rtp_rx_jitter(const parley__rtp_rx *rx);

/* One reception report's worth of numbers (RFC 3550 6.4.1, A.3). */
typedef struct parley__rtp_rx_report {
  uint8_t fraction_lost;   /* lost/expected over the interval since the last report, times 256 */
  int32_t cumulative_lost; /* clamped to the 24-bit signed range [-0x800000, 0x7fffff] */
  uint32_t ext_highest_seq;
  uint32_t jitter;         /* timestamp units */
} parley__rtp_rx_report;

/* Fills *out and starts a new reporting interval (moves expected_prior/received_prior). */
void parley__rtp_rx_make_report(parley__rtp_rx *rx, parley__rtp_rx_report *out);

#endif
