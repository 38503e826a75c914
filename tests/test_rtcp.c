/* test_rtcp.c: compound RTCP build/parse (hand-made RFC 3550 layouts, round trips, truncation and
 * malformed input), NTP conversions and RTT from LSR/DLSR with the numbers of RFC 3550 6.4.1. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "parley/parley.h"
#include "transport/rtcp.h"
#include "transport/rtp.h"

/* RR (RC=1) + SDES (CNAME "abcd") + BYE (reason "bye"), written from the RFC 3550 6.4.2/6.5/6.6
 * diagrams. Packet boundaries at 32, 48 and 60. */
static const uint8_t rr_vec[] = {
    0x81, 0xC9, 0x00, 0x07, 0x11, 0x22, 0x33, 0x44,                         /* RR, len 7, SSRC */
    0xAA, 0xBB, 0xCC, 0xDD,                                                 /* block: SSRC */
    0x40, 0xFF, 0xFF, 0xFE,                                                 /* fraction 64, lost -2 */
    0x00, 0x01, 0x00, 0x05,                                                 /* ext highest seq */
    0x00, 0x00, 0x00, 0x10,                                                 /* jitter 16 */
    0xB7, 0x05, 0x20, 0x00,                                                 /* LSR */
    0x00, 0x05, 0x40, 0x00,                                                 /* DLSR */
    0x81, 0xCA, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44,                         /* SDES, len 3, chunk SSRC */
    0x01, 0x04, 'a', 'b', 'c', 'd', 0x00, 0x00,                             /* CNAME, null, pad */
    0x81, 0xCB, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 0x03, 'b', 'y', 'e', /* BYE, len 2, reason */
};

static int parse_exact(const uint8_t *src, size_t len, parley__rtcp_info *info) {
  uint8_t *copy = malloc(len ? len : 1);
  cr_assert_not_null(copy);
  if (len) memcpy(copy, src, len);
  int rc = parley__rtcp_parse_compound(copy, len, info);
  free(copy);
  return rc;
}

Test(rtcp, parses_hand_made_compound_field_by_field) {
  parley__rtcp_info in;
  cr_assert_eq(parse_exact(rr_vec, sizeof rr_vec, &in), 0);
  cr_expect_eq(in.first_type, PARLEY__RTCP_RR);
  cr_expect_eq(in.ssrc, 0x11223344u);
  cr_expect_not(in.has_sr);
  cr_expect_eq(in.n_packets, 3);
  cr_assert_eq(in.n_blocks, 1);
  const parley__rtcp_report_block *b = &in.blocks[0];
  cr_expect_eq(b->ssrc, 0xAABBCCDDu);
  cr_expect_eq(b->fraction_lost, 64);
  cr_expect_eq(b->cumulative_lost, -2);
  cr_expect_eq(b->ext_highest_seq, 0x00010005u);
  cr_expect_eq(b->jitter, 16u);
  cr_expect_eq(b->lsr, 0xB7052000u);
  cr_expect_eq(b->dlsr, 0x00054000u);
  cr_expect_eq(in.block_sender_ssrc[0], 0x11223344u);
  cr_expect(in.has_cname);
  cr_expect_eq(in.cname_ssrc, 0x11223344u);
  cr_expect_eq(in.cname_len, 4);
  cr_expect_str_eq(in.cname, "abcd");
  cr_expect(in.has_bye);
  cr_expect_eq(in.n_bye, 1);
  cr_expect_eq(in.bye_ssrc[0], 0x11223344u);
  cr_expect_eq(in.bye_reason_len, 3);
  cr_expect_str_eq(in.bye_reason, "bye");
}

