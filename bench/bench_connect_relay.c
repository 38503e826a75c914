/* bench_connect_relay.c: the relay rows of `parley-bench connect`: time to first audio through a real
 * TURN server, reached over UDP, TCP and TLS. The bench starts coturn (Debian's turnserver) on
 * 127.0.0.1 (for TLS with a certificate from a CA it makes with the openssl CLI); two engines in this process (loopback candidates, the relay policy, so every packet crosses
 * coturn; DTLS-SRTP) call each other
 * through the public API, trickling their relayed candidates as they come. Per trial, from A's
 * create_offer (when A starts allocating) to A's relayed candidate, and to each side's first audio
 * (TRACK_STARTED: its first authenticated RTP through the relay). Real time and real sockets, unlike
 * the simulated rows; no rows (a note says why) when coturn is not installed. Main thread plus the
 * engines' own threads; the listener hands times over under a mutex. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "parley/parley.h"
#include "transport/udp.h"

#define LINES 8

typedef struct end {
  parley_engine *eng;
  parley_call *call;
  pthread_mutex_t mu;
  char lines[LINES][256];
  int nlines, forwarded;
  int64_t relay_ns, audio_ns; /* bench_now_ns() at the relayed candidate / first audio; 0 before */
  int64_t closed;              /* 1 once CLOSED came */
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
} end;

static void on_event(const parley_event *ev, void *user) {
  end *e = user;
  pthread_mutex_lock(&e->mu);
  if (ev->kind == PARLEY_EVENT_LOCAL_CANDIDATE && e->nlines < LINES) {
    snprintf(e->lines[e->nlines++], sizeof e->lines[0], "%s", ev->candidate);
    if (!e->relay_ns && strstr(ev->candidate, "typ relay")) e->relay_ns = bench_now_ns();
  } else if (ev->kind == PARLEY_EVENT_TRACK_STARTED && !e->audio_ns) {
    e->audio_ns = bench_now_ns();
  } else if (ev->kind == PARLEY_EVENT_CLOSED) {
    e->closed = 1;
  }
  pthread_mutex_unlock(&e->mu);
}

