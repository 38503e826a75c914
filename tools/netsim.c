/* netsim.c: parley-netsim, a UDP relay between two peers with seeded network impairments. The relay
 * logic is sim/relay.c (impairment per direction, bounded queue, stats) over the shared model
 * sim/impair.h; the socket loop is sim/relay_udp.c. This file owns only the command line (one option
 * table, sim/cli.h), signals, the run/stop loop on the relay's (monotonic) clock and the stats report.
 * Single-threaded. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/relay_udp.h"

#define DEFAULT_QUEUE 4096
#define DEFAULT_MAX_DATAGRAM 2048
#define MAX_MS 3600000.0 /* one hour: a sanity bound on every time option */

static const char USAGE[] =
    "parley-netsim --listen [HOST:]PORT [--forward HOST:PORT] [options]\n"
    "\n"
    "Relays UDP between peer A and peer B, impairing each direction with parley's impairment\n"
    "model (the one the tests and benches use; same seed + options = same decisions).\n"
    "Peer A sends to the --listen address; the relay learns A from its first datagram (others are\n"
    "ignored), forwards to peer B at --forward, and relays B's replies back to A.\n"
    "Without --forward the relay is a meeting point: both peers send to --listen, the first source\n"
    "is A, the next other one B, and each hears the other from --listen (parley-call --via does this).\n"
    "\n"
    "Impairments apply to both directions; write --a2b-OPTION or --b2a-OPTION for one direction\n"
    "(e.g. --a2b-loss 5). a2b is A -> B, b2a is B -> A. Times in the impairment timeline (spike,\n"
    "blackout, trace) count from the relay's start.\n"
    "Stats go to stdout; errors to stderr. Exit status: 0 ok, 1 runtime failure, 2 bad arguments.";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- values ---------------------------------------------------------------------------------- */

static char g_why[128]; /* a refused value's reason, for the option parser (start-up, one thread) */

/* A finite number in [lo, hi], the whole string; else NULL and the reason in g_why. */
static const char *num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
    snprintf(g_why, sizeof g_why, "not a number in %g..%g", lo, hi);
    return g_why;
  }
  *out = v;
  return NULL;
}

/* "X:Y" (or "X" when y_optional, leaving *y) into two numbers; NULL or why not. */
static const char *pair(const char *s, double lo1, double hi1, double lo2, double hi2, bool y_optional, double *x,
                        double *y) {
  const char *colon = strchr(s, ':');
  if (!colon) return y_optional ? num(s, lo1, hi1, x) : "expected two numbers as X:Y";
  char first[64];
  size_t n = (size_t)(colon - s);
  if (n >= sizeof first) return "too long";
  memcpy(first, s, n);
  first[n] = '\0';
  const char *why = num(first, lo1, hi1, x);
  return why ? why : num(colon + 1, lo2, hi2, y);
}

static int64_t ms_to_us(double ms) { return (int64_t)llround(ms * 1000.0); }
static int64_t s_to_us(double s) { return (int64_t)llround(s * 1e6); }

/* ---- impairments: each applies its value to one direction's model ---------------------------- */

typedef const char *(*apply_fn)(parley__impair_config *c, const char *v);

