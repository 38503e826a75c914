#define _POSIX_C_SOURCE 200809L
/* test_rtp.c: RTP build/parse against hand-made RFC 3550 byte layouts, malformed and truncated input,
 * RFC 8285 header extensions (one-byte and two-byte forms, also against GStreamer's GstRtp), RFC 6464
 * audio levels, wrap-safe sequence numbers, and the receiver statistics of RFC 3550 A.1 / A.3 / A.8. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "parley/parley.h"
#include "transport/rtp.h"

/* V=2 P=1 X=1 CC=3 | M=1 PT=96 | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x01020304 | 3 CSRCs |
 * extension profile 0xBEDE, 1 word | payload F8 FF FE | padding 00 00 03. Written from the RFC 3550 5.1
 * diagram, not from the builder. */
static const uint8_t full_vec[] = {
    0xB3, 0xE0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, /* fixed header */
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33, /* CSRC list */
    0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00,                         /* extension */
    0xF8, 0xFF, 0xFE,                                                       /* payload */
    0x00, 0x00, 0x03,                                                       /* padding */
};
#define FULL_HEADER_LEN 32

/* Parses from an exact-size heap copy so that ASan catches any read past the end. */
static int parse_exact(const uint8_t *src, size_t len, parley__rtp_view *v) {
  uint8_t *copy = malloc(len ? len : 1);
  cr_assert_not_null(copy);
  if (len) memcpy(copy, src, len);
  int rc = parley__rtp_parse(copy, len, v);
  if (rc == 0) {
    /* The view must lie inside the buffer: rebase before freeing. */
    cr_assert_leq(v->payload_offset + v->payload_len + v->padding_len, len);
    cr_assert_eq(v->payload, copy + v->payload_offset);
    v->payload = src + v->payload_offset;
    if (v->hdr.ext_data) v->hdr.ext_data = src + (v->hdr.ext_data - copy);
  }
  free(copy);
  return rc;
}

Test(rtp, parses_hand_made_vector_field_by_field) {
  parley__rtp_view v;
  cr_assert_eq(parse_exact(full_vec, sizeof full_vec, &v), 0);
  cr_expect(v.hdr.marker);
  cr_expect_eq(v.hdr.payload_type, 96);
  cr_expect_eq(v.hdr.seq, 0x1234);
  cr_expect_eq(v.hdr.timestamp, 0xDEADBEEFu);
  cr_expect_eq(v.hdr.ssrc, 0x01020304u);
  cr_expect_eq(v.hdr.csrc_count, 3);
  cr_expect_eq(v.hdr.csrc[0], 0x11111111u);
  cr_expect_eq(v.hdr.csrc[1], 0x22222222u);
  cr_expect_eq(v.hdr.csrc[2], 0x33333333u);
  cr_expect(v.hdr.has_ext);
  cr_expect_eq(v.hdr.ext_profile, 0xBEDE);
  cr_expect_eq(v.hdr.ext_len, 4);
  cr_expect_eq(v.hdr.ext_data, full_vec + 28);
  cr_expect_eq(v.payload_offset, FULL_HEADER_LEN);
  cr_expect_eq(v.payload_len, 3);
  cr_expect_eq(v.payload[0], 0xF8);
  cr_expect_eq(v.payload[2], 0xFE);
  cr_expect_eq(v.padding_len, 3);
  cr_expect_eq(parley__rtp_header_len(full_vec, sizeof full_vec), FULL_HEADER_LEN);
}

Test(rtp, builder_reproduces_hand_made_vector) {
  static const uint8_t ext[4] = {0x10, 0xAA, 0x00, 0x00};
  static const uint8_t payload[3] = {0xF8, 0xFF, 0xFE};
  parley__rtp_header h = {.marker = true,
                          .payload_type = 96,
                          .seq = 0x1234,
                          .timestamp = 0xDEADBEEF,
                          .ssrc = 0x01020304,
                          .csrc_count = 3,
                          .csrc = {0x11111111, 0x22222222, 0x33333333},
                          .has_ext = true,
                          .ext_profile = 0xBEDE,
                          .ext_data = ext,
                          .ext_len = 4};
  uint8_t out[64];
  memset(out, 0x5A, sizeof out);
  int n = parley__rtp_build(&h, payload, sizeof payload, 3, out, sizeof out);
  cr_assert_eq(n, (int)sizeof full_vec);
  cr_expect_arr_eq(out, full_vec, sizeof full_vec);
  /* One byte short of room, at every size: ENOSPC. */
  for (size_t cap = 0; cap < sizeof full_vec; cap++)
    cr_expect_eq(parley__rtp_build(&h, payload, sizeof payload, 3, out, cap), PARLEY_ENOSPC, "cap %zu", cap);
}