Test(rtcp, builder_reproduces_hand_made_compound) {
  parley__rtcp_report_block blk = {.ssrc = 0xAABBCCDD, .fraction_lost = 64, .cumulative_lost = -2,
                                   .ext_highest_seq = 0x00010005, .jitter = 16, .lsr = 0xB7052000,
                                   .dlsr = 0x00054000};
  parley__rtcp_compound_desc d = {.ssrc = 0x11223344, .blocks = &blk, .n_blocks = 1, .cname = "abcd",
                                  .bye = true, .bye_reason = "bye"};
  uint8_t out[128];
  int n = parley__rtcp_build_compound(&d, out, sizeof out);
  cr_assert_eq(n, (int)sizeof rr_vec);
  cr_expect_arr_eq(out, rr_vec, sizeof rr_vec);
  for (size_t cap = 0; cap < sizeof rr_vec; cap++)
    cr_expect_eq(parley__rtcp_build_compound(&d, out, cap), PARLEY_ENOSPC, "cap %zu", cap);
}

Test(rtcp, sender_report_round_trip_with_bye) {
  parley__rtcp_report_block blocks[3] = {
      {.ssrc = 1, .fraction_lost = 255, .cumulative_lost = 0x7fffff, .ext_highest_seq = 70000,
       .jitter = 123, .lsr = 0x12345678, .dlsr = 65536},
      {.ssrc = 2, .fraction_lost = 0, .cumulative_lost = -0x800000, .ext_highest_seq = 0, .jitter = 0},
      {.ssrc = 3, .fraction_lost = 1, .cumulative_lost = -1, .ext_highest_seq = UINT32_MAX, .jitter = 9}};
  parley__rtcp_compound_desc d = {
      .ssrc = 0xDEADBEEF,
      .is_sender = true,
      .sender = {.ntp = 0xE1234567890ABCDEull, .rtp_ts = 48000, .packet_count = 50, .octet_count = 4000},
      .blocks = blocks,
      .n_blocks = 3,
      .cname = "parley@host.example",
      .bye = true,
      .bye_reason = "call ended"};
  uint8_t out[512];
  int n = parley__rtcp_build_compound(&d, out, sizeof out);
  /* SR 28 + 3 * 24; SDES 4 + pad4(4 + 2 + 19 + 1) = 32; BYE 4 + 4 + pad4(1 + 10) = 20 */
  cr_assert_eq(n, 100 + 32 + 20);
  cr_expect_eq(n % 4, 0);
  parley__rtcp_info in;
  cr_assert_eq(parse_exact(out, (size_t)n, &in), 0);
  cr_expect_eq(in.first_type, PARLEY__RTCP_SR);
  cr_expect_eq(in.ssrc, 0xDEADBEEFu);
  cr_expect(in.has_sr);
  cr_expect_eq(in.sr_ssrc, 0xDEADBEEFu);
  cr_expect_eq(in.sender.ntp, 0xE1234567890ABCDEull);
  cr_expect_eq(in.sender.rtp_ts, 48000u);
  cr_expect_eq(in.sender.packet_count, 50u);
  cr_expect_eq(in.sender.octet_count, 4000u);
  cr_assert_eq(in.n_blocks, 3);
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(in.blocks[i].ssrc, blocks[i].ssrc);
    cr_expect_eq(in.blocks[i].fraction_lost, blocks[i].fraction_lost);
    cr_expect_eq(in.blocks[i].cumulative_lost, blocks[i].cumulative_lost, "block %d", i);
    cr_expect_eq(in.blocks[i].ext_highest_seq, blocks[i].ext_highest_seq);
    cr_expect_eq(in.blocks[i].jitter, blocks[i].jitter);
    cr_expect_eq(in.blocks[i].lsr, blocks[i].lsr);
    cr_expect_eq(in.blocks[i].dlsr, blocks[i].dlsr);
  }
  cr_expect_str_eq(in.cname, "parley@host.example");
  cr_expect(in.has_bye);
  cr_expect_eq(in.n_bye, 1);
  cr_expect_eq(in.bye_ssrc[0], 0xDEADBEEFu);
  cr_expect_str_eq(in.bye_reason, "call ended");
  cr_expect_eq(in.n_packets, 3);
}

