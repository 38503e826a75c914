/* test_srtp.c: the libsrtp2 wrapper (round trips for both suites, replay, forgery, wrong key, capacity)
 * and the RFC 4568 a=crypto value (encode/parse round trip, the RFC's own example key, malformed lines). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/rtcp.h"
#include "transport/rtp.h"
#include "transport/srtp.h"

#define BUF_CAP 1500

static const parley__srtp_suite suites[] = {PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_AEAD_AES_128_GCM};
/* RTP auth tag: 80 bits for AES_CM_128_HMAC_SHA1_80, 16 bytes for GCM (RFC 7714). */
static const size_t rtp_tag[] = {10, 16};

static int make_rtp(uint8_t *buf, uint16_t seq) {
  uint8_t payload[160];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + seq);
  parley__rtp_header h = {.payload_type = 111, .seq = seq, .timestamp = 960u * seq, .ssrc = 0x5EC0DE};
  int n = parley__rtp_build(&h, payload, sizeof payload, 0, buf, BUF_CAP);
  cr_assert_gt(n, 0);
  return n;
}

typedef struct pair {
  parley__srtp *tx, *rx;
} pair;

static pair make_pair(parley__srtp_suite suite) {
  uint8_t key[PARLEY__SRTP_MAX_KEY_SALT_LEN];
  int kl = parley__srtp_generate_key(suite, key, sizeof key);
  cr_assert_eq(kl, (int)parley__srtp_key_salt_len(suite));
  int err = 1;
  pair p;
  p.tx = parley__srtp_new(suite, PARLEY__SRTP_OUTBOUND, key, (size_t)kl, &err);
  cr_assert_not_null(p.tx, "err %d", err);
  cr_assert_eq(err, 0);
  p.rx = parley__srtp_new(suite, PARLEY__SRTP_INBOUND, key, (size_t)kl, &err);
  cr_assert_not_null(p.rx, "err %d", err);
  return p;
}

static void free_pair(pair p) {
  parley__srtp_free(p.tx);
  parley__srtp_free(p.rx);
}

Test(srtp, key_lengths_and_generation) {
  cr_expect_eq(parley__srtp_key_salt_len(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80), 30);
  cr_expect_eq(parley__srtp_key_salt_len(PARLEY__SRTP_AEAD_AES_128_GCM), 28);
  cr_expect_eq(parley__srtp_key_salt_len((parley__srtp_suite)7), 0);
  uint8_t a[30], b[30];
  cr_expect_eq(parley__srtp_generate_key(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, a, 29), PARLEY_ENOSPC);
  cr_assert_eq(parley__srtp_generate_key(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, a, sizeof a), 30);
  cr_assert_eq(parley__srtp_generate_key(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, b, sizeof b), 30);
  cr_expect_arr_neq(a, b, 30); /* 2^-240 chance of a false failure */
  cr_expect_eq(parley__srtp_generate_key((parley__srtp_suite)7, a, sizeof a), PARLEY_EINVAL);
}

Test(srtp, rtp_round_trip_both_suites) {
  for (size_t si = 0; si < 2; si++) {
    pair p = make_pair(suites[si]);
    for (uint16_t seq = 65530; seq != 10; seq++) { /* across the 16-bit wrap (ROC) */
      uint8_t plain[BUF_CAP], buf[BUF_CAP];
      int n = make_rtp(plain, seq);
      memcpy(buf, plain, (size_t)n);
      int m = parley__srtp_protect_rtp(p.tx, buf, (size_t)n, sizeof buf);
      cr_assert_eq(m, n + (int)rtp_tag[si], "suite %zu seq %u: %d", si, seq, m);
      cr_expect_arr_eq(buf, plain, 12); /* header stays in the clear */
      cr_expect_arr_neq(buf + 12, plain + 12, (size_t)n - 12); /* payload encrypted */
      int back = parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m);
      cr_assert_eq(back, n, "suite %zu seq %u: %d", si, seq, back);
      cr_expect_arr_eq(buf, plain, (size_t)n);
    }
    parley__srtp_stats st;
    parley__srtp_get_stats(p.rx, &st);
    cr_expect_eq(st.rtp_packets, 16);
    cr_expect_eq(st.replay_dropped + st.auth_dropped + st.other_dropped, 0);
    free_pair(p);
  }
}

