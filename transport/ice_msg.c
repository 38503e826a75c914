/* ice_msg.c: the ICE agent's flat view of STUN Binding messages (see ice_msg.h), an adapter over the
 * STUN codec in transport/stun.h. Stateless; any thread; no allocation. */
#include "transport/ice_msg.h"

#include <string.h>
#include <sys/socket.h>

#include "parley/parley.h"
#include "transport/stun.h"

bool parley__ice_msg_is_stun(const uint8_t *buf, size_t len) { return buf && parley__stun_is_message(buf, len); }

int parley__ice_msg_parse(const uint8_t *buf, size_t len, parley__ice_msg *m) {
  if (!buf || !m) return PARLEY_EINVAL;
  memset(m, 0, sizeof *m);
  parley__stun_msg s;
  if (parley__stun_decode(&s, buf, len) != 0) return PARLEY_EPARSE;
  m->cls = (int)s.cls;
  m->method = s.method;
  memcpy(m->txid, s.txid, 12);
  if (s.present & PARLEY__STUN_HAS_USERNAME) {
    if (s.username_len > PARLEY__ICE_MSG_USERNAME_MAX) return PARLEY_EPARSE;
    m->has_username = true;
    memcpy(m->username, s.username, s.username_len);
    m->username[s.username_len] = '\0';
  }
  m->has_priority = (s.present & PARLEY__STUN_HAS_PRIORITY) != 0;
  m->priority = s.priority;
  m->use_candidate = (s.present & PARLEY__STUN_HAS_USE_CANDIDATE) != 0;
  m->has_controlling = (s.present & PARLEY__STUN_HAS_ICE_CONTROLLING) != 0;
  m->has_controlled = (s.present & PARLEY__STUN_HAS_ICE_CONTROLLED) != 0;
  m->tie_breaker = m->has_controlling ? s.ice_controlling : s.ice_controlled;
  if (s.present & PARLEY__STUN_HAS_ERROR_CODE) m->error_code = s.error_code;
  if (s.present & PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS)
    m->has_mapped = parley__netaddr_from_sockaddr(&m->mapped, &s.xor_mapped) == 0;
  m->has_integrity = (s.present & PARLEY__STUN_HAS_MESSAGE_INTEGRITY) != 0;
  m->has_fingerprint = (s.present & PARLEY__STUN_HAS_FINGERPRINT) != 0;
  m->unknown_count = s.unknown_required_count < 16 ? s.unknown_required_count : 16;
  memcpy(m->unknown, s.unknown_required, m->unknown_count * sizeof m->unknown[0]);
  return 0;
}

bool parley__ice_msg_integrity_ok(const uint8_t *buf, size_t len, const char *pwd) {
  if (!buf || !pwd) return false;
  parley__stun_msg s;
  if (parley__stun_decode(&s, buf, len) != 0) return false;
  return parley__stun_check_integrity(&s, buf, len, (const uint8_t *)pwd, strlen(pwd)) == 0;
}

int parley__ice_msg_build(const parley__ice_msg *m, const char *pwd, uint8_t *out, size_t cap) {
  if (!m || !out) return PARLEY_EINVAL;
  parley__stun_msg s;
  memset(&s, 0, sizeof s);
  s.method = m->method;
  s.cls = (parley__stun_class)m->cls;
  memcpy(s.txid, m->txid, 12);
  if (m->has_username) {
    s.present |= PARLEY__STUN_HAS_USERNAME;
    s.username = m->username;
    s.username_len = strlen(m->username);
  }
  if (m->has_priority) {
    s.present |= PARLEY__STUN_HAS_PRIORITY;
    s.priority = m->priority;
  }
  if (m->use_candidate) s.present |= PARLEY__STUN_HAS_USE_CANDIDATE;
  if (m->has_controlling) {
    s.present |= PARLEY__STUN_HAS_ICE_CONTROLLING;
    s.ice_controlling = m->tie_breaker;
  }
  if (m->has_controlled) {
    s.present |= PARLEY__STUN_HAS_ICE_CONTROLLED;
    s.ice_controlled = m->tie_breaker;
  }
  if (m->error_code) {
    s.present |= PARLEY__STUN_HAS_ERROR_CODE;
    s.error_code = m->error_code;
  }
  if (m->error_code == 420 && m->unknown_count > 0) {
    if (m->unknown_count > PARLEY__STUN_MAX_UNKNOWN || m->unknown_count > 16) return PARLEY_EINVAL;
    s.present |= PARLEY__STUN_HAS_UNKNOWN_ATTRIBUTES;
    memcpy(s.unknown_attrs, m->unknown, m->unknown_count * sizeof m->unknown[0]);
    s.unknown_attr_count = m->unknown_count;
  }
  if (m->has_mapped) {
    s.present |= PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS;
    if (parley__netaddr_to_sockaddr(&m->mapped, &s.xor_mapped) < 0) return PARLEY_EINVAL;
  }
  return parley__stun_encode(&s, pwd ? (const uint8_t *)pwd : NULL, pwd ? strlen(pwd) : 0, true, out, cap);
}