Test(rtcp, receiver_report_without_bye_and_max_lengths) {
  char cname[256];
  memset(cname, 'c', 255);
  cname[255] = '\0';
  parley__rtcp_report_block blocks[PARLEY__RTCP_MAX_BLOCKS];
  memset(blocks, 0, sizeof blocks);
  for (int i = 0; i < PARLEY__RTCP_MAX_BLOCKS; i++) blocks[i].ssrc = 100u + (uint32_t)i;
  parley__rtcp_compound_desc d = {.ssrc = 7, .blocks = blocks, .n_blocks = 31, .cname = cname};
  uint8_t out[2048];
  int n = parley__rtcp_build_compound(&d, out, sizeof out);
  cr_assert_eq(n, 8 + 31 * 24 + 4 + 264); /* chunk 4 + 2 + 255 + 1 = 262 -> 264 */
  parley__rtcp_info in;
  cr_assert_eq(parse_exact(out, (size_t)n, &in), 0);
  cr_expect_eq(in.first_type, PARLEY__RTCP_RR);
  cr_expect_not(in.has_sr);
  cr_expect_not(in.has_bye);
  cr_expect_eq(in.n_blocks, 31);
  cr_expect_eq(in.blocks[30].ssrc, 130u);
  cr_expect_eq(in.cname_len, 255);
  cr_expect_str_eq(in.cname, cname);
}

Test(rtcp, builder_rejects_bad_descriptions) {
  uint8_t out[2048];
  parley__rtcp_report_block blocks[32];
  memset(blocks, 0, sizeof blocks);
  char long_name[300];
  memset(long_name, 'x', 299);
  long_name[299] = '\0';
  parley__rtcp_compound_desc d = {.ssrc = 1, .cname = ""};
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  d.cname = NULL;
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  d.cname = long_name;
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  d.cname = "ok";
  d.blocks = blocks;
  d.n_blocks = 32;
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  d.n_blocks = 1;
  blocks[0].cumulative_lost = 0x800000;
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  blocks[0].cumulative_lost = 0;
  d.bye = true;
  d.bye_reason = long_name;
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), PARLEY_EINVAL);
  d.bye_reason = "";
  /* RR 8 + 24, SDES 4 + pad4(4 + 2 + 2 + 1), BYE 4 + 4 with no reason field. */
  cr_expect_eq(parley__rtcp_build_compound(&d, out, sizeof out), 32 + 16 + 8);
}

Test(rtcp, truncation_fails_except_on_packet_boundaries) {
  parley__rtcp_info in;
  for (size_t len = 0; len < sizeof rr_vec; len++) {
    int rc = parse_exact(rr_vec, len, &in);
    if (len == 32 || len == 48)
      cr_expect_eq(rc, 0, "len %zu", len);
    else
      cr_expect_eq(rc, PARLEY_EPARSE, "len %zu", len);
  }
}

static void expect_malformed(const uint8_t *base, size_t len, size_t at, uint8_t value, const char *what) {
  uint8_t b[sizeof rr_vec];
  memcpy(b, base, len);
  b[at] = value;
  parley__rtcp_info in;
  cr_expect_eq(parse_exact(b, len, &in), PARLEY_EPARSE, "%s", what);
}

