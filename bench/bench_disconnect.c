/* bench_disconnect.c: `parley-bench disconnect`: how fast and how truthfully a call notices a passive
 * disconnect, in simulated time, through the real stack: two ICE agents (transport/ice.h) each wired to
 * its liveness monitor (transport/ice_liveness.h), over simnet with the shared impairment model, one
 * model per direction (sim/simcall.h runs the call). Everything on the wire is real: STUN binding
 * checks and nomination, the monitors' fast probes and RFC 7675 consent checks (signed binding
 * requests on the selected pair), and Opus-like RTP both ways (live DTX sender: 1 small packet per
 * 400 ms in silence; talkspurts of 20 ms packets in the cut trials), which the receiver passes through
 * parley__ice_accept_media and the RTP parser into its monitor. No SRTP.
 *
 * Networks (sim/impair.h, per packet and per direction independently):
 *   mild:  one-way 30 ms + Gaussian jitter sd 5 ms (extra delay N(10, 5) ms floored at 0), 1 % loss.
 *   harsh: one-way 40 ms + Gaussian jitter sd 50 ms, 20 % random loss. "150 ms of jitter" is read as
 *          three deviations: the extra delay is N(100, 50) ms floored at 0, so the delay strays up to
 *          +-150 ms from its mean (99.7 %) and spans ~0..250 ms, packets reorder. This is the harsher
 *          reading than uniform 0..150 ms (sd 43 ms, span 150 ms) used by the stand-in bench; its RFC
 *          3550 interarrival jitter is ~56 ms. --harsh-sd-ms changes the deviation.
 *
 * Cut trials: ICE connects from t = 0; the network is cut both ways (simnet cut: datagrams in flight
 * still arrive) at a random time 5..15 s after both sides connected, and restored 2..6 s later. On the
 * receiving side B we measure cut -> track-stopped (reason timeout), cut -> ICE disconnected, restore ->
 * ICE connected. False alarms: whole simulated hours on the harsh network, DTX only both ways (fewest
 * arrivals: the hardest case), counting ICE disconnected/failed events on either side.
 *
 * Kill trials: A's process dies (parley__simcall_kill: no BYE, its port bounces B's datagrams as ICMP
 * port unreachable) 5..15 s after ICE is up; rows give kill -> interrupted(peer-gone) on B, split by
 * whether B was talking (a packet every 20 ms) or silent (DTX) at the kill. Before the kill, each trial
 * forges one ICMP port unreachable on B about its selected pair while A is alive (an off-path attacker)
 * and counts the interruptions it caused. simnet reports a bounce when the datagram arrives, so a real
 * network adds the ICMP's way back (one one-way delay) to these figures.
 *
 * --real [--seconds S] (default 60): the same cut rows over real sockets, in wall-clock time: two
 * engines' calls through the public API (AUDIO_NONE, Opus DTX off) on 127.0.0.1, every datagram through
 * the parley-netsim relay core (sim/relay_udp.h) stepped by a thread of its own. Each side's only
 * candidate for the other is a relay socket: A gets B's answer with its candidates readdressed to the
 * relay's listen port; B gets A's offer without candidates, then the relay's forward socket trickled
 * (parley_call_add_remote_candidate). Cuts are blackouts of the relay's impairment model, both ways,
 * scheduled on its timeline (2..3.5 s long, 3 s apart, as many as fit in S seconds, at most
 * PARLEY__IMPAIR_MAX_BLACKOUTS); side B's events (time_us, CLOCK_MONOTONIC like the relay's clock) give
 * the delays. Rows carry network "real" and n. --real-net mild|harsh makes the relay also impair both
 * directions like the simulated networks below (default clean: loopback and the cuts only).
 * The simulated suite is single-threaded and deterministic for a given --seed; --real runs the engines'
 * threads and the relay thread and is not deterministic. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "sim/cli.h"
#include "base/clock.h"
#include "base/rng.h"
#include "parley/parley.h"
#include "sim/relay_udp.h"
#include "sim/sdp_via.h"
#include "transport/events.h"
#include "transport/liveness.h"
#include "sim/simcall.h"

#define MS 1000ll
#define SEC 1000000ll

typedef struct netdef {
  const char *name;
  parley__impair_config im;
} netdef;

/* What one trial saw (side B unless noted). */
typedef struct trial {
  int64_t t_cut, t_restore;
  int64_t t_connected_first[2];
  int64_t t_track_stopped, t_disconnected, t_reconnected;
  int false_alarms;       /* ICE disconnected/failed on either side while the path was up */
  int track_false_stops;  /* track-stopped timeout on either side while the path was up */
} trial;

