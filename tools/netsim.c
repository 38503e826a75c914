/* netsim.c: parley-netsim, a UDP relay between two peers with seeded network impairments. The relay
 * logic is sim/relay.c (impairment per direction, bounded queue, stats) over the shared model
 * sim/impair.h; the socket loop is sim/relay_udp.c. This file owns only the command line,
 * signals, the run/stop loop on the relay's (monotonic) clock and the stats report. Single-threaded. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "sim/relay_udp.h"

#define DEFAULT_QUEUE 4096
#define DEFAULT_MAX_DATAGRAM 2048
#define MAX_MS 3600000.0 /* one hour: a sanity bound on every time option */

static const char USAGE[] =
    "Usage: parley-netsim --listen [HOST:]PORT [--forward HOST:PORT] [options]\n"
    "\n"
    "Relays UDP between peer A and peer B, impairing each direction with parley's impairment\n"
    "model (the one the tests and benches use; same seed + options = same decisions).\n"
    "Peer A sends to the --listen address; the relay learns A from its first datagram (others are\n"
    "ignored), forwards to peer B at --forward, and relays B's replies back to A.\n"
    "Without --forward the relay is a meeting point: both peers send to --listen, the first source\n"
    "is A, the next other one B, and each hears the other from --listen (parley-call --via does this).\n"
    "\n"
    "Addresses:\n"
    "  --listen [HOST:]PORT      where A sends (HOST defaults to 127.0.0.1; IPv6 as [::1]:PORT)\n"
    "  --forward HOST:PORT       peer B (it sees the relay's own ephemeral port as its peer); without\n"
    "                            it B is learned like A\n"
    "\n"
    "Impairments, both directions; write --a2b-OPTION or --b2a-OPTION for one direction\n"
    "(e.g. --a2b-loss 5). a2b is A -> B, b2a is B -> A.\n"
    "  --delay MS                base one-way delay\n"
    "  --jitter MS               Gaussian jitter sd (extra delay ~ N(2 sd, sd), floored at 0)\n"
    "  --monotonic               never reorder: clamp each delivery to follow the previous one\n"
    "  --loss PCT                independent random loss\n"
    "  --burst-loss PCT:MEANLEN  Gilbert-Elliott bursty loss: mean loss PCT, mean burst MEANLEN packets\n"
    "  --reorder PCT:HOLD_MS     hold PCT of packets back an extra HOLD_MS\n"
    "  --duplicate PCT[:GAP_MS]  duplicate PCT of packets, the copy GAP_MS (default 0) later\n"
    "  --rate KBPS               serialize at KBPS kilobits/s (packets queue behind each other)\n"
    "  --spike START:PEAK_MS     delay stall at START s: PEAK_MS extra, draining at line rate (max 16)\n"
    "  --blackout START:LENGTH   drop all sent in [START, START+LENGTH) seconds after start (max 16)\n"
    "  --trace FILE              replay lines \"time_ms delay_ms lost(0/1)\" from FILE\n"
    "\n"
    "Run:\n"
    "  --seed N                  random seed (default 1; b2a uses a seed derived from it)\n"
    "  --duration S              stop after S seconds (default: until SIGINT/SIGTERM)\n"
    "  --stats-interval S        print stats every S seconds (always printed at exit)\n"
    "  --queue N                 datagrams in flight, both directions (default 4096; more are dropped)\n"
    "  --max-datagram BYTES      larger datagrams are dropped (default 2048, max 65536)\n"
    "  -h, --help                this text\n"
    "\n"
    "Times in the impairment timeline (spike, blackout, trace) count from the relay's start.\n"
    "Stats go to stdout; errors to stderr. Exit status: 0 ok, 1 runtime failure, 2 bad arguments.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void die_usage(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "parley-netsim: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n(see parley-netsim --help)\n");
  exit(2);
}

/* A finite number in [lo, hi], the whole string. */
static double num(const char *opt, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
    char range[96];
    snprintf(range, sizeof range, "%g..%g", lo, hi);
    fprintf(stderr, "parley-netsim: %s: '%s' is not a number in %s\n(see parley-netsim --help)\n", opt, s, range);
    exit(2);
  }
  return v;
}

/* "X:Y" (or "X" when y_optional) into two numbers. */
static void pair(const char *opt, const char *s, double lo1, double hi1, double lo2, double hi2, bool y_optional,
                 double *x, double *y) {
  const char *colon = strchr(s, ':');
  if (!colon) {
    if (!y_optional) die_usage("%s: expected two numbers as X:Y, got '%s'", opt, s);
    *x = num(opt, s, lo1, hi1);
    return;
  }
  char first[64];
  size_t n = (size_t)(colon - s);
  if (n >= sizeof first) die_usage("%s: '%s' is too long", opt, s);
  memcpy(first, s, n);
  first[n] = '\0';
  *x = num(opt, first, lo1, hi1);
  *y = num(opt, colon + 1, lo2, hi2);
}

/* A whole number in [lo, hi]. */
static size_t count(const char *opt, const char *s, double lo, double hi) {
  double v = num(opt, s, lo, hi);
  if (v != floor(v)) die_usage("%s: '%s' is not a whole number", opt, s);
  return (size_t)v;
}

static int64_t ms_to_us(double ms) { return (int64_t)llround(ms * 1000.0); }
static int64_t s_to_us(double s) { return (int64_t)llround(s * 1e6); }

/* Applies one impairment option to the models selected by mask (bit 0 a2b, bit 1 b2a). Returns false
 * if name is not an impairment option. */
