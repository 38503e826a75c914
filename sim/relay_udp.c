/* relay_udp.c: the relay's socket loop (see relay_udp.h). Owns two non-blocking UDP sockets (one in
 * the meeting-point shape), the relay core and one datagram buffer. One thread at a time; create/free allocate and make system calls, step
 * makes system calls (ppoll, recvfrom, send) but never allocates. */
#define _GNU_SOURCE /* ppoll: a microsecond wait, so forwards are not up to 1 ms late */
#include "sim/relay_udp.h"
#include "transport/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"

#define MAX_READS_PER_STEP 256

struct parley__relay_udp {
  parley__relay *core;
  const parley__clock *clock;
  parley__clock own_clock; /* new_realtime: the monotonic clock, which `clock` then points to */
  int fd_a; /* listen socket, faces A */
  int fd_b; /* connected to B; -1 in the meeting-point shape (B is learned on fd_a) */
  struct sockaddr_storage peer_a, peer_b;
  socklen_t peer_a_len, peer_b_len;
  bool peer_a_known, peer_b_known;
  parley__relay_udp_stats st;
  unsigned char *buf; /* max_datagram + 1: one extra byte detects oversized datagrams */
  size_t buf_cap;
};

static socklen_t addr_len(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return sizeof(struct sockaddr_in);
  if (a->ss_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return 0;
}

static bool same_addr(const struct sockaddr_storage *x, const struct sockaddr_storage *y) {
  if (x->ss_family != y->ss_family) return false;
  if (x->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)x, *b = (const struct sockaddr_in *)y;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (x->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)x, *b = (const struct sockaddr_in6 *)y;
    return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return false;
}

int parley__relay_udp_parse_addr(const char *text, struct sockaddr_storage *out) {
  if (!text || !out) return PARLEY_EINVAL;
  char host[256], port[8];
  uint16_t pn;
  if (!strchr(text, ':')) { /* a bare port: on loopback */
    char full[300];
    snprintf(full, sizeof full, "127.0.0.1:%s", text);
    if (parley__hostport_split(full, host, sizeof host, &pn) != 0) return PARLEY_EINVAL;
  } else if (parley__hostport_split(text, host, sizeof host, &pn) != 0) {
    return PARLEY_EINVAL;
  }
  snprintf(port, sizeof port, "%u", (unsigned)pn);

  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return PARLEY_ENOTFOUND;
  int e = PARLEY_ENOTFOUND;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addrlen <= sizeof *out) {
      memset(out, 0, sizeof *out);
      memcpy(out, ai->ai_addr, ai->ai_addrlen);
      e = 0;
      break;
    }
  }
  freeaddrinfo(res);
  return e;
}

int parley__relay_udp_format_addr(const struct sockaddr *addr, char *buf, size_t cap) {
  if (!addr || !buf || cap == 0) return PARLEY_EINVAL;
  char ip[INET6_ADDRSTRLEN];
  int n;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip)) return PARLEY_EINVAL;
    n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip)) return PARLEY_EINVAL;
    n = snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
  } else {
    return PARLEY_EINVAL;
  }
  return n < 0 || (size_t)n >= cap ? PARLEY_ENOSPC : 0;
}

static int open_udp(int family) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

parley__relay_udp *parley__relay_udp_new(const parley__relay_udp_config *cfg, const parley__clock *clock,
                                         int *err) {
  int e = 0;
  parley__relay_udp *u = NULL;
  bool meet = cfg && cfg->forward.ss_family == AF_UNSPEC; /* no forward address: learn B too */
  if (!cfg || !clock || !clock->now_us || addr_len(&cfg->listen) == 0 || (!meet && addr_len(&cfg->forward) == 0)) {
    e = PARLEY_EINVAL;
  }
  if (e == 0 && !(u = calloc(1, sizeof *u))) e = PARLEY_ENOMEM;
  if (e == 0) {
    u->fd_a = u->fd_b = -1;
    u->clock = clock;
    u->core = parley__relay_new(&cfg->relay, parley__clock_now(clock), &e);
  }
  if (e == 0) {
    u->buf_cap = cfg->relay.max_datagram + 1;
    if (!(u->buf = malloc(u->buf_cap))) e = PARLEY_ENOMEM;
  }
  if (e == 0) {
    u->fd_a = open_udp(cfg->listen.ss_family);
    if (!meet) u->fd_b = open_udp(cfg->forward.ss_family);
    if (u->fd_a < 0 || (!meet && u->fd_b < 0) ||
        bind(u->fd_a, (const struct sockaddr *)&cfg->listen, addr_len(&cfg->listen)) != 0 ||
        (!meet && connect(u->fd_b, (const struct sockaddr *)&cfg->forward, addr_len(&cfg->forward)) != 0)) {
      e = PARLEY_ENETWORK;
    }
  }
  if (e != 0) {
    int saved = errno;
    parley__relay_udp_free(u);
    errno = saved;
    if (err) *err = e;
    return NULL;
  }
  if (err) *err = 0;
  return u;
}

parley__relay_udp *parley__relay_udp_new_realtime(const parley__relay_udp_config *cfg, int *err) {
  parley__clock mono = parley__clock_monotonic();
  parley__relay_udp *u = parley__relay_udp_new(cfg, &mono, err); /* reads the clock only at start */
  if (u) {
    u->own_clock = mono;
    u->clock = &u->own_clock;
  }
  return u;
}

int64_t parley__relay_udp_now(const parley__relay_udp *u) { return u ? parley__clock_now(u->clock) : 0; }

