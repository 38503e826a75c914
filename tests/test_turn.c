/* test_turn.c: the TURN client (transport/turn.h) against a real TURN server, coturn, which the test
 * starts on 127.0.0.1 with one long-term user (Debian package coturn; the tests skip when it is not
 * installed): allocation through the 401 challenge, a peer reached through the relay and answering
 * through it with Send/Data indications and then ChannelData, a stale nonce renewed, wrong
 * credentials refused, and a released allocation no longer relaying. Retransmission and giving up
 * are checked in simulated time, with no server at all. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "transport/turn.h"

#define USER "alice"
#define PASS "wonderland"
#define REALM "parley.test"

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct sockaddr_storage loopback(uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ss;
}

static int udp_socket(struct sockaddr_storage *bound) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_storage any = loopback(0);
  cr_assert_eq(bind(fd, (struct sockaddr *)&any, sizeof(struct sockaddr_in)), 0);
  socklen_t len = sizeof *bound;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)bound, &len), 0);
  return fd;
}

/* ---- coturn ---- */

typedef struct server {
  pid_t pid;
  char dir[64];
  uint16_t port;
} server;

static bool have_coturn(void) { return access("/usr/bin/turnserver", X_OK) == 0; }

/* Starts coturn on a free-looking port and waits (at most 5 s) until it answers a STUN Binding. */
static void server_start(server *s, int stale_nonce_s) {
  snprintf(s->dir, sizeof s->dir, "/tmp/parley-turn.XXXXXX");
  cr_assert_not_null(mkdtemp(s->dir));
  s->port = (uint16_t)(20000 + (getpid() * 7 + (int)(mono_us() % 997)) % 20000);
  char port[16], userdb[96], pidfile[96], stale[32], minp[16], maxp[16];
  snprintf(port, sizeof port, "%u", s->port);
  snprintf(userdb, sizeof userdb, "--userdb=%s/turndb", s->dir);
  snprintf(pidfile, sizeof pidfile, "--pidfile=%s/pid", s->dir);
  snprintf(stale, sizeof stale, "--stale-nonce=%d", stale_nonce_s);
  snprintf(minp, sizeof minp, "%u", s->port + 1);
  snprintf(maxp, sizeof maxp, "%u", s->port + 200);
  s->pid = fork();
  cr_assert_geq(s->pid, 0);
  if (s->pid == 0) {
    char log[96];
    snprintf(log, sizeof log, "%s/log.txt", s->dir);
    if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(126);
    execl("/usr/bin/turnserver", "turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
          "--listening-port", port, "--min-port", minp, "--max-port", maxp, "--lt-cred-mech",
          "--user=" USER ":" PASS, "--realm=" REALM, "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli",
          userdb, pidfile, "--log-file=stdout", "--simple-log", stale, (char *)NULL);
    _exit(127);
  }
  /* Ready when a Binding request gets an answer. */
  struct sockaddr_storage me, srv = loopback(s->port);
  int fd = udp_socket(&me);
  static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  bool up = false;
  for (int i = 0; i < 50 && !up; i++) {
    (void)sendto(fd, binding, sizeof binding, 0, (struct sockaddr *)&srv, sizeof(struct sockaddr_in));
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) == 1) up = true;
  }
  close(fd);
  cr_assert(up, "coturn did not answer on 127.0.0.1:%u within 5 s (see %s/log.txt)", s->port, s->dir);
}

static void server_stop(server *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
  if (system(cmd) != 0) cr_log_warn("could not remove %s", s->dir);
}

/* ---- a client socket driving one parley__turn ---- */

typedef struct client {
  int fd;
  struct sockaddr_storage addr, server;
  parley__turn *turn;
  parley__turn_data got;      /* the last data from a peer */
  uint8_t got_buf[2048];
  int data_count;
} client;

static void client_start(client *c, uint16_t server_port, const char *password) {
  memset(c, 0, sizeof *c);
  c->fd = udp_socket(&c->addr);
  c->server = loopback(server_port);
  parley__turn_config cfg;
  parley__turn_config_init(&cfg);
  cfg.server = c->server;
  snprintf(cfg.username, sizeof cfg.username, "%s", USER);
  snprintf(cfg.password, sizeof cfg.password, "%s", password);
  int err = 1;
  c->turn = parley__turn_new(&cfg, mono_us(), &err);
  cr_assert_not_null(c->turn, "%s", parley_strerror(err));
}

static void client_stop(client *c) {
  parley__turn_free(c->turn);
  close(c->fd);
}

