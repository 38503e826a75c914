/* stun.c: STUN message decoding, integrity and fingerprint checks, and the builder (see stun.h).
 *
 * Owns nothing: every function works on caller memory and is stateless, so any thread may call it.
 * Nothing here allocates, locks or logs; HMAC-SHA1 comes from libcrypto's one-shot HMAC() and CRC-32
 * from zlib. The integrity check copies the covered prefix into a PARLEY__STUN_MAX_MSG_BYTES stack
 * buffer because the HMAC covers a header whose length field differs from the datagram's.
 */
#define _POSIX_C_SOURCE 200809L
#include "transport/stun.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>
#include <zlib.h>

#include "parley/parley.h"
#include "transport/wire.h"

#define ATTR_HEADER_BYTES 4
#define FINGERPRINT_ATTR_BYTES 8
#define INTEGRITY_ATTR_BYTES (ATTR_HEADER_BYTES + PARLEY__STUN_HMAC_BYTES)

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* The message type interleaves the 12 method bits M11..M0 with the class bits C1 C0:
 * M11..M7 C1 M6..M4 C0 M3..M0. */
static uint16_t make_type(uint16_t method, parley__stun_class cls) {
  unsigned m = method & 0x0FFFu, c = (unsigned)cls & 3u;
  return (uint16_t)((m & 0x000Fu) | ((m & 0x0070u) << 1) | ((m & 0x0F80u) << 2) | ((c & 1u) << 4) |
                    ((c & 2u) << 7));
}
static void split_type(uint16_t type, uint16_t *method, parley__stun_class *cls) {
  *method = (uint16_t)((type & 0x000Fu) | ((type >> 1) & 0x0070u) | ((type >> 2) & 0x0F80u));
  *cls = (parley__stun_class)(((type >> 4) & 1u) | ((type >> 7) & 2u));
}

bool parley__stun_is_message(const uint8_t *pkt, size_t len) {
  if (!pkt || len < PARLEY__STUN_HEADER_BYTES) return false;
  if ((pkt[0] & 0xC0) != 0) return false;
  if (parley__get_be32(pkt + 4) != PARLEY__STUN_MAGIC_COOKIE) return false;
  size_t body = parley__get_be16(pkt + 2);
  return (body & 3) == 0 && body + PARLEY__STUN_HEADER_BYTES == len;
}

/* The XOR pad for addresses: the magic cookie followed by the transaction id. */
static void xor_pad(const uint8_t *header, uint8_t pad[16]) {
  memcpy(pad, header + 4, 16);
}

static int decode_address(const uint8_t *v, size_t len, const uint8_t *header, bool xored,
                          struct sockaddr_storage *out) {
  if (len < 4) return PARLEY_EPARSE;
  uint8_t pad[16] = {0};
  if (xored) xor_pad(header, pad);
  uint16_t port = (uint16_t)(parley__get_be16(v + 2) ^ parley__get_be16(pad));
  memset(out, 0, sizeof *out);
  if (v[1] == 0x01) {
    if (len != 8) return PARLEY_EPARSE;
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    uint8_t ip[4];
    for (int i = 0; i < 4; i++) ip[i] = (uint8_t)(v[4 + i] ^ pad[i]);
    memcpy(&sin->sin_addr, ip, 4);
    return 0;
  }
  if (v[1] == 0x02) {
    if (len != 20) return PARLEY_EPARSE;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    uint8_t ip[16];
    for (int i = 0; i < 16; i++) ip[i] = (uint8_t)(v[4 + i] ^ pad[i]);
    memcpy(&sin6->sin6_addr, ip, 16);
    return 0;
  }
  return PARLEY_EPARSE;
}

static void record_unknown(parley__stun_msg *m, uint16_t type) {
  for (size_t i = 0; i < m->unknown_required_count; i++)
    if (m->unknown_required[i] == type) return;
  if (m->unknown_required_count < PARLEY__STUN_MAX_UNKNOWN)
    m->unknown_required[m->unknown_required_count++] = type;
}

/* One attribute before MESSAGE-INTEGRITY. Repeats of a known attribute are ignored (only the first
 * occurrence counts, RFC 8489 section 14). */