void parley__relay_udp_free(parley__relay_udp *u) {
  if (!u) return;
  if (u->fd_a >= 0) close(u->fd_a);
  if (u->fd_b >= 0) close(u->fd_b);
  parley__relay_free(u->core);
  free(u->buf);
  free(u);
}

static bool nothing_pending(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

/* Reads what the listen socket holds (from A) or the forward socket holds (from B). */
static int read_side(parley__relay_udp *u, parley__relay_dir dir) {
  int n = 0;
  for (int i = 0; i < MAX_READS_PER_STEP; i++) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t got;
    if (dir == PARLEY__RELAY_A2B) {
      got = recvfrom(u->fd_a, u->buf, u->buf_cap, 0, (struct sockaddr *)&from, &from_len);
    } else {
      got = recv(u->fd_b, u->buf, u->buf_cap, 0);
    }
    if (got < 0) {
      if (!nothing_pending(errno)) {
        u->st.recv_errors++;
        continue; /* e.g. ECONNREFUSED queued by an ICMP error: consumed, more may follow */
      }
      break;
    }
    n++;
    parley__relay_dir d = dir;
    if (dir == PARLEY__RELAY_A2B) {
      if (!u->peer_a_known) {
        u->peer_a = from;
        u->peer_a_len = from_len;
        u->peer_a_known = true;
      } else if (same_addr(&u->peer_a, &from)) {
        /* A, as before */
      } else if (u->fd_b < 0 && (!u->peer_b_known || same_addr(&u->peer_b, &from))) {
        u->peer_b = from; /* meeting point: the second source is B */
        u->peer_b_len = from_len;
        u->peer_b_known = true;
        d = PARLEY__RELAY_B2A;
      } else {
        u->st.foreign++;
        continue;
      }
    }
    /* An oversized datagram fills buf_cap = max + 1 bytes: the core counts and refuses it. */
    (void)parley__relay_receive(u->core, d, u->buf, (size_t)got, parley__clock_now(u->clock));
  }
  return n;
}

static int send_due(parley__relay_udp *u) {
  int n = 0;
  for (;;) {
    parley__relay_dir dir;
    int len = parley__relay_pop_due(u->core, parley__clock_now(u->clock), &dir, u->buf, u->buf_cap);
    if (len < 0) break; /* EAGAIN: nothing due (ENOSPC cannot happen: buf holds max_datagram) */
    ssize_t sent;
    if (dir == PARLEY__RELAY_A2B && u->fd_b >= 0) {
      sent = send(u->fd_b, u->buf, (size_t)len, 0);
    } else if (dir == PARLEY__RELAY_A2B && u->peer_b_known) {
      sent = sendto(u->fd_a, u->buf, (size_t)len, 0, (const struct sockaddr *)&u->peer_b, u->peer_b_len);
    } else if (dir == PARLEY__RELAY_B2A && u->peer_a_known) {
      sent = sendto(u->fd_a, u->buf, (size_t)len, 0, (const struct sockaddr *)&u->peer_a, u->peer_a_len);
    } else {
      u->st.undeliverable++;
      continue;
    }
    if (sent < 0) u->st.send_errors++;
    else n++;
  }
  return n;
}

int parley__relay_udp_step(parley__relay_udp *u, int64_t max_wait_us) {
  if (!u || max_wait_us < 0) return PARLEY_EINVAL;
  int64_t wait_us = max_wait_us;
  int64_t due = parley__relay_next_due_us(u->core);
  if (due != INT64_MAX) {
    int64_t until = due - parley__clock_now(u->clock);
    if (until < wait_us) wait_us = until < 0 ? 0 : until;
  }
  if (wait_us > 60000000) wait_us = 60000000;
  struct timespec ts = {.tv_sec = (time_t)(wait_us / 1000000), .tv_nsec = (long)(wait_us % 1000000) * 1000};
  struct pollfd pfd[2] = {{.fd = u->fd_a, .events = POLLIN}, {.fd = u->fd_b, .events = POLLIN}};
  int pr = ppoll(pfd, u->fd_b >= 0 ? 2 : 1, &ts, NULL);
  if (pr < 0) return errno == EINTR ? 0 : PARLEY_ENETWORK;
  int n = 0;
  /* Read A before B, then send: within one step a datagram read earlier is forwarded earlier. */
  if (pfd[0].revents) n += read_side(u, PARLEY__RELAY_A2B);
  if (u->fd_b >= 0 && pfd[1].revents) n += read_side(u, PARLEY__RELAY_B2A);
  n += send_due(u);
  return n;
}

static int local_addr(int fd, struct sockaddr_storage *out) {
  if (!out) return PARLEY_EINVAL;
  socklen_t len = sizeof *out;
  memset(out, 0, sizeof *out);
  return getsockname(fd, (struct sockaddr *)out, &len) == 0 ? 0 : PARLEY_ENETWORK;
}

int parley__relay_udp_listen_addr(const parley__relay_udp *u, struct sockaddr_storage *out) {
  return u ? local_addr(u->fd_a, out) : PARLEY_EINVAL;
}

int parley__relay_udp_forward_local_addr(const parley__relay_udp *u, struct sockaddr_storage *out) {
  return u ? local_addr(u->fd_b >= 0 ? u->fd_b : u->fd_a, out) : PARLEY_EINVAL;
}

const parley__relay *parley__relay_udp_core(const parley__relay_udp *u) { return u ? u->core : NULL; }

void parley__relay_udp_get_stats(const parley__relay_udp *u, parley__relay_udp_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!u) return;
  *out = u->st;
  out->peer_a_known = u->peer_a_known;
  out->peer_b_known = u->fd_b >= 0 || u->peer_b_known;
}
