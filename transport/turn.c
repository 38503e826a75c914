/* turn.c: the TURN client of turn.h. Owns one allocation's state: the credentials and the server's
 * realm and nonce, three kinds of transaction (the allocation's Allocate/Refresh, and one
 * CreatePermission or ChannelBind per peer), and the refresh schedule. One owner thread; see turn.h. */
#include "transport/turn.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/stun.h"
#include "transport/wire.h"

enum { /* methods (RFC 8656 section 17) */
  M_ALLOCATE = 0x003,
  M_REFRESH = 0x004,
  M_SEND = 0x006,
  M_DATA = 0x007,
  M_CREATE_PERMISSION = 0x008,
  M_CHANNEL_BIND = 0x009,
};
enum { /* attributes (RFC 8656 section 18) */
  A_CHANNEL_NUMBER = 0x000C,
  A_LIFETIME = 0x000D,
  A_XOR_PEER_ADDRESS = 0x0012,
  A_DATA = 0x0013,
  A_XOR_RELAYED_ADDRESS = 0x0016,
  A_REQUESTED_TRANSPORT = 0x0019,
};
#define PROTO_UDP 17
#define FIRST_CHANNEL 0x4000
#define PERMISSION_REFRESH_US (240 * 1000000LL) /* permissions last 300 s, channels 600 s */
#define RETRY_AFTER_FAILURE_US (5 * 1000000LL)  /* a refused permission is asked for again */
#define MAX_AUTH_RETRIES 3                      /* 401/438 answers one request may take */
#define STUN_TEXT_CAP (PARLEY__STUN_TEXT_MAX + 1)

typedef struct txn {
  bool active;   /* a request is outstanding, or due to go */
  uint16_t method;
  uint8_t txid[PARLEY__STUN_TXID_BYTES];
  int sent;      /* sends of this transaction so far */
  int64_t due_us;
  int auth_retries;
} txn;

typedef struct peer {
  bool used;
  bool channel;   /* bind a channel (else a permission only) */
  bool ok;        /* the server confirmed the last request */
  struct sockaddr_storage addr;
  uint16_t number; /* its channel number */
  int64_t refresh_us; /* when to ask again (INT64_MAX: not scheduled) */
  txn job;
} peer;

struct parley__turn {
  parley__turn_config cfg;
  parley__turn_state state;
  char error[160];
  bool have_key;
  uint8_t key[16]; /* MD5(username:realm:password) */
  char realm[STUN_TEXT_CAP];
  char nonce[STUN_TEXT_CAP];
  txn alloc;       /* Allocate, then Refresh */
  bool closing;
  int64_t refresh_us; /* allocation refresh due (READY) */
  struct sockaddr_storage relayed, mapped;
  peer peers[PARLEY__TURN_MAX_PEERS];
};

void parley__turn_config_init(parley__turn_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->lifetime_s = 600;
  c->rto_ms = 250;
}

static int start(txn *x, uint16_t method, int64_t now_us) {
  int rc = parley__stun_new_txid(x->txid);
  if (rc < 0) return rc;
  x->active = true;
  x->method = method;
  x->sent = 0;
  x->due_us = now_us;
  return 0;
}

static void fail(parley__turn *t, const char *why) {
  t->state = PARLEY__TURN_FAILED;
  snprintf(t->error, sizeof t->error, "%s", why);
  t->alloc.active = false;
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++) t->peers[i].job.active = false;
}

parley__turn *parley__turn_new(const parley__turn_config *c, int64_t now_us, int *err) {
  int e = PARLEY_EINVAL;
  parley__turn *t = NULL;
  if (!c || (c->server.ss_family != AF_INET && c->server.ss_family != AF_INET6) || !c->username[0] ||
      !c->password[0] || memchr(c->username, 0, sizeof c->username) == NULL ||
      memchr(c->password, 0, sizeof c->password) == NULL || c->lifetime_s == 0 || c->rto_ms == 0)
    goto out;
  e = PARLEY_ENOMEM;
  if (!(t = calloc(1, sizeof *t))) goto out;
  t->cfg = *c;
  t->state = PARLEY__TURN_ALLOCATING;
  t->refresh_us = INT64_MAX;
  e = start(&t->alloc, M_ALLOCATE, now_us);
  if (e < 0) {
    free(t);
    t = NULL;
  }
out:
  if (err) *err = t ? 0 : e;
  return t;
}

