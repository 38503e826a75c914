/* sdp_via.c: routing a call through a relay by its description (see sdp_via.h). Owns nothing; plain
 * string work on the caller's buffers. */
#define _POSIX_C_SOURCE 200809L
#include "sim/sdp_via.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/netaddr.h"

/* Appends n bytes to out at *len; false when it would not fit (with the NUL). */
static bool put(char *out, size_t cap, size_t *len, const char *s, size_t n) {
  if (*len + n + 1 > cap) return false;
  memcpy(out + *len, s, n);
  *len += n;
  out[*len] = '\0';
  return true;
}

/* Splits a line (without its end) into space-separated fields; returns how many (at most max). */
static int fields(const char *line, size_t n, const char **f, size_t *fl, int max) {
  int k = 0;
  size_t i = 0;
  while (i < n && k < max) {
    while (i < n && line[i] == ' ') i++;
    if (i >= n) break;
    f[k] = line + i;
    while (i < n && line[i] != ' ') i++;
    fl[k] = (size_t)(line + i - f[k]);
    k++;
  }
  return k;
}

static bool starts(const char *s, size_t n, const char *prefix) {
  size_t p = strlen(prefix);
  return n >= p && memcmp(s, prefix, p) == 0;
}

/* 4 or 6: the family of a numeric address; 0 for anything else. */
static int ip_family(const char *ip) {
  struct in6_addr a;
  if (inet_pton(AF_INET, ip, &a) == 1) return 4;
  return inet_pton(AF_INET6, ip, &a) == 1 ? 6 : 0;
}

int parley__via_sdp_rewrite(const char *sdp, const char *ip, int port, char *out, size_t cap) {
  if (!sdp || !ip || !out || cap == 0 || port <= 0 || port > 65535 || !ip_family(ip)) return PARLEY_EINVAL;
  const char *c_line = ip_family(ip) == 4 ? "c=IN IP4 " : "c=IN IP6 ";
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  size_t len = 0;
  int rewritten = 0;
  out[0] = '\0';
  const char *p = sdp;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t full = nl ? (size_t)(nl - p) + 1 : strlen(p);
    size_t n = full;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) n--;
    const char *end = p + n; /* the line end (CRLF/LF) is copied as it was */
    const char *f[12];
    size_t fl[12];
    bool ok = true;
    if (starts(p, n, "a=candidate:")) {
      /* a=candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ ... */
      int k = fields(p, n, f, fl, 12);
      if (k >= 6) {
        ok = put(out, cap, &len, p, (size_t)(f[4] - p)) && put(out, cap, &len, ip, strlen(ip)) &&
             put(out, cap, &len, " ", 1) && put(out, cap, &len, ports, strlen(ports)) &&
             put(out, cap, &len, f[5] + fl[5], (size_t)(p + full - (f[5] + fl[5])));
        rewritten++;
      } else {
        ok = put(out, cap, &len, p, full);
      }
    } else if (starts(p, n, "c=IN IP")) {
      ok = put(out, cap, &len, c_line, 9) && put(out, cap, &len, ip, strlen(ip)) &&
           put(out, cap, &len, end, full - n);
    } else if (starts(p, n, "m=audio ")) {
      int k = fields(p, n, f, fl, 3);
      ok = k >= 3 && put(out, cap, &len, "m=audio ", 8) && put(out, cap, &len, ports, strlen(ports)) &&
           put(out, cap, &len, f[1] + fl[1], (size_t)(p + full - (f[1] + fl[1])));
    } else {
      ok = put(out, cap, &len, p, full);
    }
    if (!ok) return PARLEY_ENOSPC;
    p += full;
  }
  return rewritten > 0 ? (int)len : PARLEY_EPARSE;
}

int parley__via_split_hostport(const char *text, char *ip, size_t ip_cap, int *port) {
  if (!text || !ip || ip_cap < PARLEY__VIA_IP_MAX || !port) return PARLEY_EINVAL;
  char host[PARLEY__VIA_IP_MAX];
  uint16_t p;
  /* parley__hostport_split keeps brackets for IPv6; numeric addresses only here. */
  if (parley__hostport_split(text, host, sizeof host, &p) != 0 || ip_family(host) != (text[0] == '[' ? 6 : 4))
    return PARLEY_EINVAL;
  snprintf(ip, ip_cap, "%s", host);
  *port = p;
  return 0;
}

/* The first UDP candidate of sdp whose address is of family fam (4 or 6). */
static int first_candidate(const char *sdp, int fam, char *ip, size_t ip_cap, int *port) {
  for (const char *p = sdp; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    while (n > 0 && p[n - 1] == '\r') n--;
    const char *f[8];
    size_t fl[8];
    if (starts(p, n, "a=candidate:") && fields(p, n, f, fl, 8) >= 6 && fl[2] == 3 &&
        strncasecmp(f[2], "udp", 3) == 0 && fl[4] < PARLEY__VIA_IP_MAX) {
      char addr[PARLEY__VIA_IP_MAX];
      memcpy(addr, f[4], fl[4]);
      addr[fl[4]] = '\0';
      long pt = strtol(f[5], NULL, 10);
      if (ip_family(addr) == fam && pt > 0 && pt <= 65535) {
        snprintf(ip, ip_cap, "%s", addr);
        *port = (int)pt;
        return 0;
      }
    }
    if (!nl) break;
    p = nl + 1;
  }
  return PARLEY_ENOTFOUND;
}

int parley__via_first_candidate(const char *sdp, char *ip, size_t ip_cap, int *port) {
  if (!sdp || !ip || ip_cap < PARLEY__VIA_IP_MAX || !port) return PARLEY_EINVAL;
  int rc = first_candidate(sdp, 4, ip, ip_cap, port);
  return rc == 0 ? 0 : first_candidate(sdp, 6, ip, ip_cap, port);
}