Test(rtcp, rejects_malformed_compounds) {
  size_t n = sizeof rr_vec;
  expect_malformed(rr_vec, n, 0, 0x41, "version 1 in the first packet");
  expect_malformed(rr_vec, n, 32, 0xC1, "version 3 in the SDES");
  expect_malformed(rr_vec, n, 3, 0x20, "RR length past the end");
  expect_malformed(rr_vec, n, 3, 0x08, "RR length running into the SDES (next header garbage)");
  expect_malformed(rr_vec, n, 3, 0x06, "RR too short for its one block");
  expect_malformed(rr_vec, n, 0, 0x82, "RR count 2 with room for 1");
  expect_malformed(rr_vec, n, 0, 0xA1, "padding in the first of several packets");
  expect_malformed(rr_vec, n, 41, 0x07, "SDES item longer than the chunk");
  expect_malformed(rr_vec, n, 46, 0x05, "SDES chunk without a null item");
  expect_malformed(rr_vec, n, 32, 0x82, "SDES count 2 with one chunk");
  expect_malformed(rr_vec, n, 56, 0x04, "BYE reason longer than the packet");
  expect_malformed(rr_vec, n, 48, 0x83, "BYE count 3 with room for 2");
  /* The first packet needs its SSRC word. */
  parley__rtcp_info in;
  static const uint8_t empty_sdes[] = {0x80, 0xCA, 0x00, 0x00};
  cr_expect_eq(parse_exact(empty_sdes, sizeof empty_sdes, &in), PARLEY_EPARSE);
  /* Padding on the last packet: count 0 and count larger than the body. */
  uint8_t rr_only[32];
  memcpy(rr_only, rr_vec, 32);
  rr_only[0] |= 0x20;
  rr_only[31] = 0;
  cr_expect_eq(parse_exact(rr_only, 32, &in), PARLEY_EPARSE);
  rr_only[31] = 29;
  cr_expect_eq(parse_exact(rr_only, 32, &in), PARLEY_EPARSE);
  rr_only[0] = 0xA0; /* RC 0, padded: 28 bytes of padding is the whole body... */
  rr_only[31] = 24;  /* ...keep the SSRC: 4 bytes body */
  cr_expect_eq(parse_exact(rr_only, 32, &in), 0);
  cr_expect_eq(in.n_blocks, 0);
  cr_expect_eq(parley__rtcp_parse_compound(NULL, 4, &in), PARLEY_EINVAL);
}

Test(rtcp, unknown_packet_types_are_skipped) {
  uint8_t b[sizeof rr_vec + 12];
  memcpy(b, rr_vec, 32);
  /* APP (204), subtype 0, len 2: SSRC + name "TEST". */
  static const uint8_t app[] = {0x80, 0xCC, 0x00, 0x02, 0, 0, 0, 1, 'T', 'E', 'S', 'T'};
  memcpy(b + 32, app, sizeof app);
  memcpy(b + 44, rr_vec + 32, sizeof rr_vec - 32);
  parley__rtcp_info in;
  cr_assert_eq(parse_exact(b, sizeof b, &in), 0);
  cr_expect_eq(in.n_other, 1);
  cr_expect_eq(in.n_packets, 4);
  cr_expect_str_eq(in.cname, "abcd");
}

Test(rtcp, random_bytes_never_crash) {
  parley__rng rng;
  parley__rng_seed(&rng, 3550);
  uint8_t buf[128];
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = parley__rng_below(&rng, sizeof buf + 1);
    /* Start from a valid compound and corrupt a few bytes, so that parsing gets deep. */
    memcpy(buf, rr_vec, sizeof rr_vec);
    for (size_t i = sizeof rr_vec; i < sizeof buf; i++) buf[i] = (uint8_t)parley__rng_u64(&rng);
    int flips = 1 + (int)parley__rng_below(&rng, 4);
    for (int f = 0; f < flips; f++) buf[parley__rng_below(&rng, sizeof buf)] = (uint8_t)parley__rng_u64(&rng);
    parley__rtcp_info in;
    if (parse_exact(buf, len, &in) == 0) {
      cr_assert_leq(in.n_blocks, PARLEY__RTCP_MAX_BLOCKS);
      cr_assert_leq(in.cname_len, PARLEY__RTCP_MAX_TEXT);
      cr_assert_leq(in.bye_reason_len, PARLEY__RTCP_MAX_TEXT);
    }
  }
}

