/* bench_handover.c: `parley-bench handover`: how long a call's audio stops when a side's address
 * changes mid-call (Wi-Fi to cellular). Two engines through the public API, each in a network namespace
 * of its own (sim/nscall.h: two veth links; needs root), with speech files looped both ways. A trial
 * deletes A's address on its link and adds one on the other link (path "one-side"; "both": B's address
 * moves too, so the new candidates must travel through the signalling; "restart": both move and no
 * candidate is trickled, so the calls fall back to an ICE restart, NEGOTIATION_NEEDED and a new
 * offer/answer, which parley peers never need; its rows show that fallback's cost); the time runs from the
 * deletion to the first authenticated RTP packet of the new path on both sides: each side selected a
 * new pair and then received a packet (one queued before the move cannot count; a packet that came on
 * the new pair just before its side's selection is not counted either, so the figure may be up to one
 * 20 ms packet long). The bench is the
 * signalling channel: trickled candidates, offers and answers (after NEGOTIATION_NEEDED) are delivered
 * after a one-way delay of half signaling_rtt_ms. Trials alternate between the two links, 1.5 s
 * apart; a fresh call every 10 trials keeps the agents' candidate tables small. Wall-clock time, not
 * deterministic. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench.h"
#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/nscall.h"

#define TRIALS_PER_CALL 10

static void sleep_pumping(parley__nscall *h, int ms) {
  struct timespec ts = {0, 5 * 1000000L};
  for (int i = 0; i < ms / 5; i++) {
    parley__nscall_pump(h);
    nanosleep(&ts, NULL);
  }
}

static uint64_t received(parley__nscall *h, int side) {
  parley_call_stats st;
  return parley_call_get_stats(h->side[side].call, &st) == 0 ? st.packets_received : 0;
}

/* Runs `count` trials on one fresh call; appends their times (ms) to out. Returns 0, or 1 after a
 * message (set-up failed, or media never came back within 10 s). */
static int trials_on_one_call(int rtt_ms, int path, int count, double *out, int *n_out, int *outages) {
  bool both = path > 0;
  parley__nscall_config cfg;
  parley__nscall_config_init(&cfg);
  cfg.signaling_delay_ms = rtt_ms / 2;
  cfg.b_moves_too = both;
  cfg.relay_candidates = path < 2;
  cfg.input_a = "tests/data/speech_a_48k.wav";
  cfg.input_b = "tests/data/speech_b_48k.wav";
  parley__nscall h;
  const char *why = NULL;
  int r = parley__nscall_create(&h, &cfg, &why);
  if (r) {
    fprintf(stderr, "parley-bench handover: %s (%s); run as root from the source tree\n", why, parley_strerror(r));
    parley__nscall_free(&h);
    return 1;
  }
  for (int i = 0; i < 400 && (received(&h, 0) == 0 || received(&h, 1) == 0); i++) sleep_pumping(&h, 25);
  int link = 0, rc = 0;
  for (int t = 0; t < count && rc == 0; t++) {
    sleep_pumping(&h, 1500);
    parley__nscall_mark mark;
    parley__nscall_mark_take(&h, &mark);
    int64_t t0 = parley__nscall_now_us();
    if (parley__nscall_move(&h, 0, link) != 0 || (both && parley__nscall_move(&h, 1, link) != 0)) {
      fprintf(stderr, "parley-bench handover: moving an address failed\n");
      rc = 1;
      break;
    }
    link = 1 - link;
    int64_t back = -1;
    struct timespec ts = {0, 1000000L};
    for (int i = 0; i < 10000 && back < 0; i++) { /* 10 s at most */
      parley__nscall_pump(&h);
      if (parley__nscall_media_back(&h, &mark)) back = parley__nscall_now_us() - t0;
      else nanosleep(&ts, NULL);
    }
    if (back < 0) {
      fprintf(stderr, "parley-bench handover: media did not come back within 10 s\n");
      rc = 1;
      break;
    }
    out[(*n_out)++] = (double)back / 1000.0;
  }
  sleep_pumping(&h, 1000); /* a late outage would show now */
  *outages += parley__nscall_count(&h, 0, PARLEY_EVENT_INTERRUPTED) + parley__nscall_count(&h, 1, PARLEY_EVENT_INTERRUPTED);
  parley__nscall_free(&h);
  return rc;
}

static int run_handover(bench_report *rep, int argc, char **argv) {
  int trials = 20;
  const parley__cli_opt opts[] = {
      {"trials", PARLEY__CLI_INT, &trials, "N", "address changes per row [20]", 1, 1000},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  static const int rtts[] = {0, 50};
  double *ms = malloc((size_t)trials * sizeof *ms);
  if (!ms) return 1;
  int rc = 0;
  static const char *const paths[] = {"one-side", "both", "restart"};
  for (int p = 0; p < 3 && rc == 0; p++) {
    for (size_t k = 0; k < sizeof rtts / sizeof rtts[0] && rc == 0; k++) {
      int n = 0, outages = 0;
      while (n < trials && rc == 0) {
        int batch = trials - n < TRIALS_PER_CALL ? trials - n : TRIALS_PER_CALL;
        rc = trials_on_one_call(rtts[k], p, batch, ms, &n, &outages);
      }
      if (n == 0) break;
      bench_row_begin(rep);
      bench_field_str(rep, "path", paths[p]);
      bench_field_int(rep, "signaling_rtt_ms", rtts[k]);
      bench_field_int(rep, "n", n);
      bench_field_num(rep, "p50_ms", bench_quantile(ms, (size_t)n, 0.50), 1);
      bench_field_num(rep, "p95_ms", bench_quantile(ms, (size_t)n, 0.95), 1);
      bench_field_num(rep, "max_ms", bench_quantile(ms, (size_t)n, 1.0), 1);
      bench_field_int(rep, "interrupted", outages);
      bench_row_end(rep);
    }
  }
  free(ms);
  bench_note(rep, "address deleted -> first RTP of the new path on both sides; goal p95 <= 1000 ms with signalling;\n"
                  "restart: no trickle, the fallback ICE restart after 600 ms + 4 RTCP round trips (at most 1 s) "
                  "without media");
  return rc;
}

BENCH_SUITE(handover, "handover", "a side's address changes mid-call: audio back on the new path (needs root)",
            run_handover)
