/* test_lifetime.c: memory the audio thread may hold is never freed under it. The engine runs in
 * PARLEY_AUDIO_APP_CALLBACK mode, so the test thread is the audio thread: a period "in progress" is
 * made by marking the audio thread busy, as a device callback that stalls mid-period would leave it.
 * Run under AddressSanitizer (.ci/run) a use after free is a crash, not a silent pass. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"
#include "tests/call_helpers.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static parley_engine *app_engine(void) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_APP_CALLBACK;
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  return e;
}

static int retired(parley_engine *e) {
  pthread_mutex_lock(&e->lock);
  int n = e->n_retired;
  pthread_mutex_unlock(&e->lock);
  return n;
}

/* Two app-callback engines with a call between them, negotiated and started: A's media is published. */
static void connected_pair(parley_engine **ea, parley_engine **eb, parley_call **a, parley_call **b) {
  *ea = app_engine();
  *eb = app_engine();
  cr_assert_eq(parley_call_new(*ea, a), 0);
  cr_assert_eq(parley_call_new(*eb, b), 0);
  static char offer[8192], answer[8192];
  th_negotiate(*a, *b, offer, answer, sizeof offer);
}

Test(lifetime, call_media_outlives_a_stalled_audio_period, .timeout = 30) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  connected_pair(&ea, &eb, &a, &b);
  float in[960] = {0}, out[960];
  for (int i = 0; i < 5; i++) cr_assert_eq(parley_engine_process(ea, in, out, 960), 0);

  /* The audio thread "stalls" inside a period in which it loaded A's media. */
  parley__call_media *m = atomic_load(&ea->slots[0]);
  cr_assert_not_null(m);
  atomic_store(&ea->audio_busy, 1);
  cr_assert_eq(parley_call_free(a), 0); /* the hangup's teardown runs while the period is stalled */
  cr_expect_null(atomic_load(&ea->slots[0]), "unpublished at once");
  cr_expect_eq(retired(ea), 1, "parked, not freed, while the period lasts");
  /* Still valid memory: the stalled period may read it (ASan turns a free into a crash here). */
  volatile parley__call_media *held = m;
  cr_expect_not_null(held->recv);
  cr_expect_not_null(held->rx);
  /* What a period reads of the call itself (mute, volume) is the media's too, not the freed call's. */
  cr_expect(!atomic_load(&held->muted));
  cr_expect_eq(atomic_load(&held->volume_pct), 100);
  sleep_ms(300);
  cr_expect_eq(retired(ea), 1, "a stall of any length keeps it parked");

  /* The period ends: the network thread frees it (it runs at least every 100 ms). */
  atomic_store(&ea->audio_busy, 0);
  int n = 1;
  for (int i = 0; i < 100 && (n = retired(ea)) != 0; i++) sleep_ms(10);
  cr_expect_eq(n, 0, "freed once the period ended");
  cr_assert_eq(parley_engine_process(ea, in, out, 960), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

Test(lifetime, engine_free_with_a_stalled_period_frees_after_the_audio_stops, .timeout = 30) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  connected_pair(&ea, &eb, &a, &b);
  atomic_store(&ea->audio_busy, 1);
  cr_assert_eq(parley_call_free(a), 0);
  cr_expect_eq(retired(ea), 1);
  /* Freeing the engine stops the audio first (here: the app stops calling process); the parked media
   * is freed then, not leaked (LeakSanitizer in .ci/run). */
  parley_engine_free(ea);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(eb);
}

Test(lifetime, media_is_freed_at_once_outside_a_period) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  connected_pair(&ea, &eb, &a, &b);
  cr_assert_eq(parley_call_free(a), 0);
  cr_expect_eq(retired(ea), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}