void parley__turn_free(parley__turn *t) {
  if (!t) return;
  OPENSSL_cleanse(t->key, sizeof t->key);
  OPENSSL_cleanse(t->cfg.password, sizeof t->cfg.password);
  free(t);
}

/* The same address (with port: the same transport address). */
static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool port) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return (!port || x->sin_port == y->sin_port) && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return (!port || x->sin6_port == y->sin6_port) && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static peer *find_peer(const parley__turn *t, const struct sockaddr_storage *addr) {
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++)
    if (t->peers[i].used && same_addr(&t->peers[i].addr, addr, true)) return (peer *)&t->peers[i];
  return NULL;
}

/* Whether a permission covers addr: permissions are by IP address alone (RFC 8656 9), so a peer's new
 * port on a permitted address (a peer that allocated again on the same relay, its checks from there)
 * gets through before we learn of it. */
static bool permitted(const parley__turn *t, const struct sockaddr_storage *addr) {
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++)
    if (t->peers[i].used && same_addr(&t->peers[i].addr, addr, false)) return true;
  return false;
}

/* The request of transaction x (for peer p, or the allocation's when p is NULL) into out. */
static int encode(const parley__turn *t, const txn *x, const peer *p, uint8_t *out, size_t cap) {
  parley__stun_builder b;
  parley__stun_build_begin(&b, out, cap, x->method, PARLEY__STUN_REQUEST, x->txid);
  switch (x->method) {
  case M_ALLOCATE:
    parley__stun_build_u32(&b, A_REQUESTED_TRANSPORT, (uint32_t)PROTO_UDP << 24);
    parley__stun_build_u32(&b, A_LIFETIME, t->cfg.lifetime_s);
    break;
  case M_REFRESH: parley__stun_build_u32(&b, A_LIFETIME, t->closing ? 0 : t->cfg.lifetime_s); break;
  case M_CHANNEL_BIND:
    parley__stun_build_u32(&b, A_CHANNEL_NUMBER, (uint32_t)p->number << 16);
    parley__stun_build_xor_attr(&b, A_XOR_PEER_ADDRESS, &p->addr);
    break;
  default: parley__stun_build_xor_attr(&b, A_XOR_PEER_ADDRESS, &p->addr); break;
  }
  if (t->have_key) {
    parley__stun_build_username(&b, t->cfg.username, strlen(t->cfg.username));
    parley__stun_build_attr(&b, PARLEY__STUN_ATTR_REALM, t->realm, strlen(t->realm));
    parley__stun_build_attr(&b, PARLEY__STUN_ATTR_NONCE, t->nonce, strlen(t->nonce));
    parley__stun_build_integrity(&b, t->key, sizeof t->key);
  }
  parley__stun_build_fingerprint(&b);
  return b.err ? b.err : (int)b.len;
}

/* Sends x if it is due: returns the datagram's length, 0 if not due, or an error. A transaction
 * that has used its tries ends: *gave_up says so. */
static int send_due(parley__turn *t, txn *x, const peer *p, int64_t now_us, uint8_t *out, size_t cap,
                    bool *gave_up) {
  *gave_up = false;
  if (!x->active || x->due_us > now_us) return 0;
  if (x->sent >= PARLEY__TURN_TRIES) {
    x->active = false;
    *gave_up = true;
    return 0;
  }
  int n = encode(t, x, p, out, cap);
  if (n < 0) return n;
  int64_t interval = (int64_t)t->cfg.rto_ms * 1000 << x->sent;
  x->sent++;
  x->due_us = now_us + interval;
  return n;
}

