/* test_interop_ice.c: parley's ICE agent against independent ones. aioice (the ICE library under
 * aiortc; tests/interop/aioice_peer.py) does ICE only and logs what parley puts on the wire (STUN
 * requests and their attributes, RTP headers); libnice (tests/interop/nice_peer.py, through GObject
 * introspection and GStreamer's nicesrc) brings RFC 8445 regular nomination and RFC 7675 consent
 * freshness as it does them. parley runs through the public API with SDES keys. Covered: both roles
 * with each, aioice's (aggressive) and libnice's (regular) nomination, parley's nomination on its first
 * success when it controls, its media on a valid pair before the peer nominates, consent checks
 * answered both ways, the STUN error-reply budget (transport/stun_limit) under floods from one and
 * many sources, and the liveness rules against a peer that stops answering (network-lost, then
 * resumed), is killed (ICMP: peer-gone, ECONNREFUSED named) or loses its route (network-lost,
 * ENETUNREACH named).
 *
 * aioice and libnice skip loopback addresses: each test moves its own process into a new network
 * namespace (unshare) with a veth pair, 10.77.0.1 and 10.77.0.2, both ends in it. The namespace has no
 * other process and vanishes when the test process and the peer (killed with its parent) exit, also
 * after a failed assertion. Skipped without root, network namespaces, veth, aioice or libnice's
 * introspection data. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "interop_helpers.h"

#define AIOICE_PEER PARLEY_TEST_DATA "/../interop/aioice_peer.py"
#define NICE_PEER PARLEY_TEST_DATA "/../interop/nice_peer.py"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Enters a private network namespace with the veth pair; NULL on success, else why the test skips. */
static const char *enter_netns(void) {
  if (geteuid() != 0) return "needs root for a network namespace";
  if (unshare(CLONE_NEWNET) != 0) return "unshare(CLONE_NEWNET) failed: no network namespaces";
  if (system("ip link set lo up && ip link add pv0 type veth peer name pv1 && "
             "ip addr add 10.77.0.1/24 dev pv0 && ip addr add 10.77.0.2/24 dev pv1 && "
             "ip link set pv0 up && ip link set pv1 up") != 0)
    return "no veth pair in the namespace (ip link add ... type veth failed)";
  if (system("/usr/bin/python3 -c 'import aioice' 2>/dev/null") != 0) return "python3-aioice is not installed";
  return NULL;
}

/* ---- the aioice peer ---- */

typedef struct peer {
  th_peer proc;
  char summary[2048];
} peer;

static void peer_start(peer *p, const char *script, const char *const *args) {
  char *argv[17] = {"python3", (char *)script};
  for (int i = 0; args[i] && i < 14; i++) argv[i + 2] = (char *)args[i];
  th_peer_start(&p->proc, argv);
  p->summary[0] = '\0';
}

/* Reads until a line starting with prefix (kept in out if given); false at end of file. RESULT lines
 * (the peer's wire log) go to the test log. */
static bool read_line(peer *p, const char *prefix, char *out, size_t cap) {
  char line[65536];
  while (fgets(line, sizeof line, p->proc.from)) {
    if (strncmp(line, "RESULT ", 7) == 0) cr_log_info("peer: %.3000s", line);
    if (strncmp(line, prefix, strlen(prefix)) == 0) {
      if (out && cap) {
        size_t len = strnlen(line, cap - 1);
        memcpy(out, line, len);
        out[len] = '\0';
      }
      return true;
    }
  }
  return false;
}

/* A figure from the peer's SUMMARY line; INT64_MIN when absent. */
static int64_t figure(const peer *p, const char *key) {
  char k[64];
  snprintf(k, sizeof k, " %s=", key);
  const char *s = strstr(p->summary, k);
  return s ? strtoll(s + strlen(k), NULL, 10) : INT64_MIN;
}

/* ---- parley's side ---- */

#define MAX_EV 256

typedef struct ev_log {
  pthread_mutex_t mu;
  int n;
  struct {
    parley_event_kind kind;
    int value; /* ice state or interrupt code */
    int64_t t_us;
    char message[128];
  } ev[MAX_EV];
} ev_log;

