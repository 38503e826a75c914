/* test_ice.c: the ICE agent. Formulas against hand-computed RFC 8445 values; two agents connecting over
 * an in-test simulated network (seeded loss, simulated time, fully deterministic) and over real UDP on
 * loopback; role conflicts, media gating, restart, bounded retransmissions, authentication, srflx
 * gathering, peer-reflexive learning, consent checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/rng.h"
#include "parley/parley.h"
#include "transport/ice.h"
#include "transport/ice_liveness.h"
#include "transport/ice_msg.h"
#include "transport/ice_sdp.h"
#include "sim/simnet.h"
#include "transport/stun.h"
#include "transport/stun_limit.h"
#include "transport/udp.h"

/* ---------- formulas ---------- */

Test(ice_formula, candidate_priority_rfc_values) {
  /* (2^24)*type_pref + (2^8)*local_pref + (256 - component), RFC 8445 5.1.2.1 */
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_HOST, 65535, 1), 2130706431u); /* 126<<24|65535<<8|255 */
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_HOST, 65535, 2), 2130706430u);
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_SRFLX, 65535, 1), 1694498815u);
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_PRFLX, 65535, 1), 1862270975u);
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_RELAY, 65535, 1), 16777215u);
  cr_expect_eq(parley__ice_candidate_priority(PARLEY__ICE_HOST, 0, 1), 2113929471u); /* 126*2^24 + 255 */
  cr_expect_eq(parley__ice_type_preference(PARLEY__ICE_HOST), 126u);
  cr_expect_eq(parley__ice_type_preference(PARLEY__ICE_PRFLX), 110u);
  cr_expect_eq(parley__ice_type_preference(PARLEY__ICE_SRFLX), 100u);
}

Test(ice_formula, pair_priority_rfc_formula) {
  /* 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0), computed by hand: 2^32*1694498815 = 7277816993535754240. */
  cr_expect_eq(parley__ice_pair_priority(2130706431u, 1694498815u), 7277816997797167103ull);
  cr_expect_eq(parley__ice_pair_priority(1694498815u, 2130706431u), 7277816997797167102ull);
  cr_expect_eq(parley__ice_pair_priority(5, 5), (5ull << 32) + 10);
  /* The controlling side's preference breaks the tie between mirrored pairs. */
  cr_expect_gt(parley__ice_pair_priority(7, 3), parley__ice_pair_priority(3, 7));
}

static void noop_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  (void)ctx, (void)local, (void)dst, (void)buf, (void)len;
}

static parley__netaddr ip(const char *s, uint16_t port) {
  parley__netaddr a;
  cr_assert_eq(parley__netaddr_from_ip(&a, s, port), 0, "%s", s);
  return a;
}

Test(ice_formula, host_candidates_foundations_and_credentials) {
  parley__ice_config cfg = {.role = PARLEY__ICE_CONTROLLING, .send = noop_send};
  int err = 1;
  parley__ice_agent *a = parley__ice_new(&cfg, &err);
  cr_assert_not_null(a);
  cr_expect_eq(err, 0);
  parley__netaddr l0 = ip("192.0.2.1", 4000), l1 = ip("192.0.2.1", 4002), l2 = ip("198.51.100.9", 4000),
                  l3 = ip("2001:db8::5", 4000);
  cr_expect_eq(parley__ice_add_local(a, &l0), 0);
  cr_expect_eq(parley__ice_add_local(a, &l1), 1);
  cr_expect_eq(parley__ice_add_local(a, &l2), 2);
  cr_expect_eq(parley__ice_add_local(a, &l3), 3);
  parley__netaddr zero_port = ip("192.0.2.1", 0);
  cr_expect_eq(parley__ice_add_local(a, &zero_port), PARLEY_EINVAL);
  parley__ice_candidate c[8];
  cr_assert_eq(parley__ice_local_candidates(a, c, 8), 4);
  /* Same type and base IP: same foundation (RFC 8445 5.1.1.3); another IP: different. */
  cr_expect_str_eq(c[0].foundation, c[1].foundation);
  cr_expect_str_neq(c[0].foundation, c[2].foundation);
  cr_expect_str_neq(c[0].foundation, c[3].foundation);
  /* Local preferences: IPv4 from 32767 down by registration order, IPv6 at 65535 - index. */
  cr_expect_eq(c[0].priority, parley__ice_candidate_priority(PARLEY__ICE_HOST, 32767, 1));
  cr_expect_eq(c[0].priority, (126u << 24) + (32767u << 8) + 255u);
  cr_expect_eq(c[2].priority, (126u << 24) + (32765u << 8) + 255u);
  cr_expect_eq(c[3].priority, (126u << 24) + (65532u << 8) + 255u);
  cr_expect_gt(c[3].priority, c[0].priority, "IPv6 preferred");
  for (int i = 0; i < 4; i++) {
    cr_expect_eq(c[i].type, PARLEY__ICE_HOST);
    cr_expect_eq(c[i].component, 1);
  }
  /* Credentials: lengths, ice-char alphabet, fresh per agent and per restart. */
  const char *u, *p;
  parley__ice_local_credentials(a, &u, &p);
  cr_expect_geq(strlen(u), 4);
  cr_expect_geq(strlen(p), 22);
  for (const char *s = p; *s; s++)
    cr_expect(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *s) != NULL);
  char old_u[64], old_p[64];
  strcpy(old_u, u);
  strcpy(old_p, p);
  cr_expect_eq(parley__ice_restart(a, 0), 0);
  parley__ice_local_credentials(a, &u, &p);
  cr_expect_str_neq(u, old_u);
  cr_expect_str_neq(p, old_p);
  /* Remote credential validation. */
  cr_expect_eq(parley__ice_set_remote_credentials(a, "abc", "0123456789012345678901"), PARLEY_EINVAL);
  cr_expect_eq(parley__ice_set_remote_credentials(a, "abcd", "short"), PARLEY_EINVAL);
  cr_expect_eq(parley__ice_set_remote_credentials(a, "abcd", "0123456789012345678901"), 0);
  cr_expect_eq(parley__ice_set_remote_credentials(a, "abcd", "0123456789012345678901"), 0, "same again is fine");
  cr_expect_eq(parley__ice_set_remote_credentials(a, "wxyz", "0123456789012345678901"), PARLEY_ESTATE);
  parley__ice_free(a);
  cr_expect_null(parley__ice_new(NULL, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  parley__ice_config nosend = {.role = PARLEY__ICE_CONTROLLED};
  cr_expect_null(parley__ice_new(&nosend, &err));
}

typedef struct relay_events {
  int candidates, gathering_done;
  parley__ice_candidate last;
} relay_events;

static void count_relay_events(void *ctx, const parley__ice_event *ev) {
  relay_events *r = ctx;
  if (ev->kind == PARLEY__ICE_EV_LOCAL_CANDIDATE) r->candidates++, r->last = *ev->candidate;
  if (ev->kind == PARLEY__ICE_EV_GATHERING_DONE) r->gathering_done++;
}

/* A relayed candidate: type preference 0 (RFC 8445 5.1.2.2), so below every host candidate; its own
 * base, raddr = the mapped address; trickled when it comes after start, and gathering (so
 * end-of-candidates) waits for the relays the owner said it is allocating, or their failure. */
Test(ice_formula, relayed_candidates_and_gathering) {
  relay_events ev = {0};
  parley__ice_config cfg = {.role = PARLEY__ICE_CONTROLLING, .send = noop_send, .on_event = count_relay_events,
                            .ctx = &ev};
  parley__ice_agent *a = parley__ice_new(&cfg, NULL);
  cr_assert_not_null(a);
  parley__netaddr host = ip("192.0.2.1", 4000), relayed = ip("203.0.113.7", 49200), mapped = ip("198.51.100.3", 61000);
  cr_assert_eq(parley__ice_add_local(a, &host), 0);
  parley__ice_expect_relays(a, 2);
  cr_assert_eq(parley__ice_start(a, 0), 0);
  cr_expect_eq(ev.candidates, 1);
  cr_expect_eq(ev.gathering_done, 0, "two relays still being allocated");
  cr_assert_eq(parley__ice_add_local_relay(a, &relayed, &mapped, 1000), 1);
  cr_expect_eq(ev.candidates, 2, "trickled");
  cr_expect_eq(ev.last.type, PARLEY__ICE_RELAY);
  cr_expect_eq(ev.last.priority, parley__ice_candidate_priority(PARLEY__ICE_RELAY, 32766, 1));
  cr_expect_eq(ev.last.priority >> 24, 0u, "type preference 0");
  cr_expect(parley__netaddr_equal(&ev.last.addr, &relayed));
  cr_expect(parley__netaddr_equal(&ev.last.related, &mapped));
  cr_expect_eq(ev.last.foundation[0], 'R');
  cr_expect_eq(ev.gathering_done, 0, "one relay still pending");
  parley__ice_relay_given_up(a, 2000);
  cr_expect_eq(ev.gathering_done, 1, "the other relay failed: gathering is done");
  parley__ice_relay_given_up(a, 3000);
  cr_expect_eq(ev.gathering_done, 1, "once");
  parley__ice_candidate c[4];
  cr_expect_eq(parley__ice_local_candidates(a, c, 4), 2);
  cr_expect_lt(c[1].priority, c[0].priority, "relay below host");
  cr_expect_eq(parley__ice_add_local_relay(a, NULL, &mapped, 0), PARLEY_EINVAL);
  parley__ice_free(a);
}

/* ---------- simulated network (sim/simnet.h) ---------- */

#define MAXADDR 4

typedef struct sim sim;
typedef struct peer peer;

typedef struct endpoint {
  peer *p;
  int local;
} endpoint;

struct peer {
  sim *net;
  parley__ice_agent *ag;
  parley__netaddr addr[MAXADDR];
  endpoint ep[MAXADDR];
  int ep_id[MAXADDR];
  int naddr;
  int selected_events, state_events, role_events, gathering_done;
  int64_t selected_at_us; /* the first SELECTED_PAIR */
  int consent_ok, consent_err;
  uint32_t last_consent_seq;
  parley__ice_candidate srflx;
  bool has_srflx;
  parley_ice_state last_state;
  bool running; /* ticked by sim_run */
  parley__ice_liveness *glue; /* optional liveness monitor wired to the agent */
};

typedef struct captured {
  parley__netaddr src, dst;
  uint8_t buf[1500];
  size_t len;
} captured;

/* One STUN Binding message on the wire, as sent or as received by a peer (the nomination tests). */
#define WIRE_LOG_MAX 512
typedef struct wire_msg {
  int64_t t_us;
  peer *by;        /* the sender (sent) or the receiver (received) */
  bool received;
  parley__netaddr local, remote; /* by's socket and the other end */
  int cls;
  bool use_candidate;
  uint8_t txid[12];
} wire_msg;

struct sim {
  parley__simnet *net;
  int64_t now_us;
  peer *peers[2];
  uint64_t sent; /* datagrams the agents handed to the network */
  uint64_t sent_elsewhere; /* ... of them to an address that is no peer's socket */
  /* A fake STUN server behind which the peers appear as a NAT's public side. */
  bool has_server;
  parley__netaddr server;
  /* The last datagram any agent sent (for the authentication tests). */
  int captured;
  captured last;
  wire_msg log[WIRE_LOG_MAX];
  int nlog;
};

static void wire_note(sim *s, peer *by, bool received, const parley__netaddr *local, const parley__netaddr *remote,
                      const uint8_t *buf, size_t len) {
  parley__ice_msg m;
  if (s->nlog >= WIRE_LOG_MAX || parley__ice_msg_parse(buf, len, &m) != 0) return;
  s->log[s->nlog++] = (wire_msg){.t_us = s->now_us, .by = by, .received = received, .local = *local,
                                 .remote = *remote, .cls = m.cls, .use_candidate = m.use_candidate};
  memcpy(s->log[s->nlog - 1].txid, m.txid, 12);
}

static void sim_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  peer *p = ctx;
  sim *s = p->net;
  cr_assert(local >= 0 && local < p->naddr);
  s->captured++;
  s->last.src = p->addr[local];
  s->last.dst = *dst;
  cr_assert_leq(len, sizeof s->last.buf);
  memcpy(s->last.buf, buf, len);
  s->last.len = len;
  s->sent++;
  bool to_peer = false;
  for (int k = 0; k < 2; k++)
    for (int i = 0; s->peers[k] && i < s->peers[k]->naddr; i++)
      to_peer |= parley__netaddr_equal(dst, &s->peers[k]->addr[i]);
  if (!to_peer) s->sent_elsewhere++;
  wire_note(s, p, false, &p->addr[local], dst, buf, len);
  struct sockaddr_storage from, to;
  cr_assert_gt(parley__netaddr_to_sockaddr(&p->addr[local], &from), 0);
  cr_assert_gt(parley__netaddr_to_sockaddr(dst, &to), 0);
  cr_assert_eq(parley__simnet_send(s->net, (struct sockaddr *)&from, (struct sockaddr *)&to, buf, len, s->now_us), 0);
}