static int decode_attr(parley__stun_msg *m, uint16_t type, const uint8_t *v, size_t len,
                       const uint8_t *header) {
  switch (type) {
  case PARLEY__STUN_ATTR_USERNAME:
    if (len > PARLEY__STUN_TEXT_MAX) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_USERNAME) return 0;
    m->username = (const char *)v;
    m->username_len = len;
    m->present |= PARLEY__STUN_HAS_USERNAME;
    return 0;
  case PARLEY__STUN_ATTR_SOFTWARE:
  case PARLEY__STUN_ATTR_REALM:
  case PARLEY__STUN_ATTR_NONCE: {
    if (len > PARLEY__STUN_TEXT_MAX) return PARLEY_EPARSE;
    uint32_t flag = type == PARLEY__STUN_ATTR_SOFTWARE ? PARLEY__STUN_HAS_SOFTWARE
                    : type == PARLEY__STUN_ATTR_REALM  ? PARLEY__STUN_HAS_REALM
                                                       : PARLEY__STUN_HAS_NONCE;
    if (m->present & flag) return 0;
    m->present |= flag;
    if (flag == PARLEY__STUN_HAS_SOFTWARE) {
      m->software = (const char *)v;
      m->software_len = len;
    } else if (flag == PARLEY__STUN_HAS_REALM) {
      m->realm = (const char *)v;
      m->realm_len = len;
    } else {
      m->nonce = (const char *)v;
      m->nonce_len = len;
    }
    return 0;
  }
  case PARLEY__STUN_ATTR_XOR_MAPPED_ADDRESS:
  case PARLEY__STUN_ATTR_MAPPED_ADDRESS: {
    bool xored = type == PARLEY__STUN_ATTR_XOR_MAPPED_ADDRESS;
    uint32_t flag = xored ? PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS : PARLEY__STUN_HAS_MAPPED_ADDRESS;
    struct sockaddr_storage tmp;
    int rc = decode_address(v, len, header, xored, &tmp);
    if (rc < 0) return rc;
    if (m->present & flag) return 0;
    m->present |= flag;
    if (xored)
      m->xor_mapped = tmp;
    else
      m->mapped = tmp;
    return 0;
  }
  case PARLEY__STUN_ATTR_PRIORITY:
    if (len != 4) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_PRIORITY) return 0;
    m->priority = parley__get_be32(v);
    m->present |= PARLEY__STUN_HAS_PRIORITY;
    return 0;
  case PARLEY__STUN_ATTR_USE_CANDIDATE:
    if (len != 0) return PARLEY_EPARSE;
    m->present |= PARLEY__STUN_HAS_USE_CANDIDATE;
    return 0;
  case PARLEY__STUN_ATTR_ICE_CONTROLLING:
    if (len != 8) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_ICE_CONTROLLING) return 0;
    m->ice_controlling = parley__get_be64(v);
    m->present |= PARLEY__STUN_HAS_ICE_CONTROLLING;
    return 0;
  case PARLEY__STUN_ATTR_ICE_CONTROLLED:
    if (len != 8) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_ICE_CONTROLLED) return 0;
    m->ice_controlled = parley__get_be64(v);
    m->present |= PARLEY__STUN_HAS_ICE_CONTROLLED;
    return 0;
  case PARLEY__STUN_ATTR_ERROR_CODE: {
    if (len < 4 || len > 4 + PARLEY__STUN_TEXT_MAX) return PARLEY_EPARSE;
    unsigned cls = v[2] & 0x07u, number = v[3];
    if (cls < 3 || cls > 6 || number > 99) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_ERROR_CODE) return 0;
    m->error_code = (int)(cls * 100 + number);
    m->error_reason = (const char *)v + 4;
    m->error_reason_len = len - 4;
    m->present |= PARLEY__STUN_HAS_ERROR_CODE;
    return 0;
  }
  case PARLEY__STUN_ATTR_UNKNOWN_ATTRIBUTES:
    if (len % 2 != 0) return PARLEY_EPARSE;
    if (m->present & PARLEY__STUN_HAS_UNKNOWN_ATTRIBUTES) return 0;
    m->present |= PARLEY__STUN_HAS_UNKNOWN_ATTRIBUTES;
    for (size_t i = 0; i + 1 < len && m->unknown_attr_count < PARLEY__STUN_MAX_UNKNOWN; i += 2)
      m->unknown_attrs[m->unknown_attr_count++] = parley__get_be16(v + i);
    return 0;
  default:
    if (type < 0x8000) record_unknown(m, type);
    return 0;
  }
}

