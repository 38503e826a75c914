/* srtp.c: SRTP sessions over libsrtp2, SRTP key generation and the SDES a=crypto value (see srtp.h).
 *
 * Owns: one libsrtp session (srtp_t) per parley__srtp, plus its counters. A session belongs to one
 * thread; library initialisation is process-wide, once, behind pthread_once. protect/unprotect allocate
 * only when libsrtp meets a new SSRC (it clones the template stream): network thread, not audio thread.
 * Crypto is libsrtp's; randomness is RAND_bytes; base64 is EVP_EncodeBlock/EVP_DecodeBlock; wiping is
 * OPENSSL_cleanse.
 */
#include "transport/srtp.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/rtp.h"

_Static_assert(PARLEY__SRTP_RTP_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN, "RTP trailer room");
_Static_assert(PARLEY__SRTP_RTCP_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN + 4, "RTCP trailer room");
_Static_assert(PARLEY__SRTP_MAX_KEY_SALT_LEN >= SRTP_AES_ICM_128_KEY_LEN_WSALT, "CM key room");
_Static_assert(PARLEY__SRTP_MAX_KEY_SALT_LEN >= SRTP_AES_GCM_128_KEY_LEN_WSALT, "GCM key room");

struct parley__srtp {
  srtp_t ctx;
  parley__srtp_direction dir;
  parley__srtp_suite suite;
  parley__srtp_stats stats;
};

/* ---- Suites ---- */

size_t parley__srtp_key_salt_len(parley__srtp_suite suite) {
  switch (suite) {
  case PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80: return SRTP_AES_ICM_128_KEY_LEN_WSALT;
  case PARLEY__SRTP_AEAD_AES_128_GCM: return SRTP_AES_GCM_128_KEY_LEN_WSALT;
  }
  return 0;
}

const char *parley__srtp_suite_name(parley__srtp_suite suite) {
  switch (suite) {
  case PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80: return "AES_CM_128_HMAC_SHA1_80";
  case PARLEY__SRTP_AEAD_AES_128_GCM: return "AEAD_AES_128_GCM";
  }
  return NULL;
}

int parley__srtp_suite_from_name(const char *name, size_t len, parley__srtp_suite *out) {
  if (!name || !out) return PARLEY_EINVAL;
  static const parley__srtp_suite all[] = {PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_AEAD_AES_128_GCM};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *n = parley__srtp_suite_name(all[i]);
    if (strlen(n) == len && memcmp(n, name, len) == 0) {
      *out = all[i];
      return 0;
    }
  }
  return PARLEY_ENOTSUP;
}

int parley__srtp_generate_key(parley__srtp_suite suite, uint8_t *out, size_t cap) {
  size_t n = parley__srtp_key_salt_len(suite);
  if (n == 0 || !out) return PARLEY_EINVAL;
  if (cap < n) return PARLEY_ENOSPC;
  if (RAND_bytes(out, (int)n) != 1) {
    OPENSSL_cleanse(out, n);
    return PARLEY_ECRYPTO;
  }
  return (int)n;
}

/* ---- Library and sessions ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t init_status = srtp_err_status_fail;

static void init_library(void) { init_status = srtp_init(); }

int parley__srtp_library_init(void) {
  if (pthread_once(&init_once, init_library) != 0) return PARLEY_ECRYPTO;
  return init_status == srtp_err_status_ok ? 0 : PARLEY_ECRYPTO;
}

parley__srtp *parley__srtp_new(parley__srtp_suite suite, parley__srtp_direction dir, const uint8_t *key_salt,
                               size_t key_salt_len, int *err) {
  int e = 0;
  parley__srtp *s = NULL;
  size_t want = parley__srtp_key_salt_len(suite);
  if (want == 0 || !key_salt || key_salt_len != want ||
      (dir != PARLEY__SRTP_OUTBOUND && dir != PARLEY__SRTP_INBOUND)) {
    e = PARLEY_EINVAL;
    goto out;
  }
  if ((e = parley__srtp_library_init()) < 0) goto out;
  s = calloc(1, sizeof *s);
  if (!s) {
    e = PARLEY_ENOMEM;
    goto out;
  }
  s->dir = dir;
  s->suite = suite;

  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  if (suite == PARLEY__SRTP_AEAD_AES_128_GCM) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
  } else {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
  }
  policy.ssrc.type = dir == PARLEY__SRTP_OUTBOUND ? ssrc_any_outbound : ssrc_any_inbound;
  /* libsrtp takes a non-const key pointer; hand it a wiped-after-use copy. */
  uint8_t key[SRTP_MAX_KEY_LEN];
  memcpy(key, key_salt, want);
  policy.key = key;
  policy.window_size = 0; /* libsrtp's default replay window (128 packets) */
  policy.allow_repeat_tx = 0;
  policy.next = NULL;
  srtp_err_status_t st = srtp_create(&s->ctx, &policy);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(&policy, sizeof policy);
  if (st != srtp_err_status_ok) {
    e = st == srtp_err_status_alloc_fail ? PARLEY_ENOMEM : PARLEY_ECRYPTO;
    s->ctx = NULL;
    parley__srtp_free(s);
    s = NULL;
  }
