/* dtls.h: DTLS-SRTP (RFC 5763, 5764, 8827) as a sans-IO DTLS 1.2 session on OpenSSL: the owner feeds it
 * the datagrams the demux classed as DTLS (RFC 7983: first byte 20..63) and the time; it hands back
 * datagrams to send through a callback, reports the W3C RTCDtlsTransportState, and once connected the
 * negotiated SRTP suite and the keys for our outbound and inbound parley__srtp sessions.
 *
 * Identity: a parley__dtls_cert is a self-signed ECDSA P-256 certificate (or one the app supplies as PEM)
 * with its sha-256 fingerprint for a=fingerprint. The peer's certificate is accepted only if its digest
 * matches the fingerprint from the peer's SDP (checked in OpenSSL's verify step; a mismatch fails the
 * handshake with a bad_certificate alert and a reason).
 *
 * Time is injected: the retransmission timer runs on OpenSSL's DTLS timer with durations we choose
 * (DTLS_set_timer_cb), and parley__dtls_next_deadline_us mirrors it on the caller's clock, so the owner
 * wakes and calls parley__dtls_tick then; the handshake deadline is ours alone. OpenSSL still compares
 * its timer with gettimeofday(): in real time the two clocks agree; a test that runs faster than real
 * time must make gettimeofday() return its simulated clock (see tests/test_dtls.c).
 *
 * Threads: a session belongs to one thread at a time (the network thread, or an app thread under the
 * engine lock). Certificates are immutable after creation and may be shared by sessions on any thread.
 * Not real-time code: handshakes allocate and do public-key crypto. Key material is never logged; the
 * key buffers handed out are the caller's to wipe (OPENSSL_cleanse).
 */
#ifndef PARLEY_TRANSPORT_DTLS_H
#define PARLEY_TRANSPORT_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/srtp.h"

/* ---- certificates ---- */

typedef struct parley__dtls_cert parley__dtls_cert;

/* "sha-256 " + 32 hex pairs joined by ':' + NUL fits. */
#define PARLEY__DTLS_FINGERPRINT_MAX 200

/* A certificate and its private key. cert_pem and key_pem NULL: a fresh self-signed ECDSA P-256
 * certificate (CN=parley, valid from a day ago for 30 days). Otherwise both PEM texts (NUL terminated,
 * borrowed) are parsed and must match. NULL with *err: PARLEY_EINVAL (one PEM without the other),
 * PARLEY_EPARSE (unreadable PEM, or key and certificate do not match), PARLEY_ECRYPTO, PARLEY_ENOMEM. */
parley__dtls_cert *parley__dtls_cert_new(const char *cert_pem, const char *key_pem, int *err);
void parley__dtls_cert_free(parley__dtls_cert *c); /* NULL ignored */
/* "AB:CD:..." (uppercase hex, RFC 8122) of the certificate's sha-256 digest, without the algorithm. */
const char *parley__dtls_cert_fingerprint(const parley__dtls_cert *c);

/* A peer fingerprint from an SDP a=fingerprint value "<hash-func> <hex:hex:...>". The algorithm is
 * one of sha-1, sha-224, sha-256, sha-384, sha-512 (case-insensitive, RFC 8122 names). */
typedef struct parley__dtls_fingerprint {
  char alg[16];        /* lowercase, e.g. "sha-256" */
  uint8_t digest[64];
  size_t digest_len;
} parley__dtls_fingerprint;

/* Parses a value of len bytes ("a=fingerprint:" prefix and trailing blanks tolerated). 0; PARLEY_ENOTSUP
 * for another hash function (md5, md2, ...); PARLEY_EPARSE for malformed hex or a digest length that
 * does not fit the algorithm; PARLEY_EINVAL for NULL. */
int parley__dtls_fingerprint_parse(const char *value, size_t len, parley__dtls_fingerprint *out);

/* ---- sessions ---- */

typedef enum parley__dtls_state { /* W3C RTCDtlsTransportState */
  PARLEY__DTLS_NEW = 0,  /* created, not started */
  PARLEY__DTLS_CONNECTING,
  PARLEY__DTLS_CONNECTED, /* keys available */
  PARLEY__DTLS_CLOSED,    /* close_notify sent or received */
  PARLEY__DTLS_FAILED,    /* fatal alert, refused certificate, handshake deadline: see failure reason */
} parley__dtls_state;