static void on_event(void *ctx, const parley__ice_event *ev) {
  peer *p = ctx;
  if (p->glue) cr_assert_geq(parley__ice_liveness_on_ice_event(p->glue, ev), 0);
  switch (ev->kind) {
  case PARLEY__ICE_EV_SELECTED_PAIR:
    if (p->selected_events++ == 0) p->selected_at_us = ev->now_us;
    break;
  case PARLEY__ICE_EV_STATE:
    p->state_events++;
    p->last_state = ev->state;
    break;
  case PARLEY__ICE_EV_ROLE_CHANGED: p->role_events++; break;
  case PARLEY__ICE_EV_GATHERING_DONE: p->gathering_done++; break;
  case PARLEY__ICE_EV_LOCAL_CANDIDATE:
    if (ev->candidate->type == PARLEY__ICE_SRFLX) {
      p->srflx = *ev->candidate;
      p->has_srflx = true;
    }
    break;
  case PARLEY__ICE_EV_CONSENT:
    if (ev->ok) p->consent_ok++;
    else p->consent_err++;
    p->last_consent_seq = ev->seq;
    break;
  }
}

static void sim_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                     const uint8_t *data, size_t len, int64_t now_us) {
  (void)net, (void)to;
  endpoint *e = ctx;
  parley__netaddr src;
  cr_assert_eq(parley__netaddr_from_sockaddr(&src, from), 0);
  e->p->net->now_us = now_us;
  wire_note(e->p->net, e->p, true, &e->p->addr[e->local], &src, data, len);
  cr_assert_geq(parley__ice_receive(e->p->ag, e->local, &src, data, len, now_us), 0);
}

static void sim_error(void *ctx, parley__simnet *net, const struct sockaddr *dest, int errno_value, int64_t now_us) {
  (void)net;
  endpoint *e = ctx;
  parley__netaddr d;
  cr_assert_eq(parley__netaddr_from_sockaddr(&d, dest), 0);
  if (e->p->glue) cr_assert_geq(parley__ice_liveness_on_socket_error(e->p->glue, e->local, &d, errno_value, now_us), 0);
}

static void peer_init(peer *p, sim *s, parley__ice_role role, uint64_t tb, const char *const *ips, int n) {
  memset(p, 0, sizeof *p);
  p->net = s;
  parley__ice_config cfg = {.role = role, .tie_breaker = tb, .send = sim_send, .on_event = on_event, .ctx = p,
                            .has_stun_server = s->has_server, .stun_server = s->server};
  p->ag = parley__ice_new(&cfg, NULL);
  cr_assert_not_null(p->ag);
  for (int i = 0; i < n; i++) {
    p->addr[i] = ip(ips[i], (uint16_t)(5000 + i));
    cr_assert_eq(parley__ice_add_local(p->ag, &p->addr[i]), i);
    p->ep[i] = (endpoint){p, i};
    struct sockaddr_storage sa;
    cr_assert_gt(parley__netaddr_to_sockaddr(&p->addr[i], &sa), 0);
    p->ep_id[i] = parley__simnet_add_endpoint(s->net, (struct sockaddr *)&sa, sim_recv, sim_error, &p->ep[i]);
    cr_assert_geq(p->ep_id[i], 0);
  }
  p->naddr = n;
  p->running = true;
}

static void fake_stun_server(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                             const uint8_t *data, size_t len, int64_t now_us) {
  (void)ctx;
  parley__ice_msg m;
  if (parley__ice_msg_parse(data, len, &m) != 0 || m.cls != PARLEY__ICE_MSG_REQUEST) return;
  parley__netaddr src;
  cr_assert_eq(parley__netaddr_from_sockaddr(&src, from), 0);
  parley__ice_msg r = {.cls = PARLEY__ICE_MSG_SUCCESS, .method = 1, .has_mapped = true};
  memcpy(r.txid, m.txid, 12);
  r.mapped = ip("203.0.113.77", (uint16_t)(src.port + 10000)); /* the "NAT" public side */
  uint8_t out[256];
  int n = parley__ice_msg_build(&r, NULL, out, sizeof out);
  cr_assert_gt(n, 0);
  cr_assert_eq(parley__simnet_send(net, to, from, out, (size_t)n, now_us), 0);
}

static void sim_init(sim *s, uint64_t seed, double loss) {
  memset(s, 0, sizeof *s);
  s->net = parley__simnet_new(16, 4096, 1500, seed, NULL);
  cr_assert_not_null(s->net);
  parley__simnet_link link = {.delay_us = 10000, .jitter_us = 2000, .loss_prob = loss};
  cr_assert_eq(parley__simnet_set_link(s->net, &link), 0);
  s->now_us = 1000000;
}

static void sim_add_server(sim *s) {
  s->has_server = true;
  s->server = ip("192.0.2.200", 3478);
  struct sockaddr_storage sa;
  cr_assert_gt(parley__netaddr_to_sockaddr(&s->server, &sa), 0);
  cr_assert_geq(parley__simnet_add_endpoint(s->net, (struct sockaddr *)&sa, fake_stun_server, NULL, s), 0);
}

static void sim_free(sim *s) { parley__simnet_free(s->net); }

/* Signalling: credentials, every local candidate, end-of-candidates, from `from` to `to`. */
static void signal_to(peer *from, peer *to, bool candidates) {
  const char *u, *pw;
  parley__ice_local_credentials(from->ag, &u, &pw);
  cr_assert_eq(parley__ice_set_remote_credentials(to->ag, u, pw), 0);
  if (candidates) {
    parley__ice_candidate c[8];
    int n = parley__ice_local_candidates(from->ag, c, 8);
    for (int i = 0; i < n; i++) cr_assert_geq(parley__ice_add_remote_candidate(to->ag, &c[i], to->net->now_us), 0);
    parley__ice_remote_end_of_candidates(to->ag, to->net->now_us);
  }
}

/* Runs network and agents until cond holds or `for_us` of simulated time pass. Bounded in steps. */
static bool sim_run(sim *s, int64_t for_us, bool (*cond)(sim *)) {
  int64_t end = s->now_us + for_us;
  for (int step = 0; step < 200000; step++) {
    cr_assert_geq(parley__simnet_deliver_until(s->net, s->now_us), 0);
    for (int k = 0; k < 2; k++)
      if (s->peers[k] && s->peers[k]->running && parley__ice_next_deadline_us(s->peers[k]->ag) <= s->now_us) {
        parley__ice_tick(s->peers[k]->ag, s->now_us);
      }
    for (int k = 0; k < 2; k++)
      if (s->peers[k] && s->peers[k]->glue && parley__ice_liveness_next_deadline_us(s->peers[k]->glue) <= s->now_us)
        cr_assert_geq(parley__ice_liveness_tick(s->peers[k]->glue, s->now_us), 0);
    if (cond && cond(s)) return true;
    int64_t next = parley__simnet_next_delivery_us(s->net);
    for (int k = 0; k < 2; k++) {
      if (!s->peers[k] || !s->peers[k]->running) continue;
      int64_t d = s->peers[k]->glue ? parley__ice_liveness_next_deadline_us(s->peers[k]->glue)
                                    : parley__ice_next_deadline_us(s->peers[k]->ag);
      if (d < next) next = d;
    }
    if (next <= s->now_us) next = s->now_us + 1; /* defensive: always progress */
    if (next > end) {
      s->now_us = end;
      return cond ? cond(s) : true;
    }
    s->now_us = next;
  }
  cr_assert_fail("simulation did not settle in its step budget");
  return false;
}

