/* bench_disconnect.c: `parley-bench disconnect`: how fast and how truthfully the liveness monitor
 * reports a passive disconnect, in simulated time over simnet.
 *
 * Peer A sends Opus-like traffic to B: DTX (one small packet per 400 ms) with talkspurts (one packet per
 * 20 ms) in the cut trials, DTX only in the false-alarm hours (fewest arrivals: the hardest case for
 * not raising false alarms). B runs the monitor; it asks for probes and consent checks, which B sends
 * to A through simnet and A answers through simnet. STAND-IN: a "probe" here is a small datagram that A
 * echoes as a "response", with the same network fate a STUN binding check would get; the ICE agent will
 * replace it with real STUN binding requests on the selected pair (and the consent checks likewise).
 *
 * Cut trials: ICE connects at t = 0, the path is cut both ways at a random time in [5, 15) s (in-flight
 * datagrams still arrive), restored 2..6 s later. We measure cut -> track-stopped (timeout), cut ->
 * ICE disconnected, restore -> ICE connected. Networks: "mild" = one-way 30 ms + U[0, 20] ms, 1 % loss;
 * "harsh" = one-way 40 ms + U[0, 150] ms ("150 ms of jitter" as uniform 0..150 ms extra delay per packet,
 * independently, so packets reorder), 20 % random loss each way.
 * False alarms: whole simulated hours on the harsh network, counting ICE disconnected/failed events.
 * Not real-time code; single-threaded; deterministic for a given --seed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "engine/rng.h"
#include "transport/events.h"
#include "transport/liveness.h"
#include "transport/simnet.h"

#define MS 1000ll
#define SEC 1000000ll
#define SSRC 0x5eed5eedu

enum { PKT_MEDIA = 'M', PKT_PROBE = 'P', PKT_PROBE_RESP = 'R', PKT_CONSENT = 'C', PKT_CONSENT_RESP = 'K' };

typedef struct netdef {
  const char *name;
  parley__simnet_link link;
} netdef;

static const netdef MILD = {"mild", {30 * MS, 20 * MS, 0.01}};
static const netdef HARSH = {"harsh", {40 * MS, 150 * MS, 0.20}};

typedef struct sim {
  parley__simnet *net;
  struct sockaddr_storage a, b;
  parley__event storage[64];
  parley__event_queue q;
  parley__liveness *mon; /* B's monitor */
  parley__rng rng;       /* A's traffic */
  int64_t now;
  bool talkspurts;
  bool talking;
  int64_t mode_end, next_media;
  int64_t t_cut, t_restore;
  /* Results. */
  int64_t t_track_stopped, t_disconnected, t_connected;
  int false_alarms; /* disconnected/failed while the path was up */
  uint64_t probes;
} sim;

static const struct sockaddr *sa(const struct sockaddr_storage *s) { return (const struct sockaddr *)s; }

static void send_pkt(sim *s, const struct sockaddr_storage *from, const struct sockaddr_storage *to,
                     uint8_t type, int64_t now) {
  uint8_t pkt[24] = {type, (uint8_t)(SSRC >> 24), (uint8_t)(SSRC >> 16), (uint8_t)(SSRC >> 8),
                     (uint8_t)SSRC};
  parley__simnet_send(s->net, sa(from), sa(to), pkt, type == PKT_MEDIA ? sizeof pkt : 8, now);
}

static void drain(sim *s) {
  parley__event ev;
  while (parley__event_queue_pop(&s->q, &ev) == 0) {
    bool path_up = ev.now_us < s->t_cut;
    if (ev.kind == PARLEY__EV_ICE_STATE) {
      if (ev.ice_state == PARLEY__ICE_DISCONNECTED || ev.ice_state == PARLEY__ICE_FAILED) {
        if (path_up) s->false_alarms++;
        else if (ev.ice_state == PARLEY__ICE_DISCONNECTED && s->t_disconnected < 0)
          s->t_disconnected = ev.now_us;
      } else if (ev.ice_state == PARLEY__ICE_CONNECTED && ev.now_us >= s->t_restore &&
                 s->t_connected < 0) {
        s->t_connected = ev.now_us;
      }
    } else if (ev.kind == PARLEY__EV_TRACK_STOPPED && ev.stop_reason == PARLEY__STOP_TIMEOUT &&
               !path_up && s->t_track_stopped < 0) {
      s->t_track_stopped = ev.now_us;
    }
  }
}