/* Milliseconds in [0, MAX_MS] into *us. */
static const char *ms_value(const char *v, int64_t *us) {
  double x;
  const char *why = num(v, 0, MAX_MS, &x);
  if (!why) *us = ms_to_us(x);
  return why;
}
static const char *ap_delay(parley__impair_config *c, const char *v) { return ms_value(v, &c->base_delay_us); }
static const char *ap_jitter(parley__impair_config *c, const char *v) { return ms_value(v, &c->jitter_sd_us); }
static const char *ap_monotonic(parley__impair_config *c, const char *v) {
  (void)v;
  c->monotonic = true;
  return NULL;
}
static const char *ap_loss(parley__impair_config *c, const char *v) { return num(v, 0, 100, &c->loss_pct); }
static const char *ap_burst_loss(parley__impair_config *c, const char *v) {
  double x, y;
  const char *why = pair(v, 0, 100, 1, 1e6, false, &x, &y);
  if (why) return why;
  if (parley__impair_ge_from_mean(x, y, &c->ge) != 0)
    return "needs 0 < PCT < 100 and a burst long enough for that loss";
  c->ge_enabled = true;
  return NULL;
}
/* "PCT:MS" (":MS" optional when ms_optional, then 0) into *pct and *us. */
static const char *pct_ms(const char *v, bool ms_optional, double *pct, int64_t *us) {
  double x, y = 0;
  const char *why = pair(v, 0, 100, 0, MAX_MS, ms_optional, &x, &y);
  if (!why) {
    *pct = x;
    *us = ms_to_us(y);
  }
  return why;
}
static const char *ap_reorder(parley__impair_config *c, const char *v) {
  return pct_ms(v, false, &c->reorder_pct, &c->reorder_hold_us);
}
static const char *ap_duplicate(parley__impair_config *c, const char *v) {
  return pct_ms(v, true, &c->dup_pct, &c->dup_gap_us);
}
static const char *ap_rate(parley__impair_config *c, const char *v) {
  double x;
  const char *why = num(v, 0, 1e9, &x);
  if (!why) c->rate_bytes_per_s = x * 1000.0 / 8.0;
  return why;
}
static const char *ap_spike(parley__impair_config *c, const char *v) {
  double x, y;
  const char *why = pair(v, 0, MAX_MS / 1000, 0, MAX_MS, false, &x, &y);
  if (why) return why;
  if (c->n_spikes == PARLEY__IMPAIR_MAX_SPIKES) return "at most 16 per direction";
  c->spikes[c->n_spikes++] = (parley__impair_spike){.start_us = s_to_us(x), .peak_us = ms_to_us(y), .drain = 1.0};
  return NULL;
}
static const char *ap_blackout(parley__impair_config *c, const char *v) {
  double x, y;
  const char *why = pair(v, 0, MAX_MS / 1000, 0, MAX_MS / 1000, false, &x, &y);
  if (why) return why;
  if (c->n_blackouts == PARLEY__IMPAIR_MAX_BLACKOUTS) return "at most 16 per direction";
  c->blackouts[c->n_blackouts++] = (parley__impair_blackout){.start_us = s_to_us(x), .length_us = s_to_us(y)};
  return NULL;
}
static const char *ap_trace(parley__impair_config *c, const char *v) {
  if (v[0] == '\0') return "empty file name";
  c->trace_path = v;
  return NULL;
}

typedef struct impairment {
  const char *name, *arg, *help; /* arg NULL: a flag */
  apply_fn apply;
} impairment;

static const impairment IMPAIRMENTS[] = {
    {"delay", "MS", "base one-way delay", ap_delay},
    {"jitter", "MS", "Gaussian jitter sd (extra delay ~ N(2 sd, sd), floored at 0)", ap_jitter},
    {"monotonic", NULL, "never reorder: clamp each delivery to follow the previous one", ap_monotonic},
    {"loss", "PCT", "independent random loss", ap_loss},
    {"burst-loss", "PCT:MEANLEN", "Gilbert-Elliott bursty loss: mean loss PCT,\nmean burst MEANLEN packets",
     ap_burst_loss},
    {"reorder", "PCT:HOLD_MS", "hold PCT of packets back an extra HOLD_MS", ap_reorder},
    {"duplicate", "PCT[:GAP_MS]", "duplicate PCT of packets, the copy GAP_MS (default 0) later", ap_duplicate},
    {"rate", "KBPS", "serialize at KBPS kilobits/s (packets queue behind each other)", ap_rate},
    {"spike", "START:PEAK_MS", "delay stall at START s: PEAK_MS extra, draining at line rate\n(repeatable, 16 at most)",
     ap_spike},
    {"blackout", "START:LENGTH", "drop all sent in [START, START+LENGTH) seconds after start\n(repeatable, 16 at most)",
     ap_blackout},
    {"trace", "FILE", "replay lines \"time_ms delay_ms lost(0/1)\" from FILE", ap_trace},
};
#define N_IMPAIRMENTS (sizeof IMPAIRMENTS / sizeof IMPAIRMENTS[0])

