/* websocket.c: RFC 6455 handshake, frame codec and message reader without I/O (see websocket.h). Owns
 * nothing but a reader's two buffers; any thread, one per reader. Not real-time safe. */
#include "transport/websocket.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/parley.h"

/* RFC 6455 1.3: the GUID a server appends to the client's key before hashing. */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int parley__ws_key(char out[PARLEY__WS_KEY_LEN + 1]) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return PARLEY_ECRYPTO;
  EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw); /* 24 characters and a NUL */
  return 0;
}

int parley__ws_accept(const char *key, char out[PARLEY__WS_ACCEPT_LEN + 1]) {
  if (!key) return PARLEY_EINVAL;
  unsigned char digest[SHA_DIGEST_LENGTH];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, key, strlen(key)) == 1 &&
            EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) == 1 && EVP_DigestFinal_ex(ctx, digest, &n) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || n != sizeof digest) return PARLEY_ECRYPTO;
  EVP_EncodeBlock((unsigned char *)out, digest, sizeof digest);
  return 0;
}

int parley__ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                       const char *protocol) {
  if (!out || !host || !path || !key || path[0] != '/') return PARLEY_EINVAL;
  int n = snprintf(out, cap,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                   path, host, key, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
                   protocol ? "\r\n" : "");
  return n < 0 || (size_t)n >= cap ? PARLEY_ENOSPC : n;
}

/* The value of header `name` in the header block h[0..len) (after the status line), trimmed: its
 * length, or -1 when absent. */
static int header(const char *h, size_t len, const char *name, const char **value) {
  size_t nl = strlen(name);
  for (const char *p = h, *end = h + len; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
      const char *v = p + nl + 1, *e = eol;
      while (v < e && (*v == ' ' || *v == '\t')) v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
      *value = v;
      return (int)(e - v);
    }
    p = eol + 1;
  }
  return -1;
}

/* Whether the comma-separated list v[0..n) holds token (any case). */
static bool has_token(const char *v, int n, const char *token) {
  size_t tl = strlen(token);
  for (int i = 0; i < n;) {
    while (i < n && (v[i] == ' ' || v[i] == ',')) i++;
    int s = i;
    while (i < n && v[i] != ',') i++;
    int e = i;
    while (e > s && v[e - 1] == ' ') e--;
    if ((size_t)(e - s) == tl && !strncasecmp(v + s, token, tl)) return true;
  }
  return false;
}

int parley__ws_response(const char *buf, size_t len, const char *key, const char *protocol) {
  if (!buf || !key) return PARLEY_EINVAL;
  size_t scan = len < PARLEY__WS_RESPONSE_MAX ? len : PARLEY__WS_RESPONSE_MAX;
  const char *end = NULL;
  for (size_t i = 0; i + 4 <= scan && !end; i++)
    if (!memcmp(buf + i, "\r\n\r\n", 4)) end = buf + i + 4;
  if (!end) return len >= PARLEY__WS_RESPONSE_MAX ? PARLEY_EPARSE : 0;
  /* Status line: HTTP/1.1 101 ... */
  if (end - buf < 13 || memcmp(buf, "HTTP/1.1 101", 12) != 0 || (buf[12] != ' ' && buf[12] != '\r'))
    return PARLEY_EPARSE;
  const char *h = memchr(buf, '\n', (size_t)(end - buf)) + 1;
  size_t hl = (size_t)(end - h);
  const char *v;
  int n = header(h, hl, "Upgrade", &v);
  if (n != 9 || strncasecmp(v, "websocket", 9) != 0) return PARLEY_EPARSE;
  n = header(h, hl, "Connection", &v);
  if (n < 0 || !has_token(v, n, "upgrade")) return PARLEY_EPARSE;
  char want[PARLEY__WS_ACCEPT_LEN + 1];
  int rc = parley__ws_accept(key, want);
  if (rc < 0) return rc;
  n = header(h, hl, "Sec-WebSocket-Accept", &v);
  if (n != PARLEY__WS_ACCEPT_LEN || memcmp(v, want, PARLEY__WS_ACCEPT_LEN) != 0) return PARLEY_EAUTH;
  if (protocol) {
    n = header(h, hl, "Sec-WebSocket-Protocol", &v);
    if (n < 0 || (size_t)n != strlen(protocol) || memcmp(v, protocol, (size_t)n) != 0) return PARLEY_EAUTH;
  }
  return (int)(end - buf);
}

static bool is_control(int opcode) { return opcode & 0x8; }

int parley__ws_encode(uint8_t *out, size_t cap, int opcode, bool fin, const uint8_t mask[4], const void *payload,
                      size_t len) {
  if (!out || opcode < 0 || opcode > 15 || (len && !payload)) return PARLEY_EINVAL;
  if (is_control(opcode) && (len > PARLEY__WS_CONTROL_MAX || !fin)) return PARLEY_EINVAL;
  size_t h = 2 + (len > 0xFFFF ? 8 : len > 125 ? 2 : 0) + (mask ? 4 : 0);
  if (cap < h || cap - h < len || h + len > (size_t)INT32_MAX) return PARLEY_ENOSPC;
  out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t m = mask ? 0x80 : 0;
  size_t i = 2;
  if (len > 0xFFFF) {
    out[1] = m | 127;
    for (int k = 7; k >= 0; k--) out[i++] = (uint8_t)((uint64_t)len >> (8 * k));
  } else if (len > 125) {
    out[1] = m | 126;
    out[i++] = (uint8_t)(len >> 8);
    out[i++] = (uint8_t)len;
  } else {
    out[1] = (uint8_t)(m | len);
  }
  if (mask) {
    memcpy(out + i, mask, 4);
    i += 4;
  }
  const uint8_t *p = payload;
  for (size_t k = 0; k < len; k++) out[i + k] = mask ? p[k] ^ mask[k & 3] : p[k];
  return (int)(i + len);
}

