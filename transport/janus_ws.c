/* janus_ws.c: the Janus client's WebSocket transport (see janus_ws.h): the TCP connection, the RFC 6455
 * framing (transport/websocket.h) around Janus's JSON messages, and the reader thread, which owns
 * reading, pings, keepalives and hands each message either to the request waiting for it (matched by
 * transaction) or to the message function. App threads write their own requests (under wmu, bounded by
 * SO_SNDTIMEO) and wait on a condition variable. Nothing here is real-time safe.
 *
 * Why this transport: Janus destroys a session as soon as the WebSocket it came on closes
 * (janus_transport_gone; reclaim_session_timeout is 0 by default), and the kernel closes a killed
 * process's TCP connection at once, so its room's others see it leave within a round trip instead of
 * after session_timeout. */
#define _GNU_SOURCE
#include "transport/janus_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "parley/parley.h"
#include "transport/websocket.h"

#define MESSAGE_MAX (4u << 20) /* bytes of one message from Janus kept, as over HTTP */
#define PROTOCOL "janus-protocol"
#define KA_TX "parley-ka-"

typedef struct waiter {
  const char *tx;
  json_t *reply;
  struct waiter *next;
} waiter;

struct parley__janus_ws {
  int fd, wake;
  pthread_t thread;
  bool thread_started;
  atomic_bool stop;
  pthread_mutex_t mu; /* waiters, dead, why */
  pthread_cond_t cond;
  waiter *waiters;
  bool dead;
  char why[160];
  pthread_mutex_t wmu;        /* writes to fd */
  pthread_mutex_t deliver_mu; /* held while fn runs; quiet takes it */
  bool quiet;
  parley__janus_ws_fn fn; /* set once by start, read by the thread under deliver_mu */
  void *user;
  uint64_t session;
  int keepalive_ms;
  unsigned ka_tx;
  parley__ws_reader reader;
};

static int64_t now_ms(void) {
  parley__clock c = parley__clock_monotonic();
  return parley__clock_now(&c) / 1000;
}

static void say(char *err, size_t cap, const char *fmt, const char *a, const char *b) {
  if (err && cap) snprintf(err, cap, fmt, a, b);
}

/* Marks the connection failed (first reason kept) and wakes every waiter and the thread. */
static void fail(parley__janus_ws *ws, const char *why) {
  pthread_mutex_lock(&ws->mu);
  if (!ws->dead) snprintf(ws->why, sizeof ws->why, "%s", why);
  ws->dead = true;
  pthread_cond_broadcast(&ws->cond);
  pthread_mutex_unlock(&ws->mu);
  shutdown(ws->fd, SHUT_RDWR);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return PARLEY_ENETWORK; /* includes SO_SNDTIMEO running out */
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One masked frame (a fresh masking key each, RFC 6455 5.3). */
static int send_frame(parley__janus_ws *ws, int opcode, const void *payload, size_t len) {
  uint8_t mask[4];
  if (RAND_bytes(mask, sizeof mask) != 1) return PARLEY_ECRYPTO;
  uint8_t small[PARLEY__WS_HEADER_MAX + PARLEY__WS_CONTROL_MAX];
  uint8_t *buf = len <= PARLEY__WS_CONTROL_MAX ? small : malloc(len + PARLEY__WS_HEADER_MAX);
  if (!buf) return PARLEY_ENOMEM;
  int n = parley__ws_encode(buf, len + PARLEY__WS_HEADER_MAX, opcode, true, mask, payload, len);
  pthread_mutex_lock(&ws->wmu);
  int rc = n < 0 ? n : write_all(ws->fd, buf, (size_t)n);
  pthread_mutex_unlock(&ws->wmu);
  if (buf != small) free(buf);
  if (rc == PARLEY_ENETWORK) fail(ws, "sending to Janus failed");
  return rc;
}

/* ---- connection and opening handshake (on open's thread) ---- */

/* Splits "ws://host[:port][/path]" into host, port and path. */
static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap, const char **path) {
  if (strncmp(url, "ws://", 5) != 0) return PARLEY_EINVAL;
  const char *h = url + 5, *slash = strchr(h, '/');
  const char *end = slash ? slash : h + strlen(h);
  *path = slash ? slash : "/";
  const char *colon;
  if (*h == '[') { /* [v6]:port */
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (!close) return PARLEY_EINVAL;
    colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    if ((size_t)(close - h - 1) >= hcap) return PARLEY_EINVAL;
    snprintf(host, hcap, "%.*s", (int)(close - h - 1), h + 1);
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    const char *he = colon ? colon : end;
    if ((size_t)(he - h) >= hcap) return PARLEY_EINVAL;
    snprintf(host, hcap, "%.*s", (int)(he - h), h);
  }
  if (!*host) return PARLEY_EINVAL;
  if (colon && (size_t)(end - colon - 1) >= pcap) return PARLEY_EINVAL;
  snprintf(port, pcap, "%.*s", colon ? (int)(end - colon - 1) : 2, colon ? colon + 1 : "80");
  return *port ? 0 : PARLEY_EINVAL;
}