/* One impairment option for the directions in mask (bit 0 a2b, bit 1 b2a). */
typedef struct impair_target {
  const impairment *imp;
  parley__impair_config *cfg; /* both directions' models */
  int mask;
} impair_target;

static const char *apply_impairment(void *ctx, const char *value) {
  const impair_target *t = ctx;
  for (int d = 0; d < 2; d++) {
    const char *why = t->mask & (1 << d) ? t->imp->apply(&t->cfg[d], value) : NULL;
    if (why) return why;
  }
  return NULL;
}

/* ---- the command line ------------------------------------------------------------------------- */

typedef struct options {
  parley__relay_udp_config cfg;
  bool have_listen, have_forward;
  double duration_s;       /* 0 = until a signal */
  double stats_interval_s; /* 0 = at exit only */
} options;

static const char *address(struct sockaddr_storage *out, const char *v, bool *have) {
  int e = parley__relay_udp_parse_addr(v, out);
  if (e == PARLEY_ENOTFOUND) return "cannot resolve it";
  if (e != 0) return "not [HOST:]PORT (IPv6 as [ADDR]:PORT, port 0..65535)";
  *have = true;
  return NULL;
}
static const char *opt_listen(void *ctx, const char *v) {
  options *o = ctx;
  return address(&o->cfg.listen, v, &o->have_listen);
}
static const char *opt_forward(void *ctx, const char *v) {
  options *o = ctx;
  return strchr(v, ':') ? address(&o->cfg.forward, v, &o->have_forward) : "needs HOST:PORT";
}
static const char *opt_seed(void *ctx, const char *v) {
  options *o = ctx;
  char *end;
  errno = 0;
  unsigned long long s = strtoull(v, &end, 0); /* 0x... too */
  if (end == v || *end != '\0' || errno || v[0] == '-') return "not an unsigned integer";
  o->cfg.relay.seed = (uint64_t)s;
  return NULL;
}

/* Parses the command line into o; exits on --help (0) and on a usage error (2). */
static void parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->cfg.relay.seed = 1;
  int queue = DEFAULT_QUEUE, max_datagram = DEFAULT_MAX_DATAGRAM;
  parley__cli_call listen = {opt_listen, o}, forward = {opt_forward, o}, seed = {opt_seed, o};
  const parley__cli_opt addresses[] = {
      {"listen", PARLEY__CLI_CALL, &listen, "[HOST:]PORT",
       "where A sends (HOST defaults to 127.0.0.1; IPv6 as [::1]:PORT)", 0, 0},
      {"forward", PARLEY__CLI_CALL, &forward, "HOST:PORT",
       "peer B (it sees the relay's own ephemeral port as its peer);\nwithout it B is learned like A", 0, 0},
  };
  const parley__cli_opt run[] = {
      {"seed", PARLEY__CLI_CALL, &seed, "N", "random seed (default 1; b2a uses a seed derived from it)", 0, 0},
      {"duration", PARLEY__CLI_DOUBLE, &o->duration_s, "S", "stop after S seconds (default: until SIGINT/SIGTERM)",
       0.001, 1e7},
      {"stats-interval", PARLEY__CLI_DOUBLE, &o->stats_interval_s, "S",
       "print stats every S seconds (always printed at exit)", 0.001, 1e7},
      {"queue", PARLEY__CLI_INT, &queue, "N", "datagrams in flight, both directions (default 4096; more are dropped)",
       1, 1 << 20},
      {"max-datagram", PARLEY__CLI_INT, &max_datagram, "BYTES",
       "larger datagrams are dropped (default 2048, max 65536)", 1, PARLEY__RELAY_MAX_DATAGRAM},
  };