static void on_event(const parley_event *ev, void *user) {
  ev_log *l = user;
  pthread_mutex_lock(&l->mu);
  if (l->n < MAX_EV) {
    l->ev[l->n].kind = ev->kind;
    l->ev[l->n].value = ev->kind == PARLEY_EVENT_ICE_STATE_CHANGED ? (int)ev->ice_state : (int)ev->code;
    l->ev[l->n].t_us = ev->time_us;
    snprintf(l->ev[l->n].message, sizeof l->ev[l->n].message, "%s", ev->message);
    l->n++;
  }
  pthread_mutex_unlock(&l->mu);
  if (ev->kind == PARLEY_EVENT_INTERRUPTED || ev->kind == PARLEY_EVENT_RESUMED)
    cr_log_info("parley: %s %s: %s", parley_event_kind_name(ev->kind), parley_interrupt_code_name(ev->code), ev->message);
}

/* How many events of kind (with value, or any value if value < 0) from index `from` on. */
static int count(ev_log *l, int from, parley_event_kind kind, int value) {
  int c = 0;
  pthread_mutex_lock(&l->mu);
  for (int i = from; i < l->n; i++)
    if (l->ev[i].kind == kind && (value < 0 || l->ev[i].value == value)) c++;
  pthread_mutex_unlock(&l->mu);
  return c;
}

static int n_events(ev_log *l) {
  pthread_mutex_lock(&l->mu);
  int n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* The message of the first event of kind/value from index from on ("" if none). */
static void first_message(ev_log *l, int from, parley_event_kind kind, int value, char *out, size_t cap) {
  out[0] = '\0';
  pthread_mutex_lock(&l->mu);
  for (int i = from; i < l->n; i++)
    if (l->ev[i].kind == kind && (value < 0 || l->ev[i].value == value)) {
      snprintf(out, cap, "%s", l->ev[i].message);
      break;
    }
  pthread_mutex_unlock(&l->mu);
}

/* Waits up to ms for an event of kind/value from index from on. */
static bool wait_event(ev_log *l, int from, parley_event_kind kind, int value, int ms) {
  for (int i = 0; i < ms / 10; i++) {
    if (count(l, from, kind, value) > 0) return true;
    sleep_ms(10);
  }
  return count(l, from, kind, value) > 0;
}

typedef struct side {
  parley_engine *e;
  parley_call *c;
  int ids[3];
  ev_log log;
} side;

static void side_new(side *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->log.mu, NULL);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_NONE;
  cfg.ipv6 = false;
  cfg.opus_dtx = false; /* a packet every 20 ms: media on the wire to see */
  cfg.offer_sdes = true; /* the peer does ICE and reads SRTP headers, no DTLS */
  cr_assert_eq(parley_engine_new(&cfg, &s->e), 0);
  cr_assert_eq(parley_call_new(s->e, &s->c), 0);
  parley_event_kind kinds[] = {PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_EVENT_INTERRUPTED, PARLEY_EVENT_RESUMED};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    cr_assert_gt(s->ids[i] = parley_call_on(s->c, kinds[i], on_event, &s->log), 0);
}

static void side_free(side *s) {
  for (int i = 0; i < 3; i++) cr_assert_eq(parley_call_off(s->c, s->ids[i]), 0);
  cr_assert_eq(parley_call_free(s->c), 0);
  parley_engine_free(s->e);
}

