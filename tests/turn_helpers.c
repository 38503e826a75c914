/* turn_helpers.c: the network and endpoints the coturn call tests share (turn_helpers.h). Test
 * processes only; each test makes its own network and removes it. */
#define _GNU_SOURCE
#include "turn_helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "interop_helpers.h"
#include "transport/netaddr.h"
#include "transport/udp.h"

int64_t tr_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void tr_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the namespaces and coturn ---- */

void tr_sh(const char *cmd) { cr_assert_eq(system(cmd), 0, "%s", cmd); }

static int this_ns(void) {
  int fd = open("/proc/thread-self/ns/net", O_RDONLY);
  cr_assert_geq(fd, 0);
  return fd;
}

void tr_enter(int fd) { cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns"); }

/* A new namespace joined to R by a veth pair (rname in R with rip, "eth0" in it with ip). */
static int make_leaf(net *n, const char *rname, const char *rip, const char *ip) {
  cr_assert_eq(unshare(CLONE_NEWNET), 0);
  int fd = this_ns();
  tr_enter(n->r);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "ip link add %s type veth peer name eth0 netns /proc/%d/fd/%d && ip addr add %s/24 dev %s && "
           "ip link set %s up",
           rname, (int)getpid(), fd, rip, rname, rname);
  tr_sh(cmd);
  tr_enter(fd);
  snprintf(cmd, sizeof cmd, "ip link set lo up && ip addr add %s/24 dev eth0 && ip link set eth0 up && "
           "ip route add default via %s", ip, rip);
  tr_sh(cmd);
  tr_enter(n->r);
  return fd;
}

/* NULL with the network up, else why the test skips. */
static const char *net_up(net *n) {
  memset(n, 0, sizeof *n);
  if (geteuid() != 0) return "needs root for network namespaces";
  if (access("/usr/bin/turnserver", X_OK) != 0) return "coturn is not installed";
  if (system("nft --version >/dev/null 2>&1") != 0) return "nft is not installed";
  if (unshare(CLONE_NEWNET) != 0) return "unshare(CLONE_NEWNET) failed: no network namespaces";
  n->r = this_ns();
  tr_sh("ip link set lo up");
  n->a = make_leaf(n, "ra", "10.0.0.1", "10.0.0.2");
  n->b = make_leaf(n, "rb", "10.0.1.1", "10.0.1.2");
  /* R routes, and drops every forwarded packet: A and B meet only at R's own addresses (coturn). */
  tr_sh("sysctl -qw net.ipv4.ip_forward=1 && "
     "nft add table inet parley && "
     "nft add chain inet parley between '{ type filter hook forward priority 0; policy drop; }'");
  return NULL;
}

/* A CA (ca.pem) and coturn's certificate from it for 10.0.0.1 (server.pem, server.key), and a second CA
 * that signed nothing here (other-ca.pem), made with the openssl CLI in dir. */
void tr_make_certs(const char *dir) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd,
           "cd %s && printf 'subjectAltName=IP:10.0.0.1\n' > san.ext && "
           "for ca in ca other-ca; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout $ca.key -out $ca.pem -days 2 -subj /CN=parley-test-$ca 2>/dev/null || exit 1; done && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr "
           "-subj /CN=turn.parley.test 2>/dev/null && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
           "-out server.pem 2>/dev/null",
           dir);
  tr_sh(cmd);
}