static void on_event(void *ctx, int side, const parley__event *ev) {
  trial *t = ctx;
  bool path_up = ev->now_us < t->t_cut;
  if (ev->kind == PARLEY_EVENT_ICE_STATE_CHANGED) {
    if (ev->ice_state == PARLEY_ICE_DISCONNECTED || ev->ice_state == PARLEY_ICE_FAILED) {
      if (path_up) t->false_alarms++;
      else if (side == 1 && ev->ice_state == PARLEY_ICE_DISCONNECTED && t->t_disconnected < 0)
        t->t_disconnected = ev->now_us;
    } else if (ev->ice_state == PARLEY_ICE_CONNECTED) {
      if (t->t_connected_first[side] < 0) t->t_connected_first[side] = ev->now_us;
      if (side == 1 && ev->now_us >= t->t_restore && t->t_reconnected < 0) t->t_reconnected = ev->now_us;
    }
  } else if (ev->kind == PARLEY_EVENT_TRACK_STOPPED && ev->stop_reason == PARLEY_STOP_TIMEOUT) {
    if (path_up) t->track_false_stops++;
    else if (side == 1 && t->t_track_stopped < 0) t->t_track_stopped = ev->now_us;
  }
}

static void trial_reset(trial *t) {
  memset(t, 0, sizeof *t);
  t->t_cut = t->t_restore = INT64_MAX;
  t->t_connected_first[0] = t->t_connected_first[1] = -1;
  t->t_track_stopped = t->t_disconnected = t->t_reconnected = -1;
}

static parley__liveness_config g_live;

static parley__simcall *call_new(const netdef *nd, uint64_t seed, bool talkspurts, trial *t) {
  parley__simcall_config cfg = {.a2b = nd->im, .b2a = nd->im, .live = g_live, .has_live = true,
                                .talkspurts = talkspurts, .seed = seed, .on_event = on_event, .ctx = t};
  int err = 0;
  parley__simcall *c = parley__simcall_new(&cfg, &err);
  if (!c) fprintf(stderr, "disconnect: simcall_new failed (%d)\n", err);
  return c;
}

static int64_t uniform_us(parley__rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(parley__rng_uniform(r) * (double)(hi - lo));
}

/* Runs until both sides' monitors report connected: 0, 1 when 60 s of simulated time were not enough
 * (ICE under 20 % loss can fail a pair: 7 transmissions lost in a row), or the simcall's error. */
static int run_to_connected(parley__simcall *c, trial *t) {
  while (t->t_connected_first[0] < 0 || t->t_connected_first[1] < 0) {
    if (parley__simcall_now_us(c) >= 60 * SEC) return 1;
    int rc = parley__simcall_run_until(c, parley__simcall_now_us(c) + 10 * MS);
    if (rc) return rc;
  }
  return 0;
}

typedef struct trial_stats {
  double *stopped, *disc, *conn, *ice_up;
  int n, n_up, missing, unconnected, false_alarms, track_false_stops;
  double probes_per_s;
} trial_stats;

static int run_trials(const netdef *nd, int trials, uint64_t seed, trial_stats *ts) {
  memset(ts, 0, sizeof *ts);
  ts->stopped = calloc((size_t)trials, sizeof(double));
  ts->disc = calloc((size_t)trials, sizeof(double));
  ts->conn = calloc((size_t)trials, sizeof(double));
  ts->ice_up = calloc((size_t)trials, sizeof(double));
  if (!ts->stopped || !ts->disc || !ts->conn || !ts->ice_up) return -1;
  double probes = 0, secs = 0;
  for (int i = 0; i < trials; i++) {
    uint64_t s = seed + (uint64_t)i * 7919;
    trial t;
    trial_reset(&t);
    parley__simcall *c = call_new(nd, s, true, &t);
    if (!c) return -1;
    parley__rng r;
    parley__rng_seed(&r, s ^ 0xc0ffee);
    int rc = run_to_connected(c, &t);
    int64_t up = parley__simcall_now_us(c);
    if (rc == 1) { /* never connected: not a cut trial */
      ts->unconnected++;
      parley__simcall_free(c);
      continue;
    }
    if (rc == 0) {
      ts->ice_up[ts->n_up++] = (double)(t.t_connected_first[1] > t.t_connected_first[0] ? t.t_connected_first[1]
                                                                                : t.t_connected_first[0]) /
                      1000.0;
      t.t_cut = up + uniform_us(&r, 5 * SEC, 15 * SEC);
      t.t_restore = t.t_cut + uniform_us(&r, 2 * SEC, 6 * SEC);
      rc = parley__simcall_run_until(c, t.t_cut);
    }
    parley__simcall_stats st;
    parley__simcall_get_stats(c, &st);
    probes += (double)(st.probes_sent[0] + st.probes_sent[1]) / 2;
    secs += (double)(t.t_cut - up) / 1e6;
    if (rc == 0) {
      parley__simcall_cut(c);
      rc = parley__simcall_run_until(c, t.t_restore);
    }
    if (rc == 0) {
      parley__simcall_restore(c);
      rc = parley__simcall_run_until(c, t.t_restore + 3 * SEC);
    }
    parley__simcall_free(c);
    if (rc) {
      fprintf(stderr, "disconnect: trial %d on %s did not run (%d)\n", i, nd->name, rc);
      return -1;
    }
    ts->false_alarms += t.false_alarms;
    ts->track_false_stops += t.track_false_stops;
    if (t.t_track_stopped < 0 || t.t_disconnected < 0 || t.t_reconnected < 0) {
      ts->missing++;
    } else {
      ts->stopped[ts->n] = (double)(t.t_track_stopped - t.t_cut) / 1000.0;
      ts->disc[ts->n] = (double)(t.t_disconnected - t.t_cut) / 1000.0;
      ts->conn[ts->n] = (double)(t.t_reconnected - t.t_restore) / 1000.0;
      ts->n++;
    }
  }
  ts->probes_per_s = secs > 0 ? probes / secs : 0;
  return 0;
}

