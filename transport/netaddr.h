/* netaddr.h: a compact, value-type UDP address (IPv4 or IPv6 plus port) used by the ICE agent, the UDP
 * sockets and the simulated network. Plain data: copy it freely; all helpers are pure, any thread,
 * real-time safe (no allocation, no system calls). */
#ifndef PARLEY_TRANSPORT_NETADDR_H
#define PARLEY_TRANSPORT_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__NETADDR_V4 4
#define PARLEY__NETADDR_V6 6
/* Longest text form: "[" v6 "]:" port, plus NUL. */
#define PARLEY__NETADDR_STRLEN 56

typedef struct parley__netaddr {
  uint8_t family; /* PARLEY__NETADDR_V4 or _V6; 0 = unset */
  uint16_t port;  /* host byte order */
  uint8_t ip[16]; /* network byte order; IPv4 uses ip[0..3], the rest is zero */
} parley__netaddr;

/* Parses a numeric IPv4 or IPv6 literal (no brackets, no scope) with a port. 0 or PARLEY_EPARSE. */
int parley__netaddr_from_ip(parley__netaddr *out, const char *ip, uint16_t port);
/* Family, address and port all equal. */
bool parley__netaddr_equal(const parley__netaddr *a, const parley__netaddr *b);
/* Family and address equal, port ignored. */
bool parley__netaddr_same_ip(const parley__netaddr *a, const parley__netaddr *b);
bool parley__netaddr_is_loopback(const parley__netaddr *a);
/* IPv6 fe80::/10. */
bool parley__netaddr_is_link_local(const parley__netaddr *a);
/* "1.2.3.4:5" or "[::1]:5" into buf (PARLEY__NETADDR_STRLEN is enough); returns buf. */
const char *parley__netaddr_str(const parley__netaddr *a, char *buf, size_t cap);

/* Conversion to and from struct sockaddr_storage. `sa` is a struct sockaddr_storage * (void * keeps
 * socket headers out of this header). to_sockaddr returns the sockaddr length or PARLEY_EINVAL;
 * from_sockaddr returns 0 or PARLEY_ENOTSUP for other families. */
int parley__netaddr_to_sockaddr(const parley__netaddr *a, void *sa);
int parley__netaddr_from_sockaddr(parley__netaddr *out, const void *sa);

/* Splits "HOST:PORT" or "[IPV6]:PORT" (RFC 3986 authority rules: an IPv6 literal needs its brackets,
 * brackets are for IPv6 only) into host (NUL-terminated, brackets removed) and port (decimal, 0..65535).
 * The host is not resolved: parley__netaddr_from_ip takes a numeric one, getaddrinfo a name. 0 or
 * PARLEY_EINVAL (no port, an unbracketed IPv6, a host that does not fit host_cap, a bad port). */
int parley__hostport_split(const char *text, char *host, size_t host_cap, uint16_t *port);

#endif