static void start_peer(parley__turn *t, peer *p, int64_t now_us) {
  p->ok = false;
  p->refresh_us = INT64_MAX;
  if (start(&p->job, p->channel ? M_CHANNEL_BIND : M_CREATE_PERMISSION, now_us) < 0) {
    p->refresh_us = now_us + RETRY_AFTER_FAILURE_US; /* no random bytes this time: try later */
  }
  (void)t;
}

int parley__turn_poll(parley__turn *t, int64_t now_us, uint8_t *out, size_t cap) {
  if (!t || !out) return PARLEY_EINVAL;
  if (t->state == PARLEY__TURN_FAILED || t->state == PARLEY__TURN_CLOSED) return 0;
  bool gave_up;
  if (t->state == PARLEY__TURN_READY && !t->alloc.active && now_us >= t->refresh_us) {
    t->refresh_us = INT64_MAX;
    if (start(&t->alloc, M_REFRESH, now_us) < 0) t->refresh_us = now_us + RETRY_AFTER_FAILURE_US;
  }
  int n = send_due(t, &t->alloc, NULL, now_us, out, cap, &gave_up);
  if (gave_up) {
    if (t->closing) t->state = PARLEY__TURN_CLOSED;
    else fail(t, t->state == PARLEY__TURN_READY ? "the TURN server stopped answering refreshes"
                                                : "no answer from the TURN server");
    return 0;
  }
  if (n != 0 || t->state != PARLEY__TURN_READY || t->closing) return n;
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++) {
    peer *p = &t->peers[i];
    if (!p->used) continue;
    if (!p->job.active && now_us >= p->refresh_us) start_peer(t, p, now_us);
    n = send_due(t, &p->job, p, now_us, out, cap, &gave_up);
    if (gave_up) {
      p->ok = false;
      p->refresh_us = now_us + RETRY_AFTER_FAILURE_US;
    }
    if (n != 0) return n;
  }
  return 0;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t parley__turn_next_timeout(const parley__turn *t) {
  if (!t || t->state == PARLEY__TURN_FAILED || t->state == PARLEY__TURN_CLOSED) return INT64_MAX;
  int64_t next = t->alloc.active ? t->alloc.due_us : t->refresh_us;
  if (t->state != PARLEY__TURN_READY || t->closing) return next;
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++) {
    const peer *p = &t->peers[i];
    if (p->used) next = min64(next, p->job.active ? p->job.due_us : p->refresh_us);
  }
  return next;
}

static int derive_key(parley__turn *t) {
  char text[2 * PARLEY__TURN_CRED_MAX + STUN_TEXT_CAP + 2];
  int n = snprintf(text, sizeof text, "%s:%s:%s", t->cfg.username, t->realm, t->cfg.password);
  unsigned int len = 0;
  int ok = n > 0 && (size_t)n < sizeof text && EVP_Digest(text, (size_t)n, t->key, &len, EVP_md5(), NULL) == 1 &&
           len == sizeof t->key;
  OPENSSL_cleanse(text, sizeof text);
  return ok ? 0 : PARLEY_ECRYPTO;
}

static void copy_text(char *dst, const char *src, size_t len) {
  memcpy(dst, src, len);
  dst[len] = 0;
}

/* A 401 or 438 to transaction x: take the realm and nonce and send x again as a new transaction.
 * False when it cannot (no nonce, too many tries, credentials refused twice). */