static void row(bench_report *rep, const char *metric, const char *net, double *v, int n) {
  bench_row_begin(rep);
  bench_field_str(rep, "metric", metric);
  bench_field_str(rep, "network", net);
  bench_field_int(rep, "n", n);
  bench_field_num(rep, "p50", n ? bench_quantile(v, (size_t)n, 0.50) : -1, 1);
  bench_field_num(rep, "p95", n ? bench_quantile(v, (size_t)n, 0.95) : -1, 1);
  bench_field_num(rep, "max", n ? bench_quantile(v, (size_t)n, 1.0) : -1, 1);
  bench_row_end(rep);
}

/* ---- killed peer: side A's process dies (no BYE), B's packets bounce (ICMP port unreachable) ---- */

typedef struct kill_trial {
  trial t; /* ICE up times */
  int64_t t_forged, t_kill;
  int64_t t_interrupted, t_stopped; /* side B, after the kill */
  parley_interrupt_code code;
  parley_stop_reason stop;
  int false_alarms; /* interrupted on B between the forged ICMP and the kill */
} kill_trial;

static void kill_on_event(void *ctx, int side, const parley__event *ev) {
  kill_trial *k = ctx;
  on_event(&k->t, side, ev);
  if (side != 1) return;
  bool before = ev->now_us < k->t_kill;
  if (ev->kind == PARLEY_EVENT_INTERRUPTED) {
    if (before) k->false_alarms++;
    else if (k->t_interrupted < 0) {
      k->t_interrupted = ev->now_us;
      k->code = ev->code;
    }
  } else if (ev->kind == PARLEY_EVENT_TRACK_STOPPED && !before && k->t_stopped < 0) {
    k->t_stopped = ev->now_us;
    k->stop = ev->stop_reason;
  }
}

/* trials kills on network nd: B is talking or silent (DTX) at the kill. Each trial first forges one
 * ICMP port unreachable on B about its selected pair while A is alive, 2..4 s after ICE is up. */
static int run_kills(bench_report *rep, const netdef *nd, int trials, uint64_t seed) {
  double *v[2];
  int n[2] = {0, 0}, not_gone = 0, false_alarms = 0, stop_timeout = 0, unconnected = 0;
  v[0] = calloc((size_t)trials, sizeof(double));
  v[1] = calloc((size_t)trials, sizeof(double));
  if (!v[0] || !v[1]) return -1;
  int rc = 0;
  for (int i = 0; i < trials && rc == 0; i++) {
    uint64_t s = seed + (uint64_t)i * 104729;
    kill_trial k = {.t_forged = INT64_MAX, .t_kill = INT64_MAX, .t_interrupted = -1, .t_stopped = -1};
    trial_reset(&k.t);
    parley__simcall_config cfg = {.a2b = nd->im, .b2a = nd->im, .live = g_live, .has_live = true,
                                  .talkspurts = true, .seed = s, .on_event = kill_on_event, .ctx = &k};
    parley__simcall *c = parley__simcall_new(&cfg, &rc);
    if (!c) break;
    parley__rng r;
    parley__rng_seed(&r, s ^ 0xdead);
    rc = run_to_connected(c, &k.t);
    if (rc == 1) {
      unconnected++;
      rc = 0;
      parley__simcall_free(c);
      continue;
    }
    int64_t up = parley__simcall_now_us(c);
    k.t_forged = up + uniform_us(&r, 2 * SEC, 4 * SEC);
    k.t_kill = up + uniform_us(&r, 5 * SEC, 15 * SEC);
    rc = parley__simcall_run_until(c, k.t_forged);
    if (rc == 0) rc = parley__simcall_socket_error(c, 1, ECONNREFUSED);
    if (rc == 0) rc = parley__simcall_run_until(c, k.t_kill);
    bool talking = parley__simcall_talking(c, 1);
    if (rc == 0) rc = parley__simcall_kill(c, 0);
    if (rc == 0) rc = parley__simcall_run_until(c, k.t_kill + 3 * SEC);
    parley__simcall_free(c);
    false_alarms += k.false_alarms;
    if (k.t_interrupted < 0 || k.code != PARLEY_INTERRUPT_PEER_GONE) not_gone++;
    else v[talking ? 0 : 1][n[talking ? 0 : 1]++] = (double)(k.t_interrupted - k.t_kill) / 1000.0;
    if (k.t_stopped >= 0 && k.stop == PARLEY_STOP_TIMEOUT) stop_timeout++;
  }
  if (rc == 0) {
    row(rep, "kill_to_peer_gone_ms_talking", nd->name, v[0], n[0]);
    row(rep, "kill_to_peer_gone_ms_silent", nd->name, v[1], n[1]);
    bench_note(rep, "killed peer (%s): %d trials, %d never connected, %d not reported as peer-gone, %d "
               "track-stopped timeout; one forged ICMP per trial while the peer was "
               "alive: %d interrupted",
               nd->name, trials, unconnected, not_gone, stop_timeout, false_alarms);
  }
  free(v[0]);
  free(v[1]);
  return rc;
}

