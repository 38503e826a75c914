/* rtcp.h: compound RTCP packets (RFC 3550 section 6): build SR or RR + SDES(CNAME) [+ BYE], parse a
 * compound into a flat summary, and the NTP/RTT arithmetic of 6.4.1.
 *
 * Building writes into a caller-owned buffer. Parsing copies what it reports into the caller's
 * parley__rtcp_info (no pointers into the packet are kept). Malformed input gives PARLEY_EPARSE; a too
 * small output buffer PARLEY_ENOSPC.
 *
 * Threads: stateless; any thread. Real-time safe: no allocation, locks or system calls.
 */
#ifndef PARLEY_TRANSPORT_RTCP_H
#define PARLEY_TRANSPORT_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__RTCP_SR 200
#define PARLEY__RTCP_RR 201
#define PARLEY__RTCP_SDES 202
#define PARLEY__RTCP_BYE 203
#define PARLEY__RTCP_APP 204
#define PARLEY__RTCP_SDES_CNAME 1

/* Report blocks per SR/RR: the 5-bit count field. */
#define PARLEY__RTCP_MAX_BLOCKS 31
/* SSRCs per BYE: the 5-bit count field. */
#define PARLEY__RTCP_MAX_BYE 31
/* SDES items and the BYE reason carry an 8-bit length. */
#define PARLEY__RTCP_MAX_TEXT 255

/* Sender info of an SR (RFC 3550 6.4.1). */
typedef struct parley__rtcp_sender_info {
  uint64_t ntp;          /* 32.32 fixed-point NTP timestamp */
  uint32_t rtp_ts;       /* the same instant on the RTP media clock */
  uint32_t packet_count; /* packets sent since starting */
  uint32_t octet_count;  /* payload octets sent since starting */
} parley__rtcp_sender_info;

/* One reception report block. */
typedef struct parley__rtcp_report_block {
  uint32_t ssrc;            /* the source reported on */
  uint8_t fraction_lost;    /* times 256 */
  int32_t cumulative_lost;  /* 24-bit signed on the wire: [-0x800000, 0x7fffff] */
  uint32_t ext_highest_seq;
  uint32_t jitter;          /* timestamp units */
  uint32_t lsr;             /* middle 32 bits of the last SR's NTP time, 0 when none */
  uint32_t dlsr;            /* delay since that SR, 1/65536 s */
} parley__rtcp_report_block;

/* What to put in a compound. Pointers are borrowed for the call. */
typedef struct parley__rtcp_compound_desc {
  uint32_t ssrc;                           /* our SSRC */
  bool is_sender;                          /* SR when true, RR otherwise */
  parley__rtcp_sender_info sender;         /* used when is_sender */
  const parley__rtcp_report_block *blocks; /* may be NULL when n_blocks == 0 */
  size_t n_blocks;                         /* <= PARLEY__RTCP_MAX_BLOCKS */
  const char *cname;                       /* NUL-terminated, 1..255 bytes; required */
  bool bye;                                /* append a BYE for ssrc */
  const char *bye_reason;                  /* NULL or NUL-terminated, <= 255 bytes */
} parley__rtcp_compound_desc;

/* Writes the compound into out. Returns its length (a multiple of 4), PARLEY_ENOSPC when cap is too
 * small, PARLEY_EINVAL for bad descriptions (missing/empty/too long CNAME, too many blocks, reason too
 * long, cumulative_lost outside 24 bits). */
int parley__rtcp_build_compound(const parley__rtcp_compound_desc *desc, uint8_t *out, size_t cap);

/* The summary of a parsed compound. Fixed size, copied out of the packet. */
typedef struct parley__rtcp_info {
  uint8_t first_type;  /* the first packet's type: SR or RR in a full compound, anything reduced-size */
  uint32_t ssrc;       /* the first packet's first 32-bit word: its sender's SSRC */
  bool has_sr;         /* an SR was present (first SR wins) */
  uint32_t sr_ssrc;
  parley__rtcp_sender_info sender;
  /* Report blocks of every SR/RR in the compound, in order; beyond the array they are only counted. */
  size_t n_blocks;
  size_t n_blocks_dropped;
  parley__rtcp_report_block blocks[PARLEY__RTCP_MAX_BLOCKS];
  uint32_t block_sender_ssrc[PARLEY__RTCP_MAX_BLOCKS]; /* SSRC of the SR/RR that carried each block */
  bool has_cname; /* first CNAME found */
  uint32_t cname_ssrc;
  size_t cname_len;
  char cname[PARLEY__RTCP_MAX_TEXT + 1]; /* NUL-terminated copy (may contain earlier NULs: use len) */
  bool has_bye;
  size_t n_bye;
  uint32_t bye_ssrc[PARLEY__RTCP_MAX_BYE];
  size_t bye_reason_len; /* 0 when no reason */
  char bye_reason[PARLEY__RTCP_MAX_TEXT + 1];
  size_t n_packets; /* RTCP packets in the compound */
  size_t n_other;   /* packets of other types (APP, feedback, XR...) skipped */
} parley__rtcp_info;

/* Parses a compound RTCP packet (RFC 3550 A.2 validity checks): every packet has version 2 and a length
 * that fits; the lengths add up exactly to len; the first packet has an SSRC (it need not be an SR or RR:
 * RFC 5506 reduced-size RTCP, e.g. a lone feedback packet, is accepted as a compound); only the last packet may
 * carry padding, with a count of 1..(its body length); SR/RR/SDES/BYE bodies are checked against their
 * counts. 0 on success, PARLEY_EPARSE when malformed, PARLEY_EINVAL for NULL arguments. */
int parley__rtcp_parse_compound(const uint8_t *buf, size_t len, parley__rtcp_info *out);

/* ---- NTP arithmetic (RFC 3550 4, 6.4.1) ---- */

/* A 32.32 fixed-point NTP value for a time in microseconds since the chosen epoch (the caller's clock;
 * RTT only needs both ends of one side to use the same clock). us < 0 gives 0. */
uint64_t parley__ntp_from_us(int64_t us);
/* Back to microseconds (rounded down). */
int64_t parley__ntp_to_us(uint64_t ntp);
/* The middle 32 bits (16.16 seconds) as used in LSR and RTT. */
static inline uint32_t parley__ntp_mid32(uint64_t ntp) { return (uint32_t)(ntp >> 16); }
static inline uint32_t parley__ntp_mid32_from_us(int64_t us) { return parley__ntp_mid32(parley__ntp_from_us(us)); }
/* A duration in microseconds as 1/65536 s units (DLSR), saturating at UINT32_MAX; negative gives 0. */
uint32_t parley__ntp_short_from_us(int64_t us);
/* 1/65536 s units to microseconds. */
int64_t parley__ntp_short_to_us(uint32_t v);

/* Round-trip time from a report block: arrival_mid32 is our NTP middle 32 bits when the report arrived.
 * rtt = arrival - lsr - dlsr (mod 2^32), in 1/65536 s. PARLEY_ENOTFOUND when lsr == 0 (no SR received
 * yet), PARLEY_ERANGE when the result is negative as a signed 32-bit value (clock trouble). */
int parley__rtcp_rtt(uint32_t arrival_mid32, uint32_t lsr, uint32_t dlsr, uint32_t *rtt_ntp16);

#endif