Test(rtcp_ntp, rtt_from_rfc3550_example) {
  /* RFC 3550 6.4.1: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
   * DLSR = 0x0005:4000 (5.250 s) give 0x0006:2000 (6.125 s). */
  uint32_t rtt = 0;
  cr_assert_eq(parley__rtcp_rtt(0xB7108000u, 0xB7052000u, 0x00054000u, &rtt), 0);
  cr_expect_eq(rtt, 0x00062000u);
  cr_expect_eq(parley__ntp_short_to_us(rtt), 6125000);
  cr_expect_eq(parley__rtcp_rtt(0xB7108000u, 0, 0x00054000u, &rtt), PARLEY_ENOTFOUND);
  cr_expect_eq(parley__rtcp_rtt(0xB7052000u, 0xB7052000u, 0x00054000u, &rtt), PARLEY_ERANGE);
  /* Wrap of the 16.16 clock between LSR and arrival still gives the right answer. */
  cr_assert_eq(parley__rtcp_rtt(0x00010000u, 0xFFFF8000u, 0x00004000u, &rtt), 0);
  cr_expect_eq(rtt, 0x00014000u); /* 1.5 - 0.25 = 1.25 s */
}

Test(rtcp_ntp, conversions) {
  /* 46864.5 s -> seconds 46864 (0xb710), fraction 0x80000000. */
  uint64_t ntp = parley__ntp_from_us(46864500000);
  cr_expect_eq(ntp, (0xB710ull << 32) | 0x80000000ull);
  cr_expect_eq(parley__ntp_mid32(ntp), 0xB7108000u);
  cr_expect_eq(parley__ntp_mid32_from_us(46853125000), 0xB7052000u);
  cr_expect_eq(parley__ntp_to_us(ntp), 46864500000);
  cr_expect_eq(parley__ntp_short_from_us(5250000), 0x00054000u);
  cr_expect_eq(parley__ntp_short_from_us(-5), 0u);
  cr_expect_eq(parley__ntp_short_from_us(INT64_MAX), UINT32_MAX);
  cr_expect_eq(parley__ntp_from_us(-1), 0u);
  /* Round trip to within a microsecond over a range of values. */
  for (int64_t us = 0; us < 4000000000; us += 123456789) {
    int64_t back = parley__ntp_to_us(parley__ntp_from_us(us));
    cr_expect(back == us || back == us - 1, "%lld -> %lld", (long long)us, (long long)back);
  }
}

Test(rtcp_ntp, rtt_end_to_end_through_sr_and_rr) {
  /* A sends an SR at t = 10 s; B answers 250 ms later with an RR carrying LSR/DLSR; the RR reaches A at
   * t = 10.4 s: the RTT is 400 - 250 = 150 ms. */
  int64_t t_sr_us = 10000000, hold_us = 250000, t_rr_us = 10400000;
  parley__rtcp_compound_desc sr = {.ssrc = 0xA, .is_sender = true, .cname = "a",
                                   .sender = {.ntp = parley__ntp_from_us(t_sr_us)}};
  uint8_t pkt[256];
  int n = parley__rtcp_build_compound(&sr, pkt, sizeof pkt);
  cr_assert_gt(n, 0);
  parley__rtcp_info at_b;
  cr_assert_eq(parley__rtcp_parse_compound(pkt, (size_t)n, &at_b), 0);
  parley__rtcp_report_block blk = {.ssrc = 0xA, .lsr = parley__ntp_mid32(at_b.sender.ntp),
                                   .dlsr = parley__ntp_short_from_us(hold_us)};
  parley__rtcp_compound_desc rr = {.ssrc = 0xB, .blocks = &blk, .n_blocks = 1, .cname = "b"};
  n = parley__rtcp_build_compound(&rr, pkt, sizeof pkt);
  cr_assert_gt(n, 0);
  parley__rtcp_info at_a;
  cr_assert_eq(parley__rtcp_parse_compound(pkt, (size_t)n, &at_a), 0);
  uint32_t rtt = 0;
  cr_assert_eq(parley__rtcp_rtt(parley__ntp_mid32_from_us(t_rr_us), at_a.blocks[0].lsr, at_a.blocks[0].dlsr,
                                &rtt), 0);
  int64_t rtt_us = parley__ntp_short_to_us(rtt);
  /* 16.16 resolution is about 15 us; allow two steps of rounding. */
  cr_expect(rtt_us >= 150000 - 40 && rtt_us <= 150000 + 40, "rtt %lld us", (long long)rtt_us);
}