static bool both_connected(sim *s) {
  for (int k = 0; k < 2; k++) {
    parley_ice_state st = parley__ice_get_state(s->peers[k]->ag);
    if (st != PARLEY_ICE_CONNECTED && st != PARLEY_ICE_COMPLETED) return false;
  }
  return true;
}

/* The two selected pairs are mirror images: A's remote is B's local socket and vice versa. */
static void expect_mirrored_selection(peer *a, peer *b) {
  int la, lb;
  parley__netaddr ra, rb;
  cr_assert_eq(parley__ice_selected_pair(a->ag, &la, &ra), 0);
  cr_assert_eq(parley__ice_selected_pair(b->ag, &lb, &rb), 0);
  cr_expect(parley__netaddr_equal(&ra, &b->addr[lb]), "A's selected remote is B's selected socket");
  cr_expect(parley__netaddr_equal(&rb, &a->addr[la]), "B's selected remote is A's selected socket");
  cr_expect(parley__ice_accept_media(a->ag, la, &ra));
  cr_expect(parley__ice_accept_media(b->ag, lb, &rb));
}

static void connect_pair(sim *s, peer *a, peer *b) {
  s->peers[0] = a;
  s->peers[1] = b;
  cr_assert_eq(parley__ice_start(a->ag, s->now_us), 0);
  cr_assert_eq(parley__ice_start(b->ag, s->now_us), 0);
  signal_to(a, b, true);
  signal_to(b, a, true);
}

static const char *const two_v4[] = {"10.0.0.1", "10.0.1.1"};
static const char *const two_v4_b[] = {"10.0.0.2", "10.0.1.2"};

/* A (controlling) on the first n of a_ips, B (controlled) on b_ips, signalled and started. */
static void connect_peers(sim *s, peer *a, peer *b, const char *const *a_ips, const char *const *b_ips, int n) {
  peer_init(a, s, PARLEY__ICE_CONTROLLING, 0, a_ips, n);
  peer_init(b, s, PARLEY__ICE_CONTROLLED, 0, b_ips, n);
  connect_pair(s, a, b);
}

Test(ice_sim, connects_under_loss_and_gates_media) {
  for (uint64_t seed = 1; seed <= 8; seed++) {
    sim s;
    sim_init(&s, seed, 0.25);
    peer a, b;
    peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 2);
    peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 2);
    connect_pair(&s, &a, &b);
    int64_t t0 = s.now_us;
    cr_assert(sim_run(&s, 30000000, both_connected), "seed %llu: both connected", (unsigned long long)seed);
    cr_log_info("seed %llu: connected after %lld ms of simulated time with 25%% loss", (unsigned long long)seed,
                (long long)((s.now_us - t0) / 1000));
    cr_expect_eq(parley__ice_get_role(a.ag), PARLEY__ICE_CONTROLLING);
    cr_expect_eq(parley__ice_get_role(b.ag), PARLEY__ICE_CONTROLLED);
    cr_expect_eq(a.selected_events, 1);
    cr_expect_eq(b.selected_events, 1);
    expect_mirrored_selection(&a, &b);
    /* Media gate: a third address (on either socket) and a spoofed port fail. (The peer's address on
     * our other socket may pass: that pair may be valid too, and RFC 8445 12.2 lets media come on any
     * valid pair.) */
    int la;
    parley__netaddr ra;
    cr_assert_eq(parley__ice_selected_pair(a.ag, &la, &ra), 0);
    parley__netaddr intruder = ip("10.0.0.66", ra.port);
    cr_expect_not(parley__ice_accept_media(a.ag, la, &intruder));
    cr_expect_not(parley__ice_accept_media(a.ag, 1 - la, &intruder));
    parley__netaddr other_port = ra;
    other_port.port++;
    cr_expect_not(parley__ice_accept_media(a.ag, la, &other_port));
    /* Both sides got end-of-candidates, so once checks drain they are completed. */
    cr_expect(sim_run(&s, 20000000, NULL));
    cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_COMPLETED);
    cr_expect_eq(parley__ice_get_state(b.ag), PARLEY_ICE_COMPLETED);
    /* Nothing left to do: no timers once completed. */
    cr_expect_eq(parley__ice_next_deadline_us(a.ag), INT64_MAX);
    parley__ice_free(a.ag);
    parley__ice_free(b.ag);
    sim_free(&s);
  }
}

Test(ice_sim, deterministic_in_simulated_time) {
  int64_t t[2];
  uint64_t sent[2];
  for (int run = 0; run < 2; run++) {
    sim s;
    sim_init(&s, 42, 0.3);
    peer a, b;
    peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 7, two_v4, 2);
    peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 3, two_v4_b, 2);
    connect_pair(&s, &a, &b);
    cr_assert(sim_run(&s, 30000000, both_connected));
    t[run] = s.now_us;
    sent[run] = s.sent;
    parley__ice_free(a.ag);
    parley__ice_free(b.ag);
    sim_free(&s);
  }
  cr_expect_eq(t[0], t[1]);
  cr_expect_eq(sent[0], sent[1]);
}

static void role_conflict(parley__ice_role role, uint64_t tb_a, uint64_t tb_b) {
  sim s;
  sim_init(&s, 5, 0.0);
  peer a, b;
  peer_init(&a, &s, role, tb_a, two_v4, 1);
  peer_init(&b, &s, role, tb_b, two_v4_b, 1);
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  /* RFC 8445 7.3.1.1: the larger tie-breaker ends up controlling. */
  peer *hi = tb_a > tb_b ? &a : &b, *lo = tb_a > tb_b ? &b : &a;
  cr_expect_eq(parley__ice_get_role(hi->ag), PARLEY__ICE_CONTROLLING);
  cr_expect_eq(parley__ice_get_role(lo->ag), PARLEY__ICE_CONTROLLED);
  cr_expect_eq(hi->role_events + lo->role_events, 1, "exactly one side switched");
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  parley__ice_stats st2;
  parley__ice_get_stats(b.ag, &st2);
  cr_expect_geq(st.role_conflicts + st2.role_conflicts, 1);
  expect_mirrored_selection(&a, &b);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, role_conflict_both_controlling) {
  role_conflict(PARLEY__ICE_CONTROLLING, 1000, 10);
  role_conflict(PARLEY__ICE_CONTROLLING, 10, 1000);
}

Test(ice_sim, role_conflict_both_controlled) {
  role_conflict(PARLEY__ICE_CONTROLLED, 1000, 10);
  role_conflict(PARLEY__ICE_CONTROLLED, 10, 1000);
}