/* Sends what the client has due, then waits up to wait_ms for one datagram and hands it over. */
static void client_step(client *c, int wait_ms) {
  uint8_t out[2048];
  int n;
  while ((n = parley__turn_poll(c->turn, mono_us(), out, sizeof out)) > 0)
    cr_assert_eq(sendto(c->fd, out, (size_t)n, 0, (struct sockaddr *)&c->server, sizeof(struct sockaddr_in)), n);
  cr_assert_geq(n, 0);
  struct pollfd p = {c->fd, POLLIN, 0};
  if (poll(&p, 1, wait_ms) != 1) return;
  uint8_t in[2048];
  ssize_t r = recv(c->fd, in, sizeof in, 0);
  if (r <= 0) return;
  parley__turn_data d;
  int rc = parley__turn_on_packet(c->turn, in, (size_t)r, mono_us(), &d);
  if (rc == 1) {
    memcpy(c->got_buf, d.data, d.len);
    c->got = d;
    c->got.data = c->got_buf;
    c->data_count++;
  }
}

/* Steps until done(c) or timeout_ms (bounded), returning done(c). */
static bool client_until(client *c, bool (*done)(const client *), int timeout_ms) {
  int64_t end = mono_us() + timeout_ms * 1000LL;
  while (!done(c) && mono_us() < end) client_step(c, 20);
  return done(c);
}

static bool is_ready(const client *c) { return parley__turn_get_state(c->turn) == PARLEY__TURN_READY; }
static bool is_over(const client *c) {
  parley__turn_state s = parley__turn_get_state(c->turn);
  return s == PARLEY__TURN_FAILED || s == PARLEY__TURN_CLOSED;
}

static struct sockaddr_storage g_peer; /* for peer_ready */
static bool peer_ready(const client *c) { return parley__turn_peer_ready(c->turn, &g_peer); }

static void send_wrapped(client *c, const struct sockaddr_storage *peer, const char *text, bool expect_channel) {
  uint8_t out[2048];
  int n = parley__turn_wrap(c->turn, peer, (const uint8_t *)text, strlen(text), out, sizeof out);
  cr_assert_gt(n, 0, "wrap: %s", parley_strerror(n));
  cr_expect_eq((out[0] & 0xF0) == 0x40, expect_channel, "ChannelData expected: %d", expect_channel);
  cr_assert_eq(sendto(c->fd, out, (size_t)n, 0, (struct sockaddr *)&c->server, sizeof(struct sockaddr_in)), n);
}

/* The peer receives text from the relayed address. */
static void peer_expect(int fd, const struct sockaddr_storage *relayed, const char *text) {
  struct pollfd p = {fd, POLLIN, 0};
  cr_assert_eq(poll(&p, 1, 2000), 1, "the peer got nothing through the relay");
  char buf[256];
  struct sockaddr_storage from;
  socklen_t flen = sizeof from;
  ssize_t r = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
  cr_assert_gt(r, 0);
  buf[r] = 0;
  cr_expect_str_eq(buf, text);
  const struct sockaddr_in *a = (const struct sockaddr_in *)&from, *b = (const struct sockaddr_in *)relayed;
  cr_expect(a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr,
            "it came from the relayed address");
}

static bool got_data(const client *c) { return c->data_count > 0; }

static void expect_from_peer(client *c, int peer_fd, const struct sockaddr_storage *relayed, const char *text) {
  c->data_count = 0;
  cr_assert_eq(sendto(peer_fd, text, strlen(text), 0, (const struct sockaddr *)relayed, sizeof(struct sockaddr_in)),
               (ssize_t)strlen(text));
  cr_assert(client_until(c, got_data, 2000), "nothing came back through the relay");
  cr_expect_eq(c->got.len, strlen(text));
  cr_expect_eq(memcmp(c->got.data, text, strlen(text)), 0);
  const struct sockaddr_in *a = (const struct sockaddr_in *)&c->got.peer, *b = (const struct sockaddr_in *)&g_peer;
  cr_expect(a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr, "from the peer's address");
}