Test(rtcp_ntp, receiver_stats_feed_a_report_block) {
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 1);
  for (uint16_t s = 0; s < 100; s++)
    if (s % 10 != 3) parley__rtp_rx_update(&rx, s, 960u * s, 20000 * (int64_t)s);
  parley__rtp_rx_report r;
  parley__rtp_rx_make_report(&rx, &r);
  parley__rtcp_report_block blk = {.ssrc = 5, .fraction_lost = r.fraction_lost,
                                   .cumulative_lost = r.cumulative_lost, .ext_highest_seq = r.ext_highest_seq,
                                   .jitter = r.jitter};
  parley__rtcp_compound_desc d = {.ssrc = 9, .blocks = &blk, .n_blocks = 1, .cname = "me"};
  uint8_t pkt[128];
  int n = parley__rtcp_build_compound(&d, pkt, sizeof pkt);
  parley__rtcp_info in;
  cr_assert_eq(parley__rtcp_parse_compound(pkt, (size_t)n, &in), 0);
  cr_expect_eq(in.blocks[0].fraction_lost, 25); /* 10 of 100: 2560 / 100 = 25 */
  cr_expect_eq(in.blocks[0].cumulative_lost, 10);
  cr_expect_eq(in.blocks[0].ext_highest_seq, 99u);
  cr_expect_eq(in.blocks[0].jitter, 0u); /* perfectly paced */
}

/* RFC 5506 reduced-size RTCP (what a browser sends after a=rtcp-rsize): lone feedback packets, an RR
 * without SDES, an SDES + BYE without a report. Layouts from RFC 4585 6.1 (common feedback header:
 * sender SSRC, media source SSRC, FCI). */
Test(rtcp, reduced_size_packets_are_accepted) {
  parley__rtcp_info in;
  /* PSFB (206) FMT 1 = PLI: no FCI. */
  static const uint8_t pli[] = {0x81, 0xCE, 0x00, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  cr_assert_eq(parse_exact(pli, sizeof pli, &in), 0);
  cr_expect_eq(in.first_type, 206);
  cr_expect_eq(in.ssrc, 0x11223344u);
  cr_expect_eq(in.n_other, 1);
  cr_expect_eq(in.n_blocks, 0);
  /* RTPFB (205) FMT 1 = generic NACK: one FCI word (PID, BLP). */
  static const uint8_t nack[] = {0x81, 0xCD, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44,
                                 0x55, 0x66, 0x77, 0x88, 0x01, 0x00, 0x00, 0x05};
  cr_assert_eq(parse_exact(nack, sizeof nack, &in), 0);
  cr_expect_eq(in.first_type, 205);
  cr_expect_eq(in.n_packets, 1);
  /* An RR alone. */
  cr_assert_eq(parse_exact(rr_vec, 32, &in), 0);
  cr_expect_eq(in.n_blocks, 1);
  cr_expect_not(in.has_cname);
  /* SDES then BYE, no report: the BYE still counts. */
  cr_assert_eq(parse_exact(rr_vec + 32, sizeof rr_vec - 32, &in), 0);
  cr_expect_eq(in.first_type, PARLEY__RTCP_SDES);
  cr_expect(in.has_bye);
  cr_expect_str_eq(in.cname, "abcd");
}
