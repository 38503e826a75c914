/* dtls.c: DTLS-SRTP sessions on OpenSSL through memory BIOs, and the certificates they present (see
 * dtls.h).
 *
 * Owns: per session an SSL_CTX (our certificate, the SRTP profiles, the fingerprint check) and its SSL
 * with two memory BIOs. Received datagrams are written into the read BIO one at a time and consumed at
 * once, so OpenSSL sees datagram boundaries; what OpenSSL writes is split into its records and packed
 * into datagrams of at most PARLEY__DTLS_MTU bytes (a whole flight in one datagram when it fits, so a
 * lossy path loses one datagram per flight instead of one of five). One thread at a time; not real-time.
 */
#include "transport/dtls.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "parley/parley.h"

/* ---- certificates ---- */

struct parley__dtls_cert {
  X509 *x509;
  EVP_PKEY *pkey;
  char fingerprint[32 * 3];
};

static void hex_colons(const uint8_t *d, size_t n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    out[i * 3] = hex[d[i] >> 4];
    out[i * 3 + 1] = hex[d[i] & 15];
    out[i * 3 + 2] = i + 1 < n ? ':' : '\0';
  }
}

/* What a libcrypto/libssl failure was: PARLEY_ENOMEM when its error queue says an allocation failed,
 * else PARLEY_ECRYPTO. Clears the queue. */
static int crypto_failure(void) {
  int e = PARLEY_ECRYPTO;
  for (unsigned long code; (code = ERR_get_error()) != 0;)
    if (ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE) e = PARLEY_ENOMEM;
  return e;
}

static int self_signed(parley__dtls_cert *c) {
  c->pkey = EVP_EC_gen("P-256");
  c->x509 = X509_new();
  if (!c->pkey || !c->x509) return PARLEY_ECRYPTO;
  uint32_t serial = 0;
  if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1) return PARLEY_ECRYPTO;
  X509_NAME *name = X509_get_subject_name(c->x509);
  /* Valid from a day ago (peers with a skewed clock) for 30 days: an engine's lifetime, not an identity. */
  if (X509_set_version(c->x509, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(c->x509), serial >> 1) != 1 ||
      !X509_gmtime_adj(X509_getm_notBefore(c->x509), -86400) ||
      !X509_gmtime_adj(X509_getm_notAfter(c->x509), 30L * 86400) || X509_set_pubkey(c->x509, c->pkey) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"parley", -1, -1, 0) != 1 ||
      X509_set_issuer_name(c->x509, name) != 1 || X509_sign(c->x509, c->pkey, EVP_sha256()) <= 0)
    return PARLEY_ECRYPTO;
  return 0;
}

static int from_pem(parley__dtls_cert *c, const char *cert_pem, const char *key_pem) {
  BIO *b = BIO_new_mem_buf(cert_pem, -1);
  if (!b) return PARLEY_ENOMEM;
  c->x509 = PEM_read_bio_X509(b, NULL, NULL, NULL);
  BIO_free(b);
  b = BIO_new_mem_buf(key_pem, -1);
  if (!b) return PARLEY_ENOMEM;
  c->pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!c->x509 || !c->pkey || X509_check_private_key(c->x509, c->pkey) != 1) return PARLEY_EPARSE;
  return 0;
}

parley__dtls_cert *parley__dtls_cert_new(const char *cert_pem, const char *key_pem, int *err) {
  int e = 0;
  parley__dtls_cert *c = NULL;
  if (!cert_pem != !key_pem) {
    e = PARLEY_EINVAL;
    goto out;
  }
  c = calloc(1, sizeof *c);
  if (!c) {
    e = PARLEY_ENOMEM;
    goto out;
  }
  e = cert_pem ? from_pem(c, cert_pem, key_pem) : self_signed(c);
  if (e == 0) {
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (X509_digest(c->x509, EVP_sha256(), md, &n) != 1 || n != 32) e = PARLEY_ECRYPTO;
    else hex_colons(md, n, c->fingerprint);
  }
  if (e == PARLEY_ECRYPTO) e = crypto_failure();
out:
  ERR_clear_error();
  if (e) {
    parley__dtls_cert_free(c);
    c = NULL;
  }
  if (err) *err = e;
  return c;
}

void parley__dtls_cert_free(parley__dtls_cert *c) {
  if (!c) return;
  X509_free(c->x509);
  EVP_PKEY_free(c->pkey);
  free(c);
}