static bool retry_with_nonce(parley__turn *t, txn *x, const parley__stun_msg *m, int64_t now_us) {
  if (!(m->present & PARLEY__STUN_HAS_NONCE) || x->auth_retries >= MAX_AUTH_RETRIES) return false;
  if (m->error_code == 401) {
    if (!(m->present & PARLEY__STUN_HAS_REALM)) return false;
    /* A 401 to a request that carried our key: the credentials are wrong (a new realm aside). */
    bool same_realm = t->have_key && strlen(t->realm) == m->realm_len && memcmp(t->realm, m->realm, m->realm_len) == 0;
    if (same_realm && x->auth_retries > 0) return false;
    copy_text(t->realm, m->realm, m->realm_len);
    if (derive_key(t) < 0) return false;
    t->have_key = true;
  }
  copy_text(t->nonce, m->nonce, m->nonce_len);
  uint16_t method = x->method;
  int retries = x->auth_retries + 1;
  if (start(x, method, now_us) < 0) return false;
  x->auth_retries = retries;
  return true;
}

static void on_allocated(parley__turn *t, const uint8_t *pkt, size_t len, const parley__stun_msg *m, int64_t now_us) {
  const uint8_t *v;
  size_t vlen;
  if (parley__stun_find_attr(pkt, len, A_XOR_RELAYED_ADDRESS, &v, &vlen) != 0 ||
      parley__stun_decode_xor_attr(pkt, v, vlen, &t->relayed) != 0) {
    fail(t, "the TURN server's Allocate answer has no relayed address");
    return;
  }
  if (m->present & PARLEY__STUN_HAS_XOR_MAPPED_ADDRESS) t->mapped = m->xor_mapped;
  t->state = PARLEY__TURN_READY;
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++)
    if (t->peers[i].used) start_peer(t, &t->peers[i], now_us);
}

/* The allocation's lifetime from a success answer: refresh a minute before it ends (half-way for
 * short ones). */
static void schedule_refresh(parley__turn *t, const uint8_t *pkt, size_t len, int64_t now_us) {
  uint32_t life = t->cfg.lifetime_s;
  const uint8_t *v;
  size_t vlen;
  if (parley__stun_find_attr(pkt, len, A_LIFETIME, &v, &vlen) == 0 && vlen == 4) life = parley__get_be32(v);
  int64_t life_us = (int64_t)life * 1000000;
  t->refresh_us = now_us + (life > 120 ? life_us - 60 * 1000000LL : life_us / 2);
}

static int on_response(parley__turn *t, const uint8_t *pkt, size_t len, const parley__stun_msg *m, int64_t now_us) {
  txn *x = NULL;
  peer *p = NULL;
  if (t->alloc.active && memcmp(t->alloc.txid, m->txid, sizeof m->txid) == 0) x = &t->alloc;
  for (int i = 0; !x && i < PARLEY__TURN_MAX_PEERS; i++)
    if (t->peers[i].used && t->peers[i].job.active && memcmp(t->peers[i].job.txid, m->txid, sizeof m->txid) == 0)
      p = &t->peers[i], x = &p->job;
  if (!x) return PARLEY_ENOTFOUND; /* a late answer to a retransmission, or not ours */
  /* An answer to a request that carried our key must carry it too (a 401 to the first Allocate does
   * not: it is how the server tells us its realm). */
  if (t->have_key && (m->present & PARLEY__STUN_HAS_MESSAGE_INTEGRITY) &&
      parley__stun_check_integrity(m, pkt, len, t->key, sizeof t->key) != 0)
    return PARLEY_ENOTFOUND;
  if (t->have_key && !(m->present & PARLEY__STUN_HAS_MESSAGE_INTEGRITY) && m->cls == PARLEY__STUN_SUCCESS)
    return PARLEY_ENOTFOUND;

  if (m->cls == PARLEY__STUN_ERROR) {
    if ((m->error_code == 401 || m->error_code == 438) && retry_with_nonce(t, x, m, now_us)) return 0;
    x->active = false;
    char why[160];
    snprintf(why, sizeof why, "%d %s%s", m->error_code, parley__stun_reason_phrase(m->error_code),
             m->error_code == 401 ? ": the server refused the credentials" : "");
    if (p) {
      p->ok = false;
      p->refresh_us = now_us + RETRY_AFTER_FAILURE_US;
    } else if (t->closing || x->method == M_REFRESH) {
      /* A refused refresh means the allocation is gone (437 mismatch after a server restart). */
      if (t->closing) t->state = PARLEY__TURN_CLOSED;
      else fail(t, why);
    } else {
      fail(t, why);
    }
    return 0;
  }
  x->active = false;
  if (p) {
    p->ok = true;
    p->refresh_us = now_us + PERMISSION_REFRESH_US;
  } else if (x->method == M_ALLOCATE) {
    on_allocated(t, pkt, len, m, now_us);
    if (t->state == PARLEY__TURN_READY) schedule_refresh(t, pkt, len, now_us);
  } else if (t->closing) {
    t->state = PARLEY__TURN_CLOSED;
  } else {
    schedule_refresh(t, pkt, len, now_us);
  }
  return 0;
}