/* The peer offers (it controls); parley answers. */
static void parley_answers(side *s, peer *p) {
  static char offer[8192], answer[8192];
  cr_assert(th_read_until_end(p->proc.from, offer, sizeof offer), "the peer wrote no offer");
  parley_sdp_error se;
  cr_assert_eq(parley_call_set_remote_description(s->c, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(s->c, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(s->c, answer), 0);
  cr_assert_eq(parley_call_start(s->c), 0);
  fprintf(p->proc.to, "%sEND\n", answer);
  fflush(p->proc.to);
}

/* parley offers (it controls); the peer answers. */
static void parley_offers(side *s, peer *p) {
  static char offer[8192], answer[8192];
  cr_assert_gt(parley_call_create_offer(s->c, offer, sizeof offer), 0);
  cr_assert_eq(parley_call_set_local_description(s->c, offer), 0);
  fprintf(p->proc.to, "%sEND\n", offer);
  fflush(p->proc.to);
  cr_assert(th_read_until_end(p->proc.from, answer, sizeof answer), "the peer wrote no answer");
  parley_sdp_error se;
  cr_assert_eq(parley_call_set_remote_description(s->c, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(s->c), 0);
}

static bool connected(side *s, int ms) {
  return wait_event(&s->log, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED, ms);
}

/* A call with the peer (script) started with args, up to parley's ICE connected: parley offers (and controls)
 * or answers the peer's offer. */
static void call_with(side *s, peer *p, const char *script, bool parley_controls, const char *const *args) {
  side_new(s);
  peer_start(p, script, args);
  if (parley_controls) parley_offers(s, p);
  else parley_answers(s, p);
  cr_assert(connected(s, 10000), "parley never reported ICE connected");
}

static void call_up(side *s, peer *p, bool parley_controls, const char *const *args) {
  call_with(s, p, AIOICE_PEER, parley_controls, args);
}

/* Reads the peer's SUMMARY and checks what every run must show: ICE done on both sides, parley's media
 * (Opus, one stream) reached the peer, no interruption on parley's side. */
static void finish(side *s, peer *p) {
  bool got = read_line(p, "SUMMARY ", p->summary, sizeof p->summary);
  int interrupted = count(&s->log, 0, PARLEY_EVENT_INTERRUPTED, -1);
  int disconnected = count(&s->log, 0, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED);
  cr_assert_eq(parley_call_hangup(s->c), 0); /* before the peer closes its port */
  fputs("BYE\n", p->proc.to);
  fflush(p->proc.to);
  int status = th_peer_wait(&p->proc, 10);
  cr_assert(got, "the peer wrote no summary (status %d)", status);
  cr_log_info("peer: %s", p->summary);
  cr_assert_eq(status, 0, "the peer failed: %s", p->summary);
  cr_assert_eq(figure(p, "connected"), 1);
  cr_expect_gt(figure(p, "rtp_pt111"), 10, "parley's Opus packets reached the peer");
  if (figure(p, "rtp_ssrcs") != INT64_MIN) cr_expect_eq(figure(p, "rtp_ssrcs"), 1);
  cr_expect_eq(interrupted, 0, "parley saw the call interrupted");
  cr_expect_eq(disconnected, 0);
}

#define SKIP_WITHOUT_NETNS()                \
  do {                                      \
    const char *why = enter_netns();        \
    if (why) cr_skip_test("%s", why);       \
  } while (0)

/* parley controls: it nominates a pair as soon as its own check on it succeeds (when no better pair is
 * pending), and aioice (controlled) completes on it. On the nominated pair aioice sees at most two
 * plain checks before the nomination: the one that validated it, and the consent check parley's
 * monitor sends as media moves to the valid pair (liveness.c); and no check on another pair comes in
 * between (a nomination on a later round would check the other pairs first: parley and aioice each
 * have a candidate on both veth ends, four pairs). Its probes and consent checks on the selected pair
 * are answered by aioice for the hold (no media comes back: only answers keep parley's monitor calm),
 * and parley answers aioice's consent checks. */
Test(interop_ice, parley_controlling_nominates_on_first_success, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlled", "--consent", "5", "--hold", "2", NULL};
  call_up(&s, &p, true, args);
  finish(&s, &p);
  int64_t plain = figure(&p, "plain_checks_on_pair_before_nomination");
  cr_expect(plain >= 1 && plain <= 2, "parley sent %lld plain checks on the pair before nominating it", (long long)plain);
  cr_expect_eq(figure(&p, "other_checks_until_nomination"), 0, "parley checked other pairs before nominating");
  cr_expect_eq(figure(&p, "controlled_requests"), 0, "parley claimed the controlled role");
  cr_expect_eq(figure(&p, "controlling_requests"), figure(&p, "requests"));
  cr_expect_eq(figure(&p, "consent_answered"), 5, "parley answered %lld of aioice's 5 consent checks",
               (long long)figure(&p, "consent_answered"));
  cr_expect_geq(figure(&p, "requests_after_connected"), 2, "parley's checks on the selected pair after ICE");
  side_free(&s);
}

/* aioice controls with aggressive nomination (USE-CANDIDATE on every check, its default): parley
 * accepts the nomination and answers consent checks. */
Test(interop_ice, parley_controlled_aggressive_nomination, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlling", "--consent", "5", "--hold", "1", NULL};
  call_up(&s, &p, false, args);
  finish(&s, &p);
  cr_expect_eq(figure(&p, "controlling_requests"), 0, "parley claimed the controlling role");
  cr_expect_eq(figure(&p, "controlled_requests"), figure(&p, "requests"));
  cr_expect_eq(figure(&p, "consent_answered"), 5);
  side_free(&s);
}

/* aioice controls but starts its own checks (which nominate) only 0.6 s after parley's answer, while
 * answering parley's checks from the start: parley's media flows on the pair its own check validated,
 * before any nomination (RFC 8445 8.1.1), and the call completes once the nomination comes. */
Test(interop_ice, parley_controlled_media_before_nomination, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlling", "--check-delay", "0.6", NULL};
  call_up(&s, &p, false, args);
  finish(&s, &p);
  /* 0.6 s at 50 packets/s, less parley's start: well over 10 */
  cr_expect_gt(figure(&p, "rtp_before_nomination"), 10, "parley sent %lld packets before the nomination",
               (long long)figure(&p, "rtp_before_nomination"));
  side_free(&s);
}

/* Unauthenticated binding requests (aioice's STUN encoder, a wrong password) get error replies within
 * the budget of transport/stun_limit: per source 4, then 1/s; per agent 20, then 20/s. The floods
 * (one source address, then 40) take a few ms and the peer counts replies for a second after each. The call's own checks are still
 * answered afterwards. */
Test(interop_ice, stun_error_replies_within_budget, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlled", "--flood", "200:1", "--flood", "512:40", NULL};
  call_up(&s, &p, true, args);
  finish(&s, &p);
  int64_t e0 = figure(&p, "flood0_errors"), ms0 = figure(&p, "flood0_ms");
  int64_t e1 = figure(&p, "flood1_errors"), ms1 = figure(&p, "flood1_ms");
  cr_assert_neq(e0, INT64_MIN);
  cr_assert_neq(e1, INT64_MIN);
  /* The budget answers something (a real STUN error reply aioice parses), but not the flood. */
  cr_expect_geq(e0, 1, "one source: no error reply at all");
  cr_expect_leq(e0, 4 + 1 + (ms0 + 999) / 1000, "one source, 200 requests in %lld ms: %lld error replies",
                (long long)ms0, (long long)e0);
  /* 40 sources could earn 160 replies by their own budgets: the agent's caps them. Its bucket has
   * refilled (a second at 20/s) since the first flood took 4-5 tokens: at least 15 now, at most 20 +
   * 20/s over the flood's span. */
  cr_expect_geq(e1, 15, "40 sources: %lld error replies", (long long)e1);
  cr_expect_leq(e1, 20 + 20 * (ms1 + 999) / 1000 + 1, "40 sources, 512 requests in %lld ms: %lld error replies",
                (long long)ms1, (long long)e1);
  cr_expect_eq(figure(&p, "flood0_others") + figure(&p, "flood1_others"), 0, "a success reply to a forged request");
  cr_expect_eq(figure(&p, "consent_after_flood"), 3, "the call's own checks after the flood");
  side_free(&s);
}

/* The peer stops answering (SIGSTOP: its socket stays open, so no ICMP): parley reports the path lost
 * (ICE disconnected, interrupted network-lost) per its liveness rules, and resumed once the peer
 * answers again (SIGCONT). */
Test(interop_ice, peer_that_stops_answering_is_network_lost_then_resumed, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlling", "--hold", "20", NULL};
  call_up(&s, &p, false, args);
  cr_assert(read_line(&p, "CONNECTED", NULL, 0));
  sleep_ms(500);
  cr_assert_eq(count(&s.log, 0, PARLEY_EVENT_INTERRUPTED, -1), 0, "interrupted while the peer answered");
  int mark = n_events(&s.log);
  cr_assert_eq(kill(p.proc.pid, SIGSTOP), 0);
  /* lost_after (760 ms) after the last answer; 5 s bounds the wait. */
  bool lost = wait_event(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST, 5000);
  int gone = count(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE);
  cr_assert_eq(kill(p.proc.pid, SIGCONT), 0);
  cr_expect(lost, "no interrupted(network-lost) after the peer stopped answering");
  cr_expect_eq(gone, 0, "a stopped peer bounces nothing: not peer-gone");
  cr_expect_eq(count(&s.log, mark, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_DISCONNECTED), 1);
  int mark2 = n_events(&s.log);
  cr_expect(wait_event(&s.log, mark, PARLEY_EVENT_RESUMED, PARLEY_INTERRUPT_NETWORK_LOST, 5000),
            "no resumed once the peer answers again");
  cr_expect(wait_event(&s.log, mark2 > mark ? mark : mark2, PARLEY_EVENT_ICE_STATE_CHANGED, PARLEY_ICE_CONNECTED,
                       5000));
  kill(p.proc.pid, SIGKILL);
  th_peer_wait(&p.proc, 1);
  side_free(&s);
}

/* The peer is killed (no BYE; its port is closed, so parley's packets bounce as ICMP port
 * unreachable): parley reports interrupted(peer-gone), not a bare timeout. */
Test(interop_ice, killed_peer_is_peer_gone, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlled", "--hold", "20", NULL};
  call_up(&s, &p, true, args);
  cr_assert(read_line(&p, "CONNECTED", NULL, 0));
  sleep_ms(500);
  int mark = n_events(&s.log);
  cr_assert_eq(kill(p.proc.pid, SIGKILL), 0);
  th_peer_wait(&p.proc, 1);
  cr_expect(wait_event(&s.log, mark, PARLEY_EVENT_INTERRUPTED, -1, 5000), "no interrupted after the kill");
  cr_expect_eq(count(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE), 1,
               "the killed peer was not reported as peer-gone");
  cr_expect_eq(count(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST), 0);
  char msg[128];
  first_message(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE, msg, sizeof msg);
  cr_expect(strstr(msg, "ECONNREFUSED"), "the socket error is not named: \"%s\"", msg);
  side_free(&s);
}

/* The route to the peer goes (a policy rule ahead of the local table makes parley's datagrams to the
 * peer's port unroutable): sendto fails with ENETUNREACH, parley reports interrupted(network-lost)
 * and names the error in the message. */
Test(interop_ice, lost_route_is_named_in_the_interruption, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  side s;
  peer p;
  const char *args[] = {"--role", "controlled", "--hold", "20", NULL};
  call_up(&s, &p, true, args);
  char line[256], ip[64];
  int port = 0;
  cr_assert(read_line(&p, "CONNECTED", line, sizeof line));
  cr_assert_eq(sscanf(line, "CONNECTED %63s %d", ip, &port), 2, "%s", line);
  sleep_ms(300);
  int mark = n_events(&s.log);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "ip rule add pref 10 to %s ipproto udp dport %d unreachable && ip rule add pref 20 table local && "
           "ip rule del pref 0 table local",
           ip, port);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  cr_expect(wait_event(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST, 5000),
            "no interrupted(network-lost) with the route gone");
  char msg[128];
  first_message(&s.log, mark, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST, msg, sizeof msg);
  cr_expect(strstr(msg, "ENETUNREACH"), "the socket error is not named: \"%s\"", msg);
  kill(p.proc.pid, SIGKILL);
  th_peer_wait(&p.proc, 1);
  side_free(&s);
}

/* ---- libnice: RFC 8445 regular nomination and RFC 7675 consent freshness, as libnice does them ---- */

static void skip_without_libnice(void) {
  if (system("/usr/bin/python3 -c \"import gi; gi.require_version('Nice', '0.1')\" 2>/dev/null") != 0)
    cr_skip_test("gir1.2-nice-0.1 (libnice for Python) is not installed");
}

/* libnice controls with regular nomination (a plain check, then USE-CANDIDATE on the pair it picks):
 * both sides become ready, parley's media reaches libnice, and libnice answers parley's probes and
 * consent checks for the hold (no media comes back) so parley reports nothing. */
Test(interop_ice, parley_controlled_by_libnice_regular_nomination, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  skip_without_libnice();
  side s;
  peer p;
  const char *args[] = {"--role", "controlling", "--hold", "1", NULL};
  call_with(&s, &p, NICE_PEER, false, args);
  finish(&s, &p);
  cr_expect_eq(figure(&p, "ready_at_end"), 1, "libnice left the ready state");
  cr_expect_eq(figure(&p, "failed"), 0);
  side_free(&s);
}

/* parley controls (nominating on its first success), libnice is controlled with its regular-nomination
 * rules: libnice takes the nomination and becomes ready. */
Test(interop_ice, parley_controlling_libnice_controlled, .timeout = 40) {
  SKIP_WITHOUT_NETNS();
  skip_without_libnice();
  side s;
  peer p;
  const char *args[] = {"--role", "controlled", "--hold", "1", NULL};
  call_with(&s, &p, NICE_PEER, true, args);
  finish(&s, &p);
  cr_expect_eq(figure(&p, "ready_at_end"), 1, "libnice left the ready state");
  cr_expect_eq(figure(&p, "failed"), 0);
  cr_expect_geq(figure(&p, "selected_pairs"), 1);
  side_free(&s);
}
