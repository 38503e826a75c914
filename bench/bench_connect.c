/* bench_connect.c: `parley-bench connect`: how long ICE takes from a side's remote description to its
 * CONNECTED state (a selected, valid pair) and to COMPLETED (nominated), in simulated time, through
 * two real ICE agents (transport/ice.h) over simnet (sim/simnet.h). Everything on the wire is
 * real: signed Binding checks, responses, peer-reflexive learning, the USE-CANDIDATE nomination.
 *
 * One trial is an offer/answer exchange: A (the offerer, controlling) starts ICE at t = 0 and sends its
 * offer; it reaches B (controlled) after a signalling delay, B takes it as its remote description
 * (credentials, candidates, end-of-candidates), starts ICE and answers; the answer reaches A after
 * another signalling delay and becomes A's remote description. Each signalling delay is the network's
 * one-way delay plus U[0, 20] ms (a server in between, its processing), drawn per trial. So B's first
 * checks usually reach A before A has B's credentials, as they do in real calls. Each side's figure is
 * its CONNECTED time minus its own remote-description time (CONNECTED: media may flow on a valid pair,
 * RFC 8445 8.1.1; the answerer gets there before the offerer has its answer, and the offerer accepts
 * its media once it has), and its COMPLETED time (the pair nominated) likewise.
 *
 * Networks: "clean" (one-way 0..0.2 ms) and a 50 ms round trip (one-way 25 ms + U[0, 1] ms), no loss;
 * one host candidate per side. security "sdes": keys ride in the SDP, so ICE alone decides when media
 * may flow. security "dtls": media may flow once the DTLS-SRTP handshake (transport/dtls.h, real
 * OpenSSL sessions) over the selected pair is done: the answerer (controlled, a=setup:active) sends its
 * ClientHello as its agent selects a pair, the offerer is the server; the figures are remote description
 * -> DTLS connected, and cpu_ms is the handshake's CPU time per side (real, measured around the DTLS
 * calls). No loss here, so no retransmission runs (its timer reads the real clock: see dtls.h).
 * Single-threaded, deterministic for a given --seed (the handshake's bytes are random, its timing not). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "sim/cli.h"
#include "base/rng.h"
#include "parley/parley.h"
#include "transport/dtls.h"
#include "transport/ice.h"
#include "sim/simnet.h"

#define MS 1000ll
#define TRIAL_LIMIT_US (10000 * MS)

typedef struct side {
  parley__ice_agent *ice;
  parley__netaddr addr;
  struct sockaddr_storage sa;
  parley__simnet *net;
  int64_t now_us;
  int64_t t_remote_us;    /* remote description applied; -1 before */
  int64_t t_connected_us; /* first CONNECTED (or COMPLETED); -1 before */
  int64_t t_completed_us; /* COMPLETED: nominated, nothing left to check; -1 before */
  parley__dtls *dtls;     /* security dtls: NULL for sdes */
  struct sockaddr_storage peer_sa;
  int64_t t_dtls_us;      /* DTLS connected; -1 before */
  double cpu_s;           /* CPU time spent in DTLS calls */
  uint8_t early[1500];    /* a DTLS datagram that came before the remote description (as the call keeps) */
  size_t early_len;
} side;

static double cpu_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void dtls_send(void *ctx, const uint8_t *buf, size_t len) {
  side *sd = ctx;
  (void)parley__simnet_send(sd->net, (struct sockaddr *)&sd->sa, (struct sockaddr *)&sd->peer_sa, buf, len,
                            sd->now_us);
}

/* Feeds (or, buf NULL, starts) the side's DTLS session, timing its CPU and noting when it connects. */
static void dtls_step(side *sd, const uint8_t *buf, size_t len, int64_t now_us) {
  double t0 = cpu_now_s();
  if (parley__dtls_get_state(sd->dtls) == PARLEY__DTLS_NEW) (void)parley__dtls_start(sd->dtls, now_us);
  if (buf) (void)parley__dtls_receive(sd->dtls, buf, len, now_us);
  else if (parley__dtls_next_deadline_us(sd->dtls) <= now_us) (void)parley__dtls_tick(sd->dtls, now_us);
  sd->cpu_s += cpu_now_s() - t0;
  if (sd->t_dtls_us < 0 && parley__dtls_get_state(sd->dtls) == PARLEY__DTLS_CONNECTED) sd->t_dtls_us = now_us;
}