static uint32_t fingerprint_of(const uint8_t *pkt, size_t covered) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, pkt, (uInt)covered);
  return (uint32_t)crc ^ PARLEY__STUN_FINGERPRINT_XOR;
}

int parley__stun_decode(parley__stun_msg *msg, const uint8_t *pkt, size_t len) {
  if (!msg || !pkt) return PARLEY_EINVAL;
  memset(msg, 0, sizeof *msg);
  if (len > PARLEY__STUN_MAX_MSG_BYTES) return PARLEY_ENOTSUP;
  if (!parley__stun_is_message(pkt, len)) return PARLEY_EPARSE;
  split_type(parley__get_be16(pkt), &msg->method, &msg->cls);
  memcpy(msg->txid, pkt + 8, PARLEY__STUN_TXID_BYTES);

  size_t off = PARLEY__STUN_HEADER_BYTES;
  bool after_integrity = false;
  while (off < len) {
    if (len - off < ATTR_HEADER_BYTES) return PARLEY_EPARSE;
    uint16_t type = parley__get_be16(pkt + off);
    size_t vlen = parley__get_be16(pkt + off + 2);
    size_t room = len - off - ATTR_HEADER_BYTES;
    if (vlen > room || pad4(vlen) > room) return PARLEY_EPARSE;
    const uint8_t *v = pkt + off + ATTR_HEADER_BYTES;

    if (type == PARLEY__STUN_ATTR_FINGERPRINT) {
      if (vlen != 4) return PARLEY_EPARSE;
      if (off + FINGERPRINT_ATTR_BYTES != len) return PARLEY_EPARSE; /* must be last */
      if (parley__get_be32(v) != fingerprint_of(pkt, off)) return PARLEY_EPARSE;
      msg->present |= PARLEY__STUN_HAS_FINGERPRINT;
      msg->fingerprint_offset = off;
    } else if (after_integrity) {
      /* Ignored: not covered by the HMAC (RFC 8489 section 14.5). */
    } else if (type == PARLEY__STUN_ATTR_MESSAGE_INTEGRITY) {
      if (vlen != PARLEY__STUN_HMAC_BYTES) return PARLEY_EPARSE;
      msg->present |= PARLEY__STUN_HAS_MESSAGE_INTEGRITY;
      msg->integrity_offset = off;
      msg->integrity = v;
      after_integrity = true;
    } else {
      int rc = decode_attr(msg, type, v, vlen, pkt);
      if (rc < 0) return rc;
    }
    off += ATTR_HEADER_BYTES + pad4(vlen);
  }
  return 0;
}

int parley__stun_find_attr(const uint8_t *pkt, size_t len, uint16_t type, const uint8_t **value, size_t *vlen) {
  if (!pkt || !value || !vlen) return PARLEY_EINVAL;
  if (!parley__stun_is_message(pkt, len)) return PARLEY_EPARSE;
  size_t off = PARLEY__STUN_HEADER_BYTES;
  while (off + ATTR_HEADER_BYTES <= len) {
    uint16_t t = parley__get_be16(pkt + off);
    size_t n = parley__get_be16(pkt + off + 2);
    if (n > len - off - ATTR_HEADER_BYTES) return PARLEY_EPARSE;
    if (t == type) {
      *value = pkt + off + ATTR_HEADER_BYTES;
      *vlen = n;
      return 0;
    }
    if (t == PARLEY__STUN_ATTR_MESSAGE_INTEGRITY) break; /* what follows is not covered */
    off += ATTR_HEADER_BYTES + pad4(n);
  }
  return PARLEY_ENOTFOUND;
}

int parley__stun_decode_xor_attr(const uint8_t *pkt, const uint8_t *value, size_t vlen,
                                 struct sockaddr_storage *out) {
  if (!pkt || !value || !out) return PARLEY_EINVAL;
  return decode_address(value, vlen, pkt, true, out);
}