Test(srtp, rtcp_round_trip_both_suites) {
  for (size_t si = 0; si < 2; si++) {
    pair p = make_pair(suites[si]);
    parley__rtcp_compound_desc d = {.ssrc = 0x5EC0DE, .is_sender = true, .cname = "parley",
                                    .sender = {.ntp = 1ull << 40, .rtp_ts = 7, .packet_count = 3}};
    uint8_t plain[BUF_CAP], buf[BUF_CAP];
    int n = parley__rtcp_build_compound(&d, plain, sizeof plain);
    cr_assert_gt(n, 0);
    memcpy(buf, plain, (size_t)n);
    int m = parley__srtp_protect_rtcp(p.tx, buf, (size_t)n, sizeof buf);
    /* SRTCP adds the E flag + 31-bit index (4 bytes) and the tag. */
    cr_assert_eq(m, n + 4 + (int)rtp_tag[si], "suite %zu: %d", si, m);
    cr_expect_arr_neq(buf + 8, plain + 8, (size_t)n - 8);
    int back = parley__srtp_unprotect_rtcp(p.rx, buf, (size_t)m);
    cr_assert_eq(back, n);
    cr_expect_arr_eq(buf, plain, (size_t)n);
    parley__rtcp_info info;
    cr_expect_eq(parley__rtcp_parse_compound(buf, (size_t)back, &info), 0);
    cr_expect_str_eq(info.cname, "parley");
    free_pair(p);
  }
}

Test(srtp, replay_is_rejected_and_counted) {
  for (size_t si = 0; si < 2; si++) {
    pair p = make_pair(suites[si]);
    uint8_t buf[BUF_CAP], copy[BUF_CAP];
    int n = make_rtp(buf, 100);
    int m = parley__srtp_protect_rtp(p.tx, buf, (size_t)n, sizeof buf);
    cr_assert_gt(m, 0);
    memcpy(copy, buf, (size_t)m);
    cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m), n);
    memcpy(buf, copy, (size_t)m);
    cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m), PARLEY_EREPLAY);
    /* Far newer packets push seq 100 out of the replay window: then it is "too old", still a replay. */
    for (uint16_t s = 101; s < 400; s++) {
      int k = make_rtp(buf, s);
      int km = parley__srtp_protect_rtp(p.tx, buf, (size_t)k, sizeof buf);
      cr_assert_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)km), k);
    }
    memcpy(buf, copy, (size_t)m);
    cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m), PARLEY_EREPLAY);
    /* Protecting a sequence number twice is refused on the sending side too. */
    n = make_rtp(buf, 100);
    cr_expect_eq(parley__srtp_protect_rtp(p.tx, buf, (size_t)n, sizeof buf), PARLEY_EREPLAY);
    parley__srtp_stats st;
    parley__srtp_get_stats(p.rx, &st);
    cr_expect_eq(st.replay_dropped, 2);
    cr_expect_eq(st.auth_dropped, 0);
    cr_expect_eq(st.rtp_packets, 1 + 299);
    free_pair(p);
  }
}

Test(srtp, rtcp_replay_is_rejected) {
  pair p = make_pair(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80);
  parley__rtcp_compound_desc d = {.ssrc = 1, .cname = "r"};
  uint8_t buf[BUF_CAP], copy[BUF_CAP];
  int n = parley__rtcp_build_compound(&d, buf, sizeof buf);
  int m = parley__srtp_protect_rtcp(p.tx, buf, (size_t)n, sizeof buf);
  cr_assert_gt(m, n);
  memcpy(copy, buf, (size_t)m);
  cr_expect_eq(parley__srtp_unprotect_rtcp(p.rx, buf, (size_t)m), n);
  cr_expect_eq(parley__srtp_unprotect_rtcp(p.rx, copy, (size_t)m), PARLEY_EREPLAY);
  parley__srtp_stats st;
  parley__srtp_get_stats(p.rx, &st);
  cr_expect_eq(st.replay_dropped, 1);
  free_pair(p);
}

Test(srtp, tampering_fails_authentication_and_is_counted) {
  for (size_t si = 0; si < 2; si++) {
    pair p = make_pair(suites[si]);
    uint8_t buf[BUF_CAP], good[BUF_CAP], plain[BUF_CAP];
    int n = make_rtp(plain, 5);
    memcpy(good, plain, (size_t)n);
    int m = parley__srtp_protect_rtp(p.tx, good, (size_t)n, sizeof good);
    cr_assert_gt(m, 0);
    /* One flipped bit in the payload, in the header (timestamp) and in the tag: each forged. */
    size_t positions[] = {40, 5, (size_t)m - 1};
    for (size_t i = 0; i < 3; i++) {
      memcpy(buf, good, (size_t)m);
      buf[positions[i]] ^= 0x01;
      cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m), PARLEY_EAUTH, "suite %zu pos %zu", si,
                   positions[i]);
    }
    /* A truncated tag as well. */
    memcpy(buf, good, (size_t)m);
    cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m - 1), PARLEY_EAUTH);
    parley__srtp_stats st;
    parley__srtp_get_stats(p.rx, &st);
    cr_expect_eq(st.auth_dropped, 4);
    cr_expect_eq(st.replay_dropped, 0);
    /* Forgeries did not advance the replay window: the genuine packet still gets through. */
    memcpy(buf, good, (size_t)m);
    cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)m), n);
    cr_expect_arr_eq(buf, plain, (size_t)n);
    free_pair(p);
  }
}