Test(ice_sim, restart_keeps_old_pair_until_new_one) {
  sim s;
  sim_init(&s, 9, 0.1);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 2);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 2);
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  int la;
  parley__netaddr ra;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &la, &ra), 0);
  const char *u0;
  parley__ice_local_credentials(a.ag, &u0, NULL);
  char old_ufrag[64];
  strcpy(old_ufrag, u0);

  /* A restarts (new offer); B sees new credentials and restarts too (its answer). */
  cr_assert_eq(parley__ice_restart(a.ag, s.now_us), 0);
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_CHECKING);
  cr_expect(parley__ice_accept_media(a.ag, la, &ra), "old pair still carries media during the restart");
  /* Consent on the old pair still works before the new remote credentials arrive (a few tries: the
   * link loses 10%). */
  for (int i = 0; i < 10 && a.consent_ok == 0; i++) {
    cr_expect_gt(parley__ice_send_consent_check(a.ag, s.now_us), 0);
    cr_expect(sim_run(&s, 100000, NULL));
  }
  cr_expect_geq(a.consent_ok, 1);
  const char *u1;
  parley__ice_local_credentials(a.ag, &u1, NULL);
  cr_expect_str_neq(u1, old_ufrag);
  const char *bu, *bp;
  parley__ice_local_credentials(a.ag, &bu, &bp);
  cr_expect_eq(parley__ice_set_remote_credentials(b.ag, bu, bp), PARLEY_ESTATE, "needs a restart first");
  cr_assert_eq(parley__ice_restart(b.ag, s.now_us), 0);
  signal_to(&a, &b, true);
  signal_to(&b, &a, true);
  cr_assert(sim_run(&s, 30000000, both_connected));
  cr_expect_eq(a.selected_events, 2);
  cr_expect_eq(b.selected_events, 2);
  expect_mirrored_selection(&a, &b);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, check_retransmits_are_bounded_and_then_fail) {
  sim s;
  sim_init(&s, 3, 0.0);
  parley__simnet_cut(s.net); /* nothing gets through */
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 2);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 2);
  connect_pair(&s, &a, &b);
  b.running = false; /* only A runs */
  cr_expect(sim_run(&s, 120000000, NULL));
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_FAILED);
  cr_expect_eq(a.last_state, PARLEY_ICE_FAILED);
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  /* 2 x 2 sockets, same family: 4 pairs, each 1 check of 7 transmissions (RFC 8489 Rc = 7). */
  cr_expect_eq(st.checks_sent, 4);
  cr_expect_eq(st.retransmits, 4 * 6);
  cr_expect_eq(st.pairs_failed, 4);
  cr_expect_eq(s.sent, 4 * 7);
  cr_expect_eq(parley__ice_next_deadline_us(a.ag), INT64_MAX, "nothing left to send");
  cr_expect_not(parley__ice_accept_media(a.ag, 0, &b.addr[0]));
  cr_expect_eq(parley__ice_send_consent_check(a.ag, s.now_us), PARLEY_ESTATE);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, bad_integrity_and_wrong_username_are_refused) {
  sim s;
  sim_init(&s, 4, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLED, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLING, 0, two_v4_b, 1);
  s.peers[0] = &a;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  const char *au, *ap;
  parley__ice_local_credentials(a.ag, &au, &ap);
  char user[128];
  parley__ice_msg m = {.cls = PARLEY__ICE_MSG_REQUEST, .method = 1, .has_username = true, .has_priority = true,
                       .priority = 1862270975u, .has_controlling = true, .tie_breaker = 5};
  memset(m.txid, 7, 12);
  uint8_t buf[512];
  parley__netaddr attacker = ip("10.9.9.9", 6666);

  /* Right username, wrong password: 401 without integrity, nothing learned. */
  snprintf(m.username, sizeof m.username, "%s:evil", au);
  int n = parley__ice_msg_build(&m, "not-the-password-at-all", buf, sizeof buf);
  cr_assert_gt(n, 0);
  s.captured = 0;
  cr_expect_eq(parley__ice_receive(a.ag, 0, &attacker, buf, (size_t)n, s.now_us), 1);
  cr_assert_eq(s.captured, 1);
  parley__ice_msg r;
  cr_assert_eq(parley__ice_msg_parse(s.last.buf, s.last.len, &r), 0);
  cr_expect_eq(r.cls, PARLEY__ICE_MSG_ERROR);
  cr_expect_eq(r.error_code, 401);
  cr_expect_not(r.has_integrity);
  cr_expect(parley__netaddr_equal(&s.last.dst, &attacker));

  /* Wrong username: 401 too. */
  strcpy(user, "nobody:evil");
  strcpy(m.username, user);
  n = parley__ice_msg_build(&m, ap, buf, sizeof buf);
  s.captured = 0;
  cr_expect_eq(parley__ice_receive(a.ag, 0, &attacker, buf, (size_t)n, s.now_us), 1);
  cr_assert_eq(s.captured, 1);
  cr_assert_eq(parley__ice_msg_parse(s.last.buf, s.last.len, &r), 0);
  cr_expect_eq(r.error_code, 401);

  /* No MESSAGE-INTEGRITY at all: 400. */
  snprintf(m.username, sizeof m.username, "%s:evil", au);
  n = parley__ice_msg_build(&m, NULL, buf, sizeof buf);
  s.captured = 0;
  cr_expect_eq(parley__ice_receive(a.ag, 0, &attacker, buf, (size_t)n, s.now_us), 1);
  cr_assert_eq(parley__ice_msg_parse(s.last.buf, s.last.len, &r), 0);
  cr_expect_eq(r.error_code, 400);

  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.auth_failures, 3);
  cr_expect_eq(st.prflx_learned, 0, "unauthenticated requests teach nothing");
  cr_expect_eq(st.requests_received, 0);

  /* A correctly authenticated request is answered with a signed success carrying the source. */
  n = parley__ice_msg_build(&m, ap, buf, sizeof buf);
  s.captured = 0;
  cr_expect_eq(parley__ice_receive(a.ag, 0, &attacker, buf, (size_t)n, s.now_us), 1);
  cr_assert_geq(s.captured, 1);
  cr_assert_eq(parley__ice_msg_parse(s.last.buf, s.last.len, &r), 0);
  cr_expect_eq(r.cls, PARLEY__ICE_MSG_SUCCESS);
  cr_expect(r.has_mapped && parley__netaddr_equal(&r.mapped, &attacker));
  cr_expect(parley__ice_msg_integrity_ok(s.last.buf, s.last.len, ap));
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.prflx_learned, 1);
  /* ...but a valid check alone does not open the media gate: only a selected pair does. */
  cr_expect_not(parley__ice_accept_media(a.ag, 0, &attacker));

  /* Non-STUN bytes are left to the caller (media), and are not accepted as media either. */
  uint8_t rtp[12] = {0x80, 111};
  cr_expect_eq(parley__ice_receive(a.ag, 0, &attacker, rtp, sizeof rtp, s.now_us), 0);
  cr_expect_eq(parley__ice_receive(a.ag, 5, &attacker, rtp, sizeof rtp, s.now_us), PARLEY_EINVAL);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, forged_response_is_dropped_and_connection_still_forms) {
  sim s;
  sim_init(&s, 11, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  connect_pair(&s, &a, &b);
  /* Let A send its first check, then forge a success for it signed with the wrong key. */
  s.captured = 0;
  for (int i = 0; i < 100 && s.captured == 0; i++) {
    s.now_us = parley__ice_next_deadline_us(a.ag);
    parley__ice_tick(a.ag, s.now_us);
  }
  cr_assert_gt(s.captured, 0);
  parley__ice_msg req;
  cr_assert_eq(parley__ice_msg_parse(s.last.buf, s.last.len, &req), 0);
  parley__ice_msg fake = {.cls = PARLEY__ICE_MSG_SUCCESS, .method = 1, .has_mapped = true, .mapped = s.last.src};
  memcpy(fake.txid, req.txid, 12);
  uint8_t buf[256];
  int n = parley__ice_msg_build(&fake, "0123456789012345678901", buf, sizeof buf);
  cr_expect_eq(parley__ice_receive(a.ag, 0, &s.last.dst, buf, (size_t)n, s.now_us), 1);
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.auth_failures, 1);
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_CHECKING, "the forgery validated nothing");
  cr_assert(sim_run(&s, 30000000, both_connected));
  expect_mirrored_selection(&a, &b);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, peer_reflexive_learned_from_requests) {
  sim s;
  sim_init(&s, 12, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  s.peers[0] = &a;
  s.peers[1] = &b;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  cr_assert_eq(parley__ice_start(b.ag, s.now_us), 0);
  signal_to(&b, &a, true);  /* A knows B's candidates */
  signal_to(&a, &b, false); /* B only knows A's credentials: A's address must be learned */
  cr_assert(sim_run(&s, 30000000, both_connected));
  parley__ice_stats st;
  parley__ice_get_stats(b.ag, &st);
  cr_expect_eq(st.prflx_learned, 1);
  expect_mirrored_selection(&a, &b);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, server_reflexive_candidate_from_stun_server) {
  sim s;
  sim_init(&s, 13, 0.0);
  sim_add_server(&s);
  peer a;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  s.peers[0] = &a;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  cr_expect_eq(a.gathering_done, 0, "waits for the server");
  cr_expect(sim_run(&s, 2000000, NULL));
  cr_expect_eq(a.gathering_done, 1);
  cr_assert(a.has_srflx);
  cr_expect(parley__netaddr_equal(&a.srflx.addr, &(parley__netaddr){0}) == false);
  parley__netaddr want = ip("203.0.113.77", 15000);
  cr_expect(parley__netaddr_equal(&a.srflx.addr, &want));
  cr_expect(parley__netaddr_equal(&a.srflx.related, &a.addr[0]), "raddr is the base");
  cr_expect_eq(a.srflx.priority, (100u << 24) + (32767u << 8) + 255u);
  parley__ice_candidate c[4];
  cr_expect_eq(parley__ice_local_candidates(a.ag, c, 4), 2);
  cr_expect_str_neq(c[0].foundation, c[1].foundation, "host and srflx differ in type");
  parley__ice_free(a.ag);
  sim_free(&s);
}

Test(ice_sim, consent_checks_on_the_selected_pair) {
  sim s;
  sim_init(&s, 14, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  cr_expect_eq(parley__ice_send_consent_check(a.ag, s.now_us), PARLEY_ESTATE);
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  int seq = parley__ice_send_consent_check(a.ag, s.now_us);
  cr_assert_gt(seq, 0);
  cr_expect(sim_run(&s, 100000, NULL));
  cr_expect_eq(a.consent_ok, 1);
  cr_expect_eq(a.last_consent_seq, (uint32_t)seq);
  int seq_b = parley__ice_send_consent_check(b.ag, s.now_us);
  cr_expect(sim_run(&s, 100000, NULL));
  cr_expect_eq(b.consent_ok, 1);
  cr_expect_eq(b.last_consent_seq, (uint32_t)seq_b);
  /* Path cut: the check goes unanswered and no event is made up. */
  parley__simnet_cut(s.net);
  cr_assert_gt(parley__ice_send_consent_check(a.ag, s.now_us), 0);
  cr_expect(sim_run(&s, 1000000, NULL));
  cr_expect_eq(a.consent_ok, 1);
  cr_expect_eq(a.consent_err, 0);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, unauthenticated_flood_gets_bounded_replies_and_the_call_goes_on) {
  /* 10000 forged Binding requests per second for 3 s from 4096 addresses (half without credentials:
   * 400; half with a wrong USERNAME: 401) at A while A and B connect and then check consent. The error
   * replies to the flood stay within the global budget's bound, burst + rate * 3 s; every request of
   * the call itself is answered. */
  sim s;
  sim_init(&s, 77, 0.0);
  peer a, b;
  connect_peers(&s, &a, &b, two_v4, two_v4_b, 1);
  const int flood_ms = 3000, per_ms = 10;
  int consent_sent = 0;
  for (int ms = 0; ms < flood_ms; ms++) {
    for (int k = 0; k < per_ms; k++) {
      int n = ms * per_ms + k;
      parley__ice_msg m = {.cls = PARLEY__ICE_MSG_REQUEST, .method = 1, .has_username = (n & 1) != 0};
      memcpy(m.txid, &n, sizeof n);
      strcpy(m.username, "nobody:x");
      uint8_t buf[256];
      int len = parley__ice_msg_build(&m, m.has_username ? "not-the-password-at-all" : NULL, buf, sizeof buf);
      cr_assert_gt(len, 0);
      char src_ip[32];
      snprintf(src_ip, sizeof src_ip, "10.1.%d.%d", (n % 4096) >> 8, n % 256);
      parley__netaddr src = ip(src_ip, (uint16_t)(40000 + n % 7));
      cr_assert_eq(parley__ice_receive(a.ag, 0, &src, buf, (size_t)len, s.now_us), 1);
    }
    if (ms % 250 == 125 && both_connected(&s)) {
      cr_assert_gt(parley__ice_send_consent_check(b.ag, s.now_us), 0);
      consent_sent++;
    }
    cr_assert(sim_run(&s, 1000, NULL));
  }
  cr_expect(sim_run(&s, 100000, NULL));
  cr_expect(both_connected(&s), "connected during the flood");
  cr_expect_geq(consent_sent, 10);
  cr_expect_eq(b.consent_ok, consent_sent, "every consent check of the call answered during the flood");
  uint64_t bound = PARLEY__STUN_LIMIT_GLOBAL_BURST + PARLEY__STUN_LIMIT_GLOBAL_PER_S * (uint64_t)flood_ms / 1000;
  cr_expect_leq(s.sent_elsewhere, bound, "%llu replies to the flood", (unsigned long long)s.sent_elsewhere);
  cr_expect_geq(s.sent_elsewhere, PARLEY__STUN_LIMIT_GLOBAL_BURST, "the budget is spent, not withheld");
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.error_replies_refused + s.sent_elsewhere, (uint64_t)(flood_ms * per_ms));
  cr_expect_geq(st.requests_received, (uint32_t)consent_sent, "B's requests authenticated and counted");
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* The liveness monitor probes every 20 ms while the path is suspect and counts answers for up to
 * 800 ms: on a 300 ms round trip 15 probes are in flight at once and every answer must still count.
 * (With 8 remembered transactions only answers faster than 8 x 20 ms survived.) */
Test(ice_sim, consent_answers_survive_many_checks_in_flight) {
  sim s;
  sim_init(&s, 15, 0.0);
  parley__simnet_link slow = {.delay_us = 150000, .jitter_us = 0, .loss_prob = 0.0};
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  cr_assert_eq(parley__simnet_set_link(s.net, &slow), 0);
  cr_assert(sim_run(&s, 1000000, NULL)); /* settle: nothing of the fast link left in flight */
  int ok0 = a.consent_ok;
  uint32_t first = 0, last = 0;
  for (int i = 0; i < 30; i++) { /* 30 checks 20 ms apart: 600 ms of fast probing */
    int seq = parley__ice_send_consent_check(a.ag, s.now_us);
    cr_assert_gt(seq, 0);
    if (i == 0) first = (uint32_t)seq;
    last = (uint32_t)seq;
    cr_assert(sim_run(&s, 20000, NULL));
  }
  cr_assert(sim_run(&s, 400000, NULL));
  cr_expect_eq(a.consent_ok - ok0, 30, "every answer counts: %d of 30", a.consent_ok - ok0);
  cr_expect_eq(a.last_consent_seq, last);
  cr_expect_eq(last - first, 29u);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

static bool a_nominating(sim *s) {
  parley__ice_stats st;
  parley__ice_get_stats(s->peers[0]->ag, &st);
  return st.checks_sent >= 2; /* one pair: the ordinary check, then the nomination */
}

/* The controlling side's nomination check is never answered (the return path dies just as it is
 * sent): the pair fails, and the agent must not keep reporting the spent nomination timer as a
 * deadline in the past (its owner's event loop would spin; sim_run's step budget catches that). */
Test(ice_sim, failed_nomination_leaves_no_stale_deadline) {
  sim s;
  sim_init(&s, 16, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 5000000, a_nominating));
  struct sockaddr_storage sa, sb;
  cr_assert_gt(parley__netaddr_to_sockaddr(&a.addr[0], &sa), 0);
  cr_assert_gt(parley__netaddr_to_sockaddr(&b.addr[0], &sb), 0);
  cr_assert_eq(parley__simnet_block(s.net, (struct sockaddr *)&sb, (struct sockaddr *)&sa, 1), 0);
  cr_assert(sim_run(&s, 30000000, NULL)); /* > 7 transmissions with RTO doubling to 3 s */
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_FAILED);
  cr_expect_neq(parley__ice_selected_pair(a.ag, NULL, NULL), 0);
  cr_expect_gt(parley__ice_next_deadline_us(a.ag), s.now_us, "no deadline in the past after failing");
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* ---------- real UDP on loopback ---------- */

typedef struct udp_peer {
  parley__udp sock;
  parley__ice_agent *ag;
  uint64_t media_ok, media_rejected;
} udp_peer;

static void udp_send_cb(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  udp_peer *p = ctx;
  cr_assert_eq(local, 0);
  (void)parley__udp_send(&p->sock, dst, buf, len, NULL);
}

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pump(udp_peer *p, int64_t now) {
  uint8_t buf[1500];
  parley__netaddr src;
  for (int i = 0; i < 64; i++) {
    int n = parley__udp_recv(&p->sock, buf, sizeof buf, &src, NULL);
    if (n == PARLEY_EAGAIN) break;
    if (n < 0) continue;
    int r = parley__ice_receive(p->ag, 0, &src, buf, (size_t)n, now);
    cr_assert_geq(r, 0);
    if (r == 0) {
      if (parley__ice_accept_media(p->ag, 0, &src)) p->media_ok++;
      else p->media_rejected++;
    }
  }
  if (parley__ice_next_deadline_us(p->ag) <= now) parley__ice_tick(p->ag, now);
}

static void udp_connect(const char *loop) {
  udp_peer a = {0}, b = {0};
  parley__netaddr bind_addr = ip(loop, 0);
  if (parley__udp_open(&a.sock, &bind_addr) != 0) {
    cr_log_warn("no %s loopback: skipped", loop);
    return;
  }
  cr_assert_eq(parley__udp_open(&b.sock, &bind_addr), 0);
  parley__ice_config ca = {.role = PARLEY__ICE_CONTROLLING, .send = udp_send_cb, .ctx = &a};
  parley__ice_config cb = {.role = PARLEY__ICE_CONTROLLED, .send = udp_send_cb, .ctx = &b};
  a.ag = parley__ice_new(&ca, NULL);
  b.ag = parley__ice_new(&cb, NULL);
  cr_assert(a.ag && b.ag);
  cr_assert_eq(parley__ice_add_local(a.ag, &a.sock.local), 0);
  cr_assert_eq(parley__ice_add_local(b.ag, &b.sock.local), 0);
  int64_t t0 = mono_us();
  cr_assert_eq(parley__ice_start(a.ag, t0), 0);
  cr_assert_eq(parley__ice_start(b.ag, t0), 0);
  const char *u, *pw;
  parley__ice_candidate c;
  parley__ice_local_credentials(a.ag, &u, &pw);
  cr_assert_eq(parley__ice_set_remote_credentials(b.ag, u, pw), 0);
  parley__ice_local_credentials(b.ag, &u, &pw);
  cr_assert_eq(parley__ice_set_remote_credentials(a.ag, u, pw), 0);
  cr_assert_eq(parley__ice_local_candidates(a.ag, &c, 1), 1);
  cr_assert_eq(parley__ice_add_remote_candidate(b.ag, &c, t0), 0);
  cr_assert_eq(parley__ice_local_candidates(b.ag, &c, 1), 1);
  cr_assert_eq(parley__ice_add_remote_candidate(a.ag, &c, t0), 0);

  parley__udp *socks[2] = {&a.sock, &b.sock};
  bool up = false;
  for (int i = 0; i < 1000 && !up && mono_us() - t0 < 5000000; i++) {
    uint32_t ready;
    (void)parley__udp_poll(socks, 2, 5, &ready);
    int64_t now = mono_us();
    pump(&a, now);
    pump(&b, now);
    up = parley__ice_get_state(a.ag) == PARLEY_ICE_CONNECTED && parley__ice_get_state(b.ag) == PARLEY_ICE_CONNECTED;
  }
  cr_assert(up, "both agents connected over %s", loop);
  int la, lb;
  parley__netaddr ra, rb;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &la, &ra), 0);
  cr_assert_eq(parley__ice_selected_pair(b.ag, &lb, &rb), 0);
  cr_expect(parley__netaddr_equal(&ra, &b.sock.local));
  cr_expect(parley__netaddr_equal(&rb, &a.sock.local));

  /* Media: B sends on the selected pair, an intruder socket sends from elsewhere. */
  parley__udp intruder;
  cr_assert_eq(parley__udp_open(&intruder, &bind_addr), 0);
  uint8_t rtp[20] = {0x80, 111};
  cr_assert_eq(parley__udp_send(&b.sock, &a.sock.local, rtp, sizeof rtp, NULL), (int)sizeof rtp);
  cr_assert_eq(parley__udp_send(&intruder, &a.sock.local, rtp, sizeof rtp, NULL), (int)sizeof rtp);
  for (int i = 0; i < 100 && a.media_ok + a.media_rejected < 2; i++) {
    uint32_t ready;
    (void)parley__udp_poll(socks, 1, 10, &ready);
    pump(&a, mono_us());
  }
  cr_expect_eq(a.media_ok, 1);
  cr_expect_eq(a.media_rejected, 1);
  parley__udp_close(&intruder);
  parley__udp_close(&a.sock);
  parley__udp_close(&b.sock);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
}

