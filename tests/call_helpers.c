/* call_helpers.c: see call_helpers.h. */
#include "tests/call_helpers.h"

#include <criterion/criterion.h>

void th_negotiate(parley_call *a, parley_call *b, char *offer, char *answer, size_t cap) {
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(a, offer, cap), 0, "create offer");
  cr_assert_eq(parley_call_set_local_description(a, offer), 0, "offerer: local description");
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), 0, "answerer: %s", se.message);
  cr_assert_gt(parley_call_create_answer(b, answer, cap), 0, "create answer");
  cr_assert_eq(parley_call_set_local_description(b, answer), 0, "answerer: local description");
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "offerer: %s", se.message);
  cr_assert_eq(parley_call_start(a), 0, "offerer: start");
  cr_assert_eq(parley_call_start(b), 0, "answerer: start");
}

parley_engine *th_null_engine(void) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  parley_engine *e = NULL;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  cr_assert_not_null(e);
  return e;
}