Test(rtp, minimal_packet_round_trip) {
  /* Plain Opus packet: PT 111, no CSRC, extension or padding. */
  static const uint8_t opus[] = {0xFC, 0x01, 0x02, 0x03, 0x04};
  parley__rtp_header h = {.payload_type = 111, .seq = 65535, .timestamp = 960, .ssrc = 0xCAFEBABE};
  uint8_t out[32];
  int n = parley__rtp_build(&h, opus, sizeof opus, 0, out, sizeof out);
  cr_assert_eq(n, 12 + 5);
  cr_expect_eq(out[0], 0x80); /* V=2 only */
  cr_expect_eq(out[1], 111);
  parley__rtp_view v;
  cr_assert_eq(parse_exact(out, (size_t)n, &v), 0);
  cr_expect_not(v.hdr.marker);
  cr_expect_eq(v.hdr.payload_type, 111);
  cr_expect_eq(v.hdr.seq, 65535);
  cr_expect_eq(v.hdr.timestamp, 960u);
  cr_expect_eq(v.hdr.ssrc, 0xCAFEBABEu);
  cr_expect_eq(v.hdr.csrc_count, 0);
  cr_expect_not(v.hdr.has_ext);
  cr_expect_eq(v.payload_len, sizeof opus);
  cr_expect_arr_eq(v.payload, opus, sizeof opus);
  cr_expect_eq(v.padding_len, 0);
}

Test(rtp, round_trip_with_fifteen_csrcs_and_empty_extension) {
  parley__rtp_header h = {.payload_type = 0, .seq = 7, .timestamp = 1, .ssrc = 2, .csrc_count = 15,
                          .has_ext = true, .ext_profile = 0x1000, .ext_len = 0};
  for (int i = 0; i < 15; i++) h.csrc[i] = 0xA0000000u + (uint32_t)i;
  uint8_t payload[100];
  for (int i = 0; i < 100; i++) payload[i] = (uint8_t)i;
  uint8_t out[512];
  int n = parley__rtp_build(&h, payload, sizeof payload, 255, out, sizeof out);
  cr_assert_eq(n, 12 + 60 + 4 + 100 + 255);
  parley__rtp_view v;
  cr_assert_eq(parse_exact(out, (size_t)n, &v), 0);
  cr_expect_eq(v.hdr.csrc_count, 15);
  for (int i = 0; i < 15; i++) cr_expect_eq(v.hdr.csrc[i], 0xA0000000u + (uint32_t)i);
  cr_expect(v.hdr.has_ext);
  cr_expect_eq(v.hdr.ext_profile, 0x1000);
  cr_expect_eq(v.hdr.ext_len, 0);
  cr_expect_null(v.hdr.ext_data);
  cr_expect_eq(v.payload_offset, 76);
  cr_expect_eq(v.payload_len, 100);
  cr_expect_arr_eq(v.payload, payload, 100);
  cr_expect_eq(v.padding_len, 255);
}

Test(rtp, every_truncation_is_an_error_or_a_consistent_shorter_packet) {
  parley__rtp_view v;
  for (size_t len = 0; len < sizeof full_vec; len++) {
    /* Below 32 bytes the header is cut. From 32 on, the P bit makes the last byte (F8, FF, FE, 00, 00
     * here) a padding count, each either 0 or larger than what follows the header. */
    cr_expect_eq(parse_exact(full_vec, len, &v), PARLEY_EPARSE, "len %zu", len);
  }
  /* Without the P bit a truncated packet is just a shorter payload. */
  uint8_t nopad[sizeof full_vec];
  memcpy(nopad, full_vec, sizeof nopad);
  nopad[0] &= (uint8_t)~0x20;
  for (size_t len = FULL_HEADER_LEN; len <= sizeof nopad; len++) {
    cr_expect_eq(parse_exact(nopad, len, &v), 0, "len %zu", len);
    cr_expect_eq(v.payload_len, len - FULL_HEADER_LEN);
  }
}