/* coturn on 10.0.0.1: UDP and TCP on 3478, and with tls TLS on 5349 (make_certs' certificate). */
static void turn_start(net *n, bool tls) {
  snprintf(n->dir, sizeof n->dir, "/tmp/parley-turncall.XXXXXX");
  cr_assert_not_null(mkdtemp(n->dir));
  char userdb[96], pidfile[96], cert[96], pkey[96];
  snprintf(userdb, sizeof userdb, "--userdb=%s/turndb", n->dir);
  snprintf(pidfile, sizeof pidfile, "--pidfile=%s/pid", n->dir);
  snprintf(cert, sizeof cert, "--cert=%s/server.pem", n->dir);
  snprintf(pkey, sizeof pkey, "--pkey=%s/server.key", n->dir);
  if (tls) tr_make_certs(n->dir);
  n->turn = fork();
  cr_assert_geq(n->turn, 0);
  if (n->turn == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char log[96];
    snprintf(log, sizeof log, "%s/log.txt", n->dir);
    if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(126);
    execl("/usr/bin/turnserver", "turnserver", "-n", "--listening-ip=10.0.0.1", "--relay-ip=10.0.0.1",
          "--listening-port", "3478", "--lt-cred-mech", "--user=" USER ":" PASS, "--realm=parley.test",
          "--no-dtls", "--no-cli", "--verbose", userdb, pidfile, "--log-file=stdout", "--simple-log",
          tls ? "--tls-listening-port=5349" : "--no-tls", tls ? cert : NULL, pkey, (char *)NULL);
    _exit(127);
  }
  /* Up when a Binding request from A gets an answer (at most 5 s). */
  tr_enter(n->a);
  parley__udp s;
  parley__netaddr any, srv;
  parley__netaddr_from_ip(&any, "10.0.0.2", 0);
  parley__netaddr_from_ip(&srv, "10.0.0.1", 3478);
  cr_assert_eq(parley__udp_open(&s, &any), 0);
  tr_enter(n->r);
  static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  bool up = false;
  for (int i = 0; i < 50 && !up; i++) {
    (void)parley__udp_send(&s, &srv, binding, sizeof binding, NULL);
    struct pollfd p = {s.fd, POLLIN, 0};
    uint8_t buf[512];
    parley__netaddr from;
    if (poll(&p, 1, 100) != 1) continue;
    if (parley__udp_recv(&s, buf, sizeof buf, &from, NULL) > 0) up = true;
    else tr_sleep_ms(100); /* port unreachable: not listening yet */
  }
  parley__udp_close(&s);
  cr_assert(up, "coturn did not answer on 10.0.0.1:3478 within 5 s (see %s/log.txt)", n->dir);
}

static void turn_kill(net *n) {
  if (n->turn <= 0) return;
  kill(n->turn, SIGKILL);
  waitpid(n->turn, NULL, 0);
  n->turn = 0;
}

void tr_net_down(net *n) {
  turn_kill(n);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", n->dir);
  if (n->dir[0] && system(cmd) != 0) cr_log_warn("could not remove %s", n->dir);
  close(n->a);
  close(n->b);
  close(n->r);
}

/* ---- an endpoint ---- */

static void on_event(const parley_event *ev, void *user) {
  side *s = user;
  pthread_mutex_lock(&s->mu);
  if (ev->kind == PARLEY_EVENT_LOCAL_CANDIDATE && s->nlines < MAX_LINES) {
    snprintf(s->lines[s->nlines++], sizeof s->lines[0], "%s", ev->candidate);
    cr_log_info("%s trickles %s", s->name, ev->candidate);
  } else if (ev->kind == PARLEY_EVENT_TRACK_STARTED) {
    s->tracks++;
  } else if (ev->kind == PARLEY_EVENT_INTERRUPTED && s->interrupts++ == 0) {
    s->interrupted_at = tr_mono_us();
    s->code = ev->code;
    cr_log_info("%s interrupted: %s", s->name, ev->message);
  } else if (ev->kind == PARLEY_EVENT_RESUMED && s->resumes++ == 0) {
    s->resumed_at = tr_mono_us();
  } else if (ev->kind == PARLEY_EVENT_CLOSED) {
    s->closed++;
  } else if (ev->kind == PARLEY_EVENT_ICE_CANDIDATE_ERROR) {
    if (s->cand_errors++ == 0) snprintf(s->cand_error, sizeof s->cand_error, "%s", ev->message);
    cr_log_info("%s: candidate error: %s", s->name, ev->message);
  }
  pthread_mutex_unlock(&s->mu);
}

static char turn_ca[96]; /* the engines' turn_ca_file when set ("": none) */

/* urls: the TURN servers, NULL-terminated (at most 2). */
static void side_start(side *s, const char *name, const char *speech, parley_ice_transport_policy policy,
                       const char *const *urls) {
  memset(s, 0, sizeof *s);
  s->name = name;
  pthread_mutex_init(&s->mu, NULL);
  snprintf(s->out, sizeof s->out, "/tmp/parley_turncall_XXXXXX");
  int fd = mkstemp(s->out);
  cr_assert_geq(fd, 0);
  close(fd);
  parley_ice_server turn[2];
  int n = 0;
  for (; n < 2 && urls[n]; n++) turn[n] = (parley_ice_server){urls[n], USER, PASS};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = speech;
  cfg.output_file = s->out;
  cfg.input_file_at_media = true;
  cfg.echo_cancellation = cfg.noise_suppression = false; /* what was sent is the fixture itself */
  cfg.ipv6 = false;
  cfg.ice_servers = turn;
  cfg.ice_server_count = n;
  cfg.ice_transport_policy = policy;
  cfg.turn_ca_file = turn_ca[0] ? turn_ca : NULL;
  cr_assert_eq(parley_engine_new(&cfg, &s->eng), 0);
  cr_assert_eq(parley_call_new(s->eng, &s->call), 0);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
    cr_assert_geq(parley_call_on(s->call, (parley_event_kind)k, on_event, s), 0);
}