/* HMAC-SHA1 over pkt[0, covered) with the header length field replaced by length_field. */
static int hmac_with_length(const uint8_t *pkt, size_t covered, uint16_t length_field,
                            const uint8_t *key, size_t key_len, uint8_t out[PARLEY__STUN_HMAC_BYTES]) {
  uint8_t scratch[PARLEY__STUN_MAX_MSG_BYTES];
  if (covered > sizeof scratch || key_len > INT32_MAX) return PARLEY_EINVAL;
  memcpy(scratch, pkt, covered);
  parley__put_be16(scratch + 2, length_field);
  unsigned int out_len = 0;
  static const uint8_t empty_key = 0;
  const uint8_t *k = key_len ? key : &empty_key;
  if (!HMAC(EVP_sha1(), k, (int)key_len, scratch, covered, out, &out_len) ||
      out_len != PARLEY__STUN_HMAC_BYTES)
    return PARLEY_ECRYPTO;
  return 0;
}

int parley__stun_check_integrity(const parley__stun_msg *msg, const uint8_t *pkt, size_t len,
                                 const uint8_t *key, size_t key_len) {
  if (!msg || !pkt || (!key && key_len)) return PARLEY_EINVAL;
  if (!(msg->present & PARLEY__STUN_HAS_MESSAGE_INTEGRITY)) return PARLEY_ENOTFOUND;
  size_t off = msg->integrity_offset;
  if (off < PARLEY__STUN_HEADER_BYTES || off + INTEGRITY_ATTR_BYTES > len ||
      msg->integrity != pkt + off + ATTR_HEADER_BYTES)
    return PARLEY_EINVAL; /* msg was not decoded from this datagram */
  uint8_t mac[PARLEY__STUN_HMAC_BYTES];
  /* The length field counts up to the end of MESSAGE-INTEGRITY, excluding a later FINGERPRINT. */
  uint16_t length_field = (uint16_t)(off + INTEGRITY_ATTR_BYTES - PARLEY__STUN_HEADER_BYTES);
  int rc = hmac_with_length(pkt, off, length_field, key, key_len, mac);
  if (rc < 0) return rc;
  return CRYPTO_memcmp(mac, msg->integrity, sizeof mac) == 0 ? 0 : PARLEY_EAUTH;
}

int parley__stun_new_txid(uint8_t txid[PARLEY__STUN_TXID_BYTES]) {
  if (!txid) return PARLEY_EINVAL;
  return RAND_bytes(txid, PARLEY__STUN_TXID_BYTES) == 1 ? 0 : PARLEY_ECRYPTO;
}

const char *parley__stun_reason_phrase(int error_code) {
  switch (error_code) {
  case 300: return "Try Alternate";
  case PARLEY__STUN_ERR_BAD_REQUEST: return "Bad Request";
  case PARLEY__STUN_ERR_UNAUTHORIZED: return "Unauthorized";
  case 403: return "Forbidden";
  case PARLEY__STUN_ERR_UNKNOWN_ATTRIBUTE: return "Unknown Attribute";
  case 438: return "Stale Nonce";
  case PARLEY__STUN_ERR_ROLE_CONFLICT: return "Role Conflict";
  case PARLEY__STUN_ERR_SERVER_ERROR: return "Server Error";
  default: return "Error";
  }
}

/* ---- builder ---- */

static int fail(parley__stun_builder *b, int err) {
  b->err = err;
  return err;
}

int parley__stun_build_begin(parley__stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                             parley__stun_class cls, const uint8_t txid[PARLEY__STUN_TXID_BYTES]) {
  if (!b) return PARLEY_EINVAL;
  memset(b, 0, sizeof *b);
  b->buf = buf;
  b->cap = cap;
  if (!buf || !txid || method > 0x0FFF || (unsigned)cls > 3) return fail(b, PARLEY_EINVAL);
  if (cap < PARLEY__STUN_HEADER_BYTES) return fail(b, PARLEY_ENOSPC);
  parley__put_be16(buf, make_type(method, cls));
  parley__put_be16(buf + 2, 0);
  parley__put_be32(buf + 4, PARLEY__STUN_MAGIC_COOKIE);
  memcpy(buf + 8, txid, PARLEY__STUN_TXID_BYTES);
  b->len = PARLEY__STUN_HEADER_BYTES;
  return 0;
}

