/* call_turn.c: a call's relayed candidates (RFC 8656): one TURN allocation per TURN server of the engine
 * (transport/turn.h, sans-IO), made from the call's first host socket of the server's family, which
 * carries everything to and from that server; or, for ?transport=tcp, from a TCP connection of its own
 * (opened here, non-blocking, from that socket's address), whose stream is cut into messages by
 * parley__turn_frame_len and written through a small buffer so that no message goes out in part.
 * Owns the clients and their plumbing: the allocation becomes a local candidate of the agent (parley__ice_add_local_relay) whose datagrams, whatever sends
 * them (ICE checks, consent, DTLS, SRTP), go out wrapped (Send indications, ChannelData once a channel
 * is bound); what the server relays comes back unwrapped, with the peer as its source, to the demux in
 * call.c. Remote candidates get permissions and channels as they arrive; a peer only the agent learns
 * of (peer-reflexive) when it first sends to it. An ICMP error from the server counts against the
 * relayed path. Refreshes run on the engine's clock; hang-up releases the allocation.
 * Threads: the network thread, and app threads setting up or hanging up a call, under eng->lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/call_internal.h"

#define TURN_BUF 2048 /* parley__turn_poll's "always enough" */

static parley__call_relay *by_local(parley_call *c, int local) {
  for (int i = 0; i < c->nrelays; i++)
    if (c->relays[i].local == local && local >= 0) return &c->relays[i];
  return NULL;
}

bool parley__call_turn_is_relay(const parley_call *c, int local) {
  return by_local((parley_call *)c, local) != NULL;
}

/* Writes what the kernel (through TLS, for turns:) takes of the TCP buffer. A TLS stream found over is
 * closed by the next read (tcp_read): not here, inside a send the agent may have made. */
static void tcp_flush(parley__call_relay *r) {
  for (int k = 0; k < 8 && r->wlen > 0 && r->tcp_fd >= 0 && !r->stream_err; k++) {
    ssize_t n = r->tls ? parley__tls_stream_write(r->tls, r->wbuf, r->wlen)
                       : send(r->tcp_fd, r->wbuf, r->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r->tls && n < 0) r->stream_err = (int)n;
    if (n <= 0) return; /* EAGAIN (full, or still connecting); a broken connection shows on the read side */
    memmove(r->wbuf, r->wbuf + n, r->wlen - (size_t)n);
    r->wlen -= (size_t)n;
  }
}

static int to_server(parley_call *c, parley__call_relay *r, const uint8_t *buf, size_t len, parley__udp_error *uerr) {
  if (!r->tcp) return parley__udp_send(&c->socks[r->sock], &r->server, buf, len, uerr);
  if (r->tcp_fd < 0) { /* the server closed or reset the connection: its port is as good as closed */
    if (uerr) uerr->sys_errno = ECONNREFUSED;
    return PARLEY_ENETWORK;
  }
  if (r->wlen + len > sizeof r->wbuf) return PARLEY_EAGAIN; /* the whole message dropped, as UDP would */
  memcpy(r->wbuf + r->wlen, buf, len);
  r->wlen += len;
  tcp_flush(r);
  return (int)len;
}

