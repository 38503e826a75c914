/* example_util.h: the few helpers every example shares (error report, sleep, an in-process offer/answer).
 * Not part of parley's API; each example includes it after defining _POSIX_C_SOURCE. */
#ifndef PARLEY_EXAMPLE_UTIL_H
#define PARLEY_EXAMPLE_UTIL_H

#include <parley/parley.h>
#include <stdio.h>
#include <time.h>

/* Passes err through; prints what failed when it is a parley error code (< 0). */
static inline int check(int err, const char *what) {
  if (err < 0) fprintf(stderr, "%s: %s (%s)\n", what, parley_strerror(err), parley_err_name(err));
  return err;
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* One offer/answer between two calls, then both started. The SDP strings are handed over by a function
 * call here; an app sends them over its own signalling channel. Returns 0 or a parley error code. */
static inline int negotiate(parley_call *offerer, parley_call *answerer) {
  static char offer[8192], answer[8192]; /* 8192 is always enough */
  parley_sdp_error se = {0};
  int err = parley_call_create_offer(offerer, offer, sizeof offer); /* > 0: the offer's length */
  if (err >= 0) err = parley_call_set_local_description(offerer, offer);
  if (err >= 0) err = parley_call_set_remote_description(answerer, PARLEY_SDP_OFFER, offer, &se);
  if (err >= 0) err = parley_call_create_answer(answerer, answer, sizeof answer);
  if (err >= 0) err = parley_call_set_local_description(answerer, answer);
  if (err >= 0) err = parley_call_set_remote_description(offerer, PARLEY_SDP_ANSWER, answer, &se);
  if (err >= 0) err = parley_call_start(offerer);
  if (err >= 0) err = parley_call_start(answerer);
  if (err >= 0) return 0;
  fprintf(stderr, "offer/answer: %s%s%s\n", parley_strerror(err), se.message[0] ? ": " : "", se.message);
  return err;
}

#endif
