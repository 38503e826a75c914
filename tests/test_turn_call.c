/* test_turn_call.c: calls through a real TURN server (coturn, Debian's turnserver) between two engines
 * that cannot reach each other: audio both ways through the relay, the relayed pair selected, the relay
 * killed mid-call (both sides interrupted), the relay-only policy (no host address offered, both ends
 * relayed, both allocations released at hang-up), A's path to the relay cut and restored (network-lost,
 * then resumed, on both sides), A's address replaced mid-call on a relay-only call (A allocates again
 * from the new one and trickles it; media resumes without an offer), TURN over TCP with UDP to the
 * server blocked, TURN over TLS (turns:, coturn's certificate from a CA made here with the openssl
 * CLI) with UDP and plain TCP blocked, and a turns: server whose certificate the engine does not trust
 * (ICE_CANDIDATE_ERROR says so at once).
 * Also the ICE server URLs and CA files the engine config takes and refuses (no network).
 *
 * The network, made by each test and gone with its process: the test process moves into a new network
 * namespace R (unshare), which holds coturn on 10.0.0.1:3478 and two veth links to namespaces A
 * (10.0.0.2) and B (10.0.1.2); R forwards between A and B only as far as nft lets it, and it drops
 * everything forwarded, so A and B reach coturn and the relayed addresses and never each other. Each
 * engine is made while the calling thread is in its namespace (setns), so that its threads live there
 * (the network thread watches the addresses, for handover), and so are its sockets. coturn dies with the test process
 * (PR_SET_PDEATHSIG). Skipped without root, namespaces, nft or coturn. */
#define _GNU_SOURCE
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
#include "parley/parley.h"
#include "transport/netaddr.h"
#include "transport/udp.h"

#define USER "alice"
#define PASS "wonderland"
#define TURN_URL "turn:10.0.0.1:3478?transport=udp"

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the namespaces and coturn ---- */

typedef struct net {
  int r, a, b; /* namespace fds */
  pid_t turn;
  char dir[64];
} net;

static void sh(const char *cmd) { cr_assert_eq(system(cmd), 0, "%s", cmd); }

static int this_ns(void) {
  int fd = open("/proc/thread-self/ns/net", O_RDONLY);
  cr_assert_geq(fd, 0);
  return fd;
}

static void enter(int fd) { cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns"); }

/* A new namespace joined to R by a veth pair (rname in R with rip, "eth0" in it with ip). */
static int make_leaf(net *n, const char *rname, const char *rip, const char *ip) {
  cr_assert_eq(unshare(CLONE_NEWNET), 0);
  int fd = this_ns();
  enter(n->r);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "ip link add %s type veth peer name eth0 netns /proc/%d/fd/%d && ip addr add %s/24 dev %s && "
           "ip link set %s up",
           rname, (int)getpid(), fd, rip, rname, rname);
  sh(cmd);
  enter(fd);
  snprintf(cmd, sizeof cmd, "ip link set lo up && ip addr add %s/24 dev eth0 && ip link set eth0 up && "
           "ip route add default via %s", ip, rip);
  sh(cmd);
  enter(n->r);
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
  sh("ip link set lo up");
  n->a = make_leaf(n, "ra", "10.0.0.1", "10.0.0.2");
  n->b = make_leaf(n, "rb", "10.0.1.1", "10.0.1.2");
  /* R routes, and drops every forwarded packet: A and B meet only at R's own addresses (coturn). */
  sh("sysctl -qw net.ipv4.ip_forward=1 && "
     "nft add table inet parley && "
     "nft add chain inet parley between '{ type filter hook forward priority 0; policy drop; }'");
  return NULL;
}

/* A CA (ca.pem) and coturn's certificate from it for 10.0.0.1 (server.pem, server.key), and a second CA
 * that signed nothing here (other-ca.pem), made with the openssl CLI in dir. */