Test(rtp, rejects_bad_version_and_oversized_lengths) {
  uint8_t b[sizeof full_vec];
  parley__rtp_view v;
  for (int ver = 0; ver < 4; ver++) {
    if (ver == 2) continue;
    memcpy(b, full_vec, sizeof b);
    b[0] = (uint8_t)((b[0] & 0x3f) | (ver << 6));
    cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE, "version %d", ver);
  }
  /* Extension length one word more than the packet holds, and the maximum 0xFFFF. */
  memcpy(b, full_vec, sizeof b);
  b[27] = 3; /* 12 bytes of extension + 4 header: 32 + 8 > 38 */
  cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE);
  b[26] = 0xFF;
  b[27] = 0xFF;
  cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE);
  /* An extension length that exactly uses the rest is fine (payload empty, pad count then 3: bad). */
  /* CC=15 in a 38-byte packet: 12 + 60 > 38. */
  memcpy(b, full_vec, sizeof b);
  b[0] = (uint8_t)((b[0] & 0xf0) | 0x0f);
  cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE);
  /* Padding count 0, and larger than payload + padding. */
  memcpy(b, full_vec, sizeof b);
  b[sizeof b - 1] = 0;
  cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE);
  b[sizeof b - 1] = 7; /* 6 bytes follow the header */
  cr_expect_eq(parse_exact(b, sizeof b, &v), PARLEY_EPARSE);
  b[sizeof b - 1] = 6; /* exactly all of it: valid, empty payload */
  cr_expect_eq(parse_exact(b, sizeof b, &v), 0);
  cr_expect_eq(v.payload_len, 0);
  cr_expect_eq(v.padding_len, 6);
  /* P bit set but nothing after the header. */
  uint8_t hdr_only[12] = {0xA0, 0x00};
  cr_expect_eq(parse_exact(hdr_only, sizeof hdr_only, &v), PARLEY_EPARSE);
  cr_expect_eq(parley__rtp_parse(NULL, 12, &v), PARLEY_EINVAL);
  cr_expect_eq(parley__rtp_parse(full_vec, sizeof full_vec, NULL), PARLEY_EINVAL);
}

Test(rtp, builder_rejects_bad_fields) {
  uint8_t out[128];
  uint8_t ext[4] = {0};
  parley__rtp_header h = {.payload_type = 128};
  cr_expect_eq(parley__rtp_build(&h, NULL, 0, 0, out, sizeof out), PARLEY_EINVAL);
  h.payload_type = 0;
  h.csrc_count = 16;
  cr_expect_eq(parley__rtp_build(&h, NULL, 0, 0, out, sizeof out), PARLEY_EINVAL);
  h.csrc_count = 0;
  h.has_ext = true;
  h.ext_data = ext;
  h.ext_len = 3;
  cr_expect_eq(parley__rtp_build(&h, NULL, 0, 0, out, sizeof out), PARLEY_EINVAL);
  h.ext_len = 4;
  cr_expect_eq(parley__rtp_build(&h, NULL, 0, 256, out, sizeof out), PARLEY_EINVAL);
  cr_expect_eq(parley__rtp_build(&h, NULL, 5, 0, out, sizeof out), PARLEY_EINVAL);
  cr_expect_eq(parley__rtp_build(&h, NULL, 0, 0, out, sizeof out), 20);
}

Test(rtp, random_bytes_never_crash_and_views_stay_inside) {
  parley__rng rng;
  parley__rng_seed(&rng, 3550);
  uint8_t buf[96];
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = parley__rng_below(&rng, sizeof buf + 1);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)parley__rng_u64(&rng);
    if (len && (iter & 1)) buf[0] = (uint8_t)(0x80 | (buf[0] & 0x3f)); /* half with version 2 */
    parley__rtp_view v;
    if (parse_exact(buf, len, &v) == 0) {
      cr_assert_eq(v.payload_offset + v.payload_len + v.padding_len, len);
      cr_assert_leq(v.hdr.csrc_count, 15);
    }
  }
}

