/* test_dtls.c: DTLS-SRTP sessions (transport/dtls.h): certificates and a=fingerprint values, handshakes
 * in both roles whose exported keys key working SRTP pairs, a refused fingerprint, close_notify, the
 * handshake deadline and the retransmission schedule, a lossy jittery path over the simulated network
 * for a sweep of seeds, and keys checked against an independent DTLS server (`openssl s_server`,
 * which prints the exported keying material itself).
 *
 * Simulated time: OpenSSL's DTLS timer compares its deadline with gettimeofday() (d1_lib.c) and has no
 * hook for another clock. So that a retransmission due in simulated time is also due for OpenSSL, this
 * binary defines gettimeofday() (the executable's definition interposes on libc's for libssl) to return
 * the simulated clock while a simulated test runs, and the real time otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "sim/simnet.h"
#include "transport/dtls.h"
#include "transport/rtp.h"
#include "transport/srtp.h"

/* ---- the clock OpenSSL reads ---- */

static int sim_active;
static int64_t sim_now;
#define SIM_EPOCH_S 1800000000LL /* simulated wall clock = this + sim_now */

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  (void)tz;
  if (sim_active) {
    tv->tv_sec = (time_t)(SIM_EPOCH_S + sim_now / 1000000);
    tv->tv_usec = (suseconds_t)(sim_now % 1000000);
    return 0;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

/* ---- certificates and fingerprints ---- */

static parley__dtls_fingerprint fp_of(const parley__dtls_cert *c) {
  char v[PARLEY__DTLS_FINGERPRINT_MAX];
  snprintf(v, sizeof v, "sha-256 %s", parley__dtls_cert_fingerprint(c));
  parley__dtls_fingerprint f;
  cr_assert_eq(parley__dtls_fingerprint_parse(v, strlen(v), &f), 0, "%s", v);
  return f;
}

Test(dtls, certificate_and_fingerprint) {
  int err = 1;
  parley__dtls_cert *a = parley__dtls_cert_new(NULL, NULL, &err);
  cr_assert_not_null(a);
  cr_assert_eq(err, 0);
  parley__dtls_cert *b = parley__dtls_cert_new(NULL, NULL, NULL);
  const char *fa = parley__dtls_cert_fingerprint(a);
  cr_assert_eq(strlen(fa), 32 * 3 - 1, "%s", fa);
  for (size_t i = 0; i < strlen(fa); i++)
    cr_assert(i % 3 == 2 ? fa[i] == ':' : (fa[i] >= '0' && fa[i] <= '9') || (fa[i] >= 'A' && fa[i] <= 'F'));
  cr_expect_str_neq(fa, parley__dtls_cert_fingerprint(b));
  parley__dtls_fingerprint f = fp_of(a);
  cr_expect_str_eq(f.alg, "sha-256");
  cr_expect_eq(f.digest_len, 32);
  parley__dtls_cert_free(a);
  parley__dtls_cert_free(b);
  cr_expect_null(parley__dtls_cert_new("x", NULL, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__dtls_cert_new("not pem", "not pem", &err));
  cr_expect_eq(err, PARLEY_EPARSE);
}

Test(dtls, fingerprint_values) {
  parley__dtls_fingerprint f;
  const char *ok = "a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\n";
  cr_assert_eq(parley__dtls_fingerprint_parse(ok, strlen(ok), &f), 0);
  cr_expect_str_eq(f.alg, "sha-1");
  cr_expect_eq(f.digest_len, 20);
  cr_expect_eq(f.digest[0], 0x4a);
  cr_expect_eq(f.digest[19], 0xab);
  const char *lower = "sha-1 4a:ad:b9:b1:3f:82:18:3b:54:02:12:df:3e:5d:49:6b:19:e5:7c:ab";
  parley__dtls_fingerprint g;
  cr_assert_eq(parley__dtls_fingerprint_parse(lower, strlen(lower), &g), 0);
  cr_expect_arr_eq(f.digest, g.digest, 20);
  const char *md5 = "md5 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B";
  cr_expect_eq(parley__dtls_fingerprint_parse(md5, strlen(md5), &f), PARLEY_ENOTSUP);
  const char *bad[] = {
      "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C",     /* 19 bytes */
      "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:", /* trailing colon */
      "sha-1 4AAD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB",   /* missing colon */
      "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AG",  /* not hex */
      "sha-256",
      " 4A",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(parley__dtls_fingerprint_parse(bad[i], strlen(bad[i]), &f), PARLEY_EPARSE, "%s", bad[i]);
  cr_expect_eq(parley__dtls_fingerprint_parse(NULL, 0, &f), PARLEY_EINVAL);
}

/* ---- two sessions over the simulated network ---- */

typedef struct side {
  parley__dtls *d;
  struct sockaddr_storage addr, peer;
  parley__simnet *net;
  int sends;
  int64_t send_at[64];
} side;

static void side_send(void *ctx, const uint8_t *buf, size_t len) {
  side *s = ctx;
  if (s->sends < 64) s->send_at[s->sends] = sim_now;
  s->sends++;
  (void)parley__simnet_send(s->net, (struct sockaddr *)&s->addr, (struct sockaddr *)&s->peer, buf, len, sim_now);
}

static void side_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                      const uint8_t *data, size_t len, int64_t now) {
  (void)net, (void)from, (void)to;
  side *s = ctx;
  (void)parley__dtls_receive(s->d, data, len, now);
}

typedef struct rig {
  parley__simnet *net;
  parley__dtls_cert *cert[2];
  side s[2]; /* s[0] client, s[1] server */
} rig;

/* lie: the server expects a fingerprint of another certificate than the client's. */
static void rig_init(rig *r, uint64_t seed, const parley__simnet_link *link, bool lie) {
  memset(r, 0, sizeof *r);
  sim_active = 1;
  sim_now = 0;
  int err;
  r->net = parley__simnet_new(4, 4096, 2048, seed, &err);
  cr_assert_not_null(r->net);
  if (link) cr_assert_eq(parley__simnet_set_link(r->net, link), 0);
  for (int i = 0; i < 2; i++) {
    r->cert[i] = parley__dtls_cert_new(NULL, NULL, &err);
    cr_assert_not_null(r->cert[i]);
  }
  parley__dtls_cert *other = lie ? parley__dtls_cert_new(NULL, NULL, NULL) : NULL;
  for (int i = 0; i < 2; i++) {
    side *s = &r->s[i];
    s->net = r->net;
    parley__simnet_addr4(&s->addr, i ? "10.0.0.2" : "10.0.0.1", 5000);
    parley__simnet_addr4(&s->peer, i ? "10.0.0.1" : "10.0.0.2", 5000);
    cr_assert_geq(parley__simnet_add_endpoint(r->net, (struct sockaddr *)&s->addr, side_recv, NULL, s), 0);
    parley__dtls_config c = {
        .role = i ? PARLEY__DTLS_SERVER : PARLEY__DTLS_CLIENT,
        .cert = r->cert[i],
        .peer = fp_of(i && other ? other : r->cert[1 - i]),
        .send = side_send,
        .ctx = s,
    };
    s->d = parley__dtls_new(&c, &err);
    cr_assert_not_null(s->d, "err %d", err);
    cr_assert_eq(parley__dtls_get_state(s->d), PARLEY__DTLS_NEW);
  }
  parley__dtls_cert_free(other);
}

static void rig_free(rig *r) {
  for (int i = 0; i < 2; i++) {
    parley__dtls_free(r->s[i].d);
    parley__dtls_cert_free(r->cert[i]);
  }
  parley__simnet_free(r->net);
  sim_active = 0;
}

static bool settled(parley__dtls *d) {
  parley__dtls_state st = parley__dtls_get_state(d);
  return st != PARLEY__DTLS_CONNECTING && st != PARLEY__DTLS_NEW;
}

/* Runs simulated time until both sessions left CONNECTING (or until_us); returns the time. */
static int64_t rig_run(rig *r, int64_t until_us) {
  for (int guard = 0; guard < 100000; guard++) {
    if (settled(r->s[0].d) && settled(r->s[1].d)) return sim_now;
    int64_t t = parley__simnet_next_delivery_us(r->net);
    for (int i = 0; i < 2; i++) {
      int64_t d = parley__dtls_next_deadline_us(r->s[i].d);
      if (d < t) t = d;
    }
    if (t > until_us || t == INT64_MAX) return sim_now;
    if (t > sim_now) sim_now = t;
    parley__simnet_deliver_until(r->net, sim_now);
    for (int i = 0; i < 2; i++) parley__dtls_tick(r->s[i].d, sim_now);
  }
  cr_assert_fail("rig_run did not settle");
  return sim_now;
}

static void start_both(rig *r) {
  cr_assert_eq(parley__dtls_start(r->s[1].d, sim_now), 0);
  cr_assert_eq(parley__dtls_start(r->s[0].d, sim_now), 0);
  cr_assert_eq(parley__dtls_start(r->s[0].d, sim_now), PARLEY_ESTATE);
}

/* Our outbound SRTP from a's keys decrypts with b's inbound, and the other way round. */
static void check_keys(parley__dtls *a, parley__dtls *b) {
  parley__srtp_suite sa, sb;
  uint8_t al[30], ar[30], bl[30], br[30];
  size_t na, nb;
  cr_assert_eq(parley__dtls_srtp_keys(a, &sa, al, ar, &na), 0);
  cr_assert_eq(parley__dtls_srtp_keys(b, &sb, bl, br, &nb), 0);
  cr_assert_eq(sa, PARLEY__SRTP_AEAD_AES_128_GCM); /* both offer GCM first */
  cr_assert_eq(sb, sa);
  cr_assert_eq(na, 28);
  cr_assert_eq(nb, na);
  cr_expect_arr_eq(al, br, na);
  cr_expect_arr_eq(ar, bl, na);
  cr_expect_arr_neq(al, ar, na);
  parley__srtp *tx = parley__srtp_new(sa, PARLEY__SRTP_OUTBOUND, al, na, NULL);
  parley__srtp *rx = parley__srtp_new(sb, PARLEY__SRTP_INBOUND, br, nb, NULL);
  cr_assert(tx && rx);
  uint8_t pkt[200 + PARLEY__SRTP_RTP_TRAILER_ROOM], payload[160];
  memset(payload, 0x5a, sizeof payload);
  parley__rtp_header h = {.payload_type = 111, .seq = 7, .timestamp = 960, .ssrc = 0x1234};
  int n = parley__rtp_build(&h, payload, sizeof payload, 0, pkt, 200);
  cr_assert_gt(n, 0);
  int p = parley__srtp_protect_rtp(tx, pkt, (size_t)n, sizeof pkt);
  cr_assert_gt(p, n);
  cr_expect_eq(parley__srtp_unprotect_rtp(rx, pkt, (size_t)p), n);
  cr_expect_arr_eq(pkt + 12, payload, sizeof payload);
  parley__srtp_free(tx);
  parley__srtp_free(rx);
}

Test(dtls, handshake_both_roles_key_srtp) {
  rig r;
  parley__simnet_link link = {.delay_us = 10000};
  rig_init(&r, 1, &link, false);
  cr_assert_eq(parley__dtls_srtp_keys(r.s[0].d, &(parley__srtp_suite){0}, (uint8_t[30]){0}, (uint8_t[30]){0},
                                      &(size_t){0}),
               PARLEY_ESTATE);
  start_both(&r);
  cr_expect_eq(parley__dtls_get_state(r.s[0].d), PARLEY__DTLS_CONNECTING);
  cr_expect_eq(r.s[1].sends, 0, "the server waits for the ClientHello");
  int64_t t = rig_run(&r, 5000000);
  for (int i = 0; i < 2; i++)
    cr_assert_eq(parley__dtls_get_state(r.s[i].d), PARLEY__DTLS_CONNECTED, "%d: %s", i,
                 parley__dtls_failure_reason(r.s[i].d));
  /* Two round trips (no cookie exchange: ICE already proved the address) at 10 ms each way. */
  cr_expect_leq(t, 45000, "connected at %lld us", (long long)t);
  check_keys(r.s[0].d, r.s[1].d);
  cr_expect_eq(parley__dtls_next_deadline_us(r.s[0].d), INT64_MAX, "no timer once connected");
  rig_free(&r);
}

Test(dtls, fingerprint_mismatch_refused) {
  rig r;
  rig_init(&r, 2, NULL, true);
  start_both(&r);
  rig_run(&r, 12000000);
  cr_assert_eq(parley__dtls_get_state(r.s[1].d), PARLEY__DTLS_FAILED);
  cr_expect(strstr(parley__dtls_failure_reason(r.s[1].d), "does not match the fingerprint"), "%s",
            parley__dtls_failure_reason(r.s[1].d));
  /* The refusing server alerts the client, which fails with the alert as its reason. */
  cr_assert_eq(parley__dtls_get_state(r.s[0].d), PARLEY__DTLS_FAILED);
  cr_expect(strstr(parley__dtls_failure_reason(r.s[0].d), "alert: bad certificate"), "%s",
            parley__dtls_failure_reason(r.s[0].d));
  cr_expect_eq(parley__dtls_srtp_keys(r.s[0].d, &(parley__srtp_suite){0}, (uint8_t[30]){0}, (uint8_t[30]){0},
                                      &(size_t){0}),
               PARLEY_ESTATE);
  rig_free(&r);
}

Test(dtls, close_notify_closes_peer) {
  rig r;
  rig_init(&r, 3, NULL, false);
  start_both(&r);
  rig_run(&r, 5000000);
  cr_assert_eq(parley__dtls_get_state(r.s[1].d), PARLEY__DTLS_CONNECTED);
  cr_assert_eq(parley__dtls_close(r.s[1].d, sim_now), 0);
  cr_expect_eq(parley__dtls_get_state(r.s[1].d), PARLEY__DTLS_CLOSED);
  cr_expect_not(parley__dtls_closed_by_peer(r.s[1].d));
  cr_expect_eq(parley__dtls_close(r.s[1].d, sim_now), PARLEY_ESTATE);
  parley__simnet_deliver_until(r.net, sim_now + 1000);
  cr_expect_eq(parley__dtls_get_state(r.s[0].d), PARLEY__DTLS_CLOSED);
  cr_expect(parley__dtls_closed_by_peer(r.s[0].d));
  cr_expect_str_eq(parley__dtls_failure_reason(r.s[0].d), "");
  rig_free(&r);
}

Test(dtls, handshake_deadline_and_retransmissions) {
  rig r;
  rig_init(&r, 4, NULL, false);
  parley__simnet_cut(r.net); /* nothing arrives */
  start_both(&r);
  rig_run(&r, 30000000);
  cr_assert_eq(parley__dtls_get_state(r.s[0].d), PARLEY__DTLS_FAILED);
  cr_expect_eq(sim_now, PARLEY__DTLS_HANDSHAKE_TIMEOUT_US);
  cr_expect(strstr(parley__dtls_failure_reason(r.s[0].d), "timed out after 10000 ms"), "%s",
            parley__dtls_failure_reason(r.s[0].d));
  cr_assert_eq(parley__dtls_get_state(r.s[1].d), PARLEY__DTLS_FAILED);
  /* The ClientHello at 0, then after 200, 400, 800 ms and every 1 s: 0.2 0.6 1.4 2.4 3.4 ... 9.4 s. */
  static const int64_t want[] = {0,       200000,  600000,  1400000, 2400000, 3400000,
                                 4400000, 5400000, 6400000, 7400000, 8400000, 9400000};
  cr_assert_eq(r.s[0].sends, 12);
  for (int i = 0; i < 12; i++) cr_expect_eq(r.s[0].send_at[i], want[i], "send %d at %lld", i, (long long)r.s[0].send_at[i]);
  cr_expect_eq(parley__dtls_next_deadline_us(r.s[0].d), INT64_MAX);
  rig_free(&r);
}

Test(dtls, garbage_is_ignored) {
  rig r;
  rig_init(&r, 5, NULL, false);
  cr_expect_eq(parley__dtls_receive(r.s[1].d, (const uint8_t *)"\x16", 1, 0), PARLEY_ESTATE, "not started");
  start_both(&r);
  uint8_t junk[300];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 22);
  junk[0] = 22; /* handshake content type: looks like DTLS to the demux */
  for (int k = 0; k < 20; k++) {
    junk[1 + k % 200] ^= 0x55;
    cr_expect_geq(parley__dtls_receive(r.s[1].d, junk, sizeof junk - (size_t)k, 0), 0);
  }
  rig_run(&r, 5000000);
  cr_expect_eq(parley__dtls_get_state(r.s[0].d), PARLEY__DTLS_CONNECTED);
  cr_expect_eq(parley__dtls_get_state(r.s[1].d), PARLEY__DTLS_CONNECTED);
  rig_free(&r);
}

/* 20 % loss each way and up to 150 ms of jitter (so flights reorder) over 25 ms of delay: every seed
 * connects within the deadline. */
Test(dtls, lossy_jittery_sweep) {
  parley__simnet_link link = {.delay_us = 25000, .jitter_us = 150000, .loss_prob = 0.2};
  int64_t worst = 0, total = 0;
  for (uint64_t seed = 1; seed <= 50; seed++) {
    rig r;
    rig_init(&r, seed, &link, false);
    start_both(&r);
    int64_t t = rig_run(&r, 20000000);
    for (int i = 0; i < 2; i++)
      cr_assert_eq(parley__dtls_get_state(r.s[i].d), PARLEY__DTLS_CONNECTED, "seed %llu side %d: %s",
                   (unsigned long long)seed, i, parley__dtls_failure_reason(r.s[i].d));
    check_keys(r.s[0].d, r.s[1].d);
    worst = t > worst ? t : worst;
    total += t;
    rig_free(&r);
  }
  cr_log_info("lossy sweep: mean %lld ms, worst %lld ms", (long long)(total / 50 / 1000), (long long)(worst / 1000));
}

/* ---- an independent server: openssl s_server ---- */

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int run(const char *cmd) {
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void udp_send(void *ctx, const uint8_t *buf, size_t len) { (void)send(*(int *)ctx, buf, len, 0); }

static bool file_has(const char *path, const char *needle, char *line, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool found = false;
  while (!found && fgets(line, (int)cap, f)) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

Test(dtls, keys_match_openssl_s_server, .timeout = 60) {
  char dir[] = "/tmp/parley-dtls-XXXXXX", cmd[1024], line[512], out[600];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=srv -days 2 "
           "-keyout %s/k.pem -out %s/c.pem 2>/dev/null && openssl x509 -in %s/c.pem -noout -fingerprint "
           "-sha256 > %s/fp",
           dir, dir, dir, dir);
  cr_assert_eq(run(cmd), 0);
  snprintf(out, sizeof out, "%s/fp", dir);
  cr_assert(file_has(out, "Fingerprint=", line, sizeof line));
  char fpv[200];
  snprintf(fpv, sizeof fpv, "sha-256 %s", strchr(line, '=') + 1);
  /* A free port, then the server on it. */
  int probe = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  cr_assert_eq(bind(probe, (struct sockaddr *)&sa, sizeof sa), 0);
  getsockname(probe, (struct sockaddr *)&sa, &sl);
  close(probe);
  snprintf(out, sizeof out, "%s/out", dir);
  int keep[2]; /* s_server quits at the end of its stdin: hold a pipe open until done */
  cr_assert_eq(pipe(keep), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    char port[16], cert[300], key[300];
    snprintf(port, sizeof port, "127.0.0.1:%u", ntohs(sa.sin_port));
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    close(keep[1]);
    if (!freopen(out, "w", stdout) || dup2(keep[0], 0) < 0 || dup2(1, 2) < 0) _exit(126);
    execlp("openssl", "openssl", "s_server", "-dtls1_2", "-accept", port, "-cert", cert, "-key", key, "-use_srtp",
           "SRTP_AES128_CM_SHA1_80", "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", "60", "-verify",
           "1", "-naccept", "1", (char *)NULL);
    _exit(127);
  }
  close(keep[0]);
  for (int i = 0; i < 200 && !file_has(out, "ACCEPT", line, sizeof line); i++) usleep(10000);
  cr_assert(file_has(out, "ACCEPT", line, sizeof line), "s_server did not start");

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  parley__dtls_cert *cert = parley__dtls_cert_new(NULL, NULL, NULL);
  parley__dtls_config c = {.role = PARLEY__DTLS_CLIENT, .cert = cert, .send = udp_send, .ctx = &fd};
  cr_assert_eq(parley__dtls_fingerprint_parse(fpv, strlen(fpv), &c.peer), 0, "%s", fpv);
  parley__dtls *d = parley__dtls_new(&c, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__dtls_start(d, mono_us()), 0);
  for (int i = 0; i < 500 && !settled(d); i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) {
      uint8_t buf[2048];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) parley__dtls_receive(d, buf, (size_t)n, mono_us());
    }
    parley__dtls_tick(d, mono_us());
  }
  cr_assert_eq(parley__dtls_get_state(d), PARLEY__DTLS_CONNECTED, "%s", parley__dtls_failure_reason(d));
  parley__srtp_suite suite;
  uint8_t loc[30], rem[30];
  size_t n;
  cr_assert_eq(parley__dtls_srtp_keys(d, &suite, loc, rem, &n), 0);
  cr_expect_eq(suite, PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, "the server only allows this profile");
  cr_assert_eq(n, 30);
  for (int i = 0; i < 300 && !file_has(out, "Keying material: ", line, sizeof line); i++) usleep(10000);
  cr_assert(file_has(out, "Keying material: ", line, sizeof line), "no keying material printed");
  const char *hex = strstr(line, "Keying material: ") + strlen("Keying material: ");
  uint8_t km[60];
  for (int i = 0; i < 60; i++) cr_assert_eq(sscanf(hex + 2 * i, "%2hhx", &km[i]), 1);
  /* RFC 5764 4.2 from the server's export: client key, server key, client salt, server salt. */
  cr_expect_arr_eq(loc, km, 16);
  cr_expect_arr_eq(loc + 16, km + 32, 14);
  cr_expect_arr_eq(rem, km + 16, 16);
  cr_expect_arr_eq(rem + 16, km + 46, 14);
  cr_expect_eq(parley__dtls_close(d, mono_us()), 0);
  parley__dtls_free(d);
  parley__dtls_cert_free(cert);
  close(fd);
  close(keep[1]);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run(cmd);
}
