/* ice_msg.h: the slice of STUN (RFC 8489) the ICE agent speaks, as one flat struct: Binding requests,
 * indications, success and error responses with USERNAME, PRIORITY, USE-CANDIDATE, ICE-CONTROLLING /
 * ICE-CONTROLLED, XOR-MAPPED-ADDRESS, ERROR-CODE, MESSAGE-INTEGRITY (short-term credentials) and
 * FINGERPRINT. An adapter over the STUN codec so the agent's logic reads as RFC 8445 and nothing else.
 * Pure functions on caller buffers: any thread, no allocation, no system calls. */
#ifndef PARLEY_TRANSPORT_ICE_MSG_H
#define PARLEY_TRANSPORT_ICE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/netaddr.h"

enum { PARLEY__ICE_MSG_REQUEST = 0, PARLEY__ICE_MSG_INDICATION = 1, PARLEY__ICE_MSG_SUCCESS = 2,
       PARLEY__ICE_MSG_ERROR = 3 };
#define PARLEY__ICE_MSG_USERNAME_MAX 513 /* 513 bytes per RFC 8489 14.3, plus NUL below */
#define PARLEY__ICE_MSG_MAX 1280         /* our messages are far smaller */

typedef struct parley__ice_msg {
  int cls;             /* PARLEY__ICE_MSG_* */
  uint16_t method;     /* 0x001 = Binding; other methods are reported, the agent ignores them */
  uint8_t txid[12];
  bool has_username;
  char username[PARLEY__ICE_MSG_USERNAME_MAX + 1];
  bool has_priority;
  uint32_t priority;
  bool use_candidate;
  bool has_controlling, has_controlled;
  uint64_t tie_breaker;
  int error_code;      /* error responses: 300..699, e.g. 487 Role Conflict */
  bool has_mapped;
  parley__netaddr mapped; /* XOR-MAPPED-ADDRESS */
  bool has_integrity;  /* MESSAGE-INTEGRITY present (parse only) */
  bool has_fingerprint;
  /* Parse: comprehension-required attribute types we do not know (at most 16 kept). Build: with
   * error_code 420, listed in UNKNOWN-ATTRIBUTES. */
  uint16_t unknown[16];
  size_t unknown_count;
} parley__ice_msg;

/* Quick demultiplex test (RFC 7983 first byte 0..3, magic cookie, length). */
bool parley__ice_msg_is_stun(const uint8_t *buf, size_t len);
/* Decodes buf into *m. A FINGERPRINT, when present, must be right. 0 or PARLEY_EPARSE. */
int parley__ice_msg_parse(const uint8_t *buf, size_t len, parley__ice_msg *m);
/* True when buf carries a MESSAGE-INTEGRITY that verifies with the short-term key `pwd`. */
bool parley__ice_msg_integrity_ok(const uint8_t *buf, size_t len, const char *pwd);
/* Encodes *m into out: attributes the struct says are present, then MESSAGE-INTEGRITY keyed with pwd
 * (when pwd is non-NULL) and FINGERPRINT. Returns the length, or PARLEY_ENOSPC / PARLEY_EINVAL. */
int parley__ice_msg_build(const parley__ice_msg *m, const char *pwd, uint8_t *out, size_t cap);

#endif