Test(rtp, sequence_compare_is_wrap_safe) {
  cr_expect_eq(parley__rtp_seq_diff(0, 65535), 1);
  cr_expect_eq(parley__rtp_seq_diff(65535, 0), -1);
  cr_expect_eq(parley__rtp_seq_diff(10, 5), 5);
  cr_expect_eq(parley__rtp_seq_diff(5, 10), -5);
  cr_expect_eq(parley__rtp_seq_diff(32767, 0), 32767);
  cr_expect_eq(parley__rtp_seq_diff(32768, 0), -32768);
  cr_expect(parley__rtp_seq_lt(65535, 0));
  cr_expect(parley__rtp_seq_lt(65000, 100));
  cr_expect_not(parley__rtp_seq_lt(100, 65000));
  cr_expect_not(parley__rtp_seq_lt(7, 7));
}

Test(rtp_rx, probation_then_extended_sequence_across_wrap) {
  parley__rtp_rx rx;
  cr_assert_eq(parley__rtp_rx_init(&rx, 48000, 2), 0);
  /* RFC 3550 A.1 with MIN_SEQUENTIAL 2: the first packet only starts probation. */
  cr_expect_eq(parley__rtp_rx_update(&rx, 65530, 0, 0), 0);
  cr_expect_eq(parley__rtp_rx_expected(&rx), 0);
  uint16_t seq = 65531;
  for (int i = 0; i < 15; i++, seq++) /* 65531..65535, 0..9 */
    cr_expect_eq(parley__rtp_rx_update(&rx, seq, 960u * (uint32_t)i, 20000 * i), 1, "seq %u", seq);
  cr_expect_eq(rx.cycles, 65536u);
  cr_expect_eq(parley__rtp_rx_ext_max(&rx), 65536u + 9);
  cr_expect_eq(parley__rtp_rx_expected(&rx), 15);
  cr_expect_eq(parley__rtp_rx_lost(&rx), 0);
  /* A late packet from before the wrap is counted but does not move the maximum or the cycles. */
  cr_expect_eq(parley__rtp_rx_update(&rx, 65534, 0, 400000), 1);
  cr_expect_eq(parley__rtp_rx_ext_max(&rx), 65536u + 9);
  cr_expect_eq(parley__rtp_rx_lost(&rx), -1);
}

Test(rtp_rx, out_of_order_during_probation_restarts_it) {
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 8000, 2);
  cr_expect_eq(parley__rtp_rx_update(&rx, 100, 0, 0), 0);
  cr_expect_eq(parley__rtp_rx_update(&rx, 300, 0, 0), 0); /* not 101 */
  cr_expect_eq(parley__rtp_rx_update(&rx, 301, 0, 0), 1); /* 300, 301 in sequence */
  cr_expect_eq(rx.base_seq, 301u);
}

Test(rtp_rx, large_jump_needs_confirmation) {
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 1);
  for (uint16_t s = 0; s < 10; s++) cr_expect_eq(parley__rtp_rx_update(&rx, s, 0, 0), 1);
  /* 10000 ahead is beyond MAX_DROPOUT (3000): ignored until the next one follows it. */
  cr_expect_eq(parley__rtp_rx_update(&rx, 10000, 0, 0), 0);
  cr_expect_eq(parley__rtp_rx_ext_max(&rx), 9u);
  cr_expect_eq(parley__rtp_rx_update(&rx, 10001, 0, 0), 1);
  cr_expect_eq(rx.base_seq, 10001u);
  cr_expect_eq(parley__rtp_rx_expected(&rx), 1);
  cr_expect_eq(rx.received, 1);
}

Test(rtp_rx, jitter_matches_hand_computed_values) {
  /* 20 ms Opus packets at 48 kHz (960 ticks). Packet 1 arrives 1 ms late (48 ticks), then on time.
   * RFC 3550 A.8 integer form, J16 = 16 * J:
   *   p1: D = 48           J16 = 0 + 48 - ((0 + 8) >> 4)   = 48  -> J = 3
   *   p2: D = -48          J16 = 48 + 48 - ((48 + 8) >> 4) = 93  -> J = 5
   *   p3: D = 0            J16 = 93 + 0 - ((93 + 8) >> 4)  = 87  -> J = 5 */
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 1);
  cr_expect_eq(parley__rtp_rx_update(&rx, 1, 5000, 1000000), 1);
  cr_expect_eq(parley__rtp_rx_jitter(&rx), 0);
  parley__rtp_rx_update(&rx, 2, 5000 + 960, 1000000 + 21000);
  cr_expect_eq(rx.jitter_q4, 48);
  cr_expect_eq(parley__rtp_rx_jitter(&rx), 3);
  parley__rtp_rx_update(&rx, 3, 5000 + 1920, 1000000 + 40000);
  cr_expect_eq(rx.jitter_q4, 93);
  cr_expect_eq(parley__rtp_rx_jitter(&rx), 5);
  parley__rtp_rx_update(&rx, 4, 5000 + 2880, 1000000 + 60000);
  cr_expect_eq(rx.jitter_q4, 87);
  cr_expect_eq(parley__rtp_rx_jitter(&rx), 5);
}