/* A connected blocking TCP socket to host:port within deadline, or -1 (err says why). */
static int dial(const char *host, const char *port, int64_t deadline, char *err, size_t cap) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int g = getaddrinfo(host, port, &hints, &res);
  if (g != 0) {
    say(err, cap, "Janus %s: %s", host, gai_strerror(g));
    return -1;
  }
  int fd = -1;
  const char *why = "no address";
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int64_t left = deadline - now_ms();
      int e = 0;
      socklen_t el = sizeof e;
      if (left > 0 && poll(&p, 1, (int)left) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
        rc = 0;
      else
        errno = e ? e : ETIMEDOUT;
    }
    if (rc < 0) {
      why = strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    say(err, cap, "Janus %s: %s", host, why);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Sends the upgrade request and checks the response; bytes after it go to the reader. */
static int handshake(parley__janus_ws *ws, const char *hostport, const char *path, int64_t deadline, char *err,
                     size_t cap) {
  char key[PARLEY__WS_KEY_LEN + 1], req[1024];
  int n = parley__ws_key(key);
  if (n == 0) n = parley__ws_request(req, sizeof req, hostport, path, key, PROTOCOL);
  if (n < 0) return n == PARLEY_ENOSPC ? PARLEY_EINVAL : n;
  if (write_all(ws->fd, (const uint8_t *)req, (size_t)n) < 0) {
    say(err, cap, "Janus %s: %s", hostport, "sending the WebSocket upgrade failed");
    return PARLEY_ENETWORK;
  }
  char resp[PARLEY__WS_RESPONSE_MAX];
  size_t got = 0;
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd p = {.fd = ws->fd, .events = POLLIN};
    ssize_t r = left > 0 && poll(&p, 1, (int)left) == 1 ? recv(ws->fd, resp + got, sizeof resp - got, 0) : -1;
    if (r <= 0) {
      say(err, cap, "Janus %s: %s", hostport, r == 0 ? "closed before the WebSocket upgrade" : "no WebSocket upgrade in time");
      return PARLEY_ENETWORK;
    }
    got += (size_t)r;
    int h = parley__ws_response(resp, got, key, PROTOCOL);
    if (h < 0) {
      say(err, cap, "Janus %s: %s", hostport,
          h == PARLEY_EAUTH ? "wrong Sec-WebSocket-Accept or subprotocol" : "no WebSocket upgrade (is this Janus's ws port?)");
      return PARLEY_ENETWORK;
    }
    if (h > 0) return parley__ws_reader_feed(&ws->reader, resp + h, got - (size_t)h);
  }
}

/* ---- the reader thread ---- */

/* One text message: a waiting request's answer, a late answer (dropped), or fn's. */
static void on_text(parley__janus_ws *ws, const uint8_t *data, size_t len) {
  json_t *root = json_loadb((const char *)data, len, 0, NULL);
  const char *tx = json_string_value(json_object_get(root, "transaction"));
  const char *what = json_string_value(json_object_get(root, "janus"));
  bool answer = tx && what && strcmp(what, "event") != 0;
  if (answer) {
    pthread_mutex_lock(&ws->mu);
    waiter *w = ws->waiters;
    while (w && strcmp(w->tx, tx) != 0) w = w->next;
    if (w && !w->reply) {
      w->reply = json_incref(root);
      pthread_cond_broadcast(&ws->cond);
    }
    pthread_mutex_unlock(&ws->mu);
    /* Answers to nobody: a late one is dropped, but a keepalive's (its error: the session is gone) and
     * what Janus sends unasked go on. */
    if (w || (strncmp(tx, KA_TX, sizeof KA_TX - 1) != 0 && strcmp(what, "error") == 0)) answer = true;
    else answer = false;
  }
  json_decref(root);
  if (answer) return;
  pthread_mutex_lock(&ws->deliver_mu);
  if (ws->fn && !ws->quiet) ws->fn((const char *)data, len, NULL, ws->user);
  pthread_mutex_unlock(&ws->deliver_mu);
}