/* Reserve an attribute of value length len; returns a pointer to its value or NULL (b->err set). */
static uint8_t *reserve(parley__stun_builder *b, uint16_t type, size_t len) {
  if (b->err) return NULL;
  if (b->sealed_fingerprint || (b->sealed_integrity && type != PARLEY__STUN_ATTR_FINGERPRINT)) {
    fail(b, PARLEY_ESTATE);
    return NULL;
  }
  size_t total = ATTR_HEADER_BYTES + pad4(len);
  if (len > 0xFFFF || b->len - PARLEY__STUN_HEADER_BYTES + total > 0xFFFF) {
    fail(b, PARLEY_EINVAL);
    return NULL;
  }
  if (total > b->cap - b->len) {
    fail(b, PARLEY_ENOSPC);
    return NULL;
  }
  uint8_t *p = b->buf + b->len;
  parley__put_be16(p, type);
  parley__put_be16(p + 2, (uint16_t)len);
  memset(p + ATTR_HEADER_BYTES + len, 0, pad4(len) - len);
  b->len += total;
  parley__put_be16(b->buf + 2, (uint16_t)(b->len - PARLEY__STUN_HEADER_BYTES));
  return p + ATTR_HEADER_BYTES;
}

int parley__stun_build_attr(parley__stun_builder *b, uint16_t type, const void *value, size_t len) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  if (!value && len) return fail(b, PARLEY_EINVAL);
  uint8_t *v = reserve(b, type, len);
  if (!v) return b->err;
  if (len) memcpy(v, value, len);
  return 0;
}

int parley__stun_build_username(parley__stun_builder *b, const char *username, size_t len) {
  if (b && !b->err && len > PARLEY__STUN_USERNAME_MAX) return fail(b, PARLEY_EINVAL);
  return parley__stun_build_attr(b, PARLEY__STUN_ATTR_USERNAME, username, len);
}

int parley__stun_build_software(parley__stun_builder *b, const char *software, size_t len) {
  if (b && !b->err && len > PARLEY__STUN_TEXT_ENCODE_MAX) return fail(b, PARLEY_EINVAL);
  return parley__stun_build_attr(b, PARLEY__STUN_ATTR_SOFTWARE, software, len);
}

int parley__stun_build_xor_address(parley__stun_builder *b, const struct sockaddr_storage *addr) {
  return parley__stun_build_xor_attr(b, PARLEY__STUN_ATTR_XOR_MAPPED_ADDRESS, addr);
}

int parley__stun_build_xor_attr(parley__stun_builder *b, uint16_t type, const struct sockaddr_storage *addr) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  if (!addr) return fail(b, PARLEY_EINVAL);
  uint8_t pad[16];
  xor_pad(b->buf, pad);
  uint8_t ip[16];
  size_t ip_len;
  uint16_t port;
  uint8_t family;
  if (addr->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    memcpy(ip, &sin->sin_addr, 4);
    ip_len = 4;
    port = ntohs(sin->sin_port);
    family = 0x01;
  } else if (addr->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
    memcpy(ip, &sin6->sin6_addr, 16);
    ip_len = 16;
    port = ntohs(sin6->sin6_port);
    family = 0x02;
  } else {
    return fail(b, PARLEY_EINVAL);
  }
  uint8_t *v = reserve(b, type, 4 + ip_len);
  if (!v) return b->err;
  v[0] = 0;
  v[1] = family;
  parley__put_be16(v + 2, (uint16_t)(port ^ parley__get_be16(pad)));
  for (size_t i = 0; i < ip_len; i++) v[4 + i] = (uint8_t)(ip[i] ^ pad[i]);
  return 0;
}

int parley__stun_build_u32(parley__stun_builder *b, uint16_t type, uint32_t value) {
  uint8_t v[4];
  parley__put_be32(v, value);
  return parley__stun_build_attr(b, type, v, sizeof v);
}

int parley__stun_build_u64(parley__stun_builder *b, uint16_t type, uint64_t value) {
  uint8_t v[8];
  parley__put_be32(v, (uint32_t)(value >> 32));
  parley__put_be32(v + 4, (uint32_t)value);
  return parley__stun_build_attr(b, type, v, sizeof v);
}

int parley__stun_build_error(parley__stun_builder *b, int code, const char *reason, size_t reason_len) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  if (code < 300 || code > 699) return fail(b, PARLEY_EINVAL);
  if (!reason) {
    reason = parley__stun_reason_phrase(code);
    reason_len = strlen(reason);
  }
  if (reason_len > PARLEY__STUN_TEXT_ENCODE_MAX) return fail(b, PARLEY_EINVAL);
  uint8_t *v = reserve(b, PARLEY__STUN_ATTR_ERROR_CODE, 4 + reason_len);
  if (!v) return b->err;
  v[0] = 0;
  v[1] = 0;
  v[2] = (uint8_t)(code / 100);
  v[3] = (uint8_t)(code % 100);
  if (reason_len) memcpy(v + 4, reason, reason_len);
  return 0;
}