static void make_certs(const char *dir) {
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
  sh(cmd);
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
  if (tls) make_certs(n->dir);
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
  enter(n->a);
  parley__udp s;
  parley__netaddr any, srv;
  parley__netaddr_from_ip(&any, "10.0.0.2", 0);
  parley__netaddr_from_ip(&srv, "10.0.0.1", 3478);
  cr_assert_eq(parley__udp_open(&s, &any), 0);
  enter(n->r);
  static const uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  bool up = false;
  for (int i = 0; i < 50 && !up; i++) {
    (void)parley__udp_send(&s, &srv, binding, sizeof binding, NULL);
    struct pollfd p = {s.fd, POLLIN, 0};
    uint8_t buf[512];
    parley__netaddr from;
    if (poll(&p, 1, 100) != 1) continue;
    if (parley__udp_recv(&s, buf, sizeof buf, &from, NULL) > 0) up = true;
    else sleep_ms(100); /* port unreachable: not listening yet */
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

static void net_down(net *n) {
  turn_kill(n);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", n->dir);
  if (n->dir[0] && system(cmd) != 0) cr_log_warn("could not remove %s", n->dir);
  close(n->a);
  close(n->b);
  close(n->r);
}

/* ---- an endpoint ---- */

#define MAX_LINES 16
typedef struct side {
  const char *name;
  parley_engine *eng;
  parley_call *call;
  char out[64];
  pthread_mutex_t mu; /* the fields below: the dispatch thread writes them */
  char lines[MAX_LINES][256];
  int nlines, forwarded;
  int tracks, interrupts, resumes, closed, cand_errors;
  char cand_error[256]; /* the first ICE_CANDIDATE_ERROR's message */
  int64_t interrupted_at, resumed_at;
  parley_interrupt_code code;
} side;

static void on_event(const parley_event *ev, void *user) {
  side *s = user;
  pthread_mutex_lock(&s->mu);
  if (ev->kind == PARLEY_EVENT_LOCAL_CANDIDATE && s->nlines < MAX_LINES) {
    snprintf(s->lines[s->nlines++], sizeof s->lines[0], "%s", ev->candidate);
    cr_log_info("%s trickles %s", s->name, ev->candidate);
  } else if (ev->kind == PARLEY_EVENT_TRACK_STARTED) {
    s->tracks++;
  } else if (ev->kind == PARLEY_EVENT_INTERRUPTED && s->interrupts++ == 0) {
    s->interrupted_at = mono_us();
    s->code = ev->code;
    cr_log_info("%s interrupted: %s", s->name, ev->message);
  } else if (ev->kind == PARLEY_EVENT_RESUMED && s->resumes++ == 0) {
    s->resumed_at = mono_us();
  } else if (ev->kind == PARLEY_EVENT_CLOSED) {
    s->closed++;
  } else if (ev->kind == PARLEY_EVENT_ICE_CANDIDATE_ERROR) {
    if (s->cand_errors++ == 0) snprintf(s->cand_error, sizeof s->cand_error, "%s", ev->message);
    cr_log_info("%s: candidate error: %s", s->name, ev->message);
  }
  pthread_mutex_unlock(&s->mu);
}

static const char *const UDP_ONLY[] = {TURN_URL, NULL};
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

static void side_free(side *s) {
  if (s->call) {
    for (int i = 0; i < 100 && !s->closed; i++) sleep_ms(20); /* CLOSED delivered: listeners may go */
    for (int id = 1; id < 64; id++) (void)parley_call_off(s->call, id);
    cr_expect_eq(parley_call_free(s->call), 0);
  }
  parley_engine_free(s->eng);
}

/* Trickles what each side gathered to the other. */
static void forward(side *from, side *to) {
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

static int get(side *s, const int *field) {
  pthread_mutex_lock(&s->mu);
  int v = *field;
  pthread_mutex_unlock(&s->mu);
  return v;
}

/* Runs the signalling (A offers from its namespace, B answers from its own), trickling for up to
 * wait_ms or until both hear the other. */
static void connect_sides(net *n, side *a, side *b, char *offer, size_t cap, int wait_ms) {
  static char answer[8192];
  parley_sdp_error se;
  enter(n->a); /* A's sockets in A */
  cr_assert_gt(parley_call_create_offer(a->call, offer, cap), 0);
  enter(n->r);
  cr_assert_eq(parley_call_set_local_description(a->call, offer), 0);
  enter(n->b); /* B's in B */
  cr_assert_eq(parley_call_set_remote_description(b->call, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  enter(n->r);
  cr_assert_gt(parley_call_create_answer(b->call, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(b->call, answer), 0);
  cr_assert_eq(parley_call_set_remote_description(a->call, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a->call), 0);
  cr_assert_eq(parley_call_start(b->call), 0);
  int64_t end = mono_us() + wait_ms * 1000LL;
  while (mono_us() < end && (get(a, &a->tracks) == 0 || get(b, &b->tracks) == 0)) {
    forward(a, b);
    forward(b, a);
    sleep_ms(10);
  }
  cr_assert(get(a, &a->tracks) > 0 && get(b, &b->tracks) > 0, "both hear the other within %d ms", wait_ms);
}

/* How many of the lines s trickled hold needle. */
static int count_lines(side *s, const char *needle) {
  int found = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nlines; i++) found += strstr(s->lines[i], needle) != NULL;
  pthread_mutex_unlock(&s->mu);
  return found;
}

static bool has_line(side *s, const char *needle) { return count_lines(s, needle) > 0; }

static parley_candidate_type local_type(side *s) {
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
static void kill_relay(net *n, side *a, side *b) {
  int64_t killed = mono_us();
  turn_kill(n);
  for (int i = 0; i < 500 && (get(a, &a->interrupts) == 0 || get(b, &b->interrupts) == 0); i++) sleep_ms(10);
  cr_expect_gt(get(a, &a->interrupts), 0, "A interrupted after the relay died");
  cr_expect_gt(get(b, &b->interrupts), 0, "B interrupted after the relay died");
  cr_log_info("relay killed: A interrupted after %.0f ms (code %d), B after %.0f ms (code %d)",
              (a->interrupted_at - killed) / 1000.0, a->code, (b->interrupted_at - killed) / 1000.0, b->code);
}

/* Hangs up, frees, and with speech checks that each side recorded the other's speech. */
static void end_call(side *a, side *b, bool speech) {
  cr_expect_eq(parley_call_hangup(a->call), 0);
  cr_expect_eq(parley_call_hangup(b->call), 0);
  side_free(a);
  side_free(b);
  if (speech) {
    heard(a, "speech_b_48k.wav", "speech_a_48k.wav");
    heard(b, "speech_a_48k.wav", "speech_b_48k.wav");
  }
  unlink(a->out);
  unlink(b->out);
}

/* The first number the shell command cmd prints (0 if none). */
static unsigned long shell_count(const char *cmd) {
  FILE *f = popen(cmd, "r");
  unsigned long count = 0;
  if (f) {
    if (fscanf(f, "%lu", &count) != 1) count = 0;
    pclose(f);
  }
  return count;
}

/* How many lines of coturn's log match the extended regular expression re. */
static int log_count(net *n, const char *re) {
  char cmd[320];
  snprintf(cmd, sizeof cmd, "grep -cE '%s' %s/log.txt", re, n->dir);
  return (int)shell_count(cmd);
}

#define SPEECH_A PARLEY_TEST_DATA "/speech_a_48k.wav"
#define SPEECH_B PARLEY_TEST_DATA "/speech_b_48k.wav"

typedef struct rig {
  net n;
  side a, b;
} rig;

/* The network and coturn (then the shell command block, if any, in R), and two engines with the policy
 * and TURN servers given (ca: with TLS on coturn, the file in its directory the engines trust, or NULL);
 * A talks speech A, B speech B. Skips the test without the tools. */
static void rig_up(rig *g, parley_ice_transport_policy policy, const char *const *urls, const char *block,
                   const char *ca) {
  const char *why = net_up(&g->n);
  if (why) cr_skip_test("%s", why);
  turn_start(&g->n, ca != NULL);
  turn_ca[0] = '\0';
  if (ca) snprintf(turn_ca, sizeof turn_ca, "%s/%s", g->n.dir, ca);
  if (block) sh(block);
  /* Each engine is made in its namespace, so its network thread lives there too: the thread that
   * watches the host's addresses (handover) must see those of the call's sockets. */
  enter(g->n.a);
  side_start(&g->a, "A", SPEECH_A, policy, urls);
  enter(g->n.b);
  side_start(&g->b, "B", SPEECH_B, policy, urls);
  enter(g->n.r);
}

/* Host candidates on both sides, but only the relay connects: speech both ways through coturn; then
 * coturn is killed and both sides report the interruption. */
Test(turn_call, speech_both_ways_through_the_relay_then_the_relay_dies, .timeout = 240) {
  rig g;
  rig_up(&g, PARLEY_ICE_POLICY_ALL, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  int64_t t0 = mono_us();
  connect_sides(&g.n, &g.a, &g.b, offer, sizeof offer, 10000);
  cr_log_info("both sides hear the other %.0f ms after the offer", (mono_us() - t0) / 1000.0);
  cr_expect(strstr(offer, "typ host") != NULL, "the offer has host candidates");
  cr_expect(has_line(&g.a, "typ relay raddr 10.0.0.2") && has_line(&g.b, "typ relay raddr 10.0.1.2"),
            "each side trickled a relayed candidate with its mapped address as raddr");
  cr_expect(has_line(&g.a, "end-of-candidates") && has_line(&g.b, "end-of-candidates"));
  /* A and B cannot reach each other: at least one end of the pair is a relayed candidate. */
  parley_candidate_type ta = local_type(&g.a), tb = local_type(&g.b);
  cr_log_info("selected pair: A's local %d, B's local %d (4 = relay)", ta, tb);
  cr_expect(ta == PARLEY_CANDIDATE_RELAY || tb == PARLEY_CANDIDATE_RELAY);
  sleep_ms(7500); /* the 6 s clips, through */
  parley_call_stats sa;
  cr_assert_eq(parley_call_get_stats(g.a.call, &sa), 0);
  cr_expect_gt(sa.rtt_ms, 0, "RTCP round trips through the relay");

  kill_relay(&g.n, &g.a, &g.b);
  end_call(&g.a, &g.b, true);
  net_down(&g.n);
}

/* The relay policy: no host candidate or address in the descriptions, both ends of the pair relayed,
 * media both ways; hang-up releases both allocations (coturn logs each Refresh with lifetime 0). */
Test(turn_call, relay_only_policy, .timeout = 240) {
  rig g;
  rig_up(&g, PARLEY_ICE_POLICY_RELAY, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  connect_sides(&g.n, &g.a, &g.b, offer, sizeof offer, 10000);
  cr_expect(strstr(offer, "typ host") == NULL && strstr(offer, "10.0.0.2") == NULL, "no host address offered");
  cr_expect(!has_line(&g.a, "typ host") && !has_line(&g.b, "typ host"));
  cr_expect(!has_line(&g.a, "10.0.0.2") && !has_line(&g.b, "10.0.1.2"), "raddr hides the host address");
  cr_expect(has_line(&g.a, "typ relay raddr 0.0.0.0 rport 0") && has_line(&g.b, "typ relay raddr 0.0.0.0 rport 0"));
  cr_expect_eq(local_type(&g.a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(local_type(&g.b), PARLEY_CANDIDATE_RELAY);
  sleep_ms(2000); /* media both ways (the speech is correlated in the other tests) */
  for (int i = 0; i < 2; i++) {
    side *s = i ? &g.b : &g.a;
    parley_call_stats st;
    cr_assert_eq(parley_call_get_stats(s->call, &st), 0);
    cr_expect_gt(st.packets_received, 50, "%s: %llu packets through the relays", s->name,
                 (unsigned long long)st.packets_received);
    cr_expect(st.audio_level_received >= 0 && st.audio_level_received < 60, "%s hears speech: -%d dBov", s->name,
              st.audio_level_received);
  }
  end_call(&g.a, &g.b, false);
  /* coturn (--verbose) logs each Refresh: "session ...: refreshed, ..., lifetime=0". */
  sleep_ms(300);
  int count = log_count(&g.n, "refreshed, .*lifetime=0");
  cr_expect_eq(count, 2, "coturn saw both allocations released (Refresh with lifetime 0): %d", count);
  net_down(&g.n);
}

/* A relay-only call through coturn over UDP, a second in. */
static void relay_only_call(rig *g) {
  rig_up(g, PARLEY_ICE_POLICY_RELAY, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  connect_sides(&g->n, &g->a, &g->b, offer, sizeof offer, 10000);
  sleep_ms(1000);
}

/* A's path to the relay is cut (nft drops what A and R exchange, no ICMP) while both are relay-only:
 * both sides report network-lost as they would on a direct path, and resume once it is restored. */
Test(turn_call, path_to_the_relay_cut_then_restored, .timeout = 240) {
  rig g;
  relay_only_call(&g);
  int64_t cut = mono_us();
  /* Dropped where each direction arrives (R's input from A, A's input from R): a drop on output would
   * fail the sender's send (EPERM), which a network never does (coturn ends the session on it). */
  enter(g.n.a);
  sh("nft add table inet cut && nft add chain inet cut in '{ type filter hook input priority 0; }' && "
     "nft add rule inet cut in ip saddr 10.0.0.1 drop");
  enter(g.n.r);
  sh("nft add chain inet parley cut_in '{ type filter hook input priority 0; }' && "
     "nft add rule inet parley cut_in ip saddr 10.0.0.2 drop");
  for (int i = 0; i < 500 && (get(&g.a, &g.a.interrupts) == 0 || get(&g.b, &g.b.interrupts) == 0); i++) sleep_ms(10);
  cr_assert(get(&g.a, &g.a.interrupts) > 0 && get(&g.b, &g.b.interrupts) > 0, "both interrupted within 5 s");
  cr_expect_eq(g.a.code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_expect_eq(g.b.code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_log_info("path to the relay cut: A interrupted after %.0f ms, B after %.0f ms", (g.a.interrupted_at - cut) / 1000.0,
              (g.b.interrupted_at - cut) / 1000.0);
  sleep_ms(1000);
  int64_t restored = mono_us();
  enter(g.n.a);
  sh("nft flush chain inet cut in");
  enter(g.n.r);
  sh("nft flush chain inet parley cut_in");
  for (int i = 0; i < 500 && (get(&g.a, &g.a.resumes) == 0 || get(&g.b, &g.b.resumes) == 0); i++) sleep_ms(10);
  cr_expect(get(&g.a, &g.a.resumes) > 0 && get(&g.b, &g.b.resumes) > 0, "both resumed within 5 s");
  cr_log_info("restored: A resumed after %.0f ms, B after %.0f ms", (g.a.resumed_at - restored) / 1000.0,
              (g.b.resumed_at - restored) / 1000.0);
  end_call(&g.a, &g.b, false);
  net_down(&g.n);
}

/* A relay-only call set up, both ends relayed, and the 6 s clips through (over: how the relay is reached). */
static void talk_relayed(rig *g, const char *over) {
  static char offer[8192];
  int64_t t0 = mono_us();
  connect_sides(&g->n, &g->a, &g->b, offer, sizeof offer, 10000);
  cr_log_info("both sides hear the other %.0f ms after the offer (TURN over %s)", (mono_us() - t0) / 1000.0, over);
  cr_expect_eq(local_type(&g->a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(local_type(&g->b), PARLEY_CANDIDATE_RELAY);
  sleep_ms(7500);
}

/* UDP to the server is blocked (nft, in R): each side is given the server over UDP and over TCP, and
 * only TCP (STUN and ChannelData framed on the stream) gets an allocation; relay-only calls carry
 * speech both ways over the two TCP connections; killing coturn resets them and interrupts both. */
Test(turn_call, turn_over_tcp_when_udp_is_blocked, .timeout = 240) {
  static const char *const both[] = {TURN_URL, "turn:10.0.0.1:3478?transport=tcp", NULL};
  rig g;
  rig_up(&g, PARLEY_ICE_POLICY_RELAY, both,
         "nft add chain inet parley in '{ type filter hook input priority 0; }' && "
         "nft add rule inet parley in udp dport 3478 counter drop", NULL);
  talk_relayed(&g, "TCP");
  unsigned long dropped = shell_count("nft list chain inet parley in | grep -o 'packets [0-9]*' | grep -o '[0-9]*'");
  cr_log_info("UDP datagrams to the server dropped: %lu", dropped);
  cr_expect_gt(dropped, 0, "the UDP allocations were tried, and blocked");
  cr_expect_eq(count_lines(&g.a, "typ relay"), 1, "A's one relayed candidate is the TCP allocation's");
  kill_relay(&g.n, &g.a, &g.b);
  end_call(&g.a, &g.b, true);
  net_down(&g.n);
}

#define BLOCK_UDP_AND_PLAIN_TCP                                                                          \
  "nft add chain inet parley in '{ type filter hook input priority 0; }' && "                           \
  "nft add rule inet parley in udp dport 3478 counter drop && nft add rule inet parley in tcp dport 3478 drop"

/* TURN over TLS: coturn's certificate (for 10.0.0.1) comes from a CA the engines are given in
 * turn_ca_file; UDP and plain TCP to the server are blocked, so only turns: gets an allocation.
 * Relay-only calls carry speech both ways through the two TLS connections; coturn logs TLS sessions;
 * killing coturn interrupts both sides. */
Test(turn_call, turn_over_tls_when_udp_is_blocked, .timeout = 240) {
  static const char *const urls[] = {TURN_URL, "turns:10.0.0.1:5349", NULL};
  rig g;
  rig_up(&g, PARLEY_ICE_POLICY_RELAY, urls, BLOCK_UDP_AND_PLAIN_TCP, "ca.pem");
  talk_relayed(&g, "TLS");
  /* coturn logs each allocation: "session ...: new, realm=..., cipher=..., method=TLSv1.2". */
  int tls_sessions = log_count(&g.n, "session .*: new, .*method=TLSv1");
  cr_log_info("allocations coturn made over TLS: %d", tls_sessions);
  cr_expect_eq(tls_sessions, 2, "coturn served both allocations over TLS (see %s/log.txt)", g.n.dir);
  kill_relay(&g.n, &g.a, &g.b);
  end_call(&g.a, &g.b, true);
  net_down(&g.n);
}

/* A turns: server whose certificate does not chain to the CA the engine trusts: no relayed candidate,
 * gathering ends, and the app is told why (ICE_CANDIDATE_ERROR) within seconds, not left waiting. */
Test(turn_call, turns_server_with_an_untrusted_certificate, .timeout = 120) {
  static const char *const urls[] = {"turns:10.0.0.1:5349", NULL};
  rig g;
  rig_up(&g, PARLEY_ICE_POLICY_RELAY, urls, NULL, "other-ca.pem");
  static char offer[8192];
  enter(g.n.a);
  cr_assert_gt(parley_call_create_offer(g.a.call, offer, sizeof offer), 0);
  enter(g.n.r);
  int64_t t0 = mono_us();
  for (int i = 0; i < 500 && (get(&g.a, &g.a.cand_errors) == 0 || !has_line(&g.a, "end-of-candidates")); i++)
    sleep_ms(10);
  pthread_mutex_lock(&g.a.mu);
  cr_log_info("refused after %.0f ms: %s", (mono_us() - t0) / 1000.0, g.a.cand_error);
  cr_expect_eq(g.a.cand_errors, 1, "one candidate error");
  cr_expect(strstr(g.a.cand_error, "turns:10.0.0.1:5349: certificate verify failed") == g.a.cand_error, "%s",
            g.a.cand_error);
  pthread_mutex_unlock(&g.a.mu);
  cr_expect(has_line(&g.a, "end-of-candidates"), "gathering ends");
  cr_expect(!has_line(&g.a, "typ relay"), "no relayed candidate");
  cr_expect_eq(log_count(&g.n, "session .*: new"), 0, "coturn allocated nothing");
  (void)parley_call_hangup(g.a.call);
  (void)parley_call_hangup(g.b.call);
  side_free(&g.a);
  side_free(&g.b);
  unlink(g.a.out);
  unlink(g.b.out);
  net_down(&g.n);
}

static uint64_t packets_in(side *s) {
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(s->call, &st), 0);
  return st.packets_received;
}

/* After A's address changed at `moved` (mono_us): waits (at most 10 s, trickling) until each side
 * receives again and A has trickled `relays` relayed candidates in all; checks that media flows on
 * both ways, and logs how long it took (how: what changed). */
static void media_back(rig *g, int64_t moved, int relays, const char *how) {
  uint64_t a0 = packets_in(&g->a), b0 = packets_in(&g->b);
  int64_t a_back = 0, b_back = 0;
  for (int i = 0; i < 1000 && !(a_back && b_back); i++) {
    forward(&g->a, &g->b);
    forward(&g->b, &g->a);
    sleep_ms(10);
    /* Back when packets come again after the gap (those in flight at the move land within 100 ms). */
    bool settled = mono_us() - moved > 100000 && count_lines(&g->a, "typ relay") == relays;
    uint64_t a1 = packets_in(&g->a), b1 = packets_in(&g->b);
    if (!a_back && settled && a1 > a0) a_back = mono_us();
    if (!b_back && settled && b1 > b0) b_back = mono_us();
    a0 = a1;
    b0 = b1;
  }
  cr_expect(a_back && b_back, "%s: media resumed both ways within 10 s", how);
  cr_expect_eq(count_lines(&g->a, "typ relay"), relays, "%s: A trickled a relayed candidate from its new address", how);
  sleep_ms(1000);
  cr_expect_gt(packets_in(&g->a), a0 + 25, "%s: A hears B on the new path", how);
  cr_expect_gt(packets_in(&g->b), b0 + 25, "%s: B hears A on the new path", how);
  cr_log_info("%s: media back at A after %.0f ms, at B after %.0f ms; interrupted: A %d, B %d", how,
              a_back ? (a_back - moved) / 1000.0 : -1.0, b_back ? (b_back - moved) / 1000.0 : -1.0,
              get(&g->a, &g->a.interrupts), get(&g->b, &g->b.interrupts));
}

/* Handover on a relay-only call: A's address (the base of its allocation) is replaced by another on
 * the same link, first with the new one there before the old one goes, then with none for a moment
 * (the old one deleted, the new one added 0.3 s later). Each time A allocates again from its new
 * address and trickles the new relayed candidate; media resumes both ways through coturn without an
 * offer. */
Test(turn_call, relay_only_call_reallocates_after_a_handover, .timeout = 240) {
  rig g;
  relay_only_call(&g);
  enter(g.n.a);
  sh("sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1 && ip addr add 10.0.0.3/24 dev eth0");
  sleep_ms(300);
  int64_t moved = mono_us();
  sh("ip addr del 10.0.0.2/24 dev eth0");
  enter(g.n.r);
  media_back(&g, moved, 2, "address replaced");
  enter(g.n.a);
  moved = mono_us();
  sh("ip addr del 10.0.0.3/24 dev eth0"); /* the default route goes with the link's last address */
  sleep_ms(300);
  sh("ip addr add 10.0.0.4/24 dev eth0 && ip route replace default via 10.0.0.1 dev eth0");
  enter(g.n.r);
  media_back(&g, moved, 3, "no address for 0.3 s, then another");
  cr_expect_eq(local_type(&g.a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(log_count(&g.n, "session .*: new"), 4, "coturn made A's two new allocations");
  end_call(&g.a, &g.b, false);
  net_down(&g.n);
}

/* parley_engine_new with one ICE server (and a policy): its return code; the engine is freed. */
static int try_server(const char *url, const char *user, const char *pass, parley_ice_transport_policy policy) {
  parley_ice_server srv = {url, user, pass};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ice_servers = url ? &srv : NULL;
  cfg.ice_server_count = url ? 1 : 0;
  cfg.ice_transport_policy = policy;
  parley_engine *e = NULL;
  int r = parley_engine_new(&cfg, &e);
  parley_engine_free(e);
  return r;
}

/* The URL forms of RFC 7064 / 7065 the config takes, and the ones it refuses with the code it says. */
Test(turn_call, ice_server_urls) {
  const parley_ice_transport_policy all = PARLEY_ICE_POLICY_ALL, relay = PARLEY_ICE_POLICY_RELAY;
  cr_expect_eq(try_server("stun:192.0.2.1", NULL, NULL, all), 0);
  cr_expect_eq(try_server("stun:[2001:db8::1]:3479", NULL, NULL, all), 0);
  cr_expect_eq(try_server("turn:192.0.2.1:3478?transport=udp", USER, PASS, relay), 0);
  cr_expect_eq(try_server("TURN:192.0.2.1?transport=tcp", USER, PASS, all), 0);
  cr_expect_eq(try_server("turn:192.0.2.1", NULL, PASS, all), PARLEY_EINVAL, "no username");
  cr_expect_eq(try_server("turn:192.0.2.1", USER, "", all), PARLEY_EINVAL, "empty credential");
  cr_expect_eq(try_server("turns:192.0.2.1", USER, PASS, all), 0, "TLS, the system's CAs");
  cr_expect_eq(try_server("TURNS:[2001:db8::1]:443?transport=tcp", USER, PASS, relay), 0);
  cr_expect_eq(try_server("turns:192.0.2.1?transport=udp", USER, PASS, all), PARLEY_ENOTSUP, "DTLS");
  cr_expect_eq(try_server("turns:192.0.2.1", USER, NULL, all), PARLEY_EINVAL, "no credential");
  cr_expect_eq(try_server("stuns:192.0.2.1", NULL, NULL, all), PARLEY_ENOTSUP, "TLS");
  cr_expect_eq(try_server("http://192.0.2.1", NULL, NULL, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("turn:192.0.2.1:0", USER, PASS, all), PARLEY_EINVAL, "port 0");
  cr_expect_eq(try_server("turn:192.0.2.1:65536", USER, PASS, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("turn:192.0.2.1?transport=sctp", USER, PASS, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("stun:192.0.2.1?transport=udp", NULL, NULL, all), PARLEY_EINVAL, "stun: has no query");
  cr_expect_eq(try_server("turn:[2001:db8::1", USER, PASS, all), PARLEY_EINVAL, "unclosed bracket");
  cr_expect_eq(try_server("stun:192.0.2.1", NULL, NULL, relay), PARLEY_EINVAL, "relay policy without TURN");
  cr_expect_eq(try_server(NULL, NULL, NULL, (parley_ice_transport_policy)7), PARLEY_EINVAL);
  parley_ice_server five[5];
  for (int i = 0; i < 5; i++) five[i] = (parley_ice_server){"turn:192.0.2.1", USER, PASS};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ice_servers = five;
  cfg.ice_server_count = 5;
  parley_engine *e = NULL;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL, "more than PARLEY_ENGINE_MAX_TURN_SERVERS");
  cfg.ice_servers = NULL;
  cfg.ice_server_count = 1;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL, "a count without servers");
  cr_expect_null(e);
  /* turn_ca_file: a file of PEM certificates, checked at parley_engine_new. */
  char dir[] = "/tmp/parley-turnca.XXXXXX", path[96];
  cr_assert_not_null(mkdtemp(dir));
  make_certs(dir);
  parley_ice_server tls = {"turns:192.0.2.1", USER, PASS};
  parley_engine_config_init(&cfg);
  cfg.ice_servers = &tls;
  cfg.ice_server_count = 1;
  static const struct {
    const char *file;
    int want;
  } cas[] = {{"ca.pem", 0}, {"missing.pem", PARLEY_EPARSE}, {"ca.key", PARLEY_EPARSE}, {"san.ext", PARLEY_EPARSE}};
  for (size_t i = 0; i < sizeof cas / sizeof cas[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, cas[i].file);
    cfg.turn_ca_file = path;
    int r = parley_engine_new(&cfg, &e);
    cr_expect_eq(r, cas[i].want, "turn_ca_file %s: %s", cas[i].file, parley_strerror(r));
    parley_engine_free(e);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  sh(cmd);
}