Test(ice_udp, connects_over_ipv4_loopback) { udp_connect("127.0.0.1"); }
Test(ice_udp, connects_over_ipv6_loopback_if_available) { udp_connect("::1"); }

Test(ice_sim, frozen_pairs_wait_for_their_foundation) {
  /* A has two sockets on one IP: both host candidates share a foundation, so against B's single
   * candidate the two pairs share a pair foundation and the second stays Frozen while the first is
   * being checked (RFC 8445 6.1.2.6, 6.1.4.2). With the path cut, the first check needs its whole
   * retransmission schedule (0.5+1+2+3+3+3+3 = 15.5 s) to fail before the second pair is tried. */
  sim s;
  sim_init(&s, 21, 0.0);
  parley__simnet_cut(s.net);
  static const char *const same_ip[] = {"10.0.0.1", "10.0.0.1"};
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, same_ip, 2);
  a.addr[1].port = 5001;
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  connect_pair(&s, &a, &b);
  b.running = false;
  cr_expect(sim_run(&s, 15000000, NULL));
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.checks_sent, 1, "second pair frozen behind the first");
  cr_expect(sim_run(&s, 1000000, NULL));
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.checks_sent, 2, "unfrozen once the first failed");
  cr_expect_eq(st.pairs_failed, 1);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* Drains the event queue; counts events of `kind` (with `code`, for interruptions). */
static int count_events(parley__event_queue *q, parley_event_kind kind, parley_interrupt_code code) {
  int n = 0;
  parley__event ev;
  while (parley__event_queue_pop(q, &ev) == 0)
    if (ev.kind == kind && (kind != PARLEY_EVENT_INTERRUPTED || ev.code == code)) n++;
  return n;
}