Test(rtp_rx, jitter_tracks_the_floating_point_formula) {
  /* Random network delays 0..30 ms; compare with J += (|D| - J) / 16 in doubles. */
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 1);
  parley__rng rng;
  parley__rng_seed(&rng, 8);
  double j = 0, prev_transit = 0;
  uint32_t ts = 0x7FFFFF00u; /* crosses the 32-bit timestamp wrap */
  for (int i = 0; i < 2000; i++) {
    int64_t delay_us = (int64_t)parley__rng_below(&rng, 30) * 1000;
    int64_t send_us = (int64_t)i * 20000;
    int64_t arrive_us = 5000000 + send_us + delay_us;
    cr_assert_eq(parley__rtp_rx_update(&rx, (uint16_t)i, ts, arrive_us), 1);
    double transit = (double)delay_us * 48000.0 / 1e6; /* ticks; constant offsets cancel */
    if (i > 0) j += (fabs(transit - prev_transit) - j) / 16.0;
    prev_transit = transit;
    ts += 960;
    cr_assert_leq(fabs((double)rx.jitter_q4 / 16.0 - j), 1.0, "i %d: %u vs %f", i, rx.jitter_q4, j * 16);
  }
  /* Uniform 0..29 ms: E|D| is about 10 ms = 480 ticks. */
  cr_expect_gt(parley__rtp_rx_jitter(&rx), 300);
  cr_expect_lt(parley__rtp_rx_jitter(&rx), 700);
}

Test(rtp_rx, fraction_and_cumulative_lost) {
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 1);
  /* Interval 1: seq 0..99 with every seq % 4 == 1 missing: 25 of 100 lost -> 25 * 256 / 100 = 64. */
  for (uint16_t s = 0; s < 100; s++)
    if (s % 4 != 1) parley__rtp_rx_update(&rx, s, 0, 0);
  parley__rtp_rx_report r;
  parley__rtp_rx_make_report(&rx, &r);
  cr_expect_eq(r.fraction_lost, 64);
  cr_expect_eq(r.cumulative_lost, 25);
  cr_expect_eq(r.ext_highest_seq, 99u);
  /* Interval 2: 100..199 all arrive: fraction 0, cumulative unchanged. */
  for (uint16_t s = 100; s < 200; s++) parley__rtp_rx_update(&rx, s, 0, 0);
  parley__rtp_rx_make_report(&rx, &r);
  cr_expect_eq(r.fraction_lost, 0);
  cr_expect_eq(r.cumulative_lost, 25);
  /* Interval 3: 10 duplicates and nothing new: more received than expected, fraction stays 0, and the
   * cumulative count drops (RFC 3550 6.4.1 allows it to go negative). */
  for (uint16_t s = 190; s < 200; s++) parley__rtp_rx_update(&rx, s, 0, 0);
  parley__rtp_rx_make_report(&rx, &r);
  cr_expect_eq(r.fraction_lost, 0);
  cr_expect_eq(r.cumulative_lost, 15);
  /* Interval 4: only seq 250 arrives out of 200..250: 50 lost of 51 -> 50 * 256 / 51 = 250. */
  parley__rtp_rx_update(&rx, 250, 0, 0);
  parley__rtp_rx_make_report(&rx, &r);
  cr_expect_eq(r.fraction_lost, 250);
  cr_expect_eq(r.cumulative_lost, 65);
  cr_expect_eq(r.ext_highest_seq, 250u);
}

Test(rtp_rx, init_rejects_bad_arguments) {
  parley__rtp_rx rx;
  cr_expect_eq(parley__rtp_rx_init(&rx, 0, 2), PARLEY_EINVAL);
  cr_expect_eq(parley__rtp_rx_init(NULL, 48000, 2), PARLEY_EINVAL);
  cr_expect_eq(parley__rtp_rx_update(NULL, 1, 1, 1), PARLEY_EINVAL);
}