static void ice_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  side *sd = ctx;
  struct sockaddr_storage to;
  (void)local;
  if (parley__netaddr_to_sockaddr(dst, &to) <= 0) return;
  (void)parley__simnet_send(sd->net, (struct sockaddr *)&sd->sa, (struct sockaddr *)&to, buf, len, sd->now_us);
}

static void ice_event(void *ctx, const parley__ice_event *ev) {
  side *sd = ctx;
  /* CONNECTED, or straight to COMPLETED when nothing else is left to check. */
  if (ev->kind == PARLEY__ICE_EV_STATE && (ev->state == PARLEY_ICE_CONNECTED || ev->state == PARLEY_ICE_COMPLETED) &&
      sd->t_connected_us < 0)
    sd->t_connected_us = ev->now_us;
  if (ev->kind == PARLEY__ICE_EV_STATE && ev->state == PARLEY_ICE_COMPLETED && sd->t_completed_us < 0)
    sd->t_completed_us = ev->now_us;
  /* The client starts its handshake on the pair its agent selected. */
  if (ev->kind == PARLEY__ICE_EV_SELECTED_PAIR && sd->dtls && parley__dtls_get_state(sd->dtls) == PARLEY__DTLS_NEW)
    dtls_step(sd, NULL, 0, ev->now_us);
}

static void net_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                     const uint8_t *data, size_t len, int64_t now_us) {
  (void)net, (void)to;
  side *sd = ctx;
  parley__netaddr src;
  if (parley__netaddr_from_sockaddr(&src, from) != 0) return;
  sd->now_us = now_us;
  if (len > 0 && data[0] >= 20 && data[0] <= 63) { /* RFC 7983: DTLS */
    if (sd->dtls && sd->t_remote_us >= 0) {
      dtls_step(sd, data, len, now_us);
    } else if (sd->dtls && len <= sizeof sd->early) { /* the peer's fingerprint is not here yet */
      memcpy(sd->early, data, len);
      sd->early_len = len;
    }
    return;
  }
  (void)parley__ice_receive(sd->ice, 0, &src, data, len, now_us);
}

static int side_init(side *sd, parley__simnet *net, int i) {
  memset(sd, 0, sizeof *sd);
  sd->net = net;
  sd->t_remote_us = sd->t_connected_us = sd->t_completed_us = sd->t_dtls_us = -1;
  int rc = parley__netaddr_from_ip(&sd->addr, i == 0 ? "10.0.0.1" : "10.0.0.2", (uint16_t)(5000 + i));
  if (rc == 0 && parley__netaddr_to_sockaddr(&sd->addr, &sd->sa) <= 0) rc = PARLEY_EINVAL;
  if (rc) return rc;
  parley__ice_config ic = {.role = i == 0 ? PARLEY__ICE_CONTROLLING : PARLEY__ICE_CONTROLLED,
                           .tie_breaker = i == 0 ? 2 : 1, .send = ice_send, .on_event = ice_event, .ctx = sd};
  sd->ice = parley__ice_new(&ic, &rc);
  if (!sd->ice) return rc;
  if (parley__ice_add_local(sd->ice, &sd->addr) != 0) return PARLEY_EINVAL;
  rc = parley__simnet_add_endpoint(net, (struct sockaddr *)&sd->sa, net_recv, NULL, sd);
  return rc < 0 ? rc : 0;
}