static void sleep_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* A CA (dir/ca.pem) and a certificate from it for 127.0.0.1 (dir/server.pem, server.key). 0 or -1. */
static int make_certs(const char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "cd %s && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
           "-days 2 -subj /CN=parley-bench-ca 2>/dev/null && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr "
           "-subj /CN=parley-bench-turn 2>/dev/null && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
           "-out server.pem 2>/dev/null",
           dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* coturn on 127.0.0.1:port (UDP, TCP), and with certs on tls_port (TLS), up when it answers a Binding
 * (at most 5 s). Its pid, or -1. */
static pid_t coturn_start(uint16_t port, uint16_t tls_port, bool certs, const char *dir) {
  char p[8], minp[24], maxp[24], userdb[96], tlsp[40], cert[96], pkey[96];
  snprintf(tlsp, sizeof tlsp, "--tls-listening-port=%u", tls_port);
  snprintf(cert, sizeof cert, "--cert=%s/server.pem", dir);
  snprintf(pkey, sizeof pkey, "--pkey=%s/server.key", dir);
  snprintf(p, sizeof p, "%u", port);
  snprintf(minp, sizeof minp, "--min-port=%u", port + 1);
  snprintf(maxp, sizeof maxp, "--max-port=%u", port + 200);
  snprintf(userdb, sizeof userdb, "--userdb=%s/turndb", dir);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execl("/usr/bin/turnserver", "turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
          "--listening-port", p, minp, maxp, "--lt-cred-mech", "--user=bench:bench", "--realm=parley.bench",
          "--allow-loopback-peers", "--no-dtls", "--no-cli", userdb, "--pidfile=/dev/null", "--log-file=stdout",
          certs ? tlsp : "--no-tls", certs ? cert : NULL, pkey, (char *)NULL);
    _exit(127);
  }
  parley__udp s;
  parley__netaddr any, srv, from;
  parley__netaddr_from_ip(&any, "127.0.0.1", 0);
  parley__netaddr_from_ip(&srv, "127.0.0.1", port);
  static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
  bool up = false;
  if (parley__udp_open(&s, &any) == 0) {
    for (int i = 0; i < 50 && !up; i++) {
      (void)parley__udp_send(&s, &srv, binding, sizeof binding, NULL);
      struct pollfd pf = {s.fd, POLLIN, 0};
      uint8_t buf[512];
      if (poll(&pf, 1, 100) != 1) continue;
      if (parley__udp_recv(&s, buf, sizeof buf, &from, NULL) > 0) up = true;
      else sleep_ms(100); /* port unreachable: not listening yet */
    }
    parley__udp_close(&s);
  }
  if (!up) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

static void forward(end *from, end *to) {
  for (int k = 0; k < LINES; k++) {
    char line[256];
    pthread_mutex_lock(&from->mu);
    bool more = from->forwarded < from->nlines;
    if (more) memcpy(line, from->lines[from->forwarded++], sizeof line);
    pthread_mutex_unlock(&from->mu);
    if (!more) return;
    (void)parley_call_add_remote_candidate(to->call, line);
  }
}

static int64_t read_ns(end *e, const int64_t *field) {
  pthread_mutex_lock(&e->mu);
  int64_t v = *field;
  pthread_mutex_unlock(&e->mu);
  return v;
}

static void end_reset(end *e) {
  pthread_mutex_lock(&e->mu);
  e->nlines = e->forwarded = 0;
  e->relay_ns = e->audio_ns = 0;
  e->closed = 0;
  pthread_mutex_unlock(&e->mu);
}

/* One call A -> B; out[0] A's audio, out[1] B's, out[2] A's relayed candidate, out[3] B's (ms after
 * the offer). 0, or -1 when it did not connect within 10 s. */
static int trial(end *a, end *b, double out[4]) {
  static char offer[8192], answer[8192];
  end *ends[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    end_reset(ends[i]);
    if (parley_call_new(ends[i]->eng, &ends[i]->call) != 0) return -1;
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      ends[i]->ids[k] = parley_call_on(ends[i]->call, (parley_event_kind)k, on_event, ends[i]);
  }
  parley_sdp_error se;
  int64_t t0 = bench_now_ns();
  int rc = -1;
  if (parley_call_create_offer(a->call, offer, sizeof offer) > 0 && parley_call_set_local_description(a->call, offer) == 0 &&
      parley_call_set_remote_description(b->call, PARLEY_SDP_OFFER, offer, &se) == 0 &&
      parley_call_create_answer(b->call, answer, sizeof answer) > 0 &&
      parley_call_set_local_description(b->call, answer) == 0 &&
      parley_call_set_remote_description(a->call, PARLEY_SDP_ANSWER, answer, &se) == 0 &&
      parley_call_start(a->call) == 0 && parley_call_start(b->call) == 0) {
    for (int i = 0; i < 10000 && !(read_ns(a, &a->audio_ns) && read_ns(b, &b->audio_ns)); i++) {
      forward(a, b);
      forward(b, a);
      sleep_ms(1);
    }
    if (read_ns(a, &a->audio_ns) && read_ns(b, &b->audio_ns) && read_ns(a, &a->relay_ns) && read_ns(b, &b->relay_ns)) {
      out[0] = (double)(a->audio_ns - t0) / 1e6;
      out[1] = (double)(b->audio_ns - t0) / 1e6;
      out[2] = (double)(a->relay_ns - t0) / 1e6;
      out[3] = (double)(b->relay_ns - t0) / 1e6;
      rc = 0;
    }
  }
  for (int i = 0; i < 2; i++) {
    (void)parley_call_hangup(ends[i]->call);
    for (int k = 0; k < 200 && !read_ns(ends[i], &ends[i]->closed); k++) sleep_ms(5);
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      if (ends[i]->ids[k] > 0) (void)parley_call_off(ends[i]->call, ends[i]->ids[k]);
    (void)parley_call_free(ends[i]->call);
    ends[i]->call = NULL;
  }
  return rc;
}

enum { OVER_UDP, OVER_TCP, OVER_TLS };
static const char *const PATH_NAME[] = {"turn-udp", "turn-tcp", "turn-tls"};

/* The two rows (offerer, answerer) for coturn on 127.0.0.1:port over UDP or TCP, or tls_port over TLS
 * (trusting dir/ca.pem). 0 or 1. */
static int rows(bench_report *rep, uint16_t port, uint16_t tls_port, const char *dir, int over, int trials) {
  char url[64], ca[96];
  if (over == OVER_TLS) snprintf(url, sizeof url, "turns:127.0.0.1:%u", tls_port);
  else snprintf(url, sizeof url, "turn:127.0.0.1:%u?transport=%s", port, over == OVER_TCP ? "tcp" : "udp");
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  parley_ice_server srv = {url, "bench", "bench"};
  int rc = 0;
  end a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  pthread_mutex_init(&a.mu, NULL);
  pthread_mutex_init(&b.mu, NULL);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  cfg.opus_dtx = false; /* silence is sent as packets: the first one is the first audio */
  cfg.ice_servers = &srv;
  cfg.ice_server_count = 1;
  cfg.ice_transport_policy = PARLEY_ICE_POLICY_RELAY;
  cfg.turn_ca_file = over == OVER_TLS ? ca : NULL;
  double *ms[4];
  for (int i = 0; i < 4; i++) ms[i] = calloc((size_t)trials, sizeof(double));
  if (!ms[0] || !ms[1] || !ms[2] || !ms[3] || parley_engine_new(&cfg, &a.eng) != 0 || parley_engine_new(&cfg, &b.eng) != 0) rc = 1;
  int n = 0;
  for (int t = 0; rc == 0 && t < trials; t++) {
    double out[4];
    if (trial(&a, &b, out) != 0) {
      fprintf(stderr, "connect: %s trial %d did not connect within 10 s\n", PATH_NAME[over], t);
      rc = 1;
      break;
    }
    for (int i = 0; i < 4; i++) ms[i][n] = out[i];
    n++;
  }
  static const char *const role[2] = {"controlling", "controlled"};
  for (int i = 0; rc == 0 && i < 2; i++) {
    bench_row_begin(rep);
    bench_field_str(rep, "role", role[i]);
    bench_field_str(rep, "security", "dtls");
    bench_field_str(rep, "path", PATH_NAME[over]);
    bench_field_int(rep, "n", n);
    bench_field_num(rep, "audio_p50_ms", bench_quantile(ms[i], (size_t)n, 0.5), 1);
    bench_field_num(rep, "audio_p95_ms", bench_quantile(ms[i], (size_t)n, 0.95), 1);
    bench_field_num(rep, "relay_cand_p50_ms", bench_quantile(ms[2 + i], (size_t)n, 0.5), 1);
    bench_row_end(rep);
  }
  parley_engine_free(a.eng);
  parley_engine_free(b.eng);
  for (int i = 0; i < 4; i++) free(ms[i]);
  pthread_mutex_destroy(&a.mu);
  pthread_mutex_destroy(&b.mu);
  return rc;
}

int bench_connect_relay(bench_report *rep, int trials) {
  if (trials <= 0) return 0;
  if (access("/usr/bin/turnserver", X_OK) != 0) {
    bench_note(rep, "turn rows: skipped, coturn (/usr/bin/turnserver) is not installed");
    return 0;
  }
  char dir[] = "/tmp/parley-bench-turn.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  uint16_t port = (uint16_t)(30000 + getpid() % 20000);
  uint16_t tls_port = (uint16_t)(port + 202); /* past the relay ports (port+1..+200) and coturn's alternate one */
  bool certs = make_certs(dir) == 0;
  if (!certs) bench_note(rep, "turn-tls rows: skipped, the openssl CLI could not make a certificate");
  pid_t pid = coturn_start(port, tls_port, certs, dir);
  int rc = 0;
  if (pid < 0) {
    bench_note(rep, "turn rows: skipped, coturn did not start on 127.0.0.1:%u", port);
  } else {
    for (int over = OVER_UDP; rc == 0 && over <= (certs ? OVER_TLS : OVER_TCP); over++)
      rc = rows(rep, port, tls_port, dir, over, trials);
    if (rc == 0)
      bench_note(rep, "turn-udp/turn-tcp/turn-tls rows: real time, coturn on 127.0.0.1 reached over UDP, TCP or TLS "
                      "(turns:, a certificate from a CA the engines are given), both engines "
                      "relay-only (every packet crosses the relay); from the offerer's create_offer (it starts "
                      "allocating) to each side's first authenticated RTP through the relay (TRACK_STARTED), "
                      "candidates trickled as they come; relay_cand: that side's relayed candidate (the Allocate "
                      "with its 401 round; the answerer starts at the offer's arrival, here at once)");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "connect: could not remove %s\n", dir);
  return rc;
}