Test(ice_sim, liveness_monitor_driven_by_the_agent) {
  sim s;
  sim_init(&s, 31, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  parley__event storage[64];
  parley__event_queue q;
  cr_assert_eq(parley__event_queue_init(&q, storage, 64), 0);
  parley__liveness_config lc;
  parley__liveness_config_init(&lc);
  lc.seed = 1;
  parley__liveness *mon = parley__liveness_new(&lc, &q, NULL);
  cr_assert_not_null(mon);
  parley__ice_liveness glue;
  parley__ice_liveness_init(&glue, a.ag, mon);
  a.glue = &glue;
  connect_pair(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  cr_expect_eq(parley__liveness_ice_state(mon), PARLEY_ICE_CONNECTED, "selected pair => monitor connected");

  /* No media at all, but probes on the selected pair are answered: never declared lost. */
  cr_expect(sim_run(&s, 3000000, NULL));
  cr_expect_eq(count_events(&q, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST), 0);
  cr_expect_gt(glue.probes_sent, 0);
  cr_expect_not(parley__liveness_interrupted(mon));

  /* Path cut: probes go unanswered and the monitor declares the outage. */
  parley__simnet_cut(s.net);
  cr_expect(sim_run(&s, 2000000, NULL));
  cr_expect_eq(count_events(&q, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_NETWORK_LOST), 1);
  cr_expect(parley__liveness_interrupted(mon));

  /* Restored: the next answered probe resumes the call. */
  parley__simnet_restore(s.net);
  cr_expect(sim_run(&s, 1000000, NULL));
  cr_expect_eq(count_events(&q, PARLEY_EVENT_RESUMED, PARLEY_INTERRUPT_NONE), 1);
  cr_expect_not(parley__liveness_interrupted(mon));

  /* B's process dies: the next probe bounces (ICMP port unreachable) => peer-gone at once. */
  cr_assert_eq(parley__simnet_remove_endpoint(s.net, b.ep_id[0]), 0);
  b.running = false;
  cr_expect(sim_run(&s, 1000000, NULL));
  cr_expect_eq(count_events(&q, PARLEY_EVENT_INTERRUPTED, PARLEY_INTERRUPT_PEER_GONE), 1);

  parley__liveness_free(mon);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* A (controlling) and B each with an IPv4 socket (index 0) and an IPv6 one (index 1), started. */
static void connect_dual_stack(sim *s, peer *a, peer *b) {
  static const char *const a_ips[] = {"10.0.0.1", "2001:db8::1"};
  static const char *const b_ips[] = {"10.0.0.2", "2001:db8::2"};
  connect_peers(s, a, b, a_ips, b_ips, 2);
}

Test(ice_sim, dual_stack_pairs_by_family_and_prefers_ipv6) {
  sim s;
  sim_init(&s, 41, 0.0);
  peer a, b;
  connect_dual_stack(&s, &a, &b);
  cr_assert(sim_run(&s, 30000000, both_connected));
  int la;
  parley__netaddr ra;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &la, &ra), 0);
  cr_expect_eq(la, 1, "the IPv6 socket");
  cr_expect_eq(ra.family, PARLEY__NETADDR_V6);
  expect_mirrored_selection(&a, &b);
  cr_expect(sim_run(&s, 20000000, NULL));
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  /* Only same-family pairs exist: v6-v6 checked then nominated (2 checks); v4-v4 cancelled or checked. */
  cr_expect_leq(st.checks_sent, 3);
  cr_expect_eq(st.pairs_failed, 0);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* The first wire-log entry at or after `from` that `by` sent (received = false) or received, of class cls. */
static int wire_find(const sim *s, int from, const peer *by, bool received, int cls) {
  for (int i = from; i < s->nlog; i++)
    if (s->log[i].by == by && s->log[i].received == received && s->log[i].cls == cls) return i;
  return -1;
}

/* When `by` received the success response to its transaction txid; -1 if it never did. */
static int64_t wire_success_at(const sim *s, const peer *by, const uint8_t txid[12]) {
  for (int i = 0; i < s->nlog; i++)
    if (s->log[i].by == by && s->log[i].received && s->log[i].cls == PARLEY__ICE_MSG_SUCCESS &&
        memcmp(s->log[i].txid, txid, 12) == 0)
      return s->log[i].t_us;
  return -1;
}

Test(ice_sim, controlling_nominates_on_the_first_success_of_the_best_pair) {
  /* One pair, a 20..24 ms round trip (less than Ta = 50 ms). RFC 8445 regular nomination: the first
   * check is a plain one; once it succeeds and no better pair is pending, the controlling agent repeats
   * it with USE-CANDIDATE at once, not at the next Ta slot, and both sides select the pair when that
   * check succeeds. */
  sim s;
  sim_init(&s, 5, 0.0);
  peer a, b;
  connect_peers(&s, &a, &b, two_v4, two_v4_b, 1);
  cr_assert(sim_run(&s, 5000000, both_connected));
  cr_assert(sim_run(&s, 1000000, NULL));
  int first = wire_find(&s, 0, &a, false, PARLEY__ICE_MSG_REQUEST);
  cr_assert_geq(first, 0);
  cr_expect_not(s.log[first].use_candidate, "the first check is a plain check");
  int64_t ok_us = wire_success_at(&s, &a, s.log[first].txid);
  cr_assert_geq(ok_us, 0, "the first check succeeded");
  int nom = first;
  while (nom >= 0 && memcmp(s.log[nom].txid, s.log[first].txid, 12) == 0)
    nom = wire_find(&s, nom + 1, &a, false, PARLEY__ICE_MSG_REQUEST);
  cr_assert_geq(nom, 0, "a second check transaction");
  cr_expect(s.log[nom].use_candidate, "the next check after the first success is the nomination");
  cr_expect(parley__netaddr_equal(&s.log[nom].local, &s.log[first].local) &&
            parley__netaddr_equal(&s.log[nom].remote, &s.log[first].remote), "on the pair that succeeded");
  cr_expect_eq(s.log[nom].t_us, ok_us, "sent when the success arrived, not at the next Ta slot");
  cr_expect_geq(s.log[nom].t_us - s.log[first].t_us, 5000, "never closer than 5 ms to the previous check");
  cr_expect_geq(wire_success_at(&s, &a, s.log[nom].txid), 0, "the nomination succeeded");
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.checks_sent, 2, "one check and one nomination");
  cr_expect_eq(st.retransmits, 0);
  /* RFC 8445 8.1.1: data may flow on any valid pair before nomination. Each side moves media to the
   * pair when its own first check on it succeeds: A at once, B before the nomination reaches it. */
  cr_expect_eq(a.selected_at_us, ok_us, "A uses the pair on its first success");
  int b_first = wire_find(&s, 0, &b, false, PARLEY__ICE_MSG_REQUEST);
  cr_assert_geq(b_first, 0);
  cr_expect_eq(b.selected_at_us, wire_success_at(&s, &b, s.log[b_first].txid), "B on its own first success");
  int b_nominated = wire_find(&s, 0, &b, true, PARLEY__ICE_MSG_REQUEST);
  while (b_nominated >= 0 && !s.log[b_nominated].use_candidate)
    b_nominated = wire_find(&s, b_nominated + 1, &b, true, PARLEY__ICE_MSG_REQUEST);
  cr_assert_geq(b_nominated, 0, "B got the nomination");
  cr_expect_lt(b.selected_at_us, s.log[b_nominated].t_us);
  expect_mirrored_selection(&a, &b);
  cr_expect_eq(a.selected_events, 1);
  cr_expect_eq(b.selected_events, 1);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* IPv6 datagrams take 150 ms each way, IPv4 ones 10 ms. */
static void slow_v6_fate(void *ctx, const struct sockaddr *from, const struct sockaddr *to, size_t len, int64_t now_us,
                         parley__simnet_fate *out) {
  (void)ctx, (void)to, (void)len;
  out->copies = 1;
  out->deliver_at_us[0] = now_us + (from->sa_family == AF_INET6 ? 150000 : 10000);
}

Test(ice_sim, nomination_waits_for_a_better_pending_pair) {
  /* Dual stack: the IPv6 pair has the higher priority but a 300 ms round trip; the IPv4 pair succeeds
   * long before it. The controlling agent must not nominate the IPv4 pair while the IPv6 one is still
   * in progress, and must nominate the IPv6 pair as soon as its check succeeds. */
  sim s;
  sim_init(&s, 43, 0.0);
  parley__simnet_set_fate(s.net, slow_v6_fate, NULL);
  peer a, b;
  connect_dual_stack(&s, &a, &b);
  cr_assert(sim_run(&s, 5000000, both_connected));
  int64_t ok_us[2] = {-1, -1}; /* first success A received: [0] IPv4, [1] IPv6 */
  for (int i = wire_find(&s, 0, &a, true, PARLEY__ICE_MSG_SUCCESS); i >= 0;
       i = wire_find(&s, i + 1, &a, true, PARLEY__ICE_MSG_SUCCESS)) {
    int v6 = s.log[i].local.family == PARLEY__NETADDR_V6;
    if (ok_us[v6] < 0) ok_us[v6] = s.log[i].t_us;
  }
  cr_assert_geq(ok_us[0], 0);
  cr_assert_gt(ok_us[1], ok_us[0], "the worse pair was valid first");
  int nominations = 0;
  for (int i = wire_find(&s, 0, &a, false, PARLEY__ICE_MSG_REQUEST); i >= 0;
       i = wire_find(&s, i + 1, &a, false, PARLEY__ICE_MSG_REQUEST)) {
    if (!s.log[i].use_candidate) continue;
    cr_expect_eq(s.log[i].local.family, PARLEY__NETADDR_V6, "USE-CANDIDATE only on the best pair");
    if (nominations++ == 0) cr_expect_eq(s.log[i].t_us, ok_us[1], "nominated when its first check succeeded");
  }
  cr_expect_geq(nominations, 1);
  int la;
  parley__netaddr ra;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &la, &ra), 0);
  cr_expect_eq(la, 1, "the IPv6 socket");
  expect_mirrored_selection(&a, &b);
  cr_expect_eq(a.selected_events, 1, "media never moved to the worse pair");
  cr_expect_eq(b.selected_events, 1, "media never moved to the worse pair");
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_sim, unknown_required_attribute_gets_420) {
  sim s;
  sim_init(&s, 42, 0.0);
  peer a;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLED, 0, two_v4, 1);
  s.peers[0] = &a;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  const char *au, *ap;
  parley__ice_local_credentials(a.ag, &au, &ap);
  /* Hand-build a request with a comprehension-required attribute 0x0077 nobody knows. */
  uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  uint8_t buf[512];
  parley__stun_builder bld;
  char user[64];
  snprintf(user, sizeof user, "%s:peer", au);
  cr_assert_eq(parley__stun_build_begin(&bld, buf, sizeof buf, PARLEY__STUN_METHOD_BINDING, PARLEY__STUN_REQUEST, txid), 0);
  cr_assert_eq(parley__stun_build_username(&bld, user, strlen(user)), 0);
  cr_assert_eq(parley__stun_build_u64(&bld, PARLEY__STUN_ATTR_ICE_CONTROLLING, 9), 0);
  cr_assert_eq(parley__stun_build_u32(&bld, PARLEY__STUN_ATTR_PRIORITY, 1862270975u), 0);
  cr_assert_eq(parley__stun_build_attr(&bld, 0x0077, "abcd", 4), 0);
  cr_assert_eq(parley__stun_build_integrity(&bld, (const uint8_t *)ap, strlen(ap)), 0);
  cr_assert_eq(parley__stun_build_fingerprint(&bld), 0);
  parley__netaddr from = ip("10.0.0.2", 5000);
  s.captured = 0;
  cr_expect_eq(parley__ice_receive(a.ag, 0, &from, buf, bld.len, s.now_us), 1);
  cr_assert_eq(s.captured, 1);
  parley__stun_msg r;
  cr_assert_eq(parley__stun_decode(&r, s.last.buf, s.last.len), 0);
  cr_expect_eq(r.cls, PARLEY__STUN_ERROR);
  cr_expect_eq(r.error_code, 420);
  cr_assert_eq(r.unknown_attr_count, 1);
  cr_expect_eq(r.unknown_attrs[0], 0x0077);
  cr_expect_eq(parley__stun_check_integrity(&r, s.last.buf, s.last.len, (const uint8_t *)ap, strlen(ap)), 0);
  parley__ice_free(a.ag);
  sim_free(&s);
}