/* `from`'s session description (credentials, candidates, end-of-candidates) reaches `to` at now. */
static int describe(side *from, side *to, int64_t now_us) {
  const char *u, *pw;
  parley__ice_local_credentials(from->ice, &u, &pw);
  int rc = parley__ice_set_remote_credentials(to->ice, u, pw);
  parley__ice_candidate cand[PARLEY__ICE_MAX_LOCAL];
  int n = parley__ice_local_candidates(from->ice, cand, PARLEY__ICE_MAX_LOCAL);
  for (int i = 0; rc == 0 && i < n && i < PARLEY__ICE_MAX_LOCAL; i++)
    if (parley__ice_add_remote_candidate(to->ice, &cand[i], now_us) < 0) rc = PARLEY_EINVAL;
  if (rc == 0) parley__ice_remote_end_of_candidates(to->ice, now_us);
  to->t_remote_us = now_us;
  if (to->early_len) dtls_step(to, to->early, to->early_len, now_us);
  return rc;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Each side's DTLS session: the offerer (side 0) is the server, the answerer the client. */
static int dtls_init(side s[2], parley__dtls_cert *const certs[2]) {
  for (int i = 0; i < 2; i++) {
    char fp[PARLEY__DTLS_FINGERPRINT_MAX];
    snprintf(fp, sizeof fp, "sha-256 %s", parley__dtls_cert_fingerprint(certs[1 - i]));
    parley__dtls_config dc = {.role = i == 0 ? PARLEY__DTLS_SERVER : PARLEY__DTLS_CLIENT, .cert = certs[i],
                              .send = dtls_send, .ctx = &s[i]};
    int rc = parley__dtls_fingerprint_parse(fp, strlen(fp), &dc.peer);
    if (rc == 0) s[i].dtls = parley__dtls_new(&dc, &rc);
    if (rc) return rc;
    s[i].peer_sa = s[1 - i].sa;
  }
  return 0;
}

/* One offer/answer and ICE run (and DTLS handshake when certs is not NULL); fills each side's
 * remote-description-to-connected time (out_us: ICE connected, or DTLS connected with certs) and
 * -to-completed time (done_us), and the DTLS CPU time (cpu_s). */
static int trial(int64_t one_way_us, int64_t jitter_us, uint64_t seed, parley__dtls_cert *const *certs,
                 int64_t out_us[2], int64_t done_us[2], double cpu_s[2]) {
  int rc = 0;
  parley__simnet *net = parley__simnet_new(2, 1024, 1500, seed, &rc);
  if (!net) return rc;
  parley__simnet_link link = {.delay_us = one_way_us, .jitter_us = jitter_us};
  side s[2];
  memset(s, 0, sizeof s);
  rc = parley__simnet_set_link(net, &link);
  for (int i = 0; rc == 0 && i < 2; i++) rc = side_init(&s[i], net, i);
  if (rc == 0 && certs) rc = dtls_init(s, certs);
  parley__rng rng;
  parley__rng_seed(&rng, seed ^ 0x5197a11e);
  int64_t t_offer = one_way_us + (int64_t)parley__rng_below(&rng, 20001);
  int64_t t_answer = t_offer + one_way_us + (int64_t)parley__rng_below(&rng, 20001);
  if (rc == 0) rc = parley__ice_start(s[0].ice, 0);
  int64_t now = 0;
  while (rc == 0 && (s[0].t_completed_us < 0 || s[1].t_completed_us < 0 ||
                     (certs && (s[0].t_dtls_us < 0 || s[1].t_dtls_us < 0)))) {
    int64_t t = parley__simnet_next_delivery_us(net);
    for (int i = 0; i < 2; i++) t = min64(t, parley__ice_next_deadline_us(s[i].ice));
    for (int i = 0; certs && i < 2; i++) t = min64(t, parley__dtls_next_deadline_us(s[i].dtls));
    if (s[1].t_remote_us < 0) t = min64(t, t_offer);
    else if (s[0].t_remote_us < 0) t = min64(t, t_answer);
    if (t < now) t = now;
    if (t > TRIAL_LIMIT_US) {
      rc = PARLEY_ETIMEDOUT;
      break;
    }
    now = s[0].now_us = s[1].now_us = t;
    if (s[1].t_remote_us < 0 && t >= t_offer) {
      rc = parley__ice_start(s[1].ice, t);
      if (rc == 0) rc = describe(&s[0], &s[1], t);
    } else if (s[1].t_remote_us >= 0 && s[0].t_remote_us < 0 && t >= t_answer) {
      rc = describe(&s[1], &s[0], t);
    }
    if (parley__simnet_deliver_until(net, t) < 0) rc = PARLEY_EINVAL;
    for (int i = 0; i < 2; i++) {
      s[i].now_us = t;
      if (parley__ice_next_deadline_us(s[i].ice) <= t) parley__ice_tick(s[i].ice, t);
      if (s[i].dtls && parley__dtls_next_deadline_us(s[i].dtls) <= t) dtls_step(&s[i], NULL, 0, t);
      if (s[i].dtls && parley__dtls_get_state(s[i].dtls) == PARLEY__DTLS_FAILED) rc = PARLEY_ECRYPTO;
    }
  }
  for (int i = 0; i < 2; i++) {
    out_us[i] = (certs ? s[i].t_dtls_us : s[i].t_connected_us) - s[i].t_remote_us;
    done_us[i] = s[i].t_completed_us - s[i].t_remote_us;
    cpu_s[i] = s[i].cpu_s;
    parley__ice_free(s[i].ice);
    parley__dtls_free(s[i].dtls);
  }
  parley__simnet_free(net);
  return rc;
}

static int run_connect(bench_report *rep, int argc, char **argv) {
  int trials = 500, relay_trials = 20;
  uint64_t seed = 1;
  const parley__cli_opt opts[] = {
      {"trials", PARLEY__CLI_INT, &trials, "N", "seeded trials per row [500]", 1, 100000},
      {"seed", PARLEY__CLI_U64, &seed, "S", "seed of the first trial [1]", 0, 0},
      {"relay-trials", PARLEY__CLI_INT, &relay_trials, "N", "real calls through coturn per turn row [20]", 0,
       1000},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  static const struct {
    int rtt_ms;
    int64_t one_way_us, jitter_us;
  } nets[] = {{0, 0, 200}, {50, 25 * MS, 1 * MS}};
  static const char *const role[2] = {"controlling", "controlled"};
  double *ms[6]; /* per role: connected, completed, DTLS CPU */
  int rc = 0;
  parley__dtls_cert *certs[2] = {parley__dtls_cert_new(NULL, NULL, NULL), parley__dtls_cert_new(NULL, NULL, NULL)};
  if (!certs[0] || !certs[1]) rc = 1;
  for (int i = 0; i < 6; i++)
    if (!(ms[i] = calloc((size_t)trials, sizeof(double)))) rc = 1;
  for (int dtls = 0; rc == 0 && dtls < 2; dtls++) {
    for (size_t k = 0; rc == 0 && k < sizeof nets / sizeof nets[0]; k++) {
      for (int t = 0; t < trials; t++) {
        int64_t us[2] = {0}, done[2] = {0};
        double cpu[2] = {0};
        int trc = trial(nets[k].one_way_us, nets[k].jitter_us, seed * 1000003u + (uint64_t)t, dtls ? certs : NULL,
                        us, done, cpu);
        if (trc != 0) {
          fprintf(stderr, "connect: trial %d on the %d ms network did not connect (%s)\n", t, nets[k].rtt_ms,
                  parley_strerror(trc));
          rc = 1;
          break;
        }
        for (int i = 0; i < 2; i++) {
          ms[i][t] = (double)us[i] / 1000.0;
          ms[2 + i][t] = (double)done[i] / 1000.0;
          ms[4 + i][t] = cpu[i] * 1000.0;
        }
      }
      for (int i = 0; rc == 0 && i < 2; i++) {
        bench_row_begin(rep);
        bench_field_str(rep, "role", role[i]);
        bench_field_str(rep, "security", dtls ? "dtls" : "sdes");
        bench_field_int(rep, "rtt_ms", nets[k].rtt_ms);
        bench_field_int(rep, "n", trials);
        bench_field_num(rep, "p50_ms", bench_quantile(ms[i], (size_t)trials, 0.5), 1);
        bench_field_num(rep, "p95_ms", bench_quantile(ms[i], (size_t)trials, 0.95), 1);
        bench_field_num(rep, "completed_p50_ms", bench_quantile(ms[2 + i], (size_t)trials, 0.5), 1);
        bench_field_num(rep, "completed_p95_ms", bench_quantile(ms[2 + i], (size_t)trials, 0.95), 1);
        if (dtls) bench_field_num(rep, "cpu_p50_ms", bench_quantile(ms[4 + i], (size_t)trials, 0.5), 2);
        bench_row_end(rep);
      }
    }
  }
  bench_note(rep, "remote description -> media may flow: sdes: ICE connected (a valid pair, RFC 8445 8.1.1); dtls: "
                  "the DTLS-SRTP handshake on the selected pair done (controlled = DTLS client); completed: ICE pair "
                  "nominated; simulated time; the offerer controls; signalling delay = one-way delay + U[0, 20] ms "
                  "each way; goal: sdes within 1 RTT + 10 ms, dtls within ICE + 2 RTT + 20 ms; cpu: real CPU time "
                  "of one side's handshake");
  for (int i = 0; i < 6; i++) free(ms[i]);
  if (rc == 0) rc = bench_connect_relay(rep, relay_trials);
  parley__dtls_cert_free(certs[0]);
  parley__dtls_cert_free(certs[1]);
  return rc;
}

BENCH_SUITE(connect, "connect",
            "remote description -> ICE (sdes) or DTLS (dtls) connected, both roles, clean and 50 ms RTT (simulated); "
            "offer -> first audio through coturn over UDP and TCP (real)",
            run_connect);