/* ---- RFC 8285 header extensions, vectors written from the RFC's 4.2 / 4.3 diagrams ---- */

/* One-byte form, as a browser sends audio: audio level (id 1: V=1, 10 dBov down), a padding byte, an
 * unknown id 3 with 3 bytes, the mid "0" (id 4), padding to the word; then a 2-byte payload. */
static const uint8_t one_byte_vec[] = {
    0x90, 0x6F, 0x00, 0x01, 0x00, 0x00, 0x03, 0xC0, 0xCA, 0xFE, 0xBA, 0xBE, /* X=1, PT 111 */
    0xBE, 0xDE, 0x00, 0x03,                                                 /* profile, 3 words */
    0x10, 0x8A, 0x00, 0x32, 0xA1, 0xA2, 0xA3, 0x40, 0x30, 0x00, 0x00, 0x00, /* elements, padding */
    0xF8, 0x01,                                                             /* payload */
};

/* Two-byte form (profile 0x100, app bits 5): id 1 (1 byte), a padding byte, id 20 with no data, id 4
 * with "1", padding to the word. */
static const uint8_t two_byte_vec[] = {
    0x90, 0x6F, 0x00, 0x02, 0x00, 0x00, 0x03, 0xC0, 0xCA, 0xFE, 0xBA, 0xBE,
    0x10, 0x05, 0x00, 0x03,
    0x01, 0x01, 0x85, 0x00, 0x14, 0x00, 0x04, 0x01, 0x31, 0x00, 0x00, 0x00,
    0xF8, 0x02, 0x03,
};

/* Element id of h holds len bytes, byte [at] of them being want. */
static void expect_elem(const parley__rtp_header *h, uint8_t id, int len, int at, uint8_t want) {
  const uint8_t *d;
  cr_assert_eq(parley__rtp_ext_find(h, id, &d), len, "element %u", id);
  if (len > 0) cr_expect_eq(d[at], want, "element %u byte %d", id, at);
}

Test(rtp_ext, one_byte_elements_found_and_payload_after_the_block) {
  parley__rtp_view v;
  cr_assert_eq(parse_exact(one_byte_vec, sizeof one_byte_vec, &v), 0);
  cr_expect_eq(v.payload_offset, 28);
  cr_expect_eq(v.payload_len, 2);
  cr_expect_eq(v.payload[0], 0xF8);
  expect_elem(&v.hdr, 1, 1, 0, 0x8A);
  expect_elem(&v.hdr, 3, 3, 2, 0xA3);
  expect_elem(&v.hdr, 4, 1, 0, '0');
  expect_elem(&v.hdr, 2, PARLEY_ENOTFOUND, 0, 0);
  const uint8_t *d;
  cr_expect_eq(parley__rtp_ext_find(&v.hdr, 0, &d), PARLEY_EINVAL);
}

Test(rtp_ext, two_byte_elements_found_and_payload_after_the_block) {
  parley__rtp_view v;
  cr_assert_eq(parse_exact(two_byte_vec, sizeof two_byte_vec, &v), 0);
  cr_expect_eq(v.payload_offset, 28);
  cr_expect_eq(v.payload_len, 3);
  cr_expect_eq(v.payload[2], 0x03);
  expect_elem(&v.hdr, 1, 1, 0, 0x85);
  expect_elem(&v.hdr, 20, 0, 0, 0);
  expect_elem(&v.hdr, 4, 1, 0, '1');
  expect_elem(&v.hdr, 2, PARLEY_ENOTFOUND, 0, 0);
}