Test(srtp, wrong_key_fails_authentication) {
  for (size_t si = 0; si < 2; si++) {
    uint8_t k1[30], k2[30];
    size_t kl = parley__srtp_key_salt_len(suites[si]);
    parley__srtp_generate_key(suites[si], k1, sizeof k1);
    memcpy(k2, k1, kl);
    k2[0] ^= 0x80; /* differ in one key bit */
    parley__srtp *tx = parley__srtp_new(suites[si], PARLEY__SRTP_OUTBOUND, k1, kl, NULL);
    parley__srtp *rx = parley__srtp_new(suites[si], PARLEY__SRTP_INBOUND, k2, kl, NULL);
    cr_assert(tx && rx);
    uint8_t buf[BUF_CAP];
    int n = make_rtp(buf, 1);
    int m = parley__srtp_protect_rtp(tx, buf, (size_t)n, sizeof buf);
    cr_expect_eq(parley__srtp_unprotect_rtp(rx, buf, (size_t)m), PARLEY_EAUTH);
    parley__srtp_stats st;
    parley__srtp_get_stats(rx, &st);
    cr_expect_eq(st.auth_dropped, 1);
    parley__srtp_free(tx);
    parley__srtp_free(rx);
  }
}

Test(srtp, argument_and_capacity_checks) {
  uint8_t key[30] = {1};
  int err = 0;
  cr_expect_null(parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_OUTBOUND, key, 28, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__srtp_new(PARLEY__SRTP_AEAD_AES_128_GCM, PARLEY__SRTP_OUTBOUND, key, 30, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, (parley__srtp_direction)5, key, 30, &err));
  cr_expect_null(parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_OUTBOUND, NULL, 30, &err));
  parley__srtp_free(NULL);

  pair p = make_pair(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80);
  uint8_t buf[BUF_CAP];
  int n = make_rtp(buf, 9);
  cr_expect_eq(parley__srtp_protect_rtp(p.tx, buf, (size_t)n, (size_t)n + PARLEY__SRTP_RTP_TRAILER_ROOM - 1),
               PARLEY_ENOSPC);
  cr_expect_eq(parley__srtp_protect_rtp(p.rx, buf, (size_t)n, sizeof buf), PARLEY_ESTATE);
  cr_expect_eq(parley__srtp_unprotect_rtp(p.tx, buf, (size_t)n), PARLEY_ESTATE);
  cr_expect_eq(parley__srtp_protect_rtp(p.tx, buf, 11, sizeof buf), PARLEY_EPARSE);
  cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, 5), PARLEY_EPARSE);
  cr_expect_eq(parley__srtp_protect_rtcp(p.tx, buf, 4, sizeof buf), PARLEY_EPARSE);
  cr_expect_eq(parley__srtp_protect_rtcp(p.tx, buf, 40, 40 + PARLEY__SRTP_RTCP_TRAILER_ROOM - 1), PARLEY_ENOSPC);
  buf[0] = 0x40; /* version 1 */
  cr_expect_eq(parley__srtp_unprotect_rtp(p.rx, buf, (size_t)n), PARLEY_EPARSE);
  parley__srtp_stats st;
  parley__srtp_get_stats(p.rx, &st);
  cr_expect_eq(st.other_dropped, 2);
  cr_expect_eq(st.auth_dropped + st.replay_dropped, 0);
  free_pair(p);
}

static void *make_sessions(void *arg) {
  (void)arg;
  for (int i = 0; i < 20; i++) {
    uint8_t key[30];
    parley__srtp_generate_key(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, key, sizeof key);
    parley__srtp *s = parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_OUTBOUND, key, 30, NULL);
    if (!s) return (void *)1;
    parley__srtp_free(s);
  }
  return NULL;
}

Test(srtp, sessions_from_several_threads) {
  /* Library initialisation races between threads that each create their own sessions. */
  pthread_t th[4];
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, make_sessions, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *rv = (void *)1;
    pthread_join(th[i], &rv);
    cr_expect_null(rv);
  }
}