/* ---- --real: two engines' calls over real UDP on loopback through the in-process relay ---- */

#define REAL_MAX_EV 4096
#define REAL_MAX_TRIALS PARLEY__IMPAIR_MAX_BLACKOUTS

typedef struct real_ev {
  parley_event_kind kind;
  int64_t t_us;
  int state; /* ice state, or stop reason */
} real_ev;

typedef struct real_log {
  pthread_mutex_t mu;
  int n;
  real_ev ev[REAL_MAX_EV];
} real_log;

static void real_on_event(const parley_event *ev, void *user) {
  real_log *l = user;
  pthread_mutex_lock(&l->mu);
  if (l->n < REAL_MAX_EV) {
    real_ev *e = &l->ev[l->n++];
    e->kind = ev->kind;
    e->t_us = ev->time_us;
    e->state = ev->kind == PARLEY_EVENT_ICE_STATE_CHANGED ? (int)ev->ice_state : (int)ev->reason;
  }
  pthread_mutex_unlock(&l->mu);
}

typedef struct relay_thread {
  parley__relay_udp *u;
  atomic_bool stop;
  int err;
} relay_thread;

static void *relay_main(void *arg) {
  relay_thread *rt = arg;
  while (!atomic_load(&rt->stop)) {
    int rc = parley__relay_udp_step(rt->u, 2000);
    if (rc < 0) {
      rt->err = rc;
      break;
    }
  }
  return NULL;
}

static void sleep_us(int64_t us) {
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

/* Copies sdp without its a=candidate and a=end-of-candidates lines (B's candidate for A, the relay, is
 * trickled once the relay exists). */
static void strip_candidates(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = in; *p;) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);
    if (strncmp(p, "a=candidate:", 12) != 0 && strncmp(p, "a=end-of-candidates", 19) != 0 && o + len < cap) {
      memcpy(out + o, p, len);
      o += len;
    }
    p += len;
  }
  out[o] = '\0';
}

