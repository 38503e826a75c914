/* tls_stream.h: a TLS client (OpenSSL, TLS 1.2 or later) over a non-blocking stream socket the caller
 * opened and keeps, for TURN over TLS (RFC 8656 3.1, "turns:" URLs of RFC 7065). The handshake runs
 * inside read and write, so the owner only has to call them when its socket may have moved (readable,
 * or on its service tick while it has bytes to send): nothing here blocks or waits.
 *
 * The server is verified: its chain against a context's trust anchors (a CA file the app gives, or the
 * system's store), and its name against the host the URL named (a DNS name, also sent as SNI, or an IP
 * address literal matched against the certificate's IP addresses). A failed verification ends the
 * stream with PARLEY_EAUTH and a reason (parley__tls_stream_error).
 *
 * Threads: a context is immutable once made and may be shared by streams on any thread; a stream
 * belongs to one thread at a time (the network thread, or an app thread under the engine lock). Not
 * real-time code: the handshake allocates and does public-key crypto.
 */
#ifndef PARLEY_TRANSPORT_TLS_STREAM_H
#define PARLEY_TRANSPORT_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__tls_ctx parley__tls_ctx;
typedef struct parley__tls_stream parley__tls_stream;

#define PARLEY__TLS_ERROR_MAX 160

/* Trust anchors: the PEM certificates in ca_file (read now, not kept), or with NULL the system's store
 * (OpenSSL's default paths). NULL with *err: PARLEY_EPARSE (ca_file unreadable or without a single
 * certificate), PARLEY_ECRYPTO, PARLEY_ENOMEM. */
parley__tls_ctx *parley__tls_ctx_new(const char *ca_file, int *err);
void parley__tls_ctx_free(parley__tls_ctx *ctx); /* NULL is ignored; streams made from it keep it alive */

/* A client on fd (connected or still connecting, non-blocking; the caller closes it after freeing the
 * stream) that will verify the server as host (a name or an IP address; not kept). NULL with *err:
 * PARLEY_EINVAL (NULL argument, empty host), PARLEY_ENOMEM, PARLEY_ECRYPTO. */
parley__tls_stream *parley__tls_stream_new(parley__tls_ctx *ctx, int fd, const char *host, int *err);

/* Sends a close_notify if the handshake finished (best effort, never waits), and frees. NULL ignored. */
void parley__tls_stream_free(parley__tls_stream *s);

/* Up to cap bytes of the server's plaintext into buf, moving the handshake first. Returns the count
 * (> 0), PARLEY_EAGAIN (nothing now), or once the stream is over (every later call says the same):
 * PARLEY_EAUTH (the server's certificate or name did not verify), PARLEY_ENETWORK (the connection was
 * closed, refused or reset), PARLEY_ECRYPTO (any other TLS failure), PARLEY_EINVAL. */
int parley__tls_stream_read(parley__tls_stream *s, uint8_t *buf, size_t cap);

/* Encrypts and sends up to len bytes of buf: returns how many were taken (0 while the handshake or the
 * kernel's buffer holds them back; offer the same bytes again later, buf may move), or an error as
 * for read. */
int parley__tls_stream_write(parley__tls_stream *s, const uint8_t *buf, size_t len);

/* Why the stream ended ("certificate verify failed: ..."), "" while it has not. */
const char *parley__tls_stream_error(const parley__tls_stream *s);

#endif