/* Reads what the socket has and handles every complete message. false once the connection is over. */
static bool read_some(parley__janus_ws *ws) {
  uint8_t buf[16384];
  ssize_t r = recv(ws->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (r <= 0) {
    fail(ws, r == 0 ? "Janus closed the connection" : "the connection to Janus failed");
    return false;
  }
  if (parley__ws_reader_feed(&ws->reader, buf, (size_t)r) < 0) {
    fail(ws, "out of memory reading from Janus");
    return false;
  }
  parley__ws_message m;
  int got;
  while ((got = parley__ws_reader_next(&ws->reader, &m)) == 1) {
    switch (m.opcode) {
    case PARLEY__WS_TEXT: on_text(ws, m.data, m.len); break;
    case PARLEY__WS_PING: (void)send_frame(ws, PARLEY__WS_PONG, m.data, m.len); break;
    case PARLEY__WS_CLOSE:
      (void)send_frame(ws, PARLEY__WS_CLOSE, m.data, m.len < 2 ? m.len : 2); /* echo its code (5.5.1) */
      fail(ws, "Janus closed the WebSocket");
      return false;
    default: break; /* pongs; binary messages are not Janus's */
    }
  }
  if (got < 0) {
    fail(ws, got == PARLEY_ERANGE ? "a message from Janus over 4 MiB" : "a WebSocket protocol error from Janus");
    return false;
  }
  return true;
}

static void *reader_main(void *arg) {
  parley__janus_ws *ws = arg;
  int64_t last_rx = now_ms(), next_ka = 0;
  bool gone_told = false;
  while (!atomic_load(&ws->stop)) {
    pthread_mutex_lock(&ws->mu);
    bool dead = ws->dead;
    pthread_mutex_unlock(&ws->mu);
    pthread_mutex_lock(&ws->deliver_mu);
    bool started = ws->fn != NULL;
    if (dead && started && !gone_told && !ws->quiet) ws->fn(NULL, 0, ws->why, ws->user);
    gone_told |= dead && started;
    pthread_mutex_unlock(&ws->deliver_mu);
    int64_t t = now_ms();
    if (started && !dead) {
      if (!next_ka) next_ka = t + ws->keepalive_ms, last_rx = t;
      if (t >= next_ka) {
        char ka[160];
        int n = snprintf(ka, sizeof ka, "{\"janus\":\"keepalive\",\"session_id\":%llu,\"transaction\":\"" KA_TX "%u\"}",
                         (unsigned long long)ws->session, ws->ka_tx++);
        (void)send_frame(ws, PARLEY__WS_TEXT, ka, (size_t)n);
        next_ka = t + ws->keepalive_ms;
      }
      if (t - last_rx > 3 * (int64_t)ws->keepalive_ms) fail(ws, "Janus unreachable");
    }
    struct pollfd p[2] = {{.fd = ws->wake, .events = POLLIN}, {.fd = dead ? -1 : ws->fd, .events = POLLIN}};
    int64_t wait = started && !dead ? next_ka - t : 1000;
    if (wait > 1000) wait = 1000;
    if (wait < 0) wait = 0;
    if (poll(p, 2, (int)wait) <= 0) continue;
    if (p[0].revents) {
      uint64_t v;
      (void)!read(ws->wake, &v, sizeof v);
    }
    if (p[1].revents && read_some(ws)) last_rx = now_ms();
  }
  return NULL;
}

/* ---- the interface ---- */

static void destroy(parley__janus_ws *ws) {
  if (ws->fd >= 0) close(ws->fd);
  if (ws->wake >= 0) close(ws->wake);
  parley__ws_reader_free(&ws->reader);
  pthread_cond_destroy(&ws->cond);
  pthread_mutex_destroy(&ws->mu);
  pthread_mutex_destroy(&ws->wmu);
  pthread_mutex_destroy(&ws->deliver_mu);
  free(ws);
}

int parley__janus_ws_open(const char *url, long ms, parley__janus_ws **out, char *err, size_t cap) {
  char host[256], port[16], hostport[300];
  const char *path;
  if (!url || !out || ms <= 0) return PARLEY_EINVAL;
  *out = NULL;
  if (parse_url(url, host, sizeof host, port, sizeof port, &path) < 0) {
    say(err, cap, "Janus %s: %s", url, "not a ws://host[:port][/path] URL");
    return PARLEY_EINVAL;
  }
  snprintf(hostport, sizeof hostport, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
  parley__janus_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return PARLEY_ENOMEM;
  ws->fd = ws->wake = -1;
  pthread_mutex_init(&ws->mu, NULL);
  pthread_mutex_init(&ws->wmu, NULL);
  pthread_mutex_init(&ws->deliver_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ws->cond, &ca);
  pthread_condattr_destroy(&ca);
  parley__ws_reader_init(&ws->reader, MESSAGE_MAX, false);
  int64_t deadline = now_ms() + ms;
  int rc = (ws->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ? PARLEY_ENOMEM : 0;
  if (rc == 0 && (ws->fd = dial(host, port, deadline, err, cap)) < 0) rc = PARLEY_ENETWORK;
  if (rc == 0) { /* every later write is bounded too */
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(ws->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    rc = handshake(ws, hostport, path, deadline, err, cap);
  }
  if (rc == 0 && pthread_create(&ws->thread, NULL, reader_main, ws) != 0) rc = PARLEY_ENOMEM;
  if (rc < 0) {
    destroy(ws);
    return rc;
  }
  ws->thread_started = true;
  *out = ws;
  return 0;
}

void parley__janus_ws_start(parley__janus_ws *ws, uint64_t session, int keepalive_ms, parley__janus_ws_fn fn,
                            void *user) {
  pthread_mutex_lock(&ws->deliver_mu);
  ws->session = session;
  ws->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : 25000;
  ws->user = user;
  ws->fn = fn;
  pthread_mutex_unlock(&ws->deliver_mu);
  uint64_t one = 1;
  (void)!write(ws->wake, &one, sizeof one);
}

void parley__janus_ws_quiet(parley__janus_ws *ws) {
  pthread_mutex_lock(&ws->deliver_mu);
  ws->quiet = true;
  pthread_mutex_unlock(&ws->deliver_mu);
}

int parley__janus_ws_request(parley__janus_ws *ws, json_t *msg, const char *tx, long ms, json_t **reply, char *err,
                             size_t cap) {
  *reply = NULL;
  if (ws->thread_started && pthread_equal(pthread_self(), ws->thread)) return PARLEY_ESTATE; /* would wait on itself */
  char *text = json_dumps(msg, JSON_COMPACT);
  if (!text) return PARLEY_ENOMEM;
  waiter w = {.tx = tx};
  pthread_mutex_lock(&ws->mu);
  bool dead = ws->dead;
  if (!dead) {
    w.next = ws->waiters;
    ws->waiters = &w;
  }
  pthread_mutex_unlock(&ws->mu);
  int rc = dead ? PARLEY_ENETWORK : send_frame(ws, PARLEY__WS_TEXT, text, strlen(text));
  free(text);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&ws->mu);
  int t = 0;
  while (rc == 0 && !w.reply && !ws->dead && t != ETIMEDOUT) t = pthread_cond_timedwait(&ws->cond, &ws->mu, &until);
  if (!dead)
    for (waiter **p = &ws->waiters; *p; p = &(*p)->next)
      if (*p == &w) {
        *p = w.next;
        break;
      }
  const char *why = w.reply ? NULL : ws->dead ? ws->why : "no answer in time";
  if (why) say(err, cap, "Janus: %s%s", why, "");
  pthread_mutex_unlock(&ws->mu);
  if (!w.reply) return rc < 0 && rc != PARLEY_ENETWORK ? rc : PARLEY_ENETWORK;
  *reply = w.reply;
  return 0;
}

void parley__janus_ws_close(parley__janus_ws *ws) {
  if (!ws) return;
  pthread_mutex_lock(&ws->mu);
  bool dead = ws->dead;
  pthread_mutex_unlock(&ws->mu);
  if (!dead) (void)send_frame(ws, PARLEY__WS_CLOSE, "\x03\xe8", 2); /* 1000: normal closure */
  atomic_store(&ws->stop, true);
  uint64_t one = 1;
  (void)!write(ws->wake, &one, sizeof one);
  if (ws->thread_started) pthread_join(ws->thread, NULL);
  destroy(ws);
}