static int run_real(bench_report *rep, int seconds, uint64_t seed, const netdef *net) {
  int rc = 1;
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  cfg.opus_dtx = false; /* a talking call: 50 packets/s both ways */
  parley_engine *ea = NULL, *eb = NULL;
  parley_call *a = NULL, *b = NULL;
  relay_thread rt = {0};
  atomic_init(&rt.stop, false);
  bool relay_running = false;
  pthread_t relay_tid;
  static real_log la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  pthread_mutex_init(&la.mu, NULL);
  pthread_mutex_init(&lb.mu, NULL);
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) ida[k] = idb[k] = -1;
  static char offer[8192], offer_b[8192], answer[8192], answer_a[8192];
  parley_sdp_error se;
  if (parley_engine_new(&cfg, &ea) < 0 || parley_engine_new(&cfg, &eb) < 0 || parley_call_new(ea, &a) < 0 ||
      parley_call_new(eb, &b) < 0) {
    fprintf(stderr, "disconnect --real: engine/call set-up failed\n");
    goto out;
  }
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    ida[k] = parley_call_on(a, (parley_event_kind)k, real_on_event, &la);
    idb[k] = parley_call_on(b, (parley_event_kind)k, real_on_event, &lb);
  }
  if (parley_call_create_offer(a, offer, sizeof offer) < 0 || parley_call_set_local_description(a, offer) < 0) goto out;
  strip_candidates(offer, offer_b, sizeof offer_b);
  if (parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer_b, &se) < 0) {
    fprintf(stderr, "disconnect --real: B rejected the offer: %s\n", se.message);
    goto out;
  }
  if (parley_call_create_answer(b, answer, sizeof answer) < 0 || parley_call_set_local_description(b, answer) < 0)
    goto out;

  /* The relay: A talks to its listen port, it forwards to B's host candidate. Cuts are blackouts in
   * both directions, scheduled on the relay's timeline (it starts at create). */
  parley__rng rng;
  parley__rng_seed(&rng, seed ^ 0x5eed);
  int64_t cut_rel[REAL_MAX_TRIALS], restore_rel[REAL_MAX_TRIALS];
  int trials = 0;
  int64_t t = 5 * SEC; /* ICE and media are up well before */
  while (trials < REAL_MAX_TRIALS) {
    int64_t len = uniform_us(&rng, 2 * SEC, 7 * SEC / 2);
    if (t + len + 3 * SEC > (int64_t)seconds * SEC) break;
    cut_rel[trials] = t;
    restore_rel[trials] = t + len;
    trials++;
    t += len + 3 * SEC; /* reconnect and settle before the next cut */
  }
  parley__relay_udp_config rcfg;
  memset(&rcfg, 0, sizeof rcfg);
  char bport_text[32];
  char bip[PARLEY__VIA_IP_MAX];
  int bport = 0;
  if (parley__via_first_candidate(answer, bip, sizeof bip, &bport) != 0 || strcmp(bip, "127.0.0.1") != 0) {
    fprintf(stderr, "disconnect --real: no 127.0.0.1 candidate in B's answer\n");
    goto out;
  }
  snprintf(bport_text, sizeof bport_text, "127.0.0.1:%d", bport);
  if (parley__relay_udp_parse_addr("127.0.0.1:0", &rcfg.listen) < 0 ||
      parley__relay_udp_parse_addr(bport_text, &rcfg.forward) < 0)
    goto out;
  for (int d = 0; d < 2; d++) {
    if (net) rcfg.relay.impair[d] = net->im; /* the path's impairment, then the cuts on top */
    rcfg.relay.impair[d].n_blackouts = trials;
    for (int i = 0; i < trials; i++)
      rcfg.relay.impair[d].blackouts[i] = (parley__impair_blackout){cut_rel[i], restore_rel[i] - cut_rel[i]};
  }
  rcfg.relay.seed = seed;
  rcfg.relay.max_queued = 4096;
  rcfg.relay.max_datagram = 2048;
  static parley__clock mono;
  mono = parley__clock_monotonic();
  int err = 0;
  int64_t start_us = parley__clock_now(&mono);
  rt.u = parley__relay_udp_new(&rcfg, &mono, &err);
  if (!rt.u) {
    fprintf(stderr, "disconnect --real: relay failed (%d)\n", err);
    goto out;
  }
  struct sockaddr_storage ls;
  if (parley__relay_udp_listen_addr(rt.u, &ls) < 0) goto out;
  int lport = ls.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ls)->sin_port) : -1;
  if (lport < 0 || parley__via_sdp_rewrite(answer, "127.0.0.1", lport, answer_a, sizeof answer_a) < 0) goto out;
  /* B's one candidate for A: the relay's forward socket (A's first candidate line, readdressed). */
  struct sockaddr_storage fs;
  if (parley__relay_udp_forward_local_addr(rt.u, &fs) < 0 || fs.ss_family != AF_INET) goto out;
  static char offer_redir[8192];
  if (parley__via_sdp_rewrite(offer, "127.0.0.1", ntohs(((struct sockaddr_in *)&fs)->sin_port), offer_redir,
                              sizeof offer_redir) < 0)
    goto out;
  const char *cl = strstr(offer_redir, "a=candidate:");
  char cand[512];
  size_t cl_len = cl ? strcspn(cl, "\r\n") : 0;
  if (!cl || cl_len >= sizeof cand) goto out;
  memcpy(cand, cl, cl_len);
  cand[cl_len] = '\0';
  if (parley_call_add_remote_candidate(b, cand) < 0 || parley_call_add_remote_candidate(b, "a=end-of-candidates") < 0) {
    fprintf(stderr, "disconnect --real: B refused the relay candidate %s\n", cand);
    goto out;
  }
  if (pthread_create(&relay_tid, NULL, relay_main, &rt) != 0) goto out;
  relay_running = true;
  if (parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer_a, &se) < 0) {
    fprintf(stderr, "disconnect --real: A rejected the redirected answer: %s\n", se.message);
    goto out;
  }
  if (parley_call_start(a) < 0 || parley_call_start(b) < 0) goto out;

  int64_t end_us = start_us + restore_rel[trials - 1] + 3 * SEC;
  while (parley__clock_now(&mono) < end_us && !rt.err) sleep_us(50 * MS);
  atomic_store(&rt.stop, true); /* the relay's stats are read below: its thread must be done */
  pthread_join(relay_tid, NULL);
  relay_running = false;

  /* Side B's events against the relay's cut windows. */
  double stopped[REAL_MAX_TRIALS], disc[REAL_MAX_TRIALS], conn[REAL_MAX_TRIALS];
  int ns = 0, nd = 0, nc = 0, false_disc = 0, false_stops = 0, missing = 0;
  int64_t up_us = -1;
  pthread_mutex_lock(&lb.mu);
  for (int i = 0; i < trials; i++) {
    int64_t c0 = start_us + cut_rel[i], r0 = start_us + restore_rel[i];
    int64_t next = i + 1 < trials ? start_us + cut_rel[i + 1] : INT64_MAX;
    int64_t ts = -1, td = -1, tc = -1;
    for (int k = 0; k < lb.n; k++) {
      const real_ev *e = &lb.ev[k];
      if (e->t_us < c0 || e->t_us >= next) continue;
      if (e->kind == PARLEY_EVENT_TRACK_STOPPED && e->state == PARLEY_STOP_TIMEOUT && ts < 0) ts = e->t_us;
      if (e->kind == PARLEY_EVENT_ICE_STATE_CHANGED && e->state == PARLEY_ICE_DISCONNECTED && td < 0) td = e->t_us;
      if (e->kind == PARLEY_EVENT_ICE_STATE_CHANGED && e->t_us >= r0 && tc < 0 &&
          (e->state == PARLEY_ICE_CONNECTED || e->state == PARLEY_ICE_COMPLETED))
        tc = e->t_us;
    }
    if (ts >= 0) stopped[ns++] = (double)(ts - c0) / 1000.0;
    if (td >= 0) disc[nd++] = (double)(td - c0) / 1000.0;
    if (tc >= 0) conn[nc++] = (double)(tc - r0) / 1000.0;
    if (ts < 0 || td < 0 || tc < 0) missing++;
  }
  for (int k = 0; k < lb.n; k++) {
    const real_ev *e = &lb.ev[k];
    bool in_cut = false;
    for (int i = 0; i < trials; i++)
      if (e->t_us >= start_us + cut_rel[i] && e->t_us < start_us + restore_rel[i] + 2 * SEC) in_cut = true;
    if (e->kind == PARLEY_EVENT_ICE_STATE_CHANGED && e->state == PARLEY_ICE_CONNECTED && up_us < 0)
      up_us = e->t_us - start_us;
    if (in_cut || e->t_us >= end_us) continue; /* end_us: the hang-up follows */
    if (e->kind == PARLEY_EVENT_ICE_STATE_CHANGED &&
        (e->state == PARLEY_ICE_DISCONNECTED || e->state == PARLEY_ICE_FAILED))
      false_disc++;
    if (e->kind == PARLEY_EVENT_TRACK_STOPPED) false_stops++;
  }
  pthread_mutex_unlock(&lb.mu);
  row(rep, "cut_to_track_stopped_ms", "real", stopped, ns);
  row(rep, "cut_to_disconnected_ms", "real", disc, nd);
  row(rep, "restore_to_connected_ms", "real", conn, nc);
  parley__relay_udp_stats us;
  parley__relay_udp_get_stats(rt.u, &us);
  const parley__relay *core = parley__relay_udp_core(rt.u);
  parley__relay_dir_stats a2b, b2a;
  parley__relay_get_stats(core, PARLEY__RELAY_A2B, &a2b);
  parley__relay_get_stats(core, PARLEY__RELAY_B2A, &b2a);
  bench_note(rep, "real: two engines (public API, AUDIO_NONE, Opus DTX off: 50 packets/s each way; security dtls: "
             "the calls key SRTP with DTLS-SRTP) over UDP on 127.0.0.1 through the parley-netsim relay core in a thread (sim/relay_udp.h); each side's "
             "only candidate for the other is a relay socket (rewritten answer for A, trickled candidate for B), "
             "so every datagram crosses the relay");
  if (net)
    bench_note(rep, "real: the relay also impairs both directions as the simulated %s network (see below)", net->name);
  else
    bench_note(rep, "real: no impairment besides the cuts (loopback delay only)");
  bench_note(rep, "real: %d trials in %d s of wall time (n per row; %d with an event missing): cuts are relay "
             "blackouts both ways of 2..3.5 s, 3 s apart, the first 5 s after start; ICE up on B %.0f ms after "
             "start; measured on B from the events' time_us against the relay's clock",
             trials, seconds, missing, up_us >= 0 ? (double)up_us / 1000.0 : -1.0);
  bench_note(rep, "real: relay a2b %llu in / %llu fwd / %llu dropped, b2a %llu / %llu / %llu; foreign %llu; "
             "%d false disconnects and %d track-stops outside the cut windows (+2 s)",
             (unsigned long long)a2b.received, (unsigned long long)a2b.forwarded, (unsigned long long)a2b.dropped,
             (unsigned long long)b2a.received, (unsigned long long)b2a.forwarded, (unsigned long long)b2a.dropped,
             (unsigned long long)us.foreign, false_disc, false_stops);
  static const char *const goal[3] = {"cut->track-stopped", "cut->disconnected", "restore->connected"};
  double *v[3] = {stopped, disc, conn};
  int nv[3] = {ns, nd, nc};
  for (int g = 0; g < 3; g++) {
    double p95 = nv[g] ? bench_quantile(v[g], (size_t)nv[g], 0.95) : 1e9;
    bench_note(rep, "goal %s p95 <= 1000 ms: real %s (%.1f ms)", goal[g],
               p95 <= 1000 && !missing ? "HOLDS" : "FAILS", p95);
  }
  rc = rt.err ? 1 : 0;