out:
  if (err) *err = e;
  return s;
}

void parley__srtp_free(parley__srtp *s) {
  if (!s) return;
  if (s->ctx) srtp_dealloc(s->ctx);
  OPENSSL_cleanse(s, sizeof *s);
  free(s);
}

void parley__srtp_get_stats(const parley__srtp *s, parley__srtp_stats *out) {
  if (s && out) *out = s->stats;
}

/* Maps a libsrtp failure to a PARLEY code and counts it. */
static int fail(parley__srtp *s, srtp_err_status_t st) {
  switch (st) {
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old: s->stats.replay_dropped++; return PARLEY_EREPLAY;
  case srtp_err_status_auth_fail: s->stats.auth_dropped++; return PARLEY_EAUTH;
  case srtp_err_status_bad_param:
  case srtp_err_status_parse_err: s->stats.other_dropped++; return PARLEY_EPARSE;
  default: s->stats.other_dropped++; return PARLEY_ECRYPTO;
  }
}

static int drop(parley__srtp *s, int code) {
  s->stats.other_dropped++;
  return code;
}

/* An RTCP packet's first header must at least be present with version 2 and an SSRC. */
static bool rtcp_plausible(const uint8_t *buf, size_t len) { return len >= 8 && (buf[0] >> 6) == 2; }

int parley__srtp_protect_rtp(parley__srtp *s, uint8_t *buf, size_t len, size_t cap) {
  if (!s || !buf) return PARLEY_EINVAL;
  if (s->dir != PARLEY__SRTP_OUTBOUND) return PARLEY_ESTATE;
  if (len > (size_t)INT_MAX - PARLEY__SRTP_RTP_TRAILER_ROOM || cap < len + PARLEY__SRTP_RTP_TRAILER_ROOM)
    return drop(s, PARLEY_ENOSPC);
  parley__rtp_view v;
  if (parley__rtp_parse(buf, len, &v) < 0) return drop(s, PARLEY_EPARSE);
  int n = (int)len;
  srtp_err_status_t st = srtp_protect(s->ctx, buf, &n);
  if (st != srtp_err_status_ok) return fail(s, st);
  s->stats.rtp_packets++;
  return n;
}

int parley__srtp_protect_rtcp(parley__srtp *s, uint8_t *buf, size_t len, size_t cap) {
  if (!s || !buf) return PARLEY_EINVAL;
  if (s->dir != PARLEY__SRTP_OUTBOUND) return PARLEY_ESTATE;
  if (len > (size_t)INT_MAX - PARLEY__SRTP_RTCP_TRAILER_ROOM || cap < len + PARLEY__SRTP_RTCP_TRAILER_ROOM)
    return drop(s, PARLEY_ENOSPC);
  if (!rtcp_plausible(buf, len)) return drop(s, PARLEY_EPARSE);
  int n = (int)len;
  srtp_err_status_t st = srtp_protect_rtcp(s->ctx, buf, &n);
  if (st != srtp_err_status_ok) return fail(s, st);
  s->stats.rtcp_packets++;
  return n;
}