/* A answers probes and consent checks. */
static void a_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                   const uint8_t *data, size_t len, int64_t now_us) {
  (void)net;
  (void)from;
  (void)to;
  sim *s = ctx;
  if (len < 1) return;
  if (data[0] == PKT_PROBE) send_pkt(s, &s->a, &s->b, PKT_PROBE_RESP, now_us);
  else if (data[0] == PKT_CONSENT) send_pkt(s, &s->a, &s->b, PKT_CONSENT_RESP, now_us);
}

/* B feeds its monitor. */
static void b_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                   const uint8_t *data, size_t len, int64_t now_us) {
  (void)net;
  (void)from;
  (void)to;
  sim *s = ctx;
  if (len < 1) return;
  switch (data[0]) {
    case PKT_MEDIA:
      if (len >= 5) {
        uint32_t ssrc = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
        parley__liveness_on_rtp(s->mon, now_us, ssrc, true);
      }
      break;
    case PKT_PROBE_RESP: parley__liveness_on_probe_response(s->mon, now_us); break;
    case PKT_CONSENT_RESP: parley__liveness_on_consent_response(s->mon, now_us); break;
    default: break;
  }
  drain(s);
}

/* Monitor timings under test (defaults unless overridden on the command line). */
static parley__liveness_config g_cfg;

static int sim_init(sim *s, const netdef *nd, uint64_t seed, bool talkspurts) {
  memset(s, 0, sizeof *s);
  s->net = parley__simnet_new(4, 4096, 64, seed ^ 0x9e3779b97f4a7c15ull, NULL);
  if (!s->net) return -1;
  parley__simnet_set_link(s->net, &nd->link);
  parley__simnet_addr4(&s->a, "10.0.0.1", 5000);
  parley__simnet_addr4(&s->b, "10.0.0.2", 6000);
  parley__simnet_add_endpoint(s->net, sa(&s->a), a_recv, NULL, s);
  parley__simnet_add_endpoint(s->net, sa(&s->b), b_recv, NULL, s);
  parley__event_queue_init(&s->q, s->storage, 64);
  parley__liveness_config cfg = g_cfg;
  cfg.seed = seed;
  s->mon = parley__liveness_new(&cfg, &s->q, NULL);
  if (!s->mon) return -1;
  parley__rng_seed(&s->rng, seed);
  s->talkspurts = talkspurts;
  s->t_cut = s->t_restore = INT64_MAX;
  s->t_track_stopped = s->t_disconnected = s->t_connected = -1;
  parley__liveness_on_ice_connected(s->mon, 0);
  /* A starts at a random phase of its 400 ms DTX cadence. */
  s->next_media = (int64_t)parley__rng_below(&s->rng, 400) * MS;
  s->mode_end = 0;
  drain(s);
  return 0;
}

static void sim_free(sim *s) {
  parley__liveness_free(s->mon);
  parley__simnet_free(s->net);
}

static int64_t uniform_us(parley__rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(parley__rng_uniform(r) * (double)(hi - lo));
}