void tr_side_free(side *s) {
  if (s->call) {
    for (int i = 0; i < 100 && !s->closed; i++) tr_sleep_ms(20); /* CLOSED delivered: listeners may go */
    for (int id = 1; id < 64; id++) (void)parley_call_off(s->call, id);
    cr_expect_eq(parley_call_free(s->call), 0);
  }
  parley_engine_free(s->eng);
}

/* Trickles what each side gathered to the other. */
void tr_forward(side *from, side *to) {
  for (;;) {
    char line[256];
    pthread_mutex_lock(&from->mu);
    bool more = from->forwarded < from->nlines;
    if (more) memcpy(line, from->lines[from->forwarded++], sizeof line);
    pthread_mutex_unlock(&from->mu);
    if (!more) return;
    int r = parley_call_add_remote_candidate(to->call, line);
    cr_expect_geq(r, 0, "%s: %s: %s", to->name, line, parley_strerror(r));
  }
}

int tr_get(side *s, const int *field) {
  pthread_mutex_lock(&s->mu);
  int v = *field;
  pthread_mutex_unlock(&s->mu);
  return v;
}

/* Runs the signalling (A offers from its namespace, B answers from its own), trickling for up to
 * wait_ms or until both hear the other. */
void tr_connect_sides(net *n, side *a, side *b, char *offer, size_t cap, int wait_ms) {
  static char answer[8192];
  parley_sdp_error se;
  tr_enter(n->a); /* A's sockets in A */
  cr_assert_gt(parley_call_create_offer(a->call, offer, cap), 0);
  tr_enter(n->r);
  cr_assert_eq(parley_call_set_local_description(a->call, offer), 0);
  tr_enter(n->b); /* B's in B */
  cr_assert_eq(parley_call_set_remote_description(b->call, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  tr_enter(n->r);
  cr_assert_gt(parley_call_create_answer(b->call, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(b->call, answer), 0);
  cr_assert_eq(parley_call_set_remote_description(a->call, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a->call), 0);
  cr_assert_eq(parley_call_start(b->call), 0);
  int64_t end = tr_mono_us() + wait_ms * 1000LL;
  while (tr_mono_us() < end && (tr_get(a, &a->tracks) == 0 || tr_get(b, &b->tracks) == 0)) {
    tr_forward(a, b);
    tr_forward(b, a);
    tr_sleep_ms(10);
  }
  cr_assert(tr_get(a, &a->tracks) > 0 && tr_get(b, &b->tracks) > 0, "both hear the other within %d ms", wait_ms);
}

/* How many of the lines s trickled hold needle. */
int tr_count_lines(side *s, const char *needle) {
  int found = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nlines; i++) found += strstr(s->lines[i], needle) != NULL;
  pthread_mutex_unlock(&s->mu);
  return found;
}

bool tr_has_line(side *s, const char *needle) { return tr_count_lines(s, needle) > 0; }

parley_candidate_type tr_local_type(side *s) {
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(s->call, &st), 0);
  return st.local_candidate_type;
}

/* The recording at s->out holds speech `said` and not `other` (the control). */
static void heard(side *s, const char *said, const char *other) {
  size_t nx, ny, nz;
  int rate;
  float *x = th_load_wav(said, &nx, &rate);
  float *z = th_load_wav(other, &nz, &rate);
  float *y = th_read_wav(s->out, &ny, &rate);
  cr_assert(x && y && z, "%s: cannot read %s", s->name, s->out);
  double peak = th_piecewise_speech(x, nx, y, ny), control = th_piecewise_speech(z, nz, y, ny);
  cr_log_info("%s heard %s through the relay: piecewise correlation %.3f (other clip %.3f)", s->name, said, peak,
              control);
  cr_expect_geq(peak, 0.6, "%s: correlation %.3f", s->name, peak);
  cr_expect_lt(control, peak * 0.6, "%s: control %.3f vs %.3f", s->name, control, peak);
  free(x);
  free(y);
  free(z);
}

/* Kills coturn mid-call: both sides must report the interruption (within 5 s; the times are logged). */
void tr_kill_relay(net *n, side *a, side *b) {
  int64_t killed = tr_mono_us();
  turn_kill(n);
  for (int i = 0; i < 500 && (tr_get(a, &a->interrupts) == 0 || tr_get(b, &b->interrupts) == 0); i++) tr_sleep_ms(10);
  cr_expect_gt(tr_get(a, &a->interrupts), 0, "A interrupted after the relay died");
  cr_expect_gt(tr_get(b, &b->interrupts), 0, "B interrupted after the relay died");
  cr_log_info("relay killed: A interrupted after %.0f ms (code %d), B after %.0f ms (code %d)",
              (a->interrupted_at - killed) / 1000.0, a->code, (b->interrupted_at - killed) / 1000.0, b->code);
}

/* Hangs up, frees, and with speech checks that each side recorded the other's speech. */
void tr_end_call(side *a, side *b, bool speech) {
  cr_expect_eq(parley_call_hangup(a->call), 0);
  cr_expect_eq(parley_call_hangup(b->call), 0);
  tr_side_free(a);
  tr_side_free(b);
  if (speech) {
    heard(a, "speech_b_48k.wav", "speech_a_48k.wav");
    heard(b, "speech_a_48k.wav", "speech_b_48k.wav");
  }
  unlink(a->out);
  unlink(b->out);
}

/* The first number the shell command cmd prints (0 if none). */
unsigned long tr_shell_count(const char *cmd) {
  FILE *f = popen(cmd, "r");
  unsigned long count = 0;
  if (f) {
    if (fscanf(f, "%lu", &count) != 1) count = 0;
    pclose(f);
  }
  return count;
}

/* How many lines of coturn's log match the extended regular expression re. */
int tr_log_count(net *n, const char *re) {
  char cmd[320];
  snprintf(cmd, sizeof cmd, "grep -cE '%s' %s/log.txt", re, n->dir);
  return (int)tr_shell_count(cmd);
}

#define SPEECH_B PARLEY_TEST_DATA "/speech_b_48k.wav"

/* The network and coturn (then the shell command block, if any, in R), and two engines with the policy
 * and TURN servers given (ca: with TLS on coturn, the file in its directory the engines trust, or NULL);
 * A talks speech A, B speech B. Skips the test without the tools. */
void tr_rig_up(rig *g, parley_ice_transport_policy policy, const char *const *urls, const char *block,
                   const char *ca) {
  const char *why = net_up(&g->n);
  if (why) cr_skip_test("%s", why);
  turn_start(&g->n, ca != NULL);
  turn_ca[0] = '\0';
  if (ca) snprintf(turn_ca, sizeof turn_ca, "%s/%s", g->n.dir, ca);
  if (block) tr_sh(block);
  /* Each engine is made in its namespace, so its network thread lives there too: the thread that
   * watches the host's addresses (handover) must see those of the call's sockets. */
  tr_enter(g->n.a);
  side_start(&g->a, "A", SPEECH_A, policy, urls);
  tr_enter(g->n.b);
  side_start(&g->b, "B", SPEECH_B, policy, urls);
  tr_enter(g->n.r);
}

/* A relay-only call through coturn over UDP, a second in. */
void tr_relay_only_call(rig *g) {
  tr_rig_up(g, PARLEY_ICE_POLICY_RELAY, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  tr_connect_sides(&g->n, &g->a, &g->b, offer, sizeof offer, 10000);
  tr_sleep_ms(1000);
}

/* A relay-only call set up, both ends relayed, and the 6 s clips through (over: how the relay is reached). */
void tr_talk_relayed(rig *g, const char *over) {
  static char offer[8192];
  int64_t t0 = tr_mono_us();
  tr_connect_sides(&g->n, &g->a, &g->b, offer, sizeof offer, 10000);
  cr_log_info("both sides hear the other %.0f ms after the offer (TURN over %s)", (tr_mono_us() - t0) / 1000.0, over);
  cr_expect_eq(tr_local_type(&g->a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(tr_local_type(&g->b), PARLEY_CANDIDATE_RELAY);
  tr_sleep_ms(7500);
}