int parley__srtp_unprotect_rtp(parley__srtp *s, uint8_t *buf, size_t len) {
  if (!s || !buf) return PARLEY_EINVAL;
  if (s->dir != PARLEY__SRTP_INBOUND) return PARLEY_ESTATE;
  if (len > INT_MAX) return drop(s, PARLEY_EPARSE);
  /* Only the header is in the clear; padding and payload are checked after decryption by the caller. */
  if (parley__rtp_header_len(buf, len) < 0) return drop(s, PARLEY_EPARSE);
  int n = (int)len;
  srtp_err_status_t st = srtp_unprotect(s->ctx, buf, &n);
  if (st != srtp_err_status_ok) return fail(s, st);
  s->stats.rtp_packets++;
  return n;
}

int parley__srtp_unprotect_rtcp(parley__srtp *s, uint8_t *buf, size_t len) {
  if (!s || !buf) return PARLEY_EINVAL;
  if (s->dir != PARLEY__SRTP_INBOUND) return PARLEY_ESTATE;
  if (len > INT_MAX || !rtcp_plausible(buf, len)) return drop(s, PARLEY_EPARSE);
  int n = (int)len;
  srtp_err_status_t st = srtp_unprotect_rtcp(s->ctx, buf, &n);
  if (st != srtp_err_status_ok) return fail(s, st);
  s->stats.rtcp_packets++;
  return n;
}

/* ---- SDES a=crypto ---- */

#define LIFETIME_MAX_LOG2 48
/* base64 of 30 bytes is 40 characters; allow nothing longer. */
#define KEY_B64_MAX 44

void parley__sdes_crypto_wipe(parley__sdes_crypto *c) {
  if (c) OPENSSL_cleanse(c->key_salt, sizeof c->key_salt);
}

int parley__sdes_crypto_format(const parley__sdes_crypto *c, char *out, size_t cap) {
  if (!c || !out) return PARLEY_EINVAL;
  const char *name = parley__srtp_suite_name(c->suite);
  if (!name || c->key_salt_len != parley__srtp_key_salt_len(c->suite) || c->tag > 999999999u)
    return PARLEY_EINVAL;
  if (c->has_lifetime && (c->lifetime == 0 || c->lifetime > (1ull << LIFETIME_MAX_LOG2))) return PARLEY_EINVAL;

  unsigned char b64[KEY_B64_MAX + 1];
  EVP_EncodeBlock(b64, c->key_salt, (int)c->key_salt_len);
  char life[32] = "";
  if (c->has_lifetime) {
    uint64_t l = c->lifetime;
    if ((l & (l - 1)) == 0) {
      int log2 = 0;
      while ((1ull << log2) != l) log2++;
      snprintf(life, sizeof life, "|2^%d", log2);
    } else {
      snprintf(life, sizeof life, "|%llu", (unsigned long long)l);
    }
  }
  int n = snprintf(out, cap, "%u %s inline:%s%s", (unsigned)c->tag, name, (const char *)b64, life);
  OPENSSL_cleanse(b64, sizeof b64);
  if (n < 0) return PARLEY_EINVAL;
  if ((size_t)n >= cap) {
    OPENSSL_cleanse(out, cap);
    return PARLEY_ENOSPC;
  }
  return n;
}

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_b64(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '+' || ch == '/';
}