Test(rtp_ext, stop_id_other_profiles_and_overruns) {
  uint8_t pkt[sizeof one_byte_vec];
  parley__rtp_view v;
  const uint8_t *d;
  /* One-byte id 15 ends the walk: what follows is not read. */
  memcpy(pkt, one_byte_vec, sizeof pkt);
  pkt[16] = 0xF0;
  cr_assert_eq(parse_exact(pkt, sizeof pkt, &v), 0);
  cr_expect_eq(parley__rtp_ext_find(&v.hdr, 4, &d), PARLEY_ENOTFOUND);
  /* A profile that is neither form: no elements, the payload still found. */
  memcpy(pkt, one_byte_vec, sizeof pkt);
  pkt[12] = 0x00, pkt[13] = 0x01;
  cr_assert_eq(parse_exact(pkt, sizeof pkt, &v), 0);
  cr_expect_eq(parley__rtp_ext_find(&v.hdr, 1, &d), PARLEY_ENOTFOUND);
  cr_expect_eq(v.payload_offset, 28);
  /* An element longer than its block: the walk says so, the packet itself is sound. */
  memcpy(pkt, one_byte_vec, sizeof pkt);
  pkt[23] = 0x4F; /* id 4, 16 bytes, 4 left */
  cr_assert_eq(parse_exact(pkt, sizeof pkt, &v), 0);
  cr_expect_eq(parley__rtp_ext_find(&v.hdr, 4, &d), PARLEY_EPARSE);
  cr_expect_eq(v.payload_offset, 28);
  cr_expect_eq(v.payload_len, 2);
  uint8_t two[sizeof two_byte_vec];
  memcpy(two, two_byte_vec, sizeof two);
  two[25] = 0x31; /* the last word now starts an element (id 0x31) whose length byte is its neighbour */
  two[26] = 0x09;
  cr_assert_eq(parse_exact(two, sizeof two, &v), 0);
  cr_expect_eq(parley__rtp_ext_find(&v.hdr, 0x31, &d), PARLEY_EPARSE);
}

