/* ice_servers.c: the engine config's ICE servers (stun_server, ice_servers: RFC 7064 stun: and RFC 7065
 * turn:/turns: URLs) into the engine's STUN address and TURN servers (engine_internal.h), which every
 * call's transport then uses (call.c, call_turn.c). Owns the TLS trust anchors of turns: servers
 * (e->turn_tls, from turn_ca_file or the system's store). App thread, inside parley_engine_new (and
 * parley_engine_free): a name is resolved here with getaddrinfo, which may block. */
#define _GNU_SOURCE
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "engine/engine_internal.h"
#include "transport/tls_stream.h"

#define DEFAULT_PORT 3478
#define DEFAULT_TLS_PORT 5349 /* RFC 8656 */

/* host (brackets removed) and port from "HOST[:PORT]" or "[V6][:PORT]" ending at end: the port is
 * optional in stun:/turn: URLs (RFC 7064, 7065), dflt when absent; otherwise parley__hostport_split's
 * rules, and port 0 is refused. */
static int split_host(const char *p, const char *end, char *host, size_t cap, uint16_t *port, uint16_t dflt) {
  char text[300];
  size_t n = (size_t)(end - p);
  const char *close = n && *p == '[' ? memchr(p, ']', n) : NULL;
  bool has_port = close ? close + 1 < end && close[1] == ':' : memchr(p, ':', n) != NULL;
  if (n + sizeof ":65535" > sizeof text) return PARLEY_EINVAL;
  if (has_port) snprintf(text, sizeof text, "%.*s", (int)n, p);
  else snprintf(text, sizeof text, "%.*s:%u", (int)n, p, (unsigned)dflt);
  if (parley__hostport_split(text, host, cap, port) != 0 || *port == 0) return PARLEY_EINVAL;
  return 0;
}

static int resolve(const char *host, uint16_t port, parley__netaddr *out) {
  if (parley__netaddr_from_ip(out, host, port) == 0) return 0;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return PARLEY_ENOTFOUND;
  int r = PARLEY_ENOTFOUND; /* IPv4 first: every call has an IPv4 socket to allocate from */
  for (int pass = 0; pass < 2 && r != 0; pass++)
    for (struct addrinfo *ai = res; ai && r != 0; ai = ai->ai_next)
      if ((ai->ai_family == AF_INET) == (pass == 0) && parley__netaddr_from_sockaddr(out, ai->ai_addr) == 0) {
        out->port = port;
        r = 0;
      }
  freeaddrinfo(res);
  return r;
}

/* One URL: 0 with *is_turn, srv's tcp, tls, host and addr filled, or an error. */
static int parse_url(const char *url, bool *is_turn, parley__turn_server *srv) {
  srv->tcp = srv->tls = false;
  const char *p;
  if (strncasecmp(url, "stun:", 5) == 0) {
    *is_turn = false;
    p = url + 5;
  } else if (strncasecmp(url, "turn:", 5) == 0) {
    *is_turn = true;
    p = url + 5;
  } else if (strncasecmp(url, "turns:", 6) == 0) {
    *is_turn = srv->tcp = srv->tls = true; /* TLS over TCP (RFC 7065 3: turns: defaults to tcp) */
    p = url + 6;
  } else if (strncasecmp(url, "stuns:", 6) == 0) {
    return PARLEY_ENOTSUP; /* a server-reflexive address over TLS is of no use to a UDP call */
  } else {
    return PARLEY_EINVAL;
  }
  const char *q = strchr(p, '?');
  const char *end = q ? q : p + strlen(p);
  if (q) { /* RFC 7065: only turn: and turns: have a query, and only "transport" */
    if (!*is_turn || strncasecmp(q + 1, "transport=", 10) != 0) return PARLEY_EINVAL;
    const char *t = q + 11;
    bool tcp = strcasecmp(t, "tcp") == 0;
    if (!tcp && strcasecmp(t, "udp") != 0) return PARLEY_EINVAL;
    if (srv->tls && !tcp) return PARLEY_ENOTSUP; /* turns: over DTLS */
    srv->tcp = tcp;
  }
  uint16_t port;
  int r = split_host(p, end, srv->host, sizeof srv->host, &port, srv->tls ? DEFAULT_TLS_PORT : DEFAULT_PORT);
  return r ? r : resolve(srv->host, port, &srv->addr);
}

static int add_turn(parley_engine *e, const parley_ice_server *s, const parley__turn_server *srv) {
  if (!s->username || !s->credential || !s->username[0] || !s->credential[0]) return PARLEY_EINVAL;
  if (e->n_turn >= PARLEY_ENGINE_MAX_TURN_SERVERS) return PARLEY_EINVAL;
  parley__turn_server *t = &e->turn[e->n_turn];
  if (strlen(s->username) >= sizeof t->username || strlen(s->credential) >= sizeof t->password)
    return PARLEY_EINVAL;
  *t = *srv;
  snprintf(t->username, sizeof t->username, "%s", s->username);
  snprintf(t->password, sizeof t->password, "%s", s->credential);
  e->n_turn++;
  return 0;
}

int parley__engine_ice_servers(parley_engine *e, const parley_engine_config *cfg) {
  if (cfg->stun_server) {
    char host[64];
    uint16_t port;
    if (parley__hostport_split(cfg->stun_server, host, sizeof host, &port) != 0 || port == 0 ||
        parley__netaddr_from_ip(&e->stun, host, port) != 0)
      return PARLEY_EINVAL;
    e->has_stun = true;
  }
  if (cfg->ice_server_count < 0 || cfg->ice_server_count > PARLEY_ENGINE_MAX_ICE_SERVERS ||
      (cfg->ice_server_count > 0 && !cfg->ice_servers))
    return PARLEY_EINVAL;
  for (int i = 0; i < cfg->ice_server_count; i++) {
    const parley_ice_server *s = &cfg->ice_servers[i];
    if (!s->url) return PARLEY_EINVAL;
    bool is_turn;
    parley__turn_server srv;
    memset(&srv, 0, sizeof srv);
    int r = parse_url(s->url, &is_turn, &srv);
    if (r == 0 && is_turn) r = add_turn(e, s, &srv);
    if (r) return r;
    if (!is_turn && !e->has_stun) {
      e->stun = srv.addr;
      e->has_stun = true;
    }
  }
  /* The CA file is checked whether or not a turns: server uses it: a bad one is a mistake either way. */
  bool tls = cfg->turn_ca_file != NULL;
  for (int i = 0; i < e->n_turn; i++) tls = tls || e->turn[i].tls;
  if (tls) {
    int err = PARLEY_ECRYPTO;
    e->turn_tls = parley__tls_ctx_new(cfg->turn_ca_file, &err);
    if (!e->turn_tls) return err;
  }
  if (cfg->ice_transport_policy != PARLEY_ICE_POLICY_ALL && cfg->ice_transport_policy != PARLEY_ICE_POLICY_RELAY)
    return PARLEY_EINVAL;
  e->relay_only = cfg->ice_transport_policy == PARLEY_ICE_POLICY_RELAY;
  if (e->relay_only && e->n_turn == 0) return PARLEY_EINVAL;
  return 0;
}

void parley__engine_ice_servers_free(parley_engine *e) {
  parley__tls_ctx_free(e->turn_tls);
  e->turn_tls = NULL;
  OPENSSL_cleanse(e->turn, sizeof e->turn);
}