static bool impair_option(const char *opt, const char *name, const char *val, parley__impair_config *cfg,
                          int mask) {
  for (int d = 0; d < 2; d++) {
    if (!(mask & (1 << d))) continue;
    parley__impair_config *c = &cfg[d];
    double x = 0, y = 0;
    if (strcmp(name, "delay") == 0) {
      c->base_delay_us = ms_to_us(num(opt, val, 0, MAX_MS));
    } else if (strcmp(name, "jitter") == 0) {
      c->jitter_sd_us = ms_to_us(num(opt, val, 0, MAX_MS));
    } else if (strcmp(name, "monotonic") == 0) {
      c->monotonic = true;
    } else if (strcmp(name, "loss") == 0) {
      c->loss_pct = num(opt, val, 0, 100);
    } else if (strcmp(name, "burst-loss") == 0) {
      pair(opt, val, 0, 100, 1, 1e6, false, &x, &y);
      if (parley__impair_ge_from_mean(x, y, &c->ge) != 0) {
        die_usage("%s: '%s' needs 0 < PCT < 100 and a burst long enough for that loss", opt, val);
      }
      c->ge_enabled = true;
    } else if (strcmp(name, "reorder") == 0) {
      pair(opt, val, 0, 100, 0, MAX_MS, false, &x, &y);
      c->reorder_pct = x;
      c->reorder_hold_us = ms_to_us(y);
    } else if (strcmp(name, "duplicate") == 0) {
      pair(opt, val, 0, 100, 0, MAX_MS, true, &x, &y);
      c->dup_pct = x;
      c->dup_gap_us = ms_to_us(y);
    } else if (strcmp(name, "rate") == 0) {
      c->rate_bytes_per_s = num(opt, val, 0, 1e9) * 1000.0 / 8.0;
    } else if (strcmp(name, "spike") == 0) {
      pair(opt, val, 0, MAX_MS / 1000, 0, MAX_MS, false, &x, &y);
      if (c->n_spikes == PARLEY__IMPAIR_MAX_SPIKES) die_usage("%s: at most 16 per direction%s", opt, "");
      c->spikes[c->n_spikes++] = (parley__impair_spike){.start_us = s_to_us(x), .peak_us = ms_to_us(y), .drain = 1.0};
    } else if (strcmp(name, "blackout") == 0) {
      pair(opt, val, 0, MAX_MS / 1000, 0, MAX_MS / 1000, false, &x, &y);
      if (c->n_blackouts == PARLEY__IMPAIR_MAX_BLACKOUTS) die_usage("%s: at most 16 per direction%s", opt, "");
      c->blackouts[c->n_blackouts++] = (parley__impair_blackout){.start_us = s_to_us(x), .length_us = s_to_us(y)};
    } else if (strcmp(name, "trace") == 0) {
      if (val[0] == '\0') die_usage("%s: empty file name%s", opt, "");
      c->trace_path = val;
    } else {
      return false;
    }
  }
  return true;
}

typedef struct options {
  parley__relay_udp_config cfg;
  bool have_listen, have_forward;
  double duration_s;       /* 0 = until a signal */
  double stats_interval_s; /* 0 = at exit only */
} options;

static void parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->cfg.relay.seed = 1;
  o->cfg.relay.max_queued = DEFAULT_QUEUE;
  o->cfg.relay.max_datagram = DEFAULT_MAX_DATAGRAM;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
      fputs(USAGE, stdout);
      exit(0);
    }
    if (strncmp(opt, "--", 2) != 0) die_usage("unexpected argument '%s'%s", opt, "");
    const char *name = opt + 2;
    int mask = 3;
    if (strncmp(name, "a2b-", 4) == 0) {
      mask = 1;
      name += 4;
    } else if (strncmp(name, "b2a-", 4) == 0) {
      mask = 2;
      name += 4;
    }
    bool flag = strcmp(name, "monotonic") == 0;
    const char *val = "";
    if (!flag) {
      if (i + 1 >= argc) die_usage("%s needs a value%s", opt, "");
      val = argv[++i];
    }
    if (impair_option(opt, name, val, o->cfg.relay.impair, mask)) continue;
    if (mask != 3) die_usage("%s: not a per-direction option%s", opt, "");
    if (strcmp(name, "listen") == 0 || strcmp(name, "forward") == 0) {
      bool listen = name[0] == 'l';
      int e = parley__relay_udp_parse_addr(val, listen ? &o->cfg.listen : &o->cfg.forward);
      if (e != 0) {
        die_usage(e == PARLEY_ENOTFOUND ? "%s: cannot resolve '%s'"
                                        : "%s: '%s' is not [HOST:]PORT (IPv6 as [ADDR]:PORT, port 0..65535)",
                  opt, val);
      }
      if (!listen && !strchr(val, ':')) die_usage("%s: '%s' needs HOST:PORT", opt, val);
      if (listen) o->have_listen = true;
      else o->have_forward = true;
    } else if (strcmp(name, "seed") == 0) {
      char *end;
      errno = 0;
      unsigned long long s = strtoull(val, &end, 0);
      if (end == val || *end != '\0' || errno || val[0] == '-') die_usage("%s: '%s' is not an unsigned integer", opt, val);
      o->cfg.relay.seed = (uint64_t)s;
    } else if (strcmp(name, "duration") == 0) {
      o->duration_s = num(opt, val, 0.001, 1e7);
    } else if (strcmp(name, "stats-interval") == 0) {
      o->stats_interval_s = num(opt, val, 0.001, 1e7);
    } else if (strcmp(name, "queue") == 0) {
      o->cfg.relay.max_queued = count(opt, val, 1, 1 << 20);
    } else if (strcmp(name, "max-datagram") == 0) {
      o->cfg.relay.max_datagram = count(opt, val, 1, PARLEY__RELAY_MAX_DATAGRAM);
    } else {
      die_usage("unknown option '%s'%s", opt, "");
    }
  }
  if (!o->have_listen) die_usage("--listen is required%s%s", "", "");
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