out:
  if (a) (void)parley_call_hangup(a);
  if (b) (void)parley_call_hangup(b);
  sleep_us(100 * MS);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    if (a && ida[k] > 0) parley_call_off(a, ida[k]);
    if (b && idb[k] > 0) parley_call_off(b, idb[k]);
  }
  parley_call_free(a);
  parley_call_free(b);
  parley_engine_free(ea);
  parley_engine_free(eb);
  if (relay_running) {
    atomic_store(&rt.stop, true);
    pthread_join(relay_tid, NULL);
  }
  parley__relay_udp_free(rt.u);
  return rc;
}

static int run_disconnect(bench_report *rep, int argc, char **argv) {
  int trials = 200, hours = 2, seconds = 60;
  bool real = false;
  const char *real_net = NULL;
  uint64_t seed = 1;
  int64_t harsh_sd_arg = 50;
  parley__liveness_config_init(&g_live);
  int64_t suspect_ms = g_live.suspect_after_us / MS, probe_ms = g_live.probe_interval_us / MS,
          lost_ms = g_live.lost_after_us / MS;
  const parley__cli_opt opts[] = {
      {"trials", PARLEY__CLI_INT, &trials, "N", "seeded cut trials per network [200]", 1, 100000},
      {"hours", PARLEY__CLI_INT, &hours, "H", "simulated hours for the false-alarm rows [2]", 1, 1000},
      {"seed", PARLEY__CLI_U64, &seed, "S", "seed of the first trial [1]", 0, 0},
      {"harsh-sd-ms", PARLEY__CLI_INT64, &harsh_sd_arg, "MS", "jitter deviation of the harsh network [50]", 0, 1000},
      {"suspect-ms", PARLEY__CLI_INT64, &suspect_ms, "MS", "liveness: suspect after this silence", 1, 60000},
      {"probe-ms", PARLEY__CLI_INT64, &probe_ms, "MS", "liveness: probe interval", 1, 60000},
      {"lost-ms", PARLEY__CLI_INT64, &lost_ms, "MS", "liveness: lost after this silence", 1, 600000},
      {"real", PARLEY__CLI_FLAG, &real, NULL, "two real engines over UDP through the relay instead", 0, 0},
      {"seconds", PARLEY__CLI_INT, &seconds, "S", "--real: wall-clock length [60]", 15, 3600},
      {"real-net", PARLEY__CLI_STRING, &real_net, "NET", "--real: relay impairment clean|mild|harsh [clean]", 0, 0},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  long long harsh_sd_ms = harsh_sd_arg;
  g_live.suspect_after_us = suspect_ms * MS;
  g_live.probe_interval_us = probe_ms * MS;
  g_live.lost_after_us = lost_ms * MS;
  if (parley__liveness_config_validate(&g_live) != 0) {
    fprintf(stderr, "parley-bench disconnect: the liveness settings contradict each other\n");
    return 2;
  }
  netdef mild = {"mild", {.base_delay_us = 30 * MS, .jitter_sd_us = 5 * MS, .loss_pct = 1}};
  netdef harsh = {"harsh", {.base_delay_us = 40 * MS, .jitter_sd_us = harsh_sd_ms * MS, .loss_pct = 20}};
  if (real) {
    const netdef *nd = NULL;
    if (real_net && !strcmp(real_net, "mild")) nd = &mild;
    else if (real_net && !strcmp(real_net, "harsh")) nd = &harsh;
    else if (real_net && strcmp(real_net, "clean") != 0) {
      fprintf(stderr, "parley-bench disconnect: --real-net takes clean, mild or harsh\n");
      return 2;
    }
    int rc = run_real(rep, seconds, seed, nd);
    if (nd)
      bench_note(rep, "mild: 30 ms + N(10, 5) ms, 1%% loss; harsh: 40 ms + N(%lld, %lld) ms, 20%% loss; per direction",
                 2 * harsh_sd_ms, harsh_sd_ms);
    return rc;
  }
  bench_note(rep, "real ICE agents + liveness monitors over simnet/impair; cut rows measured on the receiving "
             "side B; monitor: suspect after %lld ms, "
             "probe every %lld ms, lost after %lld ms",
             (long long)(g_live.suspect_after_us / MS), (long long)(g_live.probe_interval_us / MS),
             (long long)(g_live.lost_after_us / MS));
  bench_note(rep, "mild: 30 ms + N(10, 5) ms, 1%% loss; harsh: 40 ms + N(%lld, %lld) ms (jitter sd %lld ms: "
             "+-%lld ms at 3 sd), 20%% loss; per direction",
             2 * harsh_sd_ms, harsh_sd_ms, harsh_sd_ms, 3 * harsh_sd_ms);
  const netdef *nets[2] = {&mild, &harsh};
  double p95[2][3] = {{0}};
  int64_t t0 = bench_now_ns();
  for (int k = 0; k < 2; k++) {
    trial_stats ts;
    if (run_trials(nets[k], trials, seed, &ts)) return 1;
    row(rep, "cut_to_track_stopped_ms", nets[k]->name, ts.stopped, ts.n);
    row(rep, "cut_to_disconnected_ms", nets[k]->name, ts.disc, ts.n);
    row(rep, "restore_to_connected_ms", nets[k]->name, ts.conn, ts.n);
    for (int g = 0; g < 3 && ts.n; g++)
      p95[k][g] = bench_quantile(g == 0 ? ts.stopped : g == 1 ? ts.disc : ts.conn, (size_t)ts.n, 0.95);
    bench_note(rep, "%s: %d trials, %d never connected in 60 s, %d with an event missing, %d false disconnects and %d false "
               "track-stops before the cut, %.1f probes/s per side before the cut; ICE up after p50 %.0f ms, "
               "max %.0f ms",
               nets[k]->name, trials, ts.unconnected, ts.missing, ts.false_alarms, ts.track_false_stops, ts.probes_per_s,
               bench_quantile(ts.ice_up, (size_t)ts.n_up, 0.5), bench_quantile(ts.ice_up, (size_t)ts.n_up, 1.0));
    if (ts.missing) p95[k][0] = p95[k][1] = p95[k][2] = 1e9;
    free(ts.stopped);
    free(ts.disc);
    free(ts.conn);
    free(ts.ice_up);
  }
  double trials_s = (double)(bench_now_ns() - t0) / 1e9;
  for (int k = 0; k < 2; k++)
    if (run_kills(rep, nets[k], trials, seed)) return 1;

  /* False alarms: whole hours of DTX-only traffic both ways on the harsh network. */
  double *per_hour = calloc((size_t)hours, sizeof(double));
  if (!per_hour) return 1;
  double probes = 0, worst = 0;
  int track_stops = 0;
  t0 = bench_now_ns();
  for (int h = 0; h < hours; h++) {
    trial t;
    trial_reset(&t);
    parley__simcall *c = call_new(&harsh, seed * 1000003u + (uint64_t)h, false, &t);
    if (!c) return 1;
    int rc = run_to_connected(c, &t);
    int64_t start = parley__simcall_now_us(c);
    if (rc == 1) rc = 0; /* the hour still runs (and counts) if ICE came up late or not at all */
    if (rc == 0) rc = parley__simcall_run_until(c, start + 3600 * SEC);
    parley__simcall_stats st;
    parley__simcall_get_stats(c, &st);
    parley__simcall_free(c);
    if (rc) {
      fprintf(stderr, "disconnect: hour %d did not run (%d)\n", h, rc);
      free(per_hour);
      return 1;
    }
    per_hour[h] = t.false_alarms;
    track_stops += t.track_false_stops;
    if (per_hour[h] > worst) worst = per_hour[h];
    probes += (double)(st.probes_sent[0] + st.probes_sent[1]) / 2;
  }
  double hours_s = (double)(bench_now_ns() - t0) / 1e9;
  row(rep, "false_disconnects_per_hour", "harsh", per_hour, hours);
  free(per_hour);
  bench_note(rep, "false alarms: %d simulated hour(s), DTX only both ways, harsh network: %.1f probes/s per "
             "side, %d false track-stops; %.2f s real time per simulated hour (cut trials: %.2f s)",
             hours, probes / (3600.0 * hours), track_stops, hours_s / hours, trials_s);
  static const char *const goal[3] = {"cut->track-stopped", "cut->disconnected", "restore->connected"};
  for (int g = 0; g < 3; g++)
    bench_note(rep, "goal %s p95 <= 1000 ms: mild %s (%.1f ms), harsh %s (%.1f ms)", goal[g],
               p95[0][g] <= 1000 ? "HOLDS" : "FAILS", p95[0][g], p95[1][g] <= 1000 ? "HOLDS" : "FAILS",
               p95[1][g]);
  bench_note(rep, "goal zero false disconnects per hour (20%% loss, jitter sd %lld ms): %s (worst hour: %.0f)",
             harsh_sd_ms, worst == 0 ? "HOLDS" : "FAILS", worst);
  return 0;
}

BENCH_SUITE(disconnect, "disconnect",
            "real ICE agents + liveness: cut -> track-stopped/disconnected, restore -> connected, false alarms/h",
            run_disconnect)