#define N_ADDRESSES (sizeof addresses / sizeof addresses[0])
#define N_RUN (sizeof run / sizeof run[0])
  /* Each impairment thrice: both directions (listed), then --a2b- and --b2a- (described in USAGE). */
  static impair_target targets[3 * N_IMPAIRMENTS];
  static parley__cli_call calls[3 * N_IMPAIRMENTS];
  static char names[3 * N_IMPAIRMENTS][32];
  static const char *const prefix[3] = {"", "a2b-", "b2a-"};
  static const int mask[3] = {3, 1, 2};
  parley__cli_opt opts[N_ADDRESSES + 3 * N_IMPAIRMENTS + N_RUN];
  size_t n = 0;
  for (size_t i = 0; i < N_ADDRESSES; i++) opts[n++] = addresses[i];
  for (size_t v = 0; v < 3; v++)
    for (size_t i = 0; i < N_IMPAIRMENTS; i++) {
      size_t k = v * N_IMPAIRMENTS + i;
      const impairment *imp = &IMPAIRMENTS[i];
      targets[k] = (impair_target){imp, o->cfg.relay.impair, mask[v]};
      calls[k] = (parley__cli_call){apply_impairment, &targets[k]};
      snprintf(names[k], sizeof names[k], "%s%s", prefix[v], imp->name);
      opts[n++] = (parley__cli_opt){names[k], imp->arg ? PARLEY__CLI_CALL : PARLEY__CLI_CALL_FLAG, &calls[k], imp->arg,
                                    v == 0 ? imp->help : NULL, 0, 0};
    }
  for (size_t i = 0; i < N_RUN; i++) opts[n++] = run[i];
#undef N_ADDRESSES
#undef N_RUN
  int first = argc;
  int rc = parley__cli_parse(USAGE, opts, n, argc, argv, &first);
  if (rc != 0) exit(rc == 1 ? 0 : 2); /* --help, or a usage error (said, with the help) */
  if (first < argc || !o->have_listen) {
    if (first < argc) fprintf(stderr, "parley-netsim: unexpected argument '%s'\n", argv[first]);
    else fprintf(stderr, "parley-netsim: --listen is required\n");
    fprintf(stderr, "(see parley-netsim --help)\n");
    exit(2);
  }
  o->cfg.relay.max_queued = (size_t)queue;
  o->cfg.relay.max_datagram = (size_t)max_datagram;
}

static void print_dir(const char *name, const parley__relay_dir_stats *s) {
  double loss = s->received ? 100.0 * (double)(s->dropped + s->dropped_full) / (double)s->received : 0.0;
  printf("  %s: received %llu forwarded %llu dropped %llu (%.2f %%) queue-full %llu duplicated %llu "
         "reordered %llu bytes %llu/%llu delay mean %.2f ms max %.2f ms (late max %.2f ms)\n",
         name, (unsigned long long)s->received, (unsigned long long)s->forwarded,
         (unsigned long long)s->dropped, loss, (unsigned long long)s->dropped_full,
         (unsigned long long)s->duplicated, (unsigned long long)s->reordered, (unsigned long long)s->bytes_in,
         (unsigned long long)s->bytes_out, s->mean_delay_us / 1000.0, (double)s->max_delay_us / 1000.0,
         (double)s->max_late_us / 1000.0);
}