int parley__stun_build_unknown(parley__stun_builder *b, const uint16_t *types, size_t count) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  if ((!types && count) || count > PARLEY__STUN_MAX_UNKNOWN) return fail(b, PARLEY_EINVAL);
  uint8_t *v = reserve(b, PARLEY__STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * count);
  if (!v) return b->err;
  for (size_t i = 0; i < count; i++) parley__put_be16(v + 2 * i, types[i]);
  return 0;
}

int parley__stun_build_integrity(parley__stun_builder *b, const uint8_t *key, size_t key_len) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  if (!key && key_len) return fail(b, PARLEY_EINVAL);
  size_t off = b->len;
  uint8_t *v = reserve(b, PARLEY__STUN_ATTR_MESSAGE_INTEGRITY, PARLEY__STUN_HMAC_BYTES);
  if (!v) return b->err;
  /* The header length already counts this attribute, as the HMAC requires. */
  int rc = hmac_with_length(b->buf, off, parley__get_be16(b->buf + 2), key, key_len, v);
  if (rc < 0) return fail(b, rc);
  b->sealed_integrity = true;
  return 0;
}

int parley__stun_build_fingerprint(parley__stun_builder *b) {
  if (!b) return PARLEY_EINVAL;
  if (b->err) return b->err;
  size_t off = b->len;
  uint8_t *v = reserve(b, PARLEY__STUN_ATTR_FINGERPRINT, 4);
  if (!v) return b->err;
  parley__put_be32(v, fingerprint_of(b->buf, off));
  b->sealed_fingerprint = true;
  return 0;
}

int parley__stun_encode(const parley__stun_msg *msg, const uint8_t *key, size_t key_len,
                        bool with_fingerprint, uint8_t *buf, size_t cap) {
  if (!msg) return PARLEY_EINVAL;
  parley__stun_builder b;
  int rc = parley__stun_build_begin(&b, buf, cap, msg->method, msg->cls, msg->txid);
  uint32_t has = msg->present;
  if (rc == 0 && (has & PARLEY__STUN_HAS_SOFTWARE))
    rc = parley__stun_build_software(&b, msg->software, msg->software_len);
  if (rc == 0 && (has & PARLEY__STUN_HAS_ERROR_CODE))
    rc = parley__stun_build_error(&b, msg->error_code, msg->error_reason, msg->error_reason_len);
  if (rc == 0 && (has & PARLEY__STUN_HAS_UNKNOWN_ATTRIBUTES))
    rc = parley__stun_build_unknown(&b, msg->unknown_attrs, msg->unknown_attr_count);
  if (rc == 0 && (has & PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS))
    rc = parley__stun_build_xor_address(&b, &msg->xor_mapped);
  if (rc == 0 && (has & PARLEY__STUN_HAS_PRIORITY))
    rc = parley__stun_build_u32(&b, PARLEY__STUN_ATTR_PRIORITY, msg->priority);
  if (rc == 0 && (has & PARLEY__STUN_HAS_USE_CANDIDATE))
    rc = parley__stun_build_attr(&b, PARLEY__STUN_ATTR_USE_CANDIDATE, NULL, 0);
  if (rc == 0 && (has & PARLEY__STUN_HAS_ICE_CONTROLLING))
    rc = parley__stun_build_u64(&b, PARLEY__STUN_ATTR_ICE_CONTROLLING, msg->ice_controlling);
  if (rc == 0 && (has & PARLEY__STUN_HAS_ICE_CONTROLLED))
    rc = parley__stun_build_u64(&b, PARLEY__STUN_ATTR_ICE_CONTROLLED, msg->ice_controlled);
  if (rc == 0 && (has & PARLEY__STUN_HAS_USERNAME))
    rc = parley__stun_build_username(&b, msg->username, msg->username_len);
  if (rc == 0 && key) rc = parley__stun_build_integrity(&b, key, key_len);
  if (rc == 0 && with_fingerprint) rc = parley__stun_build_fingerprint(&b);
  if (rc < 0) return rc;
  if (b.len > INT32_MAX) return PARLEY_ERANGE;
  return (int)b.len;
}
