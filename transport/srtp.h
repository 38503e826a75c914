/* srtp.h: SRTP/SRTCP sessions over libsrtp2 (one session per direction), key generation, and the SDES
 * a=crypto attribute value (RFC 4568) for AES_CM_128_HMAC_SHA1_80 (RFC 4568/3711, the default) and
 * AEAD_AES_128_GCM (RFC 7714).
 *
 * Threads: a session belongs to one thread (the network thread that sends, or the one that receives);
 * libsrtp session state is not thread-safe and neither are the stats. Creating and freeing sessions is
 * safe from any thread (library initialisation runs once, guarded by pthread_once). The key/attribute
 * helpers are stateless and any-thread.
 *
 * Real-time: protect/unprotect do not allocate for a known SSRC, but libsrtp allocates a stream the first
 * time it meets a new SSRC, and new/free allocate: keep all of it off the audio thread.
 *
 * Key material: keys are copied into libsrtp (which zeroes its copies when the session is freed); every
 * temporary copy here is wiped with OPENSSL_cleanse. parley__sdes_crypto holds a key: wipe it with
 * parley__sdes_crypto_wipe when done.
 */
#ifndef PARLEY_TRANSPORT_SRTP_H
#define PARLEY_TRANSPORT_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum parley__srtp_suite {
  PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80 = 0, /* 16-byte key + 14-byte salt; 10-byte RTP tag */
  PARLEY__SRTP_AEAD_AES_128_GCM = 1,        /* 16-byte key + 12-byte salt; 16-byte tag */
} parley__srtp_suite;

typedef enum parley__srtp_direction {
  PARLEY__SRTP_OUTBOUND = 0, /* protect only */
  PARLEY__SRTP_INBOUND = 1,  /* unprotect only */
} parley__srtp_direction;

/* Longest master key || salt of the supported suites. */
#define PARLEY__SRTP_MAX_KEY_SALT_LEN 30
/* Free bytes protect needs after the packet (libsrtp's SRTP_MAX_TRAILER_LEN, +4 for the SRTCP index). */
#define PARLEY__SRTP_RTP_TRAILER_ROOM 144
#define PARLEY__SRTP_RTCP_TRAILER_ROOM 148

/* key||salt length of a suite: 30 (AES_CM) or 28 (GCM); 0 for an unknown value. */
size_t parley__srtp_key_salt_len(parley__srtp_suite suite);
/* RFC 4568 / 7714 suite name ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"); NULL when unknown. */
const char *parley__srtp_suite_name(parley__srtp_suite suite);
/* Suite from a name of len bytes (exact, case-sensitive). 0, or PARLEY_ENOTSUP. */
int parley__srtp_suite_from_name(const char *name, size_t len, parley__srtp_suite *out);

/* Fills out with a fresh key||salt for suite from the OpenSSL CSPRNG (RAND_bytes). Returns the length
 * written, PARLEY_ENOSPC when cap is short, PARLEY_EINVAL for an unknown suite, PARLEY_ECRYPTO when the
 * generator fails. */
int parley__srtp_generate_key(parley__srtp_suite suite, uint8_t *out, size_t cap);

/* Initialises libsrtp once per process (pthread_once); later calls return the first result. Called by
 * parley__srtp_new; exposed for callers that want the failure early. 0 or PARLEY_ECRYPTO. Any thread. */
int parley__srtp_library_init(void);

/* Drop and success counters of one session. */
typedef struct parley__srtp_stats {
  uint64_t rtp_packets;    /* RTP packets protected / unprotected successfully */
  uint64_t rtcp_packets;   /* RTCP packets protected / unprotected successfully */
  uint64_t replay_dropped; /* rejected as replays (libsrtp replay_fail / replay_old): PARLEY_EREPLAY */
  uint64_t auth_dropped;   /* rejected by authentication (forged, corrupted, wrong key): PARLEY_EAUTH */
  uint64_t other_dropped;  /* any other failure: malformed, too short, no room, libsrtp errors */
} parley__srtp_stats;