int parley__turn_on_packet(parley__turn *t, const uint8_t *pkt, size_t len, int64_t now_us,
                           parley__turn_data *data) {
  if (!t || !pkt || !data) return PARLEY_EINVAL;
  if (len >= PARLEY__TURN_CHANNEL_HEADER && (pkt[0] & 0xF0) == 0x40) { /* ChannelData (RFC 7983: 64-79) */
    uint16_t number = parley__get_be16(pkt);
    size_t n = parley__get_be16(pkt + 2);
    if (n > len - PARLEY__TURN_CHANNEL_HEADER) return PARLEY_EPARSE;
    for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++) {
      const peer *p = &t->peers[i];
      if (p->used && p->channel && p->ok && p->number == number) {
        data->peer = p->addr;
        data->data = pkt + PARLEY__TURN_CHANNEL_HEADER;
        data->len = n;
        return 1;
      }
    }
    return PARLEY_ENOTFOUND;
  }
  parley__stun_msg m;
  int rc = parley__stun_decode(&m, pkt, len);
  if (rc < 0) return rc == PARLEY_ENOTSUP ? PARLEY_EPARSE : rc;
  if (m.cls == PARLEY__STUN_INDICATION && m.method == M_DATA) {
    const uint8_t *v, *d;
    size_t vlen, dlen;
    if (parley__stun_find_attr(pkt, len, A_XOR_PEER_ADDRESS, &v, &vlen) != 0 ||
        parley__stun_find_attr(pkt, len, A_DATA, &d, &dlen) != 0 ||
        parley__stun_decode_xor_attr(pkt, v, vlen, &data->peer) != 0)
      return PARLEY_EPARSE;
    if (!permitted(t, &data->peer)) return PARLEY_ENOTFOUND; /* the server only relays permitted peers */
    data->data = d;
    data->len = dlen;
    return 1;
  }
  if (m.cls != PARLEY__STUN_SUCCESS && m.cls != PARLEY__STUN_ERROR) return PARLEY_ENOTFOUND;
  return on_response(t, pkt, len, &m, now_us);
}

int parley__turn_add_peer(parley__turn *t, const struct sockaddr_storage *addr, bool channel, int64_t now_us) {
  if (!t || !addr || (addr->ss_family != AF_INET && addr->ss_family != AF_INET6)) return PARLEY_EINVAL;
  if (t->state == PARLEY__TURN_FAILED || t->state == PARLEY__TURN_CLOSED || t->closing) return PARLEY_ESTATE;
  peer *p = find_peer(t, addr);
  if (p && (p->channel || !channel)) return 0;
  if (!p) {
    for (int i = 0; i < PARLEY__TURN_MAX_PEERS && !p; i++)
      if (!t->peers[i].used) {
        p = &t->peers[i];
        memset(p, 0, sizeof *p);
        p->used = true;
        p->addr = *addr;
        p->number = (uint16_t)(FIRST_CHANNEL + i);
      }
    if (!p) return PARLEY_ENOSPC;
  }
  p->channel = channel;
  p->refresh_us = INT64_MAX;
  if (t->state == PARLEY__TURN_READY) start_peer(t, p, now_us);
  return 0;
}

