/* test_handover.c: a call between two parley engines survives its addresses changing (network
 * handover, engine/call_handover.c over transport/ice_mobility.c and the rtnetlink watcher). Each engine
 * sits in a network namespace of its own that the test creates and removes (sim/nscall.h: two veth
 * links, A on 10.66.0.1 at first); the test is the signalling channel (it passes trickled candidates
 * and, on NEGOTIATION_NEEDED, the new offer and answer). A's address is deleted and another added on
 * the other link (and B's too, in the both-sides cases). Checked: media flows both ways again on a new
 * pair, the speech B plays afterwards is A's fixture (correlation), and the events: per side either
 * nothing (seamless) or interrupted(network-lost) then resumed, naming the local address change on the
 * side that moved; an ICE restart (NEGOTIATION_NEEDED) only when the candidates could not be trickled.
 * Skipped without root. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "parley/parley.h"
#include "sim/nscall.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Pumps the signalling for ms milliseconds. */
static void pump_for(parley__nscall *h, int ms) {
  for (int i = 0; i < ms / 5; i++) {
    parley__nscall_pump(h);
    sleep_ms(5);
  }
}

static uint32_t pairs_selected(parley__nscall *h, int side) {
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(h->side[side].call, &st), 0);
  return st.ice_pairs_selected;
}

/* The side's interrupted/resumed events: none, or one outage that ended. */
static void expect_outage_sequence(parley__nscall *h, int side, bool moved) {
  parley_event_kind k[8];
  int n = parley__nscall_outages(h, side, k, 8);
  const char *who = side == 0 ? "A" : "B";
  if (n == 0) {
    cr_log_info("%s: seamless (no interruption)", who);
    return;
  }
  cr_expect_eq(n, 2, "%s: %d interrupted/resumed events", who, n);
  cr_expect_eq(k[0], PARLEY_EVENT_INTERRUPTED);
  cr_expect_eq(k[1], PARLEY_EVENT_RESUMED);
  cr_log_info("%s: interrupted (%s), then resumed (%s)", who, h->side[side].interrupted_msg, h->side[side].resumed_msg);
  if (moved) {
    cr_expect(strstr(h->side[side].interrupted_msg, "EADDRNOTAVAIL") != NULL, "%s", h->side[side].interrupted_msg);
    cr_expect(strstr(h->side[side].resumed_msg, "local address change") != NULL, "%s", h->side[side].resumed_msg);
  }
}

/* Mean correlation of the last 3 s but 0.5 of B's recording with A's fixture (looped), 200 ms pieces
 * each at its best lag near the segment's. */
static double speech_after(const char *recording) {
  size_t nf, nr;
  int rf, rr;
  float *fix = th_load_wav("speech_a_48k.wav", &nf, &rf);
  float *rec = th_read_wav(recording, &nr, &rr);
  cr_assert(fix && rec && rf == 48000 && rr == 48000);
  size_t seg = 3 * 48000, skip = 24000;
  cr_assert_gt(nr, seg + skip + 48000);
  const float *y = rec + nr - skip - seg;
  /* A's capture loops the fixture: three rounds hold every alignment of a 3 s segment. */
  float *x = malloc(nf * 3 * sizeof *x);
  cr_assert_not_null(x);
  for (int r = 0; r < 3; r++) memcpy(x + (size_t)r * nf, fix, nf * sizeof *x);
  double whole = 0;
  long lag = th_best_lag_speech(y, x, seg, (long)nf, &whole);
  double sum = 0;
  int pieces = 0;
  for (size_t p = 0; p + 9600 <= seg; p += 9600) {
    if (th_rms(y + p, 9600) < 0.01) continue;
    long from = lag + (long)p - 4800 > 0 ? lag + (long)p - 4800 : 0;
    double peak = 0;
    (void)th_best_lag(y + p, x + from, 9600, 9600, &peak);
    sum += peak;
    pieces++;
  }
  free(x);
  free(fix);
  free(rec);
  return pieces >= 5 ? sum / pieces : 0;
}

