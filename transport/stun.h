/* stun.h: STUN messages (RFC 8489) with the ICE attributes of RFC 8445: decode, verify, build.
 *
 * Scope: the Binding method in its request, indication, success and error classes; short-term
 * credentials (MESSAGE-INTEGRITY keyed with the ICE password as given, no SASLprep); FINGERPRINT.
 * Long-term credentials are not built, but USERNAME/REALM/NONCE are decoded and any key can be checked.
 *
 * Threads and real-time: every function works on caller-owned memory only, keeps no state and never
 * allocates, locks or logs, so any thread may call them (one thread per message/builder at a time).
 * parley__stun_new_txid() calls RAND_bytes (may read the kernel's entropy pool): not for the audio path.
 *
 * Addresses are struct sockaddr_storage holding a sockaddr_in (AF_INET) or sockaddr_in6 (AF_INET6),
 * port and address in network byte order as usual, so they can be handed to sendto() directly.
 */
#ifndef PARLEY_TRANSPORT_STUN_H
#define PARLEY_TRANSPORT_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PARLEY__STUN_HEADER_BYTES 20
#define PARLEY__STUN_MAGIC_COOKIE 0x2112A442u
#define PARLEY__STUN_TXID_BYTES 12
#define PARLEY__STUN_FINGERPRINT_XOR 0x5354554Eu
#define PARLEY__STUN_HMAC_BYTES 20
/* Largest message decoded or integrity-checked. STUN for ICE runs over UDP below the path MTU; the
 * limit lets integrity checks work in a fixed stack buffer. Longer datagrams get PARLEY_ENOTSUP. */
#define PARLEY__STUN_MAX_MSG_BYTES 2048
/* How many unknown comprehension-required attribute types a decoded message records. */
#define PARLEY__STUN_MAX_UNKNOWN 16
/* Attribute value limits from RFC 8489 (bytes). We build USERNAME below 509 bytes and SOFTWARE/reason
 * of at most 509; we decode any of them up to 763 (the RFC 5389 compatibility limit). */
#define PARLEY__STUN_USERNAME_MAX 508
#define PARLEY__STUN_TEXT_ENCODE_MAX 509
#define PARLEY__STUN_TEXT_MAX 763 /* decoding: USERNAME, SOFTWARE, REALM, NONCE, ERROR-CODE reason */

/* Message classes (the C1C0 bits). */
typedef enum parley__stun_class {
  PARLEY__STUN_REQUEST = 0,
  PARLEY__STUN_INDICATION = 1,
  PARLEY__STUN_SUCCESS = 2,
  PARLEY__STUN_ERROR = 3,
} parley__stun_class;

#define PARLEY__STUN_METHOD_BINDING 0x001

/* Attribute types. Below 0x8000: comprehension-required; from 0x8000: comprehension-optional. */
enum {
  PARLEY__STUN_ATTR_MAPPED_ADDRESS = 0x0001,
  PARLEY__STUN_ATTR_USERNAME = 0x0006,
  PARLEY__STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  PARLEY__STUN_ATTR_ERROR_CODE = 0x0009,
  PARLEY__STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
  PARLEY__STUN_ATTR_REALM = 0x0014,
  PARLEY__STUN_ATTR_NONCE = 0x0015,
  PARLEY__STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  PARLEY__STUN_ATTR_PRIORITY = 0x0024,
  PARLEY__STUN_ATTR_USE_CANDIDATE = 0x0025,
  PARLEY__STUN_ATTR_SOFTWARE = 0x8022,
  PARLEY__STUN_ATTR_FINGERPRINT = 0x8028,
  PARLEY__STUN_ATTR_ICE_CONTROLLED = 0x8029,
  PARLEY__STUN_ATTR_ICE_CONTROLLING = 0x802A,
};

/* Error codes used by ICE (RFC 8489 section 14.8, RFC 8445 section 7.3.1.1). */
enum {
  PARLEY__STUN_ERR_BAD_REQUEST = 400,
  PARLEY__STUN_ERR_UNAUTHORIZED = 401,
  PARLEY__STUN_ERR_UNKNOWN_ATTRIBUTE = 420,
  PARLEY__STUN_ERR_ROLE_CONFLICT = 487,
  PARLEY__STUN_ERR_SERVER_ERROR = 500,
};

/* parley__stun_msg.present: which attributes a decoded message carried (or a message to encode
 * should carry). */