typedef struct parley__srtp parley__srtp;

/* A session for one direction, keyed with key_salt (copied; the caller may wipe its copy at once) of
 * exactly parley__srtp_key_salt_len(suite) bytes. Matches every SSRC of that direction. Returns NULL and
 * sets *err (may be NULL): PARLEY_EINVAL (bad suite/direction/key length), PARLEY_ENOMEM,
 * PARLEY_ECRYPTO (libsrtp refused). Any thread. */
parley__srtp *parley__srtp_new(parley__srtp_suite suite, parley__srtp_direction dir, const uint8_t *key_salt,
                               size_t key_salt_len, int *err);
/* Frees the session; libsrtp wipes its keys. NULL is ignored. The owning thread (or after it stopped). */
void parley__srtp_free(parley__srtp *s);

/* Outbound sessions. Encrypts and authenticates the packet of len bytes in place in buf (capacity cap,
 * which must be >= len + PARLEY__SRTP_RTP_TRAILER_ROOM, or RTCP_TRAILER_ROOM for RTCP). Returns the new
 * length, or: PARLEY_ENOSPC (no room), PARLEY_EPARSE (not an RTP / RTCP packet), PARLEY_ESTATE (inbound
 * session), PARLEY_EREPLAY (RTP sequence number already protected), PARLEY_ECRYPTO. On failure buf's
 * contents are unspecified. */
int parley__srtp_protect_rtp(parley__srtp *s, uint8_t *buf, size_t len, size_t cap);
int parley__srtp_protect_rtcp(parley__srtp *s, uint8_t *buf, size_t len, size_t cap);

/* Inbound sessions. Authenticates, checks replay and decrypts in place. Returns the plain length, or
 * PARLEY_EREPLAY (replayed or too old: counted in replay_dropped), PARLEY_EAUTH (authentication failed:
 * counted in auth_dropped), PARLEY_EPARSE (malformed), PARLEY_ESTATE (outbound session),
 * PARLEY_ECRYPTO. A rejected packet must be dropped. */
int parley__srtp_unprotect_rtp(parley__srtp *s, uint8_t *buf, size_t len);
int parley__srtp_unprotect_rtcp(parley__srtp *s, uint8_t *buf, size_t len);

/* Copies the session's counters. Owning thread. */
void parley__srtp_get_stats(const parley__srtp *s, parley__srtp_stats *out);

/* ---- SDES a=crypto (RFC 4568 section 9.1) ---- */

/* One crypto attribute with a single inline key. MKI is not supported (parse rejects it). */
typedef struct parley__sdes_crypto {
  uint32_t tag; /* 1..999999999 digits */
  parley__srtp_suite suite;
  uint8_t key_salt[PARLEY__SRTP_MAX_KEY_SALT_LEN];
  size_t key_salt_len; /* must equal parley__srtp_key_salt_len(suite) */
  bool has_lifetime;
  uint64_t lifetime; /* packets, 1..2^48; written as "2^N" when a power of two */
} parley__sdes_crypto;

/* Writes the attribute value, e.g. "1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>|2^31", NUL
 * terminated, into out. Returns its length (without the NUL), PARLEY_ENOSPC, or PARLEY_EINVAL. */
int parley__sdes_crypto_format(const parley__sdes_crypto *c, char *out, size_t cap);

/* Parses an attribute value of len bytes ("a=crypto:" prefix and trailing CR/LF/spaces tolerated):
 * "tag SP suite SP inline:key||salt[|lifetime]". Returns 0; PARLEY_EPARSE when malformed (bad tag,
 * base64, key length for the suite, lifetime); PARLEY_ENOTSUP for an unknown suite, an MKI, several
 * keys (';') or session parameters. On failure *out holds no key material. */
int parley__sdes_crypto_parse(const char *value, size_t len, parley__sdes_crypto *out);

/* Wipes the key in c (OPENSSL_cleanse). */
void parley__sdes_crypto_wipe(parley__sdes_crypto *c);

#endif