static void print_stats(const parley__relay_udp *u, double t_s, bool final) {
  parley__relay_dir_stats ab, ba;
  parley__relay_get_stats(parley__relay_udp_core(u), PARLEY__RELAY_A2B, &ab);
  parley__relay_get_stats(parley__relay_udp_core(u), PARLEY__RELAY_B2A, &ba);
  parley__relay_udp_stats io;
  parley__relay_udp_get_stats(u, &io);
  printf("%s at %.3f s: in flight %zu\n", final ? "final stats" : "stats", t_s,
         parley__relay_queued(parley__relay_udp_core(u)));
  print_dir("a2b", &ab);
  print_dir("b2a", &ba);
  printf("  io: peer A %s, peer B %s, foreign %llu, undeliverable %llu, send errors %llu, receive errors %llu\n",
         io.peer_a_known ? "learned" : "not seen", io.peer_b_known ? "known" : "not seen", (unsigned long long)io.foreign,
         (unsigned long long)io.undeliverable, (unsigned long long)io.send_errors,
         (unsigned long long)io.recv_errors);
  fflush(stdout);
}

int main(int argc, char **argv) {
  options o;
  parse_args(argc, argv, &o);

  int err = 0;
  parley__relay_udp *u = parley__relay_udp_new_realtime(&o.cfg, &err);
  if (!u) {
    if (err == PARLEY_ENETWORK) {
      fprintf(stderr, "parley-netsim: cannot set up sockets: %s\n", strerror(errno));
    } else if (err == PARLEY_EIO || err == PARLEY_EPARSE) {
      fprintf(stderr, "parley-netsim: --trace: %s\n",
              err == PARLEY_EIO ? "cannot read the file"
                                : "malformed (expected lines \"time_ms delay_ms lost\", times non-decreasing)");
    } else {
      fprintf(stderr, "parley-netsim: %s (%s)\n", parley_strerror(err), parley_err_name(err));
    }
    return err == PARLEY_ENETWORK || err == PARLEY_ENOMEM ? 1 : 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: poll returns EINTR and the loop sees the flag */
  sigaction(SIGTERM, &sa, NULL);

  struct sockaddr_storage la, lb;
  char sa_txt[64] = "?", sb_txt[64] = "?", fw_txt[64] = "?";
  if (parley__relay_udp_listen_addr(u, &la) == 0) parley__relay_udp_format_addr((struct sockaddr *)&la, sa_txt, sizeof sa_txt);
  if (parley__relay_udp_forward_local_addr(u, &lb) == 0) parley__relay_udp_format_addr((struct sockaddr *)&lb, sb_txt, sizeof sb_txt);
  if (o.have_forward) parley__relay_udp_format_addr((struct sockaddr *)&o.cfg.forward, fw_txt, sizeof fw_txt);
  else snprintf(fw_txt, sizeof fw_txt, "(the next source)");
  fprintf(stderr, "parley-netsim: A -> %s, relay %s -> B %s, seed %llu\n", sa_txt, sb_txt, fw_txt,
          (unsigned long long)o.cfg.relay.seed);

  const int64_t t0 = parley__relay_udp_now(u);
  const int64_t end_us = o.duration_s > 0 ? t0 + s_to_us(o.duration_s) : INT64_MAX;
  const int64_t interval_us = o.stats_interval_s > 0 ? s_to_us(o.stats_interval_s) : 0;
  int64_t next_stats_us = interval_us ? t0 + interval_us : INT64_MAX;
  int rc = 0;
  while (!stop_requested) {
    int64_t now = parley__relay_udp_now(u);
    if (now >= end_us) break;
    if (now >= next_stats_us) {
      print_stats(u, (double)(now - t0) / 1e6, false);
      next_stats_us += interval_us;
      if (next_stats_us <= now) next_stats_us = now + interval_us;
      continue;
    }
    int64_t wait = 100000; /* also bounds how long a missed signal could go unnoticed */
    if (end_us - now < wait) wait = end_us - now;
    if (next_stats_us - now < wait) wait = next_stats_us - now;
    int n = parley__relay_udp_step(u, wait);
    if (n < 0) {
      fprintf(stderr, "parley-netsim: poll failed: %s\n", strerror(errno));
      rc = 1;
      break;
    }
  }
  print_stats(u, (double)(parley__relay_udp_now(u) - t0) / 1e6, true);
  parley__relay_udp_free(u);
  return rc;
}