/* ---- a=crypto ---- */

Test(sdes, parses_rfc4568_example_key) {
  /* RFC 4568 section 4's example key, with its MKI removed; bytes from an independent base64 decoder. */
  static const uint8_t want[30] = {0x3d, 0x2d, 0x6e, 0x40, 0x25, 0x5e, 0x78, 0x21, 0x42, 0x6a,
                                   0x75, 0x66, 0x72, 0x39, 0x29, 0x3f, 0x2c, 0x23, 0x35, 0x68,
                                   0x5c, 0x60, 0x3d, 0x26, 0x5d, 0x7b, 0x71, 0x69, 0x50, 0x51};
  const char *line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20\r\n";
  parley__sdes_crypto c;
  cr_assert_eq(parley__sdes_crypto_parse(line, strlen(line), &c), 0);
  cr_expect_eq(c.tag, 1);
  cr_expect_eq(c.suite, PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80);
  cr_expect_eq(c.key_salt_len, 30);
  cr_expect_arr_eq(c.key_salt, want, 30);
  cr_expect(c.has_lifetime);
  cr_expect_eq(c.lifetime, 1u << 20);
  /* With the MKI the RFC shows, the line is refused as unsupported, not as malformed. */
  const char *mki = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";
  cr_expect_eq(parley__sdes_crypto_parse(mki, strlen(mki), &c), PARLEY_ENOTSUP);
  parley__sdes_crypto_wipe(&c);
}

Test(sdes, format_parse_round_trip_and_keys_work) {
  for (size_t si = 0; si < 2; si++) {
    parley__sdes_crypto c = {.tag = 123456789, .suite = suites[si], .has_lifetime = si == 0,
                             .lifetime = 1ull << 31};
    int kl = parley__srtp_generate_key(suites[si], c.key_salt, sizeof c.key_salt);
    c.key_salt_len = (size_t)kl;
    char line[128];
    int n = parley__sdes_crypto_format(&c, line, sizeof line);
    cr_assert_gt(n, 0);
    cr_expect_eq((size_t)n, strlen(line));
    cr_expect_eq(parley__sdes_crypto_format(&c, line, (size_t)n), PARLEY_ENOSPC);
    n = parley__sdes_crypto_format(&c, line, sizeof line);
    if (si == 0) {
      cr_expect(strncmp(line, "123456789 AES_CM_128_HMAC_SHA1_80 inline:", 41) == 0, "%s", line);
      cr_expect_eq(n, 41 + 40 + 5, "%s", line); /* 30 bytes -> 40 base64 chars, "|2^31" */
      cr_expect_str_eq(line + 81, "|2^31");
    } else {
      cr_expect(strncmp(line, "123456789 AEAD_AES_128_GCM inline:", 34) == 0, "%s", line);
      cr_expect_eq(n, 34 + 40, "%s", line); /* 28 bytes -> 38 chars + "==" */
      cr_expect_eq(line[n - 1], '=');
    }
    parley__sdes_crypto d;
    cr_assert_eq(parley__sdes_crypto_parse(line, (size_t)n, &d), 0, "%s", line);
    cr_expect_eq(d.tag, c.tag);
    cr_expect_eq(d.suite, c.suite);
    cr_expect_eq(d.key_salt_len, c.key_salt_len);
    cr_expect_arr_eq(d.key_salt, c.key_salt, c.key_salt_len);
    cr_expect_eq(d.has_lifetime, c.has_lifetime);
    if (c.has_lifetime) cr_expect_eq(d.lifetime, c.lifetime);

    /* Offer side protects with its key; the answerer keys its inbound session from the parsed line. */
    parley__srtp *tx = parley__srtp_new(c.suite, PARLEY__SRTP_OUTBOUND, c.key_salt, c.key_salt_len, NULL);
    parley__srtp *rx = parley__srtp_new(d.suite, PARLEY__SRTP_INBOUND, d.key_salt, d.key_salt_len, NULL);
    cr_assert(tx && rx);
    uint8_t buf[BUF_CAP], plain[BUF_CAP];
    int pn = make_rtp(plain, 77);
    memcpy(buf, plain, (size_t)pn);
    int m = parley__srtp_protect_rtp(tx, buf, (size_t)pn, sizeof buf);
    cr_expect_eq(parley__srtp_unprotect_rtp(rx, buf, (size_t)m), pn);
    cr_expect_arr_eq(buf, plain, (size_t)pn);
    parley__srtp_free(tx);
    parley__srtp_free(rx);
    parley__sdes_crypto_wipe(&c);
    parley__sdes_crypto_wipe(&d);
    uint8_t zero[30] = {0};
    cr_expect_arr_eq(d.key_salt, zero, 30);
  }
}

