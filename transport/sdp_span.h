/* sdp_span.h: (pointer, length) text spans for the SDP parser (sdp.c, sdp_webrtc.c): tokens, splits,
 * bounded number parsing and checked copies (input need not be NUL-terminated); and the checks the
 * writers make on C strings (is_token, is_text). Stateless; any thread.
 */
#ifndef PARLEY_TRANSPORT_SDP_SPAN_H
#define PARLEY_TRANSPORT_SDP_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct span {
  const char *p;
  size_t n;
} span;

static inline bool is_space(char c) { return c == ' ' || c == '\t'; }
static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

static inline span trim(span s) {
  while (s.n && is_space(s.p[0])) s.p++, s.n--;
  while (s.n && is_space(s.p[s.n - 1])) s.n--;
  return s;
}

/* Next space-separated token of *rest; false when none is left. */
static inline bool next_token(span *rest, span *tok) {
  while (rest->n && is_space(rest->p[0])) rest->p++, rest->n--;
  if (rest->n == 0) return false;
  size_t i = 0;
  while (i < rest->n && !is_space(rest->p[i])) i++;
  tok->p = rest->p;
  tok->n = i;
  rest->p += i;
  rest->n -= i;
  return true;
}

/* Split s at the first c: head before, *tail after (empty when c is absent). */
static inline span split_at(span s, char c, span *tail) {
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] == c) {
      *tail = (span){s.p + i + 1, s.n - i - 1};
      return (span){s.p, i};
    }
  }
  *tail = (span){s.p + s.n, 0};
  return s;
}

static inline bool span_eq(span s, const char *lit) {
  size_t n = strlen(lit);
  return s.n == n && memcmp(s.p, lit, n) == 0;
}

static inline bool span_ieq(span s, const char *lit) {
  size_t n = strlen(lit);
  if (s.n != n) return false;
  for (size_t i = 0; i < n; i++) {
    char a = s.p[i], b = lit[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

static inline bool parse_u64(span s, uint64_t max, uint64_t *out) {
  if (s.n == 0 || s.n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (!is_digit(s.p[i])) return false;
    unsigned d = (unsigned)(s.p[i] - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

static inline bool parse_u32(span s, uint32_t max, uint32_t *out) {
  uint64_t v;
  if (!parse_u64(s, max, &v)) return false;
  *out = (uint32_t)v;
  return true;
}

static inline bool parse_port(span s, uint16_t *out) {
  uint32_t v;
  if (!parse_u32(s, 65535, &v)) return false;
  *out = (uint16_t)v;
  return true;
}

/* Copy s into dst[cap] as a C string; false when it does not fit or holds a NUL. */
static inline bool copy_span(char *dst, size_t cap, span s) {
  if (s.n >= cap || memchr(s.p, '\0', s.n)) return false;
  memcpy(dst, s.p, s.n);
  dst[s.n] = '\0';
  return true;
}

/* A token we write must be non-empty and free of spaces and line breaks. */
static inline bool is_token(const char *s) {
  if (!s || !*s) return false;
  for (; *s; s++)
    if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') return false;
  return true;
}

static inline bool is_text(const char *s) {
  for (; *s; s++)
    if (*s == '\r' || *s == '\n') return false;
  return true;
}

#endif
