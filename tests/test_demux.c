/* test_demux.c: RFC 7983 first-byte classification over every byte value, and the RFC 5761 RTP/RTCP
 * split over every second byte, plus real packets from the RTP and RTCP builders. */
#include <criterion/criterion.h>
#include <string.h>

#include "transport/demux.h"
#include "transport/rtcp.h"
#include "transport/rtp.h"

/* The RFC 7983 section 7 table, restated as ranges. */
static parley__demux_kind expected_first(unsigned b) {
  static const struct {
    unsigned lo, hi;
    parley__demux_kind kind;
  } table[] = {
      {0, 3, PARLEY__DEMUX_STUN},          {16, 19, PARLEY__DEMUX_ZRTP},
      {20, 63, PARLEY__DEMUX_DTLS},        {64, 79, PARLEY__DEMUX_TURN_CHANNEL},
      {128, 191, PARLEY__DEMUX_RTP}, /* refined by the second byte */
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (b >= table[i].lo && b <= table[i].hi) return table[i].kind;
  return PARLEY__DEMUX_UNKNOWN;
}

Test(demux, every_first_byte) {
  int counts[7] = {0};
  for (unsigned b = 0; b < 256; b++) {
    uint8_t pkt[2] = {(uint8_t)b, 111}; /* second byte: Opus PT, no marker */
    parley__demux_kind k = parley__demux_classify(pkt, sizeof pkt);
    cr_expect_eq(k, expected_first(b), "byte %u: %s", b, parley__demux_kind_name(k));
    counts[k]++;
  }
  cr_expect_eq(counts[PARLEY__DEMUX_STUN], 4);
  cr_expect_eq(counts[PARLEY__DEMUX_ZRTP], 4);
  cr_expect_eq(counts[PARLEY__DEMUX_DTLS], 44);
  cr_expect_eq(counts[PARLEY__DEMUX_TURN_CHANNEL], 16);
  cr_expect_eq(counts[PARLEY__DEMUX_RTP], 64);
  cr_expect_eq(counts[PARLEY__DEMUX_UNKNOWN], 256 - 4 - 4 - 44 - 16 - 64);
}

Test(demux, every_second_byte_for_rtp_range) {
  for (unsigned first = 128; first < 192; first += 21) {
    int rtcp = 0;
    for (unsigned b = 0; b < 256; b++) {
      uint8_t pkt[2] = {(uint8_t)first, (uint8_t)b};
      parley__demux_kind k = parley__demux_classify(pkt, sizeof pkt);
      /* RTCP packet types 192..223 (and the same PTs 64..95 with the marker bit clear). */
      unsigned pt = b & 0x7f;
      parley__demux_kind want = (pt >= 64 && pt <= 95) ? PARLEY__DEMUX_RTCP : PARLEY__DEMUX_RTP;
      cr_expect_eq(k, want, "first %u second %u", first, b);
      if (k == PARLEY__DEMUX_RTCP) rtcp++;
    }
    cr_expect_eq(rtcp, 64);
    for (unsigned t = 192; t <= 223; t++) {
      uint8_t pkt[2] = {(uint8_t)first, (uint8_t)t};
      cr_expect_eq(parley__demux_classify(pkt, 2), PARLEY__DEMUX_RTCP, "type %u", t);
    }
  }
}

Test(demux, short_and_empty_datagrams) {
  uint8_t one = 0x80;
  cr_expect_eq(parley__demux_classify(&one, 1), PARLEY__DEMUX_UNKNOWN);
  cr_expect_eq(parley__demux_classify(&one, 0), PARLEY__DEMUX_UNKNOWN);
  cr_expect_eq(parley__demux_classify(NULL, 10), PARLEY__DEMUX_UNKNOWN);
  uint8_t stun = 0x00;
  cr_expect_eq(parley__demux_classify(&stun, 1), PARLEY__DEMUX_STUN);
  cr_expect_str_eq(parley__demux_kind_name(PARLEY__DEMUX_RTCP), "rtcp");
  cr_expect_str_eq(parley__demux_kind_name((parley__demux_kind)99), "unknown");
}

Test(demux, built_packets) {
  uint8_t buf[256];
  uint8_t payload[10] = {0};
  parley__rtp_header h = {.payload_type = 111, .seq = 1, .ssrc = 2};
  int n = parley__rtp_build(&h, payload, sizeof payload, 0, buf, sizeof buf);
  cr_expect_eq(parley__demux_classify(buf, (size_t)n), PARLEY__DEMUX_RTP);
  h.marker = true; /* 0x80 | 111 = 239, outside 192..223 */
  n = parley__rtp_build(&h, payload, sizeof payload, 4, buf, sizeof buf);
  cr_expect_eq(parley__demux_classify(buf, (size_t)n), PARLEY__DEMUX_RTP);
  parley__rtcp_compound_desc d = {.ssrc = 2, .cname = "x", .is_sender = true};
  n = parley__rtcp_build_compound(&d, buf, sizeof buf);
  cr_expect_eq(parley__demux_classify(buf, (size_t)n), PARLEY__DEMUX_RTCP);
  d.is_sender = false;
  n = parley__rtcp_build_compound(&d, buf, sizeof buf);
  cr_expect_eq(parley__demux_classify(buf, (size_t)n), PARLEY__DEMUX_RTCP);
  /* A STUN Binding Request header (RFC 5389: type 0x0001, magic cookie 0x2112A442). */
  static const uint8_t stun[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
  cr_expect_eq(parley__demux_classify(stun, sizeof stun), PARLEY__DEMUX_STUN);
  /* A DTLS 1.2 handshake record: content type 22. */
  static const uint8_t dtls[13] = {22, 0xFE, 0xFD};
  cr_expect_eq(parley__demux_classify(dtls, sizeof dtls), PARLEY__DEMUX_DTLS);
}