/* A non-blocking TCP connection to server from base's address (any port): its fd or -1. */
static int tcp_open(const parley__netaddr *base, const parley__netaddr *server) {
  struct sockaddr_storage from, to;
  parley__netaddr b = *base;
  b.port = 0;
  int flen = parley__netaddr_to_sockaddr(&b, &from), tlen = parley__netaddr_to_sockaddr(server, &to);
  if (flen < 0 || tlen < 0) return -1;
  int fd = socket(from.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&from, (socklen_t)flen) != 0 ||
      (connect(fd, (struct sockaddr *)&to, (socklen_t)tlen) != 0 && errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  return fd;
}

static void tcp_close(parley__call_relay *r) {
  parley__tls_stream_free(r->tls); /* a close_notify, if it got that far */
  r->tls = NULL;
  if (r->tcp_fd >= 0) close(r->tcp_fd);
  r->tcp_fd = -1;
  r->rlen = r->wlen = 0;
}

/* Sends what the client has due (bounded: a client has a handful of transactions). */
static void pump(parley_call *c, parley__call_relay *r, int64_t now) {
  uint8_t out[TURN_BUF];
  int n;
  for (int k = 0; k < 4 * PARLEY__TURN_MAX_PEERS && (n = parley__turn_poll(r->turn, now, out, sizeof out)) > 0; k++)
    (void)to_server(c, r, out, (size_t)n, NULL);
}

/* The app learns why a server gave no candidate (W3C icecandidateerror): "turns:HOST:PORT: why". */
static void post_error(parley_call *c, const parley__call_relay *r, int64_t now) {
  const parley__turn_server *ts = &c->eng->turn[r->srv];
  const char *why = r->why[0] ? r->why : parley__turn_error(r->turn);
  bool v6 = strchr(ts->host, ':') != NULL;
  parley__event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_ICE_CANDIDATE_ERROR;
  ev.now_us = now;
  snprintf(ev.message, sizeof ev.message, "%s:%s%s%s:%u%s: %s", ts->tls ? "turns" : "turn", v6 ? "[" : "", ts->host,
           v6 ? "]" : "", (unsigned)ts->addr.port, ts->tls ? "" : ts->tcp ? "?transport=tcp" : "?transport=udp",
           why[0] ? why : "no allocation");
  parley__engine_post(c->eng, c, &ev);
}

/* A finished allocation becomes a candidate; a failed one is given up on. Not from inside an agent
 * callback (it calls into the agent). */
static void settle(parley_call *c, parley__call_relay *r, int64_t now) {
  if (r->settled) return;
  parley__turn_state st = parley__turn_get_state(r->turn);
  if (st == PARLEY__TURN_ALLOCATING) return;
  r->settled = true;
  struct sockaddr_storage rel, map;
  parley__netaddr relayed, mapped;
  if (st == PARLEY__TURN_READY && parley__turn_addresses(r->turn, &rel, &map) == 0 &&
      parley__netaddr_from_sockaddr(&relayed, &rel) == 0 && parley__netaddr_from_sockaddr(&mapped, &map) == 0) {
    /* The relay policy hides this host's address from the peer: raddr 0.0.0.0 rport 0, as browsers do. */
    if (c->eng->relay_only)
      (void)parley__netaddr_from_ip(&mapped, mapped.family == PARLEY__NETADDR_V6 ? "::" : "0.0.0.0", 0);
    r->local = parley__ice_add_local_relay(c->ice, &relayed, &mapped, now);
  }
  if (r->local < 0) {
    parley__ice_relay_given_up(c->ice, now);
    post_error(c, r, now);
  }
}

/* An allocation on server srv of the engine from the call's first live socket of its family (over a
 * TCP or TLS connection of its own from that socket's address for ?transport=tcp and turns:). False
 * with r left dead (no client, no base) when there is no such socket or it could not be started. */
static bool relay_open(parley_call *c, parley__call_relay *r, int srv, int64_t now) {
  const parley_engine *e = c->eng;
  const parley__turn_server *ts = &e->turn[srv];
  memset(r, 0, sizeof *r);
  r->srv = srv;
  r->local = r->sock = r->tcp_fd = -1;
  r->settled = true; /* until there is a client to wait for */
  r->server = ts->addr;
  r->tcp = ts->tcp;
  int base = -1;
  for (int k = 0; k < c->nsocks && base < 0; k++)
    if (c->socks[k].fd >= 0 && c->socks[k].local.family == ts->addr.family) base = k;
  parley__turn_config tc;
  parley__turn_config_init(&tc);
  if (base < 0 || parley__netaddr_to_sockaddr(&ts->addr, &tc.server) < 0) return false;
  memcpy(tc.username, ts->username, sizeof tc.username);
  memcpy(tc.password, ts->password, sizeof tc.password);
  int err;
  tc.stream = ts->tcp;
  if (ts->tcp) tc.rto_ms = 3000; /* TCP retransmits itself: ours only cover a lost connection's start */
  r->tcp_fd = ts->tcp ? tcp_open(&c->socks[base].local, &ts->addr) : -1;
  if (ts->tls && r->tcp_fd >= 0) r->tls = parley__tls_stream_new(e->turn_tls, r->tcp_fd, ts->host, &err);
  bool linked = !ts->tcp || (r->tcp_fd >= 0 && (!ts->tls || r->tls));
  r->turn = linked ? parley__turn_new(&tc, now, &err) : NULL;
  OPENSSL_cleanse(tc.password, sizeof tc.password);
  if (!r->turn) {
    tcp_close(r);
    return false;
  }
  r->sock = base;
  r->base = c->socks[base].local;
  r->settled = false;
  return true;
}

void parley__call_turn_start(parley_call *c, int64_t now) {
  for (int i = 0; i < c->eng->n_turn && c->nrelays < PARLEY_ENGINE_MAX_TURN_SERVERS; i++)
    if (relay_open(c, &c->relays[c->nrelays], i, now)) c->nrelays++; /* none of the server's family: none */
  if (c->nrelays > 0) parley__ice_expect_relays(c->ice, c->nrelays);
}

int parley__call_turn_regather(parley_call *c, int64_t now, int sel, const parley__netaddr *sel_remote,
                               bool *lost_selected) {
  int changed = 0;
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    /* Its base still there: the same socket, not a new one that took the closed one's slot. */
    if (r->turn && c->socks[r->sock].fd >= 0 && parley__netaddr_equal(&c->socks[r->sock].local, &r->base)) continue;
    if (r->local >= 0) {
      if (r->local == sel) {
        /* As for a host socket that went (call_handover.c): the monitor probes and names the cause. */
        (void)parley__ice_liveness_on_socket_error(&c->il, sel, sel_remote, EADDRNOTAVAIL, now);
        if (lost_selected) *lost_selected = true;
      }
      (void)parley__ice_remove_local(c->ice, r->local, now);
    }
    /* The old allocation cannot be released from an address that is gone: the server lets it expire. */
    tcp_close(r);
    parley__turn_free(r->turn);
    if (relay_open(c, r, r->srv, now)) changed++;
  }
  return changed;
}