Test(turn, relays_both_ways_through_coturn) {
  if (!have_coturn()) cr_skip_test("coturn (turnserver) is not installed");
  server s;
  server_start(&s, 600);
  client c;
  client_start(&c, s.port, PASS);
  cr_assert(client_until(&c, is_ready, 5000), "not allocated: %s", parley__turn_error(c.turn));
  struct sockaddr_storage relayed, mapped;
  cr_assert_eq(parley__turn_addresses(c.turn, &relayed, &mapped), 0);
  const struct sockaddr_in *r4 = (const struct sockaddr_in *)&relayed, *m4 = (const struct sockaddr_in *)&mapped;
  cr_expect_eq(ntohl(r4->sin_addr.s_addr), INADDR_LOOPBACK);
  cr_expect(ntohs(r4->sin_port) > s.port && ntohs(r4->sin_port) <= s.port + 200, "relayed port %u in coturn's range",
            ntohs(r4->sin_port));
  cr_expect_eq(m4->sin_port, ((struct sockaddr_in *)&c.addr)->sin_port, "the server saw our own port");

  int peer_fd = udp_socket(&g_peer);
  /* Before any permission the server relays nothing from the peer. */
  cr_assert_eq(sendto(peer_fd, "early", 5, 0, (struct sockaddr *)&relayed, sizeof(struct sockaddr_in)), 5);
  client_step(&c, 200);
  cr_expect_eq(c.data_count, 0, "data relayed without a permission");

  /* A permission: Send indications out, Data indications back. */
  cr_assert_eq(parley__turn_add_peer(c.turn, &g_peer, false, mono_us()), 0);
  cr_assert(client_until(&c, peer_ready, 3000), "permission not confirmed");
  send_wrapped(&c, &g_peer, "hello through a Send indication", false);
  peer_expect(peer_fd, &relayed, "hello through a Send indication");
  expect_from_peer(&c, peer_fd, &relayed, "answer as a Data indication");
  /* Permissions are by IP address (RFC 8656 9): another port of the peer's address gets through, and
   * is reported as its own, before anyone added it (a peer that allocated again on its relay). */
  struct sockaddr_storage other;
  int other_fd = udp_socket(&other);
  c.data_count = 0;
  cr_assert_eq(sendto(other_fd, "another port", 12, 0, (struct sockaddr *)&relayed, sizeof(struct sockaddr_in)), 12);
  cr_assert(client_until(&c, got_data, 2000), "another port of a permitted address was dropped");
  cr_expect_eq(((struct sockaddr_in *)&c.got.peer)->sin_port, ((struct sockaddr_in *)&other)->sin_port);
  close(other_fd);

  /* A channel: ChannelData both ways. */
  cr_assert_eq(parley__turn_add_peer(c.turn, &g_peer, true, mono_us()), 0);
  cr_assert(client_until(&c, peer_ready, 3000), "channel not bound");
  send_wrapped(&c, &g_peer, "hello as ChannelData", true);
  peer_expect(peer_fd, &relayed, "hello as ChannelData");
  expect_from_peer(&c, peer_fd, &relayed, "answer as ChannelData");

  /* Released: nothing is relayed any more. */
  cr_assert_eq(parley__turn_close(c.turn, mono_us()), 0);
  cr_assert(client_until(&c, is_over, 3000));
  cr_expect_eq(parley__turn_get_state(c.turn), PARLEY__TURN_CLOSED, "%s", parley__turn_error(c.turn));
  c.data_count = 0;
  struct timespec nap = {1, 200000000L}; /* coturn stops relaying a released allocation within ~1 s, not at once */
  nanosleep(&nap, NULL);
  cr_assert_eq(sendto(peer_fd, "late", 4, 0, (struct sockaddr *)&relayed, sizeof(struct sockaddr_in)), 4);
  struct pollfd p = {c.fd, POLLIN, 0};
  if (poll(&p, 1, 300) == 1) {
    uint8_t in[2048];
    ssize_t r = recv(c.fd, in, sizeof in, 0);
    cr_expect_fail("the released relay still forwards: %zd bytes, first %02x %02x", r, in[0], in[1]);
  }

  close(peer_fd);
  client_stop(&c);
  server_stop(&s);
}

Test(turn, wrong_password_is_refused_with_a_reason) {
  if (!have_coturn()) cr_skip_test("coturn (turnserver) is not installed");
  server s;
  server_start(&s, 600);
  client c;
  client_start(&c, s.port, "not-the-password");
  cr_assert(client_until(&c, is_over, 5000), "no verdict");
  cr_expect_eq(parley__turn_get_state(c.turn), PARLEY__TURN_FAILED);
  cr_expect(strstr(parley__turn_error(c.turn), "401") != NULL, "reason: %s", parley__turn_error(c.turn));
  client_stop(&c);
  server_stop(&s);
}

/* coturn with 1 s nonces: a permission asked for after the nonce went stale gets 438 and succeeds
 * with the new nonce. */