/* A's next packet: switch between talk (20 ms) and DTX (400 ms) when the current mode ends. */
static void a_send_media(sim *s, int64_t t) {
  send_pkt(s, &s->a, &s->b, PKT_MEDIA, t);
  if (s->talkspurts && t >= s->mode_end) {
    s->talking = !s->talking;
    s->mode_end = t + (s->talking ? uniform_us(&s->rng, 500 * MS, 2500 * MS)
                                  : uniform_us(&s->rng, 1 * SEC, 6 * SEC));
  }
  s->next_media = t + (s->talking ? 20 * MS : 400 * MS);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void sim_run(sim *s, int64_t t_end) {
  while (s->now < t_end) {
    int64_t t = min64(parley__simnet_next_delivery_us(s->net), parley__liveness_next_deadline_us(s->mon));
    t = min64(t, s->next_media);
    if (s->t_cut > s->now) t = min64(t, s->t_cut);
    if (s->t_restore > s->now) t = min64(t, s->t_restore);
    t = min64(t, t_end);
    if (t < s->now) t = s->now;
    s->now = t;
    if (t == s->t_cut) parley__simnet_cut(s->net);
    if (t == s->t_restore) parley__simnet_restore(s->net);
    if (s->next_media <= t) a_send_media(s, t);
    parley__simnet_deliver_until(s->net, t);
    if (parley__liveness_next_deadline_us(s->mon) <= t) {
      int act = parley__liveness_tick(s->mon, t);
      if (act > 0 && (act & PARLEY__LIVENESS_SEND_PROBE)) {
        send_pkt(s, &s->b, &s->a, PKT_PROBE, t);
        s->probes++;
      }
      if (act > 0 && (act & PARLEY__LIVENESS_SEND_CONSENT)) send_pkt(s, &s->b, &s->a, PKT_CONSENT, t);
      drain(s);
    }
  }
}

typedef struct trial_stats {
  double *stopped, *disc, *conn;
  int n, missing, false_alarms;
  double probes_per_s;
} trial_stats;

static int run_trials(const netdef *nd, int trials, uint64_t seed, trial_stats *ts) {
  memset(ts, 0, sizeof *ts);
  ts->stopped = calloc((size_t)trials, sizeof(double));
  ts->disc = calloc((size_t)trials, sizeof(double));
  ts->conn = calloc((size_t)trials, sizeof(double));
  if (!ts->stopped || !ts->disc || !ts->conn) return -1;
  double probe_s = 0, secs = 0;
  for (int i = 0; i < trials; i++) {
    static sim s;
    if (sim_init(&s, nd, seed + (uint64_t)i * 7919, true)) return -1;
    s.t_cut = uniform_us(&s.rng, 5 * SEC, 15 * SEC);
    s.t_restore = s.t_cut + uniform_us(&s.rng, 2 * SEC, 6 * SEC);
    sim_run(&s, s.t_cut);
    probe_s += (double)s.probes;
    secs += (double)s.t_cut / 1e6;
    sim_run(&s, s.t_restore + 3 * SEC);
    ts->false_alarms += s.false_alarms;
    if (s.t_track_stopped < 0 || s.t_disconnected < 0 || s.t_connected < 0) {
      ts->missing++;
    } else {
      ts->stopped[ts->n] = (double)(s.t_track_stopped - s.t_cut) / 1000.0;
      ts->disc[ts->n] = (double)(s.t_disconnected - s.t_cut) / 1000.0;
      ts->conn[ts->n] = (double)(s.t_connected - s.t_restore) / 1000.0;
      ts->n++;
    }
    sim_free(&s);
  }
  ts->probes_per_s = secs > 0 ? probe_s / secs : 0;
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

static int run_disconnect(bench_report *rep, int argc, char **argv) {
  const char *ok = "HOLDS", *bad = "FAILS";
  int trials = 200, hours = 100;
  uint64_t seed = 1;
  parley__liveness_config_init(&g_cfg);
  for (int i = 0; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--trials")) trials = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--hours")) hours = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--suspect-ms")) g_cfg.suspect_after_us = atoll(argv[i + 1]) * MS;
    else if (!strcmp(argv[i], "--probe-ms")) g_cfg.probe_interval_us = atoll(argv[i + 1]) * MS;
    else if (!strcmp(argv[i], "--lost-ms")) g_cfg.lost_after_us = atoll(argv[i + 1]) * MS;
  }
  if (trials < 1 || trials > 100000 || hours < 1 || hours > 1000 ||
      parley__liveness_config_validate(&g_cfg) != 0) {
    fprintf(stderr, "usage: disconnect [--trials N] [--hours H] [--seed S] [--suspect-ms MS] "
                    "[--probe-ms MS] [--lost-ms MS]\n");
    return 2;
  }
  bench_note(rep, "monitor: suspect after %lld ms, probe every %lld ms, lost after %lld ms",
             (long long)(g_cfg.suspect_after_us / MS), (long long)(g_cfg.probe_interval_us / MS),
             (long long)(g_cfg.lost_after_us / MS));
  const netdef *nets[2] = {&MILD, &HARSH};
  double p95[2][3] = {{0}};
  for (int k = 0; k < 2; k++) {
    trial_stats ts;
    if (run_trials(nets[k], trials, seed, &ts)) return 1;
    row(rep, "cut_to_track_stopped_ms", nets[k]->name, ts.stopped, ts.n);
    row(rep, "cut_to_disconnected_ms", nets[k]->name, ts.disc, ts.n);
    row(rep, "restore_to_connected_ms", nets[k]->name, ts.conn, ts.n);
    if (ts.n) {
      p95[k][0] = bench_quantile(ts.stopped, (size_t)ts.n, 0.95);
      p95[k][1] = bench_quantile(ts.disc, (size_t)ts.n, 0.95);
      p95[k][2] = bench_quantile(ts.conn, (size_t)ts.n, 0.95);
    }
    bench_note(rep, "%s: %d trials, %d with an event missing, %d false disconnects before the cut, "
               "%.1f probes/s requested before the cut (talkspurts + DTX)",
               nets[k]->name, trials, ts.missing, ts.false_alarms, ts.probes_per_s);
    if (ts.missing) p95[k][0] = p95[k][1] = p95[k][2] = 1e9;
    free(ts.stopped);
    free(ts.disc);
    free(ts.conn);
  }
  /* False alarms: whole hours of DTX-only traffic on the harsh network. */
  double *per_hour = calloc((size_t)hours, sizeof(double));
  if (!per_hour) return 1;
  double probes = 0, worst = 0;
  for (int h = 0; h < hours; h++) {
    static sim s;
    if (sim_init(&s, &HARSH, seed * 1000003u + (uint64_t)h, false)) return 1;
    sim_run(&s, 3600 * SEC);
    per_hour[h] = s.false_alarms;
    if (per_hour[h] > worst) worst = per_hour[h];
    probes += (double)s.probes;
    sim_free(&s);
  }
  row(rep, "false_disconnects_per_hour", "harsh", per_hour, hours);
  free(per_hour);
  bench_note(rep, "false alarms: %d simulated hour(s), DTX only (1 packet / 400 ms), harsh network; "
             "%.1f probes/s requested", hours, probes / (3600.0 * hours));
  static const char *const goal[3] = {"cut->track-stopped", "cut->disconnected", "restore->connected"};
  for (int g = 0; g < 3; g++)
    bench_note(rep, "goal %s p95 <= 1000 ms: mild %s (%.1f ms), harsh %s (%.1f ms)", goal[g],
               p95[0][g] <= 1000 ? "HOLDS" : "FAILS", p95[0][g], p95[1][g] <= 1000 ? "HOLDS" : "FAILS",
               p95[1][g]);
  bench_note(rep, "goal no false disconnect in a simulated hour (20%% loss, 150 ms jitter): %s "
             "(worst hour: %.0f)", worst == 0 ? ok : bad, worst);
  return 0;
}

BENCH_SUITE(disconnect, "disconnect",
            "liveness monitor: cut -> track-stopped/disconnected, restore -> connected, false alarms/h",
            run_disconnect)