/* Decimal digits in [p, end) as a value <= max. 0 or PARLEY_EPARSE. */
static int parse_decimal(const char *p, const char *end, uint64_t max, uint64_t *out) {
  if (p == end || end - p > 20) return PARLEY_EPARSE;
  uint64_t v = 0;
  for (; p < end; p++) {
    if (!is_digit(*p)) return PARLEY_EPARSE;
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (max - d) / 10) return PARLEY_EPARSE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Decodes base64 [p, end) into exactly want bytes of out. Padding '=' optional, only at the end. */
static int decode_key(const char *p, const char *end, uint8_t *out, size_t want) {
  size_t n = (size_t)(end - p);
  if (n == 0 || n > KEY_B64_MAX) return PARLEY_EPARSE;
  size_t data = 0;
  while (data < n && is_b64(p[data])) data++;
  size_t eq = n - data;
  if (eq > 2) return PARLEY_EPARSE;
  for (size_t i = data; i < n; i++)
    if (p[i] != '=') return PARLEY_EPARSE;
  if (data % 4 == 1) return PARLEY_EPARSE; /* no whole byte in the last group */
  size_t padded = (data + 3) / 4 * 4;
  if (eq && data + eq != padded) return PARLEY_EPARSE;

  unsigned char in[KEY_B64_MAX + 4];
  memcpy(in, p, data);
  memset(in + data, '=', padded - data);
  size_t npad = padded - data;
  unsigned char tmp[KEY_B64_MAX];
  int got = EVP_DecodeBlock(tmp, in, (int)padded);
  int rc = 0;
  /* EVP_DecodeBlock counts the pad positions as zero bytes: remove them. */
  if (got < 0 || (size_t)got < npad || (size_t)got - npad != want)
    rc = PARLEY_EPARSE;
  else
    memcpy(out, tmp, want);
  OPENSSL_cleanse(in, sizeof in);
  OPENSSL_cleanse(tmp, sizeof tmp);
  return rc;
}

static int parse_lifetime(const char *p, const char *end, uint64_t *out) {
  uint64_t v;
  if (end - p >= 2 && p[0] == '2' && p[1] == '^') {
    if (parse_decimal(p + 2, end, LIFETIME_MAX_LOG2, &v) < 0) return PARLEY_EPARSE;
    *out = 1ull << v;
  } else {
    if (parse_decimal(p, end, 1ull << LIFETIME_MAX_LOG2, &v) < 0) return PARLEY_EPARSE;
    *out = v;
  }
  return *out ? 0 : PARLEY_EPARSE;
}

static int parse_crypto(const char *p, const char *end, parley__sdes_crypto *out) {
  static const char prefix[] = "a=crypto:";
  if ((size_t)(end - p) >= sizeof prefix - 1 && memcmp(p, prefix, sizeof prefix - 1) == 0)
    p += sizeof prefix - 1;
  while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;

  /* tag */
  const char *q = p;
  while (q < end && *q != ' ') q++;
  uint64_t tag;
  if (q - p > 9 || parse_decimal(p, q, 999999999u, &tag) < 0) return PARLEY_EPARSE;
  out->tag = (uint32_t)tag;
  if (q == end) return PARLEY_EPARSE;
  p = q + 1;

  /* crypto-suite */
  q = p;
  while (q < end && *q != ' ') q++;
  if (q == p || q == end) return PARLEY_EPARSE;
  int rc = parley__srtp_suite_from_name(p, (size_t)(q - p), &out->suite);
  if (rc < 0) return rc;
  p = q + 1;

  /* key-params: a single "inline:" key; anything after a space is session parameters. */
  q = p;
  while (q < end && *q != ' ') q++;
  if (q != end) return PARLEY_ENOTSUP;
  static const char method[] = "inline:";
  if ((size_t)(end - p) < sizeof method - 1 || memcmp(p, method, sizeof method - 1) != 0) return PARLEY_EPARSE;
  p += sizeof method - 1;
  for (q = p; q < end; q++)
    if (*q == ';') return PARLEY_ENOTSUP;

  q = p;
  while (q < end && *q != '|') q++;
  out->key_salt_len = parley__srtp_key_salt_len(out->suite);
  if ((rc = decode_key(p, q, out->key_salt, out->key_salt_len)) < 0) return rc;

  /* Up to two '|' parts: lifetime, then MKI ("value:length"). A lone part with ':' is the MKI. */
  while (q < end) {
    p = q + 1;
    q = p;
    while (q < end && *q != '|') q++;
    if (memchr(p, ':', (size_t)(q - p))) {
      /* Check its shape so a malformed MKI reads as malformed, then refuse it. */
      const char *colon = memchr(p, ':', (size_t)(q - p));
      uint64_t mki, mki_len;
      if (parse_decimal(p, colon, UINT64_MAX, &mki) < 0 || parse_decimal(colon + 1, q, 128, &mki_len) < 0 ||
          mki_len == 0)
        return PARLEY_EPARSE;
      return PARLEY_ENOTSUP;
    }
    if (out->has_lifetime) return PARLEY_EPARSE;
    if (parse_lifetime(p, q, &out->lifetime) < 0) return PARLEY_EPARSE;
    out->has_lifetime = true;
  }
  return 0;
}

int parley__sdes_crypto_parse(const char *value, size_t len, parley__sdes_crypto *out) {
  if (!value || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = parse_crypto(value, value + len, out);
  if (rc < 0) {
    parley__sdes_crypto_wipe(out);
    memset(out, 0, sizeof *out);
  }
  return rc;
}
