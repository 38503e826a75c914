/* tls_stream.c: TLS client streams on OpenSSL over the caller's non-blocking socket (see tls_stream.h).
 * Owns: per context an SSL_CTX (trust anchors, peer verification, TLS 1.2 at least), shared by
 * reference; per stream its SSL on the socket (a socket BIO that does not close the fd). OpenSSL's
 * error queue is per thread: every call starts it empty and leaves it empty. One thread at a time per
 * stream; not real-time. */
#include "transport/tls_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

struct parley__tls_ctx {
  SSL_CTX *ctx;
};

struct parley__tls_stream {
  SSL *ssl;
  int failed; /* 0, or the error every call returns once the stream is over */
  char error[PARLEY__TLS_ERROR_MAX];
};

static int ssl_failure(void) {
  int e = PARLEY_ECRYPTO;
  for (unsigned long code; (code = ERR_get_error()) != 0;)
    if (ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE) e = PARLEY_ENOMEM;
  return e;
}

parley__tls_ctx *parley__tls_ctx_new(const char *ca_file, int *err) {
  int dummy;
  if (!err) err = &dummy;
  ERR_clear_error();
  parley__tls_ctx *t = calloc(1, sizeof *t);
  if (!t) {
    *err = PARLEY_ENOMEM;
    return NULL;
  }
  t->ctx = SSL_CTX_new(TLS_client_method());
  if (!t->ctx || SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
    *err = ssl_failure();
    parley__tls_ctx_free(t);
    return NULL;
  }
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  /* Partial writes and a moving buffer: the caller's write buffer shifts as the kernel takes bytes. */
  SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(t->ctx);
  /* A file that loads but holds no certificate (a key, an empty file) would make every server fail. */
  if (ok == 1 && ca_file) ok = sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(t->ctx))) > 0;
  if (ok != 1) {
    ERR_clear_error();
    *err = ca_file ? PARLEY_EPARSE : PARLEY_ECRYPTO;
    parley__tls_ctx_free(t);
    return NULL;
  }
  return t;
}

void parley__tls_ctx_free(parley__tls_ctx *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

parley__tls_stream *parley__tls_stream_new(parley__tls_ctx *ctx, int fd, const char *host, int *err) {
  int dummy;
  if (!err) err = &dummy;
  if (!ctx || fd < 0 || !host || !host[0]) {
    *err = PARLEY_EINVAL;
    return NULL;
  }
  ERR_clear_error();
  parley__tls_stream *s = calloc(1, sizeof *s);
  if (!s) {
    *err = PARLEY_ENOMEM;
    return NULL;
  }
  s->ssl = SSL_new(ctx->ctx);
  unsigned char ip[16];
  bool literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
  /* A literal is matched against the certificate's IP addresses; a name against its DNS names, and
   * sent as SNI (RFC 6066 allows no literal there). */
  if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1 ||
      (literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host) != 1
               : SSL_set1_host(s->ssl, host) != 1 || SSL_set_tlsext_host_name(s->ssl, host) != 1)) {
    *err = ssl_failure();
    parley__tls_stream_free(s);
    return NULL;
  }
  SSL_set_connect_state(s->ssl);
  return s;
}

void parley__tls_stream_free(parley__tls_stream *s) {
  if (!s) return;
  if (s->ssl && !s->failed && SSL_is_init_finished(s->ssl)) (void)SSL_shutdown(s->ssl);
  ERR_clear_error();
  SSL_free(s->ssl);
  free(s);
}

/* After SSL_read/SSL_write returned r <= 0: PARLEY_EAGAIN, or the stream is over and why. */
static int settle_error(parley__tls_stream *s, int r) {
  int se = SSL_get_error(s->ssl, r), sys = errno;
  if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return PARLEY_EAGAIN;
  }
  long v = SSL_get_verify_result(s->ssl);
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK) {
    s->failed = PARLEY_EAUTH;
    snprintf(s->error, sizeof s->error, "certificate verify failed: %s", X509_verify_cert_error_string(v));
  } else if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && e == 0)) {
    s->failed = PARLEY_ENETWORK;
    snprintf(s->error, sizeof s->error, "connection %s", r == 0 || sys == 0 ? "closed by the server" : strerror(sys));
  } else {
    s->failed = PARLEY_ECRYPTO;
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(s->error, sizeof s->error, "TLS failed: %s", why ? why : "unknown error");
  }
  ERR_clear_error();
  return s->failed;
}

int parley__tls_stream_read(parley__tls_stream *s, uint8_t *buf, size_t cap) {
  if (!s || !buf || cap == 0) return PARLEY_EINVAL;
  if (s->failed) return s->failed;
  ERR_clear_error();
  errno = 0;
  int r = SSL_read(s->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
  return r > 0 ? r : settle_error(s, r);
}

int parley__tls_stream_write(parley__tls_stream *s, const uint8_t *buf, size_t len) {
  if (!s || (!buf && len)) return PARLEY_EINVAL;
  if (s->failed) return s->failed;
  if (len == 0) return 0;
  ERR_clear_error();
  errno = 0;
  int r = SSL_write(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (r > 0) return r;
  r = settle_error(s, r);
  return r == PARLEY_EAGAIN ? 0 : r;
}

const char *parley__tls_stream_error(const parley__tls_stream *s) { return s ? s->error : ""; }