Test(sdes, decimal_lifetime_and_unpadded_gcm_key) {
  parley__sdes_crypto c = {.tag = 2, .suite = PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, .key_salt_len = 30,
                           .has_lifetime = true, .lifetime = 1000};
  char line[128];
  int n = parley__sdes_crypto_format(&c, line, sizeof line);
  cr_assert_gt(n, 0);
  cr_expect_str_eq(line + n - 5, "|1000");
  parley__sdes_crypto d;
  cr_assert_eq(parley__sdes_crypto_parse(line, (size_t)n, &d), 0);
  cr_expect_eq(d.lifetime, 1000);
  /* 28 zero bytes encode as 38 'A' then "=="; the padding may be left off, but not half of it. */
  char gcm[80] = "3 AEAD_AES_128_GCM inline:";
  size_t at = strlen(gcm);
  memset(gcm + at, 'A', 38);
  gcm[at + 38] = '\0';
  cr_expect_eq(parley__sdes_crypto_parse(gcm, strlen(gcm), &d), 0);
  cr_expect_eq(d.key_salt_len, 28);
  strcat(gcm, "==");
  cr_expect_eq(parley__sdes_crypto_parse(gcm, strlen(gcm), &d), 0);
  uint8_t zero[28] = {0};
  cr_expect_arr_eq(d.key_salt, zero, 28);
  gcm[strlen(gcm) - 1] = '\0';
  cr_expect_eq(parley__sdes_crypto_parse(gcm, strlen(gcm), &d), PARLEY_EPARSE);
}

Test(sdes, rejects_malformed_and_unsupported_lines) {
  static const char k30[] = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
  static const struct {
    const char *line;
    int want;
  } cases[] = {
      {"", PARLEY_EPARSE},
      {"1", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80", PARLEY_EPARSE},
      {"x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1  AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_ENOTSUP},
      {"1 aes_cm_128_hmac_sha1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_ENOTSUP},
      {"1 AES_CM_128_HMAC_SHA1_80 PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRAAAA", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB!", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkp=ywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|0", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^49", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^x", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|2^20", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4", PARLEY_ENOTSUP},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|a:4", PARLEY_EPARSE},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=1", PARLEY_ENOTSUP},
      {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR;inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
       PARLEY_ENOTSUP},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    parley__sdes_crypto c;
    memset(&c, 0xAA, sizeof c);
    int rc = parley__sdes_crypto_parse(cases[i].line, strlen(cases[i].line), &c);
    cr_expect_eq(rc, cases[i].want, "case %zu \"%s\": %d", i, cases[i].line, rc);
    uint8_t zero[30] = {0};
    cr_expect_arr_eq(c.key_salt, zero, 30, "case %zu left key bytes", i);
  }
  /* The good line itself parses (so the cases above fail for their own reason). */
  char good[96];
  snprintf(good, sizeof good, "1 AES_CM_128_HMAC_SHA1_80 inline:%s", k30);
  parley__sdes_crypto c;
  cr_expect_eq(parley__sdes_crypto_parse(good, strlen(good), &c), 0);
  /* Length is honoured: a prefix of a good line is not read past. */
  cr_expect_eq(parley__sdes_crypto_parse(good, strlen(good) - 1, &c), PARLEY_EPARSE);
  cr_expect_eq(parley__sdes_crypto_parse(NULL, 3, &c), PARLEY_EINVAL);
}

Test(sdes, format_rejects_bad_input) {
  parley__sdes_crypto c = {.tag = 1, .suite = PARLEY__SRTP_AEAD_AES_128_GCM, .key_salt_len = 30};
  char line[128];
  cr_expect_eq(parley__sdes_crypto_format(&c, line, sizeof line), PARLEY_EINVAL);
  c.key_salt_len = 28;
  c.tag = 1000000000;
  cr_expect_eq(parley__sdes_crypto_format(&c, line, sizeof line), PARLEY_EINVAL);
  c.tag = 0;
  c.has_lifetime = true;
  c.lifetime = 0;
  cr_expect_eq(parley__sdes_crypto_format(&c, line, sizeof line), PARLEY_EINVAL);
  c.lifetime = (1ull << 48) + 1;
  cr_expect_eq(parley__sdes_crypto_format(&c, line, sizeof line), PARLEY_EINVAL);
  c.lifetime = 1ull << 48;
  cr_expect_gt(parley__sdes_crypto_format(&c, line, sizeof line), 0);
}