enum {
  PARLEY__STUN_HAS_USERNAME = 1u << 0,
  PARLEY__STUN_HAS_MESSAGE_INTEGRITY = 1u << 1,
  PARLEY__STUN_HAS_FINGERPRINT = 1u << 2,
  PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS = 1u << 3,
  PARLEY__STUN_HAS_MAPPED_ADDRESS = 1u << 4,
  PARLEY__STUN_HAS_PRIORITY = 1u << 5,
  PARLEY__STUN_HAS_USE_CANDIDATE = 1u << 6,
  PARLEY__STUN_HAS_ICE_CONTROLLING = 1u << 7,
  PARLEY__STUN_HAS_ICE_CONTROLLED = 1u << 8,
  PARLEY__STUN_HAS_ERROR_CODE = 1u << 9,
  PARLEY__STUN_HAS_UNKNOWN_ATTRIBUTES = 1u << 10,
  PARLEY__STUN_HAS_SOFTWARE = 1u << 11,
  PARLEY__STUN_HAS_REALM = 1u << 12,
  PARLEY__STUN_HAS_NONCE = 1u << 13,
};

/* A STUN message. Decoding fills it with pointers BORROWED from the datagram (valid while the
 * datagram is); strings are not NUL-terminated, use the _len fields. For encoding the caller fills it
 * with pointers to its own data (borrowed for the duration of the call). */
typedef struct parley__stun_msg {
  uint16_t method;          /* 12 bits, PARLEY__STUN_METHOD_BINDING */
  parley__stun_class cls;
  uint8_t txid[PARLEY__STUN_TXID_BYTES];
  uint32_t present;         /* PARLEY__STUN_HAS_* */

  const char *username;
  size_t username_len;
  const char *software;
  size_t software_len;
  const char *realm;        /* decoded only */
  size_t realm_len;
  const char *nonce;        /* decoded only */
  size_t nonce_len;

  struct sockaddr_storage xor_mapped;  /* XOR-MAPPED-ADDRESS, already un-XORed */
  struct sockaddr_storage mapped;      /* MAPPED-ADDRESS (decoded only; legacy servers) */

  uint32_t priority;
  uint64_t ice_controlling; /* tie-breaker */
  uint64_t ice_controlled;  /* tie-breaker */

  int error_code;           /* 300..699, e.g. 487 */
  const char *error_reason; /* NULL on encode: a standard phrase is used */
  size_t error_reason_len;

  /* UNKNOWN-ATTRIBUTES carried by (decode) or to put in (encode) a 420 response. */
  uint16_t unknown_attrs[PARLEY__STUN_MAX_UNKNOWN];
  size_t unknown_attr_count;

  /* Decode only: comprehension-required attributes this message carried that we do not know (before
   * MESSAGE-INTEGRITY). A request with any gets a 420 listing them. unknown_required_count is capped
   * at PARLEY__STUN_MAX_UNKNOWN. */
  uint16_t unknown_required[PARLEY__STUN_MAX_UNKNOWN];
  size_t unknown_required_count;

  /* Decode only: byte offset of the MESSAGE-INTEGRITY attribute header, its HMAC (borrowed), and of
   * the FINGERPRINT attribute header. Used by parley__stun_check_integrity(). */
  size_t integrity_offset;
  const uint8_t *integrity;
  size_t fingerprint_offset;
} parley__stun_msg;

/* Cheap demultiplexing test (RFC 7983 style): could these bytes be a STUN message? Checks size, the
 * two zero top bits, the magic cookie and the length field; does not walk attributes. */
bool parley__stun_is_message(const uint8_t *pkt, size_t len);

/* Decode and validate one datagram into msg (zeroed first). Validates the header (top two bits zero,
 * magic cookie, length a multiple of 4 equal to the datagram's), every attribute length and padding,
 * the value of every attribute this module knows, and the FINGERPRINT when present. Attributes after
 * MESSAGE-INTEGRITY other than FINGERPRINT are ignored; nothing may follow FINGERPRINT.
 * Unknown comprehension-required attributes are recorded in msg->unknown_required, not an error.
 * Returns 0; PARLEY_EINVAL (NULL arguments); PARLEY_EPARSE (malformed, or FINGERPRINT mismatch: the
 * datagram is not valid STUN); PARLEY_ENOTSUP (longer than PARLEY__STUN_MAX_MSG_BYTES). */
int parley__stun_decode(parley__stun_msg *msg, const uint8_t *pkt, size_t len);

/* Check MESSAGE-INTEGRITY (HMAC-SHA1) of a datagram already decoded into msg, with key (borrowed;
 * for short-term credentials the password bytes). Constant-time comparison.
 * Returns 0 when it matches; PARLEY_ENOTFOUND (no MESSAGE-INTEGRITY); PARLEY_EAUTH (mismatch);
 * PARLEY_EINVAL; PARLEY_ECRYPTO (libcrypto failed). */