typedef enum parley__dtls_role {
  PARLEY__DTLS_CLIENT = 0, /* a=setup:active: sends the ClientHello */
  PARLEY__DTLS_SERVER,     /* a=setup:passive */
} parley__dtls_role;

/* One datagram to send to the peer (buf borrowed for the call). Runs inside the session's calls. */
typedef void (*parley__dtls_send_fn)(void *ctx, const uint8_t *buf, size_t len);

/* Defaults of the timers (see dtls.c for why). */
#define PARLEY__DTLS_HANDSHAKE_TIMEOUT_US 10000000 /* 10 s from start to connected */
#define PARLEY__DTLS_RTO_INITIAL_US 200000         /* first retransmission after 200 ms */
#define PARLEY__DTLS_RTO_MAX_US 1000000            /* doubling up to 1 s */
#define PARLEY__DTLS_MTU 1200                      /* datagram payload we pack records into */

typedef struct parley__dtls_config {
  parley__dtls_role role;
  const parley__dtls_cert *cert;          /* ours; borrowed, must outlive the session */
  parley__dtls_fingerprint peer;          /* what the peer's certificate must hash to (copied) */
  parley__dtls_send_fn send;
  void *ctx;
  int64_t handshake_timeout_us;           /* 0: PARLEY__DTLS_HANDSHAKE_TIMEOUT_US */
} parley__dtls_config;

typedef struct parley__dtls parley__dtls;

/* A session in state NEW. NULL with *err: PARLEY_EINVAL (no cert, no send, unknown role, empty peer
 * fingerprint), PARLEY_ENOMEM, PARLEY_ECRYPTO. */
parley__dtls *parley__dtls_new(const parley__dtls_config *cfg, int *err);
/* Frees the session (no close_notify: call parley__dtls_close first for that). NULL ignored. */
void parley__dtls_free(parley__dtls *d);

/* Starts the handshake at now_us: a client sends its ClientHello, a server waits for one. Both arm the
 * handshake deadline. 0; PARLEY_ESTATE unless NEW. */
int parley__dtls_start(parley__dtls *d, int64_t now_us);
/* One received datagram (the demux classed it as DTLS). Handshake records advance the handshake (and
 * may send); once connected, retransmitted peer flights are answered, application data is dropped, and
 * a close_notify closes the session. Returns 1 when the state changed, 0 when not, PARLEY_ESTATE when
 * not started (or already closed/failed: the datagram is ignored). */
int parley__dtls_receive(parley__dtls *d, const uint8_t *buf, size_t len, int64_t now_us);
/* When parley__dtls_tick wants to run next (retransmission or handshake deadline); INT64_MAX when
 * nothing is pending. */
int64_t parley__dtls_next_deadline_us(const parley__dtls *d);
/* Retransmits a flight whose timer expired, fails the handshake past its deadline. 1 when the state
 * changed, else 0. */
int parley__dtls_tick(parley__dtls *d, int64_t now_us);
/* Sends close_notify (if connected) and moves to CLOSED. 0; PARLEY_ESTATE if already CLOSED/FAILED. */
int parley__dtls_close(parley__dtls *d, int64_t now_us);

parley__dtls_state parley__dtls_get_state(const parley__dtls *d);
/* CLOSED because the peer sent close_notify (not because we closed). */
bool parley__dtls_closed_by_peer(const parley__dtls *d);
/* Why the session FAILED, for the app to show (e.g. "the peer's certificate does not match the
 * fingerprint in its SDP", "handshake timed out after 10 s", "peer sent fatal alert: handshake
 * failure"); "" otherwise. Never contains key material. */
const char *parley__dtls_failure_reason(const parley__dtls *d);
/* The lowercase W3C name ("new", "connecting", ...). */
const char *parley__dtls_state_name(parley__dtls_state s);

/* The SRTP keys of a connected session (RFC 5764 4.2): exported with the label "EXTRACTOR-dtls_srtp",
 * split into our write key||salt (for the outbound session) and the peer's (inbound). Each buffer holds
 * PARLEY__SRTP_MAX_KEY_SALT_LEN bytes; *key_salt_len says how many are used. Wipe both when done.
 * 0; PARLEY_ESTATE when not connected; PARLEY_ENOTSUP if the negotiated profile is unknown (cannot happen
 * with the profiles we offer); PARLEY_ECRYPTO. */
int parley__dtls_srtp_keys(const parley__dtls *d, parley__srtp_suite *suite, uint8_t *local_key_salt,
                           uint8_t *remote_key_salt, size_t *key_salt_len);

#endif