Test(ice_sim, trickled_candidates_and_end_of_candidates) {
  sim s;
  sim_init(&s, 51, 0.0);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  s.peers[0] = &a;
  s.peers[1] = &b;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  cr_assert_eq(parley__ice_start(b.ag, s.now_us), 0);
  signal_to(&a, &b, false);
  signal_to(&b, &a, false);
  /* No candidates yet and no end-of-candidates: checking, never failed, however long. */
  cr_expect(sim_run(&s, 5000000, NULL));
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_CHECKING);
  cr_expect_eq(parley__ice_get_state(b.ag), PARLEY_ICE_CHECKING);
  /* B's candidate trickles in late; A connects (B learns A as peer-reflexive). */
  parley__ice_candidate c;
  cr_assert_eq(parley__ice_local_candidates(b.ag, &c, 1), 1);
  cr_assert_eq(parley__ice_add_remote_candidate(a.ag, &c, s.now_us), 0);
  cr_expect_eq(parley__ice_add_remote_candidate(a.ag, &c, s.now_us), 1, "a duplicate is recognised");
  cr_assert(sim_run(&s, 30000000, both_connected));
  expect_mirrored_selection(&a, &b);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);

  /* End-of-candidates with nothing to pair: failed. */
  sim_init(&s, 52, 0.0);
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  s.peers[0] = &a;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  cr_assert_eq(parley__ice_set_remote_credentials(a.ag, "abcd", "0123456789012345678901"), 0);
  parley__ice_remote_end_of_candidates(a.ag, s.now_us);
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_FAILED);
  parley__ice_free(a.ag);
  sim_free(&s);
}