bool parley__call_turn_send(parley_call *c, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  parley__call_relay *r = by_local(c, local);
  if (!r) return false;
  struct sockaddr_storage peer;
  if (parley__netaddr_to_sockaddr(dst, &peer) < 0) return true;
  int64_t now = now_us(c->eng);
  uint8_t out[TURN_BUF];
  int n = parley__turn_wrap(r->turn, &peer, buf, len, out, sizeof out);
  if (n == PARLEY_ENOTFOUND && parley__turn_add_peer(r->turn, &peer, true, now) == 0) {
    pump(c, r, now); /* the permission first: the server drops data for a peer without one */
    n = parley__turn_wrap(r->turn, &peer, buf, len, out, sizeof out);
  }
  if (n <= 0) return true;
  parley__udp_error uerr;
  if (to_server(c, r, out, (size_t)n, &uerr) == PARLEY_ENETWORK && c->mon)
    (void)parley__ice_liveness_on_socket_error(&c->il, r->local, NULL, uerr.sys_errno, now);
  return true;
}

int parley__call_turn_receive(parley_call *c, int sock, const parley__netaddr *src, uint8_t *buf, size_t n,
                              int64_t now, int *local, parley__netaddr *peer, uint8_t **data, size_t *len) {
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    if (r->tcp || r->sock != sock || !parley__netaddr_equal(src, &r->server)) continue;
    parley__turn_data d;
    int rc = parley__turn_on_packet(r->turn, buf, n, now, &d);
    if (rc == 1) {
      if (r->local < 0 || parley__netaddr_from_sockaddr(peer, &d.peer) != 0) return 0;
      *local = r->local;
      *data = buf + (d.data - buf); /* inside buf: the demux unprotects SRTP in place */
      *len = d.len;
      return 1;
    }
    if (rc == 0) {
      pump(c, r, now);
      settle(c, r, now);
      return 0;
    }
  }
  return PARLEY_ENOTFOUND;
}

bool parley__call_turn_socket_error(parley_call *c, int sock, const parley__udp_error *err, int64_t now) {
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    if (r->tcp || r->sock != sock || !parley__netaddr_equal(&err->peer, &r->server)) continue;
    /* The server is unreachable: so is every peer behind it (no peer filter). */
    if (r->local >= 0 && c->mon)
      (void)parley__ice_liveness_on_socket_error(&c->il, r->local, NULL, err->sys_errno, now);
    return true;
  }
  return false;
}

void parley__call_turn_permit(parley_call *c, const parley__netaddr *peer, int64_t now) {
  struct sockaddr_storage sa;
  if (parley__netaddr_to_sockaddr(peer, &sa) < 0) return;
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    if (r->server.family != peer->family) continue;
    (void)parley__turn_add_peer(r->turn, &sa, true, now); /* ENOSPC: the peer's data waits for a send */
    pump(c, r, now);
  }
}

/* The connection broke: the relayed path is gone (reported like an ICMP error on it), or the allocation
 * never was. */