int parley__turn_frame_len(const uint8_t *buf, size_t avail) {
  if (!buf) return PARLEY_EINVAL;
  if (avail < PARLEY__TURN_CHANNEL_HEADER) return 0;
  size_t len = (size_t)buf[2] << 8 | buf[3];
  size_t need;
  if ((buf[0] & 0xF0) == 0x40) need = PARLEY__TURN_CHANNEL_HEADER + len + (4 - len % 4) % 4; /* ChannelData */
  else if (buf[0] < 4 && len % 4 == 0) need = PARLEY__STUN_HEADER_BYTES + len;            /* STUN */
  else return PARLEY_EPARSE;
  return avail < need ? 0 : (int)need;
}

bool parley__turn_peer_ready(const parley__turn *t, const struct sockaddr_storage *addr) {
  const peer *p = t && addr ? find_peer(t, addr) : NULL;
  return p && p->ok;
}

int parley__turn_wrap(parley__turn *t, const struct sockaddr_storage *addr, const uint8_t *payload, size_t len,
                      uint8_t *out, size_t cap) {
  if (!t || !addr || (!payload && len) || !out) return PARLEY_EINVAL;
  if (t->state != PARLEY__TURN_READY) return PARLEY_ESTATE;
  const peer *p = find_peer(t, addr);
  if (!p) return PARLEY_ENOTFOUND;
  if (p->channel && p->ok) {
    /* Over TCP the message is padded to a multiple of 4 bytes (RFC 8656 12.5); the length says the data's. */
    size_t pad = t->cfg.stream ? (4 - len % 4) % 4 : 0;
    if (len > UINT16_MAX || cap < PARLEY__TURN_CHANNEL_HEADER + len + pad) return PARLEY_ENOSPC;
    parley__put_be16(out, p->number);
    parley__put_be16(out + 2, (uint16_t)len);
    if (len) memcpy(out + PARLEY__TURN_CHANNEL_HEADER, payload, len);
    memset(out + PARLEY__TURN_CHANNEL_HEADER + len, 0, pad);
    return (int)(PARLEY__TURN_CHANNEL_HEADER + len + pad);
  }
  uint8_t txid[PARLEY__STUN_TXID_BYTES];
  int rc = parley__stun_new_txid(txid);
  if (rc < 0) return rc;
  parley__stun_builder b;
  parley__stun_build_begin(&b, out, cap, M_SEND, PARLEY__STUN_INDICATION, txid);
  parley__stun_build_xor_attr(&b, A_XOR_PEER_ADDRESS, &p->addr);
  parley__stun_build_attr(&b, A_DATA, payload, len);
  return b.err ? b.err : (int)b.len;
}

int parley__turn_close(parley__turn *t, int64_t now_us) {
  if (!t) return PARLEY_EINVAL;
  if (t->state == PARLEY__TURN_FAILED || t->state == PARLEY__TURN_CLOSED || t->closing) return 0;
  for (int i = 0; i < PARLEY__TURN_MAX_PEERS; i++) t->peers[i].job.active = false;
  if (t->state != PARLEY__TURN_READY) {
    t->alloc.active = false;
    t->state = PARLEY__TURN_CLOSED;
    return 0;
  }
  t->closing = true;
  if (start(&t->alloc, M_REFRESH, now_us) < 0) t->state = PARLEY__TURN_CLOSED;
  return 0;
}

parley__turn_state parley__turn_get_state(const parley__turn *t) { return t ? t->state : PARLEY__TURN_FAILED; }

int parley__turn_addresses(const parley__turn *t, struct sockaddr_storage *relayed, struct sockaddr_storage *mapped) {
  if (!t) return PARLEY_EINVAL;
  if (t->state != PARLEY__TURN_READY) return PARLEY_ESTATE;
  if (relayed) *relayed = t->relayed;
  if (mapped) *mapped = t->mapped;
  return 0;
}

const char *parley__turn_error(const parley__turn *t) { return t ? t->error : "no client"; }