Test(turn, stale_nonce_is_renewed) {
  if (!have_coturn()) cr_skip_test("coturn (turnserver) is not installed");
  server s;
  server_start(&s, 1);
  client c;
  client_start(&c, s.port, PASS);
  cr_assert(client_until(&c, is_ready, 5000), "not allocated: %s", parley__turn_error(c.turn));
  struct timespec nap = {1, 500000000L}; /* the server's nonce lifetime is a real-time setting */
  nanosleep(&nap, NULL);
  int peer_fd = udp_socket(&g_peer);
  cr_assert_eq(parley__turn_add_peer(c.turn, &g_peer, true, mono_us()), 0);
  cr_assert(client_until(&c, peer_ready, 3000), "channel not bound after a stale nonce: %s", parley__turn_error(c.turn));
  close(peer_fd);
  client_stop(&c);
  server_stop(&s);
}

/* Simulated time, no server: the Allocate goes out at 0, 250, 750, 1750 ... ms (doubling), seven
 * times, and the allocation fails when the last wait runs out. */
Test(turn, unanswered_allocate_retransmits_then_fails) {
  parley__turn_config cfg;
  parley__turn_config_init(&cfg);
  cfg.server = loopback(3478);
  snprintf(cfg.username, sizeof cfg.username, "u");
  snprintf(cfg.password, sizeof cfg.password, "p");
  parley__turn *t = parley__turn_new(&cfg, 0, NULL);
  cr_assert_not_null(t);
  uint8_t out[2048];
  int64_t now = 0, sends[PARLEY__TURN_TRIES + 1];
  int n_sends = 0;
  for (int step = 0; step < 100 && parley__turn_get_state(t) == PARLEY__TURN_ALLOCATING; step++) {
    int n = parley__turn_poll(t, now, out, sizeof out);
    cr_assert_geq(n, 0);
    if (n > 0) {
      cr_assert_lt(n_sends, PARLEY__TURN_TRIES);
      sends[n_sends++] = now;
      cr_expect_eq(parley__turn_poll(t, now, out, sizeof out), 0, "one send at a time");
    }
    int64_t next = parley__turn_next_timeout(t);
    if (next == INT64_MAX) break;
    now = next;
  }
  cr_expect_eq(n_sends, PARLEY__TURN_TRIES);
  for (int i = 1; i < n_sends; i++) cr_expect_eq(sends[i] - sends[i - 1], 250000LL << (i - 1), "gap %d", i);
  cr_expect_eq(parley__turn_get_state(t), PARLEY__TURN_FAILED);
  cr_expect(strstr(parley__turn_error(t), "no answer") != NULL, "%s", parley__turn_error(t));
  parley__turn_free(t);
}

Test(turn, bad_arguments) {
  parley__turn_config cfg;
  parley__turn_config_init(&cfg);
  int err = 0;
  cr_expect_null(parley__turn_new(&cfg, 0, &err), "no server");
  cr_expect_eq(err, PARLEY_EINVAL);
  cfg.server = loopback(3478);
  cr_expect_null(parley__turn_new(&cfg, 0, &err), "no credentials");
  cr_expect_null(parley__turn_new(NULL, 0, &err));
  snprintf(cfg.username, sizeof cfg.username, "u");
  snprintf(cfg.password, sizeof cfg.password, "p");
  parley__turn *t = parley__turn_new(&cfg, 0, &err);
  cr_assert_not_null(t);
  uint8_t out[64], junk[8] = {0x40, 0x00, 0x00, 0x20, 1, 2, 3, 4};
  parley__turn_data d;
  struct sockaddr_storage peer = loopback(9);
  cr_expect_eq(parley__turn_wrap(t, &peer, (const uint8_t *)"x", 1, out, sizeof out), PARLEY_ESTATE, "not ready");
  cr_expect_eq(parley__turn_on_packet(t, junk, sizeof junk, 0, &d), PARLEY_EPARSE, "ChannelData longer than the datagram");
  cr_expect_eq(parley__turn_on_packet(t, junk, 3, 0, &d), PARLEY_EPARSE, "not STUN");
  cr_expect_eq(parley__turn_poll(t, 0, out, 8), PARLEY_ENOSPC);
  cr_expect_eq(parley__turn_close(t, 0), 0);
  cr_expect_eq(parley__turn_get_state(t), PARLEY__TURN_CLOSED, "nothing allocated: closed at once");
  cr_expect_eq(parley__turn_add_peer(t, &peer, false, 0), PARLEY_ESTATE);
  parley__turn_free(t);
  parley__turn_free(NULL);
}