static void tcp_lost(parley_call *c, parley__call_relay *r, int err, int64_t now) {
  tcp_close(r);
  if (r->local >= 0 && c->mon) (void)parley__ice_liveness_on_socket_error(&c->il, r->local, NULL, err, now);
  /* Not allocated yet: given up on. Allocated: what goes on it now fails (to_server), as to a closed port. */
  if (parley__turn_get_state(r->turn) == PARLEY__TURN_ALLOCATING) (void)parley__turn_close(r->turn, now);
}

/* TLS's part of a read: the count, 0 for nothing now, or -1 with the stream over (*err, and why). */
static ssize_t tls_recv(parley__call_relay *r, int *err) {
  int n = r->stream_err ? r->stream_err : parley__tls_stream_read(r->tls, r->rbuf + r->rlen, sizeof r->rbuf - r->rlen);
  if (n > 0 || n == PARLEY_EAGAIN) return n > 0 ? n : 0;
  snprintf(r->why, sizeof r->why, "%s", parley__tls_stream_error(r->tls));
  *err = n == PARLEY_ENETWORK ? ECONNRESET : EPROTO;
  return -1;
}

/* Reads the TCP stream and hands each whole message to the client (bounded per service). */
static void tcp_read(parley_call *c, parley__call_relay *r, int64_t now) {
  for (int k = 0; k < 64 && r->tcp_fd >= 0; k++) {
    if (r->rlen == sizeof r->rbuf) { /* a message longer than any we take: out of step */
      tcp_lost(c, r, EPROTO, now);
      return;
    }
    int err = 0;
    ssize_t n;
    if (r->tls) {
      if ((n = tls_recv(r, &err)) == 0) return;
    } else {
      n = recv(r->tcp_fd, r->rbuf + r->rlen, sizeof r->rbuf - r->rlen, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      err = n == 0 ? ECONNRESET : errno;
    }
    if (n <= 0) {
      if (!r->why[0]) snprintf(r->why, sizeof r->why, "connection %s", strerror(err));
      tcp_lost(c, r, err, now);
      return;
    }
    r->rlen += (size_t)n;
    size_t off = 0;
    int len;
    while ((len = parley__turn_frame_len(r->rbuf + off, r->rlen - off)) > 0) {
      parley__turn_data d;
      int rc = parley__turn_on_packet(r->turn, r->rbuf + off, (size_t)len, now, &d);
      parley__netaddr peer;
      if (rc == 1 && r->local >= 0 && parley__netaddr_from_sockaddr(&peer, &d.peer) == 0)
        parley__call_demux(c, r->local, &peer, r->rbuf + off + (d.data - (r->rbuf + off)), d.len, now);
      else if (rc == 0)
        settle(c, r, now);
      off += (size_t)len;
    }
    if (len < 0) { /* out of step: nothing after this can be trusted */
      tcp_lost(c, r, EPROTO, now);
      return;
    }
    memmove(r->rbuf, r->rbuf + off, r->rlen - off);
    r->rlen -= off;
  }
}

void parley__call_turn_service(parley_call *c, int64_t now) {
  PARLEY__ENGINE_LOCKED(c->eng);
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    tcp_read(c, r, now);
    if (parley__turn_next_timeout(r->turn) <= now) pump(c, r, now);
    tcp_flush(r);
    settle(c, r, now);
  }
}

int parley__call_turn_fds(const parley_call *c, int *fds, int cap) {
  int n = 0;
  for (int i = 0; i < c->nrelays && n < cap; i++)
    if (c->relays[i].tcp_fd >= 0) fds[n++] = c->relays[i].tcp_fd;
  return n;
}

int64_t parley__call_turn_deadline(const parley_call *c) {
  int64_t d = INT64_MAX;
  for (int i = 0; i < c->nrelays; i++) {
    int64_t t = parley__turn_next_timeout(c->relays[i].turn);
    if (t < d) d = t;
  }
  return d;
}

void parley__call_turn_close(parley_call *c, int64_t now) {
  for (int i = 0; i < c->nrelays; i++) {
    parley__call_relay *r = &c->relays[i];
    if (r->turn && c->socks[r->sock].fd >= 0 && parley__turn_close(r->turn, now) == 0) pump(c, r, now);
    tcp_close(r); /* the release is in the kernel's buffer: close() still sends it */
    parley__turn_free(r->turn);
    r->turn = NULL;
  }
  c->nrelays = 0;
}