/* A moves (and B too when b_moves); relay: the test passes trickled candidates. */
static void handover(bool b_moves, bool relay) {
  char out_b[] = "/tmp/parley_handover_XXXXXX.wav";
  int fd = mkstemps(out_b, 4);
  cr_assert_geq(fd, 0);
  close(fd);
  parley__nscall_config cfg;
  parley__nscall_config_init(&cfg);
  cfg.relay_candidates = relay;
  cfg.b_moves_too = b_moves;
  cfg.input_a = PARLEY_TEST_DATA "/speech_a_48k.wav";
  cfg.input_b = PARLEY_TEST_DATA "/speech_b_48k.wav";
  cfg.output_b = out_b;
  parley__nscall h;
  const char *why = NULL;
  int r = parley__nscall_create(&h, &cfg, &why);
  if (r == PARLEY_ENOTSUP) {
    parley__nscall_free(&h);
    unlink(out_b);
    cr_skip_test("%s", why);
  }
  cr_assert_eq(r, 0, "set-up: %s (%s)", why, parley_strerror(r));
  for (int i = 0; i < 400 && (parley__nscall_count(&h, 0, PARLEY_EVENT_TRACK_STARTED) == 0 ||
                              parley__nscall_count(&h, 1, PARLEY_EVENT_TRACK_STARTED) == 0);
       i++)
    pump_for(&h, 25);
  cr_assert_eq(parley__nscall_count(&h, 1, PARLEY_EVENT_TRACK_STARTED), 1, "the call runs before the move");
  pump_for(&h, 1500);
  uint32_t sa = pairs_selected(&h, 0), sb = pairs_selected(&h, 1);
  parley__nscall_mark mark;
  parley__nscall_mark_take(&h, &mark);

  int64_t t0 = parley__nscall_now_us();
  cr_assert_eq(parley__nscall_move(&h, 0, 0), 0, "A's address moves to link 1");
  if (b_moves) cr_assert_eq(parley__nscall_move(&h, 1, 0), 0, "B's address moves to link 1");
  int64_t back_us = -1;
  for (int i = 0; i < 3000 && back_us < 0; i++) { /* 15 s at most */
    parley__nscall_pump(&h);
    if (parley__nscall_media_back(&h, &mark)) back_us = parley__nscall_now_us() - t0;
    else sleep_ms(5);
  }
  cr_assert_geq(back_us, 0, "media flows both ways again");
  cr_log_info("media back both ways %lld ms after the address went", (long long)(back_us / 1000));
  pump_for(&h, 3500); /* the recording's last seconds are on the new path; an outage has ended */
  cr_expect_gt(pairs_selected(&h, 0), sa, "A selected a new pair");
  cr_expect_gt(pairs_selected(&h, 1), sb, "B selected a new pair");
  expect_outage_sequence(&h, 0, true);
  expect_outage_sequence(&h, 1, b_moves);
  int negotiations = h.side[0].negotiations + h.side[1].negotiations;
  if (relay) cr_expect_eq(negotiations, 0, "no ICE restart: the new pair was found by checks and trickle");
  else cr_expect_geq(negotiations, 1, "no trickle: a side restarted ICE and asked for an offer");
  cr_expect_eq(h.dropped_msgs, 0);
  parley__nscall_free(&h);
  double corr = speech_after(out_b);
  cr_log_info("B plays A's speech after the move: correlation %.3f", corr);
  cr_expect_geq(corr, 0.5, "B's playout after the move is A's speech: %.3f", corr);
  unlink(out_b);
}

Test(handover, one_side_moves, .timeout = 60) { handover(false, true); }
Test(handover, both_sides_move_with_trickle, .timeout = 60) { handover(true, true); }
Test(handover, both_sides_move_without_trickle_restart_ice, .timeout = 60) { handover(true, false); }
