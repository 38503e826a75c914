/* netaddr.c: the value-type UDP address (see netaddr.h). Stateless, pure functions. */
#define _POSIX_C_SOURCE 200809L
#include "transport/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "parley/parley.h"

int parley__netaddr_from_ip(parley__netaddr *out, const char *ip, uint16_t port) {
  if (!out || !ip) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, ip, out->ip) == 1) {
    out->family = PARLEY__NETADDR_V4;
  } else if (inet_pton(AF_INET6, ip, out->ip) == 1) {
    out->family = PARLEY__NETADDR_V6;
  } else {
    memset(out, 0, sizeof *out);
    return PARLEY_EPARSE;
  }
  out->port = port;
  return 0;
}

static size_t ip_len(const parley__netaddr *a) { return a->family == PARLEY__NETADDR_V4 ? 4 : 16; }

bool parley__netaddr_same_ip(const parley__netaddr *a, const parley__netaddr *b) {
  return a->family == b->family && a->family != 0 && memcmp(a->ip, b->ip, ip_len(a)) == 0;
}

bool parley__netaddr_equal(const parley__netaddr *a, const parley__netaddr *b) {
  return parley__netaddr_same_ip(a, b) && a->port == b->port;
}

bool parley__netaddr_is_loopback(const parley__netaddr *a) {
  if (a->family == PARLEY__NETADDR_V4) return a->ip[0] == 127;
  if (a->family != PARLEY__NETADDR_V6) return false;
  static const uint8_t one[16] = {[15] = 1};
  return memcmp(a->ip, one, 16) == 0;
}

bool parley__netaddr_is_link_local(const parley__netaddr *a) {
  return a->family == PARLEY__NETADDR_V6 && a->ip[0] == 0xfe && (a->ip[1] & 0xc0) == 0x80;
}

const char *parley__netaddr_str(const parley__netaddr *a, char *buf, size_t cap) {
  if (!buf || cap == 0) return buf;
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a && a->family == PARLEY__NETADDR_V4) inet_ntop(AF_INET, a->ip, ip, sizeof ip);
  if (a && a->family == PARLEY__NETADDR_V6) inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
  if (a && a->family == PARLEY__NETADDR_V6)
    snprintf(buf, cap, "[%s]:%u", ip, (unsigned)a->port);
  else
    snprintf(buf, cap, "%s:%u", ip, a ? (unsigned)a->port : 0u);
  return buf;
}

int parley__netaddr_to_sockaddr(const parley__netaddr *a, void *sa) {
  if (!a || !sa) return PARLEY_EINVAL;
  memset(sa, 0, sizeof(struct sockaddr_storage));
  if (a->family == PARLEY__NETADDR_V4) {
    struct sockaddr_in *s4 = sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a->port);
    memcpy(&s4->sin_addr, a->ip, 4);
    return (int)sizeof *s4;
  }
  if (a->family == PARLEY__NETADDR_V6) {
    struct sockaddr_in6 *s6 = sa;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a->port);
    memcpy(&s6->sin6_addr, a->ip, 16);
    return (int)sizeof *s6;
  }
  return PARLEY_EINVAL;
}

int parley__netaddr_from_sockaddr(parley__netaddr *out, const void *sa) {
  if (!out || !sa) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  const struct sockaddr *s = sa;
  if (s->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = sa;
    out->family = PARLEY__NETADDR_V4;
    out->port = ntohs(s4->sin_port);
    memcpy(out->ip, &s4->sin_addr, 4);
    return 0;
  }
  if (s->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = sa;
    /* A v4-mapped v6 source (dual-stack socket) is reported as plain IPv4. */
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (memcmp(&s6->sin6_addr, mapped, 12) == 0) {
      out->family = PARLEY__NETADDR_V4;
      memcpy(out->ip, (const uint8_t *)&s6->sin6_addr + 12, 4);
    } else {
      out->family = PARLEY__NETADDR_V6;
      memcpy(out->ip, &s6->sin6_addr, 16);
    }
    out->port = ntohs(s6->sin6_port);
    return 0;
  }
  return PARLEY_ENOTSUP;
}

int parley__hostport_split(const char *text, char *host, size_t host_cap, uint16_t *port) {
  if (!text || !host || host_cap == 0 || !port) return PARLEY_EINVAL;
  const char *h, *p;
  size_t hl;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':') return PARLEY_EINVAL;
    h = text + 1;
    hl = (size_t)(close - h);
    if (!memchr(h, ':', hl)) return PARLEY_EINVAL; /* brackets are for IPv6 literals only */
    p = close + 2;
  } else {
    const char *colon = strchr(text, ':');
    if (!colon || strchr(colon + 1, ':')) return PARLEY_EINVAL; /* no port, or a bare IPv6 */
    h = text;
    hl = (size_t)(colon - text);
    p = colon + 1;
  }
  if (hl == 0 || hl >= host_cap || p[0] == '\0' || strlen(p) > 5) return PARLEY_EINVAL;
  long pn = 0;
  for (const char *q = p; *q; q++) {
    if (*q < '0' || *q > '9') return PARLEY_EINVAL;
    pn = pn * 10 + (*q - '0');
  }
  if (pn > 65535) return PARLEY_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (uint16_t)pn;
  return 0;
}