Test(ice_sim, srflx_candidates_are_pruned_to_their_base) {
  /* RFC 8445 6.1.2.4: a pair whose local candidate is server-reflexive is replaced by its base, making
   * it redundant with the host pair; so an agent with host + srflx and one remote candidate checks one
   * pair. */
  sim s;
  sim_init(&s, 53, 0.0);
  sim_add_server(&s);
  peer a, b;
  peer_init(&a, &s, PARLEY__ICE_CONTROLLING, 0, two_v4, 1);
  peer_init(&b, &s, PARLEY__ICE_CONTROLLED, 0, two_v4_b, 1);
  s.peers[0] = &a;
  b.running = false;
  cr_assert_eq(parley__ice_start(a.ag, s.now_us), 0);
  cr_expect(sim_run(&s, 1000000, NULL));
  cr_assert(a.has_srflx);
  parley__simnet_cut(s.net);
  signal_to(&b, &a, true);
  cr_expect(sim_run(&s, 60000000, NULL));
  parley__ice_stats st;
  parley__ice_get_stats(a.ag, &st);
  cr_expect_eq(st.checks_sent, 1);
  cr_expect_eq(parley__ice_get_state(a.ag), PARLEY_ICE_FAILED);
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* ---------- network changes mid-call (ice_mobility.c) ---------- */

/* Peer p's socket idx goes away (its address was deleted) and a socket on new_ip appears: the agent is
 * told as the call tells it (remove, then add live), the simulated network likewise. */
static int move_local(sim *s, peer *p, int idx, const char *new_ip) {
  cr_assert_eq(parley__simnet_remove_endpoint(s->net, p->ep_id[idx]), 0);
  cr_assert_eq(parley__ice_remove_local(p->ag, idx, s->now_us), 0);
  cr_expect_eq(parley__ice_remove_local(p->ag, idx, s->now_us), PARLEY_EINVAL, "already gone");
  parley__netaddr na = ip(new_ip, 6000);
  int j = parley__ice_add_local_live(p->ag, &na, s->now_us);
  cr_assert_eq(j, idx, "the freed index is reused");
  p->addr[j] = na;
  struct sockaddr_storage sa;
  cr_assert_gt(parley__netaddr_to_sockaddr(&na, &sa), 0);
  p->ep_id[j] = parley__simnet_add_endpoint(s->net, (struct sockaddr *)&sa, sim_recv, sim_error, &p->ep[j]);
  cr_assert_geq(p->ep_id[j], 0);
  return j;
}

static bool both_completed(sim *s) {
  return parley__ice_get_state(s->peers[0]->ag) == PARLEY_ICE_COMPLETED &&
         parley__ice_get_state(s->peers[1]->ag) == PARLEY_ICE_COMPLETED;
}

/* Both selected pairs are on A's socket 0 and B's socket 0 as they are now. */
static bool on_current_sockets(sim *s) {
  peer *a = s->peers[0], *b = s->peers[1];
  int la, lb;
  parley__netaddr ra, rb;
  if (parley__ice_selected_pair(a->ag, &la, &ra) != 0 || parley__ice_selected_pair(b->ag, &lb, &rb) != 0) return false;
  return la == 0 && lb == 0 && parley__netaddr_equal(&ra, &b->addr[0]) && parley__netaddr_equal(&rb, &a->addr[0]) &&
         both_connected(s);
}

/* A (controlling, 10.0.0.1) and B (10.0.0.2) connected on clean 10 ms links, checklists done. */
static void completed_call(sim *s, peer *a, peer *b, uint64_t seed) {
  sim_init(s, seed, 0.0);
  static const char *const a_ip[] = {"10.0.0.1"}, *const b_ip[] = {"10.0.0.2"};
  connect_peers(s, a, b, a_ip, b_ip, 1);
  cr_assert(sim_run(s, 10000000, both_completed));
}

static void trickle_local(peer *from, peer *to) {
  parley__ice_candidate c[8];
  int n = parley__ice_local_candidates(from->ag, c, 8);
  for (int i = 0; i < n; i++) cr_assert_geq(parley__ice_add_remote_candidate(to->ag, &c[i], to->net->now_us), 0);
}

/* One side's address changes after the nomination; nothing is signalled. The mover checks its new pairs
 * (the peer answers: same credentials), the peer learns the new address as peer-reflexive after its
 * nomination, so the peer moved: both move media to the new pair and the controlling side nominates it,
 * with no ICE restart (the credentials stay) and within a few round trips (10 ms links). */
static void one_side_moves(bool mover_controls) {
  sim s;
  peer a, b;
  completed_call(&s, &a, &b, 21);
  const char *ua, *ub;
  parley__ice_local_credentials(a.ag, &ua, NULL);
  parley__ice_local_credentials(b.ag, &ub, NULL);
  char ufrag_a[64], ufrag_b[64];
  strcpy(ufrag_a, ua);
  strcpy(ufrag_b, ub);
  int sel_a = a.selected_events, sel_b = b.selected_events;
  peer *mover = mover_controls ? &a : &b;
  int64_t t0 = s.now_us;
  move_local(&s, mover, 0, "10.0.9.9");
  cr_expect_eq(parley__ice_selected_pair(mover->ag, NULL, NULL), PARLEY_ENOTFOUND, "its pair went with the address");
  cr_expect_neq(parley__ice_get_state(mover->ag), PARLEY_ICE_FAILED, "a new address is coming, not a failure");
  cr_assert(sim_run(&s, 5000000, on_current_sockets), "both ends moved to the new pair");
  cr_expect_lt(s.now_us - t0, 500000, "switched in %lld us", (long long)(s.now_us - t0));
  expect_mirrored_selection(&a, &b);
  cr_expect_gt(a.selected_events, sel_a);
  cr_expect_gt(b.selected_events, sel_b);
  parley__ice_local_credentials(a.ag, &ua, NULL);
  parley__ice_local_credentials(b.ag, &ub, NULL);
  cr_expect_str_eq(ua, ufrag_a, "no ICE restart");
  cr_expect_str_eq(ub, ufrag_b, "no ICE restart");
  parley__ice_candidate c[8];
  cr_expect_eq(parley__ice_local_candidates(mover->ag, c, 8), 1, "only the new address is a candidate");
  cr_expect(parley__netaddr_equal(&c[0].addr, &mover->addr[0]));
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

Test(ice_mobility, controlling_side_moves_without_restart) { one_side_moves(true); }
Test(ice_mobility, controlled_side_moves_without_restart) { one_side_moves(false); }

/* Both addresses change at once: neither can reach the other's old address, so the new candidates
 * travel by trickle (the app's signalling) and the new pair forms between the two new sockets. */
Test(ice_mobility, both_sides_move_with_trickled_candidates) {
  sim s;
  peer a, b;
  completed_call(&s, &a, &b, 22);
  move_local(&s, &a, 0, "10.0.7.1");
  move_local(&s, &b, 0, "10.0.8.2");
  cr_assert(sim_run(&s, 100000, NULL)); /* the trickle takes a while */
  trickle_local(&a, &b);
  trickle_local(&b, &a);
  cr_assert(sim_run(&s, 5000000, on_current_sockets), "both ends on the new pair");
  expect_mirrored_selection(&a, &b);
  /* Completed once the checks towards the old addresses ran out (they time out, a few seconds). */
  cr_expect(sim_run(&s, 30000000, both_completed));
  cr_expect(on_current_sockets(&s));
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* The controlling side, with two addresses, loses the one in use: no new address, no signalling; media
 * moves to a pair on the other address (the checklist reopens: its pairs are checked if they were not)
 * on both ends, the controlled one following the new nomination. (The controlled side losing one of
 * two addresses is not covered: its controlling peer sees checks from an address it knew and keeps its
 * nomination; the call's fallback restart heals that, engine/call_handover.c.) */
static bool mirrored_off(sim *s) {
  int la, lb;
  parley__netaddr ra, rb;
  peer *a = s->peers[0], *b = s->peers[1];
  return parley__ice_selected_pair(a->ag, &la, &ra) == 0 && parley__ice_selected_pair(b->ag, &lb, &rb) == 0 &&
         parley__netaddr_equal(&ra, &b->addr[lb]) && parley__netaddr_equal(&rb, &a->addr[la]) && both_connected(s);
}

Test(ice_mobility, controlling_side_losing_one_of_two_addresses_moves_to_the_other) {
  sim s;
  sim_init(&s, 23, 0.0);
  peer a, b;
  connect_peers(&s, &a, &b, two_v4, two_v4_b, 2);
  cr_assert(sim_run(&s, 10000000, both_completed));
  int gone;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &gone, NULL), 0);
  cr_assert_eq(parley__simnet_remove_endpoint(s.net, a.ep_id[gone]), 0);
  cr_assert_eq(parley__ice_remove_local(a.ag, gone, s.now_us), 0);
  a.addr[gone] = ip("192.0.2.250", 1); /* nothing may use it any more */
  int64_t t0 = s.now_us;
  cr_assert(sim_run(&s, 5000000, mirrored_off), "both ends on a pair of the other address");
  int now_local;
  cr_assert_eq(parley__ice_selected_pair(a.ag, &now_local, NULL), 0);
  cr_expect_neq(now_local, gone);
  cr_expect_lt(s.now_us - t0, 500000, "moved in %lld us", (long long)(s.now_us - t0));
  parley__ice_free(a.ag);
  parley__ice_free(b.ag);
  sim_free(&s);
}

/* The bookkeeping: add_local_live only after start, remove_local's bounds, an agent whose only address
 * went reports no failure, the next address takes the freed index. */
Test(ice_mobility, add_and_remove_rules) {
  parley__ice_config cfg = {.role = PARLEY__ICE_CONTROLLING, .send = noop_send};
  parley__ice_agent *a = parley__ice_new(&cfg, NULL);
  cr_assert_not_null(a);
  parley__netaddr l0 = ip("192.0.2.1", 4000), l1 = ip("192.0.2.2", 4000);
  cr_expect_eq(parley__ice_add_local_live(a, &l0, 0), PARLEY_ESTATE, "before start: add_local");
  cr_assert_eq(parley__ice_add_local(a, &l0), 0);
  cr_assert_eq(parley__ice_start(a, 0), 0);
  cr_expect_eq(parley__ice_remove_local(a, 1, 0), PARLEY_EINVAL);
  cr_expect_eq(parley__ice_remove_local(a, -1, 0), PARLEY_EINVAL);
  cr_assert_eq(parley__ice_set_remote_credentials(a, "abcd", "0123456789012345678901"), 0);
  parley__ice_remote_end_of_candidates(a, 0);
  cr_assert_eq(parley__ice_remove_local(a, 0, 1000), 0);
  cr_expect_eq(parley__ice_local_candidates(a, NULL, 0), 0);
  cr_expect_eq(parley__ice_get_state(a), PARLEY_ICE_CHECKING, "no address: waiting, not failed");
  parley__netaddr zero = ip("192.0.2.2", 0);
  cr_expect_eq(parley__ice_add_local_live(a, &zero, 2000), PARLEY_EINVAL);
  cr_expect_eq(parley__ice_add_local_live(a, &l1, 2000), 0);
  parley__ice_candidate c[2];
  cr_assert_eq(parley__ice_local_candidates(a, c, 2), 1);
  cr_expect(parley__netaddr_equal(&c[0].addr, &l1));
  for (int i = 1; i < PARLEY__ICE_MAX_LOCAL; i++) {
    parley__netaddr li = ip("192.0.2.3", (uint16_t)(4000 + i));
    cr_expect_eq(parley__ice_add_local_live(a, &li, 3000), i);
  }
  parley__netaddr full = ip("192.0.2.4", 4000);
  cr_expect_eq(parley__ice_add_local_live(a, &full, 3000), PARLEY_EFULL);
  parley__ice_free(a);
}

Test(ice_sdp, candidate_conversion_round_trip) {
  parley__ice_candidate c = {.foundation = "S0", .component = 1, .priority = 1694498815u, .type = PARLEY__ICE_SRFLX,
                             .addr = ip("203.0.113.77", 15000), .related = ip("10.0.0.1", 5000), .local = 0};
  parley__sdp_candidate s;
  cr_assert_eq(parley__ice_candidate_to_sdp(&s, &c), 0);
  cr_expect_str_eq(s.foundation, "S0");
  cr_expect_str_eq(s.transport, "udp");
  cr_expect_str_eq(s.addr, "203.0.113.77");
  cr_expect_eq(s.port, 15000);
  cr_expect_eq(s.type, PARLEY__SDP_CAND_SRFLX);
  cr_expect(s.has_raddr);
  cr_expect_str_eq(s.raddr, "10.0.0.1");
  cr_expect_eq(s.rport, 5000);
  parley__ice_candidate back;
  cr_assert_eq(parley__ice_candidate_from_sdp(&back, &s), 0);
  cr_expect(parley__netaddr_equal(&back.addr, &c.addr));
  cr_expect(parley__netaddr_equal(&back.related, &c.related));
  cr_expect_eq(back.priority, c.priority);
  cr_expect_eq(back.type, c.type);
  cr_expect_str_eq(back.foundation, c.foundation);
  cr_expect_eq(back.local, -1);
  parley__ice_candidate v6 = {.foundation = "H1", .component = 1, .priority = 2130706431u, .type = PARLEY__ICE_HOST,
                              .addr = ip("2001:db8::1", 9)};
  cr_assert_eq(parley__ice_candidate_to_sdp(&s, &v6), 0);
  cr_expect_str_eq(s.addr, "2001:db8::1");
  cr_expect_not(s.has_raddr);
  /* Names (mDNS) and TCP are not for this agent. */
  strcpy(s.addr, "1f3c9a.local");
  cr_expect_eq(parley__ice_candidate_from_sdp(&back, &s), PARLEY_ENOTSUP);
  cr_assert_eq(parley__ice_candidate_to_sdp(&s, &v6), 0);
  strcpy(s.transport, "tcp");
  cr_expect_eq(parley__ice_candidate_from_sdp(&back, &s), PARLEY_ENOTSUP);
  strcpy(s.transport, "UDP");
  cr_expect_eq(parley__ice_candidate_from_sdp(&back, &s), 0);
  s.component = 2;
  cr_expect_eq(parley__ice_candidate_from_sdp(&back, &s), PARLEY_EINVAL);
}

/* Debug builds check the agent's thread contract (base/thread_check.h): shared under a mutex
 * (cfg.guard), every call that changes it must hold the mutex, on whichever thread; without one, the
 * first thread to use it owns it. */
#ifdef PARLEY_THREAD_CHECKS
#include <pthread.h>
#include <signal.h>

typedef struct guarded {
  parley__ice_agent *a;
  pthread_mutex_t *m; /* NULL: tick without any lock */
} guarded;

static parley__ice_agent *started_agent(pthread_mutex_t *guard) {
  parley__ice_config cfg = {.role = PARLEY__ICE_CONTROLLING, .send = noop_send, .guard = guard};
  parley__ice_agent *a = parley__ice_new(&cfg, NULL);
  cr_assert_not_null(a);
  parley__netaddr l = ip("192.0.2.1", 4000);
  if (guard) pthread_mutex_lock(guard);
  cr_assert_eq(parley__ice_add_local(a, &l), 0);
  cr_assert_eq(parley__ice_start(a, 0), 0);
  if (guard) pthread_mutex_unlock(guard);
  return a;
}

static void *tick_on_thread(void *p) {
  guarded *g = p;
  if (g->m) pthread_mutex_lock(g->m);
  parley__ice_tick(g->a, 1000);
  if (g->m) pthread_mutex_unlock(g->m);
  return NULL;
}

Test(ice_thread_check, a_guarded_agent_runs_on_any_thread_holding_its_lock) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  guarded g = {started_agent(&m), &m};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, tick_on_thread, &g), 0);
  pthread_join(th, NULL);
  tick_on_thread(&g);
  parley__ice_free(g.a);
}

Test(ice_thread_check, a_guarded_agent_called_without_its_lock_aborts, .signal = SIGABRT) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  guarded g = {started_agent(&m), NULL};
  tick_on_thread(&g);
}

Test(ice_thread_check, an_unguarded_agent_used_by_a_second_thread_aborts, .signal = SIGABRT) {
  guarded g = {started_agent(NULL), NULL};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, tick_on_thread, &g), 0);
  pthread_join(th, NULL);
}
#endif