int parley__stun_check_integrity(const parley__stun_msg *msg, const uint8_t *pkt, size_t len,
                                 const uint8_t *key, size_t key_len);

/* The value of the first attribute of type in a datagram parley__stun_decode() accepted, among those
 * before MESSAGE-INTEGRITY (borrowed). For attributes this module does not decode itself (TURN's).
 * Returns 0, PARLEY_ENOTFOUND, PARLEY_EPARSE or PARLEY_EINVAL. */
int parley__stun_find_attr(const uint8_t *pkt, size_t len, uint16_t type, const uint8_t **value, size_t *vlen);
/* An XOR-encoded address attribute value (found with parley__stun_find_attr in pkt) into *out.
 * Returns 0, PARLEY_EPARSE or PARLEY_EINVAL. */
int parley__stun_decode_xor_attr(const uint8_t *pkt, const uint8_t *value, size_t vlen,
                                 struct sockaddr_storage *out);

/* A fresh random transaction id from RAND_bytes. 0 or PARLEY_ECRYPTO. Not real-time safe. */
int parley__stun_new_txid(uint8_t txid[PARLEY__STUN_TXID_BYTES]);

/* The standard reason phrase for an error code ("Role Conflict"); never NULL. */
const char *parley__stun_reason_phrase(int error_code);

/* Incremental builder writing into a caller buffer. After every successful call the buffer holds a
 * complete message of b->len bytes (the header length is kept current). Errors are sticky: after one
 * failure every later call returns the same error. Attributes may not follow MESSAGE-INTEGRITY
 * (except FINGERPRINT) or FINGERPRINT: PARLEY_ESTATE. Out of room: PARLEY_ENOSPC. */
typedef struct parley__stun_builder {
  uint8_t *buf; /* borrowed */
  size_t cap;
  size_t len;
  int err;
  bool sealed_integrity;
  bool sealed_fingerprint;
} parley__stun_builder;

int parley__stun_build_begin(parley__stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                             parley__stun_class cls, const uint8_t txid[PARLEY__STUN_TXID_BYTES]);
/* A raw attribute: value copied, padded with zero bytes to 4. */
int parley__stun_build_attr(parley__stun_builder *b, uint16_t type, const void *value, size_t len);
int parley__stun_build_username(parley__stun_builder *b, const char *username, size_t len);
int parley__stun_build_software(parley__stun_builder *b, const char *software, size_t len);
/* XOR-MAPPED-ADDRESS from an AF_INET or AF_INET6 sockaddr (PARLEY_EINVAL otherwise). */
int parley__stun_build_xor_address(parley__stun_builder *b, const struct sockaddr_storage *addr);
/* The same encoding under another type (TURN's XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS). */
int parley__stun_build_xor_attr(parley__stun_builder *b, uint16_t type, const struct sockaddr_storage *addr);
int parley__stun_build_u32(parley__stun_builder *b, uint16_t type, uint32_t value); /* PRIORITY */
int parley__stun_build_u64(parley__stun_builder *b, uint16_t type, uint64_t value); /* ICE-CONTROLL* */
/* ERROR-CODE: code 300..699; reason NULL for the standard phrase. */
int parley__stun_build_error(parley__stun_builder *b, int code, const char *reason, size_t reason_len);
int parley__stun_build_unknown(parley__stun_builder *b, const uint16_t *types, size_t count);
/* MESSAGE-INTEGRITY over everything so far, keyed with key (borrowed). PARLEY_EINVAL when the message
 * so far exceeds PARLEY__STUN_MAX_MSG_BYTES. */
int parley__stun_build_integrity(parley__stun_builder *b, const uint8_t *key, size_t key_len);
int parley__stun_build_fingerprint(parley__stun_builder *b);

/* Encode msg in one go: the attributes flagged in msg->present (the decode-only ones are ignored), in
 * the order SOFTWARE, ERROR-CODE, UNKNOWN-ATTRIBUTES, XOR-MAPPED-ADDRESS, PRIORITY, USE-CANDIDATE,
 * ICE-CONTROLLING, ICE-CONTROLLED, USERNAME (the RFC 5769 order); then MESSAGE-INTEGRITY when key is not NULL, then
 * FINGERPRINT when with_fingerprint. Returns the message length in bytes, or a negative PARLEY_E*
 * (PARLEY_ENOSPC when cap is too small, PARLEY_EINVAL for bad fields). */
int parley__stun_encode(const parley__stun_msg *msg, const uint8_t *key, size_t key_len,
                        bool with_fingerprint, uint8_t *buf, size_t cap);

#endif