int parley__ws_decode(const uint8_t *buf, size_t len, uint64_t max, parley__ws_frame *f) {
  if (!buf || !f) return PARLEY_EINVAL;
  if (len < 2) return 0;
  f->fin = buf[0] & 0x80;
  f->opcode = buf[0] & 0x0F;
  f->masked = buf[1] & 0x80;
  if (buf[0] & 0x70) return PARLEY_EPARSE; /* RSV1-3: no extension was negotiated */
  if ((f->opcode > PARLEY__WS_BINARY && f->opcode < PARLEY__WS_CLOSE) || f->opcode > PARLEY__WS_PONG)
    return PARLEY_EPARSE;
  uint64_t n = buf[1] & 0x7F;
  size_t h = 2;
  if (n == 126) {
    if (len < 4) return 0;
    n = (uint64_t)buf[2] << 8 | buf[3];
    if (n < 126) return PARLEY_EPARSE; /* 5.2: the minimal number of bytes must be used */
    h = 4;
  } else if (n == 127) {
    if (len < 10) return 0;
    n = 0;
    for (int k = 0; k < 8; k++) n = n << 8 | buf[2 + k];
    if (n >> 63 || n <= 0xFFFF) return PARLEY_EPARSE;
    h = 10;
  }
  if (is_control(f->opcode) && (!f->fin || n > PARLEY__WS_CONTROL_MAX)) return PARLEY_EPARSE;
  if (n > max) return PARLEY_ERANGE;
  if (f->masked) {
    if (len < h + 4) return 0;
    memcpy(f->mask, buf + h, 4);
    h += 4;
  }
  f->header = h;
  f->len = n;
  return len - h < n ? 0 : (int)h;
}

void parley__ws_reader_init(parley__ws_reader *r, size_t max, bool masked) {
  memset(r, 0, sizeof *r);
  r->max = max;
  r->masked = masked;
}

void parley__ws_reader_free(parley__ws_reader *r) {
  if (!r) return;
  free(r->in);
  free(r->msg);
  memset(r, 0, sizeof *r);
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  uint8_t *q = realloc(*p, c);
  if (!q) return PARLEY_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

int parley__ws_reader_feed(parley__ws_reader *r, const void *data, size_t len) {
  if (!r || (len && !data)) return PARLEY_EINVAL;
  if (r->error) return r->error;
  if (r->pos) { /* what was read is gone: the messages handed out before this feed end here */
    memmove(r->in, r->in + r->pos, r->in_len - r->pos);
    r->in_len -= r->pos;
    r->pos = 0;
  }
  if (!len) return 0;
  int rc = grow(&r->in, &r->in_cap, r->in_len + len);
  if (rc < 0) return r->error = rc;
  memcpy(r->in + r->in_len, data, len);
  r->in_len += len;
  return 0;
}

int parley__ws_reader_next(parley__ws_reader *r, parley__ws_message *m) {
  if (!r || !m) return PARLEY_EINVAL;
  if (r->error) return r->error;
  for (;;) {
    if (r->in_len - r->pos < 2) return 0;
    parley__ws_frame f;
    /* A continuation may add at most what the open message has left. */
    size_t room = r->msg_opcode ? r->max - r->msg_len : r->max;
    int h = parley__ws_decode(r->in + r->pos, r->in_len - r->pos, is_control(r->in[r->pos] & 0x0F) ? PARLEY__WS_CONTROL_MAX : room, &f);
    if (h <= 0) return h < 0 ? (r->error = h) : 0;
    if (f.masked != r->masked) return r->error = PARLEY_EPARSE;
    uint8_t *p = r->in + r->pos + h;
    size_t n = (size_t)f.len;
    if (f.masked)
      for (size_t k = 0; k < n; k++) p[k] ^= f.mask[k & 3];
    r->pos += (size_t)h + n;
    if (is_control(f.opcode)) {
      *m = (parley__ws_message){.opcode = f.opcode, .data = p, .len = n};
      return 1;
    }
    if (f.opcode == PARLEY__WS_CONTINUATION) {
      if (!r->msg_opcode) return r->error = PARLEY_EPARSE;
      int rc = grow(&r->msg, &r->msg_cap, r->msg_len + n);
      if (rc < 0) return r->error = rc;
      if (n) memcpy(r->msg + r->msg_len, p, n);
      r->msg_len += n;
      if (!f.fin) continue;
      *m = (parley__ws_message){.opcode = r->msg_opcode, .data = r->msg, .len = r->msg_len};
      r->msg_opcode = 0;
      return 1;
    }
    if (r->msg_opcode) return r->error = PARLEY_EPARSE; /* 5.4: fragments of two messages interleaved */
    if (f.fin) {
      *m = (parley__ws_message){.opcode = f.opcode, .data = p, .len = n};
      return 1;
    }
    int rc = grow(&r->msg, &r->msg_cap, n);
    if (rc < 0) return r->error = rc;
    if (n) memcpy(r->msg, p, n);
    r->msg_len = n;
    r->msg_opcode = f.opcode;
  }
}