Test(rtp_ext, builder_writes_the_one_byte_vector) {
  const uint8_t level = 0x8A, unknown[3] = {0xA1, 0xA2, 0xA3}, mid = '0';
  const parley__rtp_ext_elem el[] = {{1, 1, &level}, {3, 3, unknown}, {4, 1, &mid}};
  /* The builder packs elements without inner padding: 8 bytes, two words. */
  static const uint8_t packed[] = {0x10, 0x8A, 0x32, 0xA1, 0xA2, 0xA3, 0x40, 0x30};
  uint8_t body[16];
  cr_assert_eq(parley__rtp_ext_build(el, 3, body, sizeof body), 8);
  cr_expect_arr_eq(body, packed, 8);
  cr_assert_eq(parley__rtp_ext_build(el, 2, body, sizeof body), 8, "6 bytes padded to 8");
  cr_expect_arr_eq(body, packed, 6);
  cr_expect(body[6] == 0 && body[7] == 0);
  cr_assert_eq(parley__rtp_ext_build(el, 3, body, sizeof body), 8);
  parley__rtp_header h;
  memset(&h, 0, sizeof h);
  h.payload_type = 111;
  h.seq = 1;
  h.timestamp = 0x3C0;
  h.ssrc = 0xCAFEBABE;
  h.has_ext = true;
  h.ext_profile = PARLEY__RTP_EXT_ONE_BYTE;
  h.ext_data = body;
  h.ext_len = 8;
  const uint8_t payload[] = {0xF8, 0x01};
  uint8_t pkt[64];
  cr_assert_eq(parley__rtp_build(&h, payload, 2, 0, pkt, sizeof pkt), 26);
  cr_expect_arr_eq(pkt, one_byte_vec, 12);
  cr_expect(pkt[14] == 0 && pkt[15] == 2, "two words");
  parley__rtp_view v;
  cr_assert_eq(parse_exact(pkt, 26, &v), 0);
  cr_expect_eq(v.payload_offset, 24);
  expect_elem(&v.hdr, 4, 1, 0, '0');

  cr_expect_eq(parley__rtp_ext_build(el, 3, body, 7), PARLEY_ENOSPC);
  cr_expect_eq(parley__rtp_ext_build(el, 0, body, sizeof body), 0);
  const uint8_t big[17] = {0};
  const parley__rtp_ext_elem bad[] = {{0, 1, &level}, {15, 1, &level}, {1, 0, &level}, {1, 17, big}, {1, 1, NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(parley__rtp_ext_build(&bad[i], 1, body, sizeof body), PARLEY_EINVAL, "case %zu", i);
}

/* RFC 6464 levels: dBov is relative to a full-scale square wave (0), so a full-scale sine is 3 down. */
Test(rtp_ext, audio_level_in_dbov) {
  float x[480];
  for (size_t i = 0; i < 480; i++) x[i] = (i % 2) ? 1.0f : -1.0f;
  cr_expect_eq(parley__rtp_audio_level(x, 480), 0);
  for (size_t i = 0; i < 480; i++) x[i] *= 0.1f;
  cr_expect_eq(parley__rtp_audio_level(x, 480), 20);
  for (size_t i = 0; i < 480; i++) x[i] = (float)sin(2 * 3.14159265358979323846 * 1000.0 * (double)i / 48000.0);
  cr_expect_eq(parley__rtp_audio_level(x, 480), 3);
  for (size_t i = 0; i < 480; i++) x[i] *= 1e-3f; /* 63 dB down */
  cr_expect_eq(parley__rtp_audio_level(x, 480), 63);
  for (size_t i = 0; i < 480; i++) x[i] *= 1e-4f; /* 143 dB down: below the scale */
  cr_expect_eq(parley__rtp_audio_level(x, 480), 127);
  memset(x, 0, sizeof x);
  cr_expect_eq(parley__rtp_audio_level(x, 480), 127);
  cr_expect_eq(parley__rtp_audio_level(NULL, 0), 127);
  cr_expect_eq(parley__rtp_audio_level_byte(true, 10), 0x8A);
  cr_expect_eq(parley__rtp_audio_level_byte(false, 200), 0x7F);
}

/* ---- against GStreamer's GstRtp (tests/interop/rtp_ext_gst.py) ---- */

#define RTP_EXT_GST "/usr/bin/python3 " PARLEY_TEST_DATA "/../interop/rtp_ext_gst.py"

static void run_capture(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = '\0';
  cr_assert_eq(pclose(p), 0, "%s failed: %s", cmd, out);
}

static size_t from_hex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  unsigned b;
  while (n < cap && sscanf(hex + 2 * n, "%2x", &b) == 1) out[n++] = (uint8_t)b;
  return n;
}

Test(rtp_ext, gstreamer_packets_parse_and_ours_read_back) {
  static char out[4096];
  run_capture(RTP_EXT_GST " make", out, sizeof out);
  char *second = strchr(out, '\n');
  cr_assert_not_null(second);
  *second++ = '\0';
  uint8_t pkt[256];
  parley__rtp_view v;
  /* One-byte form. */
  size_t n = from_hex(out, pkt, sizeof pkt);
  cr_assert_eq(parse_exact(pkt, n, &v), 0, "%s", out);
  cr_expect_eq(v.hdr.ext_profile, PARLEY__RTP_EXT_ONE_BYTE);
  expect_elem(&v.hdr, 1, 1, 0, 0x8A);
  expect_elem(&v.hdr, 4, 1, 0, '0');
  cr_assert_eq(v.payload_len, 3);
  cr_expect(v.payload[0] == 0xF8 && v.payload[2] == 0x02);
  /* Two-byte form: an element too long for the one-byte form. */
  n = from_hex(second, pkt, sizeof pkt);
  cr_assert_eq(parse_exact(pkt, n, &v), 0, "%s", second);
  cr_expect_eq(v.hdr.ext_profile & 0xfff0, PARLEY__RTP_EXT_TWO_BYTE);
  expect_elem(&v.hdr, 1, 1, 0, 0x8A);
  expect_elem(&v.hdr, 20, 24, 23, 's');
  cr_assert_eq(v.payload_len, 3);
  cr_expect(v.payload[0] == 0xF8 && v.payload[2] == 0x02);

  /* Ours, read by GstRtp. */
  const uint8_t level = 0x8A, unknown[3] = {0xA1, 0xA2, 0xA3}, mid = '0', payload[] = {0xF8, 0x01, 0x02};
  const parley__rtp_ext_elem el[] = {{1, 1, &level}, {3, 3, unknown}, {4, 1, &mid}};
  uint8_t body[16];
  parley__rtp_header h;
  memset(&h, 0, sizeof h);
  h.payload_type = 111;
  h.has_ext = true;
  h.ext_profile = PARLEY__RTP_EXT_ONE_BYTE;
  h.ext_data = body;
  int xl = parley__rtp_ext_build(el, 3, body, sizeof body);
  cr_assert_gt(xl, 0);
  h.ext_len = (size_t)xl;
  int len = parley__rtp_build(&h, payload, sizeof payload, 0, pkt, sizeof pkt);
  cr_assert_gt(len, 0);
  char cmd[512];
  int k = snprintf(cmd, sizeof cmd, "%s read ", RTP_EXT_GST);
  for (int i = 0; i < len; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, "%02x", pkt[i]);
  run_capture(cmd, out, sizeof out);
  cr_expect_str_eq(out, "1 8a\n3 a1a2a3\n4 30\npayload f80102\n");
}