const char *parley__dtls_cert_fingerprint(const parley__dtls_cert *c) { return c ? c->fingerprint : ""; }

/* ---- fingerprints ---- */

static const struct {
  const char *sdp;
  const char *md;
  size_t len;
} algs[] = {{"sha-1", "SHA1", 20},     {"sha-224", "SHA224", 28}, {"sha-256", "SHA256", 32},
            {"sha-384", "SHA384", 48}, {"sha-512", "SHA512", 64}};

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  ch = (char)tolower((unsigned char)ch);
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int parley__dtls_fingerprint_parse(const char *value, size_t len, parley__dtls_fingerprint *out) {
  if (!value || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  static const char prefix[] = "a=fingerprint:";
  if (len >= sizeof prefix - 1 && strncasecmp(value, prefix, sizeof prefix - 1) == 0) {
    value += sizeof prefix - 1;
    len -= sizeof prefix - 1;
  }
  while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' ')) len--;
  const char *sp = memchr(value, ' ', len);
  if (!sp || sp == value) return PARLEY_EPARSE;
  size_t alen = (size_t)(sp - value);
  int ai = -1;
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
    if (strlen(algs[i].sdp) == alen && strncasecmp(algs[i].sdp, value, alen) == 0) ai = (int)i;
  if (ai < 0) return PARLEY_ENOTSUP;
  const char *p = sp + 1, *end = value + len;
  size_t n = 0;
  while (p < end) {
    int hi = p + 1 < end ? hexval(p[0]) : -1, lo = p + 1 < end ? hexval(p[1]) : -1;
    if (hi < 0 || lo < 0 || n == sizeof out->digest) goto bad;
    out->digest[n++] = (uint8_t)(hi << 4 | lo);
    p += 2;
    if (p < end && *p++ != ':') goto bad;
    if (p == end && p[-1] == ':') goto bad;
  }
  if (n != algs[ai].len) goto bad;
  snprintf(out->alg, sizeof out->alg, "%s", algs[ai].sdp);
  out->digest_len = n;
  return 0;
bad:
  memset(out, 0, sizeof *out);
  return PARLEY_EPARSE;
}

static const EVP_MD *fingerprint_md(const parley__dtls_fingerprint *f) {
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
    if (strcmp(algs[i].sdp, f->alg) == 0 && algs[i].len == f->digest_len) return EVP_get_digestbyname(algs[i].md);
  return NULL;
}

/* ---- sessions ---- */

struct parley__dtls {
  parley__dtls_config cfg;
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  parley__dtls_state state;
  bool peer_closed;
  bool cert_refused;
  int64_t handshake_deadline_us;
  int64_t rto_at_us; /* OpenSSL's retransmission timer on the caller's clock; INT64_MAX when off */
  char reason[160];
  uint8_t out[16384]; /* records OpenSSL wrote, being packed into datagrams */
};

/* Retransmission timer (RFC 6347 4.2.4.1 recommends 1 s, doubling, at least up to 60 s). ICE has just
 * proven the path with round trips of its own, so waiting 1 s for a lost flight only delays the call:
 * start at 200 ms (above any round trip a voice call survives plus the peer's signing time, so no
 * spurious resend on a healthy path) and double up to 1 s, which retries 11 times within the 10 s
 * handshake deadline (below OpenSSL's limit of 12). On 20 % loss each way with 150 ms of jitter, a 2 s
 * cap took up to 9.4 s over 50 seeds, a 1 s cap 5.8 s (tests/test_dtls.c, lossy_jittery_sweep). */
static unsigned int timer_cb(SSL *ssl, unsigned int prev_us) {
  (void)ssl;
  if (prev_us == 0) return PARLEY__DTLS_RTO_INITIAL_US;
  return prev_us >= PARLEY__DTLS_RTO_MAX_US / 2 ? PARLEY__DTLS_RTO_MAX_US : prev_us * 2;
}

static int verify_cb(X509_STORE_CTX *sctx, void *arg) {
  parley__dtls *d = arg;
  X509 *peer = X509_STORE_CTX_get0_cert(sctx);
  const EVP_MD *md = fingerprint_md(&d->cfg.peer);
  uint8_t got[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (peer && md && X509_digest(peer, md, got, &n) == 1 && n == d->cfg.peer.digest_len &&
      CRYPTO_memcmp(got, d->cfg.peer.digest, n) == 0)
    return 1;
  d->cert_refused = true;
  X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
  return 0;
}

static void info_cb(const SSL *ssl, int where, int ret) {
  parley__dtls *d = SSL_get_app_data(ssl);
  if (!d || (where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) return;
  if ((ret & 0xff) == SSL3_AD_CLOSE_NOTIFY) d->peer_closed = true;
  else if ((ret >> 8) == SSL3_AL_FATAL && !d->reason[0])
    snprintf(d->reason, sizeof d->reason, "the peer sent a fatal DTLS alert: %s", SSL_alert_desc_string_long(ret));
}

/* Sends what OpenSSL wrote, its records packed into datagrams of at most PARLEY__DTLS_MTU bytes. */
static void flush(parley__dtls *d) {
  size_t have = 0;
  for (int guard = 0; guard < 64; guard++) {
    int n = BIO_read(d->wbio, d->out + have, (int)(sizeof d->out - have));
    if (n > 0) have += (size_t)n;
    size_t off = 0, start = 0;
    while (off + 13 <= have) {
      size_t rec = 13 + ((size_t)d->out[off + 11] << 8 | d->out[off + 12]); /* DTLS record header */
      if (off + rec > have) break;
      if (off > start && off + rec - start > PARLEY__DTLS_MTU) {
        d->cfg.send(d->cfg.ctx, d->out + start, off - start);
        start = off;
      }
      off += rec;
    }
    if (off > start) d->cfg.send(d->cfg.ctx, d->out + start, off - start);
    memmove(d->out, d->out + off, have - off);
    have -= off;
    if (n <= 0) break;
  }
}

static void update_timer(parley__dtls *d, int64_t now) {
  struct timeval tv;
  d->rto_at_us = DTLSv1_get_timeout(d->ssl, &tv) == 1 ? now + (int64_t)tv.tv_sec * 1000000 + tv.tv_usec : INT64_MAX;
}

static void fail(parley__dtls *d, const char *why) {
  d->state = PARLEY__DTLS_FAILED;
  if (d->cert_refused)
    snprintf(d->reason, sizeof d->reason, "the peer's certificate does not match the fingerprint in its SDP");
  else if (!d->reason[0]) {
    unsigned long e = ERR_peek_last_error();
    const char *lib = e ? ERR_reason_error_string(e) : NULL;
    snprintf(d->reason, sizeof d->reason, "%s%s%s", why, lib ? ": " : "", lib ? lib : "");
  }
  ERR_clear_error();
  d->rto_at_us = INT64_MAX;
}

parley__dtls *parley__dtls_new(const parley__dtls_config *cfg, int *err) {
  int e = PARLEY_EINVAL;
  parley__dtls *d = NULL;
  if (!cfg || !cfg->cert || !cfg->send || cfg->peer.digest_len == 0 || cfg->handshake_timeout_us < 0 ||
      (cfg->role != PARLEY__DTLS_CLIENT && cfg->role != PARLEY__DTLS_SERVER) || !fingerprint_md(&cfg->peer))
    goto fail;
  e = PARLEY_ENOMEM;
  d = calloc(1, sizeof *d);
  if (!d) goto fail;
  d->cfg = *cfg;
  if (d->cfg.handshake_timeout_us == 0) d->cfg.handshake_timeout_us = PARLEY__DTLS_HANDSHAKE_TIMEOUT_US;
  d->rto_at_us = INT64_MAX;
  e = PARLEY_ECRYPTO;
  d->ctx = SSL_CTX_new(DTLS_method());
  if (!d->ctx) goto fail;
  /* SSL_CTX_set_tlsext_use_srtp returns 0 on success. GCM first: it is the cheaper and stronger. */
  if (SSL_CTX_set_min_proto_version(d->ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(d->ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(d->ctx, cfg->cert->x509) != 1 || SSL_CTX_use_PrivateKey(d->ctx, cfg->cert->pkey) != 1 ||
      SSL_CTX_set_tlsext_use_srtp(d->ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") != 0)
    goto fail;
  /* Both sides present a certificate (RFC 8827 6.5); the fingerprint, not a CA, vouches for it. */
  SSL_CTX_set_verify(d->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  SSL_CTX_set_cert_verify_callback(d->ctx, verify_cb, d);
  SSL_CTX_set_info_callback(d->ctx, info_cb);
  SSL_CTX_set_read_ahead(d->ctx, 1);
  d->ssl = SSL_new(d->ctx);
  if (!d->ssl) goto fail;
  SSL_set_app_data(d->ssl, d);
  d->rbio = BIO_new(BIO_s_mem());
  d->wbio = BIO_new(BIO_s_mem());
  if (!d->rbio || !d->wbio) {
    BIO_free(d->rbio);
    BIO_free(d->wbio);
    goto fail;
  }
  BIO_set_mem_eof_return(d->rbio, -1); /* empty means "no datagram yet", not end of stream */
  SSL_set_bio(d->ssl, d->rbio, d->wbio);
  /* A memory BIO cannot tell the path MTU: fix it (records then fit our datagrams). */
  SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
  SSL_set_mtu(d->ssl, PARLEY__DTLS_MTU);
  DTLS_set_timer_cb(d->ssl, timer_cb);
  if (cfg->role == PARLEY__DTLS_CLIENT) SSL_set_connect_state(d->ssl);
  else SSL_set_accept_state(d->ssl);
  if (err) *err = 0;
  return d;
fail:
  if (e == PARLEY_ECRYPTO) e = crypto_failure();
  ERR_clear_error();
  parley__dtls_free(d);
  if (err) *err = e;
  return NULL;
}

void parley__dtls_free(parley__dtls *d) {
  if (!d) return;
  SSL_free(d->ssl);
  SSL_CTX_free(d->ctx);
  OPENSSL_cleanse(d->out, sizeof d->out);
  free(d);
}

/* Drives the handshake, then reads (and drops) application data until OpenSSL wants another datagram. */
static void advance(parley__dtls *d) {
  ERR_clear_error();
  if (d->state == PARLEY__DTLS_CONNECTING) {
    int r = SSL_do_handshake(d->ssl);
    if (r == 1) {
      d->state = PARLEY__DTLS_CONNECTED;
    } else {
      int se = SSL_get_error(d->ssl, r);
      if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE) fail(d, "DTLS handshake failed");
      return;
    }
  }
  uint8_t sink[2048];
  for (int guard = 0; guard < 64 && d->state == PARLEY__DTLS_CONNECTED; guard++) {
    int r = SSL_read(d->ssl, sink, sizeof sink);
    if (r > 0) continue; /* no data channel: application data is dropped */
    int se = SSL_get_error(d->ssl, r);
    if (se == SSL_ERROR_ZERO_RETURN || d->peer_closed) {
      d->peer_closed = true;
      d->state = PARLEY__DTLS_CLOSED;
      d->rto_at_us = INT64_MAX;
    } else if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE) {
      fail(d, "DTLS connection failed");
    }
    break;
  }
  OPENSSL_cleanse(sink, sizeof sink);
  ERR_clear_error();
}

int parley__dtls_start(parley__dtls *d, int64_t now_us) {
  if (!d) return PARLEY_EINVAL;
  if (d->state != PARLEY__DTLS_NEW) return PARLEY_ESTATE;
  d->state = PARLEY__DTLS_CONNECTING;
  d->handshake_deadline_us = now_us + d->cfg.handshake_timeout_us;
  if (d->cfg.role == PARLEY__DTLS_CLIENT) advance(d);
  flush(d);
  if (d->state == PARLEY__DTLS_CONNECTING) update_timer(d, now_us);
  return 0;
}

int parley__dtls_receive(parley__dtls *d, const uint8_t *buf, size_t len, int64_t now_us) {
  if (!d || (!buf && len)) return PARLEY_EINVAL;
  if (d->state != PARLEY__DTLS_CONNECTING && d->state != PARLEY__DTLS_CONNECTED) return PARLEY_ESTATE;
  if (len == 0 || len > 65535) return 0;
  parley__dtls_state before = d->state;
  (void)BIO_reset(d->rbio); /* one datagram at a time: nothing may linger from a malformed one */
  if (BIO_write(d->rbio, buf, (int)len) != (int)len) return 0;
  advance(d);
  flush(d);
  if (d->state == PARLEY__DTLS_CONNECTING || d->state == PARLEY__DTLS_CONNECTED) update_timer(d, now_us);
  return d->state != before;
}

int64_t parley__dtls_next_deadline_us(const parley__dtls *d) {
  if (!d) return INT64_MAX;
  int64_t t = d->rto_at_us;
  if (d->state == PARLEY__DTLS_CONNECTING && d->handshake_deadline_us < t) t = d->handshake_deadline_us;
  return d->state == PARLEY__DTLS_CONNECTING || d->state == PARLEY__DTLS_CONNECTED ? t : INT64_MAX;
}

int parley__dtls_tick(parley__dtls *d, int64_t now_us) {
  if (!d || (d->state != PARLEY__DTLS_CONNECTING && d->state != PARLEY__DTLS_CONNECTED)) return 0;
  if (d->state == PARLEY__DTLS_CONNECTING && now_us >= d->handshake_deadline_us) {
    snprintf(d->reason, sizeof d->reason, "the DTLS handshake timed out after %lld ms",
             (long long)(d->cfg.handshake_timeout_us / 1000));
    fail(d, "");
    return 1;
  }
  if (now_us < d->rto_at_us) return 0;
  ERR_clear_error();
  if (DTLSv1_handle_timeout(d->ssl) < 0) {
    fail(d, "DTLS retransmissions exhausted");
    flush(d);
    return 1;
  }
  flush(d);
  update_timer(d, now_us);
  return 0;
}

int parley__dtls_close(parley__dtls *d, int64_t now_us) {
  (void)now_us;
  if (!d) return PARLEY_EINVAL;
  if (d->state == PARLEY__DTLS_CLOSED || d->state == PARLEY__DTLS_FAILED) return PARLEY_ESTATE;
  if (d->state == PARLEY__DTLS_CONNECTED) {
    ERR_clear_error();
    (void)SSL_shutdown(d->ssl); /* sends close_notify; we do not wait for the peer's */
    flush(d);
    ERR_clear_error();
  }
  d->state = PARLEY__DTLS_CLOSED;
  d->rto_at_us = INT64_MAX;
  return 0;
}

parley__dtls_state parley__dtls_get_state(const parley__dtls *d) { return d ? d->state : PARLEY__DTLS_FAILED; }
bool parley__dtls_closed_by_peer(const parley__dtls *d) { return d && d->state == PARLEY__DTLS_CLOSED && d->peer_closed; }
const char *parley__dtls_failure_reason(const parley__dtls *d) {
  return d && d->state == PARLEY__DTLS_FAILED ? d->reason : "";
}

const char *parley__dtls_state_name(parley__dtls_state s) {
  switch (s) {
  case PARLEY__DTLS_NEW: return "new";
  case PARLEY__DTLS_CONNECTING: return "connecting";
  case PARLEY__DTLS_CONNECTED: return "connected";
  case PARLEY__DTLS_CLOSED: return "closed";
  case PARLEY__DTLS_FAILED: return "failed";
  }
  return "unknown";
}

int parley__dtls_srtp_keys(const parley__dtls *d, parley__srtp_suite *suite, uint8_t *local_key_salt,
                           uint8_t *remote_key_salt, size_t *key_salt_len) {
  if (!d || !suite || !local_key_salt || !remote_key_salt || !key_salt_len) return PARLEY_EINVAL;
  if (d->state != PARLEY__DTLS_CONNECTED) return PARLEY_ESTATE;
  const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
  size_t klen = 16, slen;
  if (p && p->id == SRTP_AEAD_AES_128_GCM) {
    *suite = PARLEY__SRTP_AEAD_AES_128_GCM;
    slen = 12;
  } else if (p && p->id == SRTP_AES128_CM_SHA1_80) {
    *suite = PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80;
    slen = 14;
  } else {
    return PARLEY_ENOTSUP;
  }
  /* RFC 5764 4.2: client_write_key | server_write_key | client_write_salt | server_write_salt. */
  uint8_t km[2 * (16 + 14)];
  static const char label[] = "EXTRACTOR-dtls_srtp";
  if (SSL_export_keying_material(d->ssl, km, 2 * (klen + slen), label, sizeof label - 1, NULL, 0, 0) != 1) {
    ERR_clear_error();
    return PARLEY_ECRYPTO;
  }
  bool client = d->cfg.role == PARLEY__DTLS_CLIENT;
  uint8_t *cli = client ? local_key_salt : remote_key_salt, *srv = client ? remote_key_salt : local_key_salt;
  memcpy(cli, km, klen);
  memcpy(cli + klen, km + 2 * klen, slen);
  memcpy(srv, km + klen, klen);
  memcpy(srv + klen, km + 2 * klen + slen, slen);
  OPENSSL_cleanse(km, sizeof km);
  *key_salt_len = klen + slen;
  return 0;
}
