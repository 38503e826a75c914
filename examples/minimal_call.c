/* minimal_call.c: the smallest complete parley call. Two engines in one process call each other over
 * loopback UDP (ICE + SDES-SRTP): A plays a WAV file into the call, B writes what it hears to a WAV file.
 * Signaling is a plain function call here; a real app sends the SDP strings over its own channel.
 *
 *   minimal_call [input.wav [output.wav]]     (no input: A sends silence; no output: B discards)
 *
 * Exits 0 when both sides saw the peer's audio start and B saw A hang up (track-stopped, reason bye).
 * Bounded: gives up after 10 s. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <stdatomic.h>
#include <stdio.h>

#include "example_util.h"

typedef struct side {
  const char *name;
  atomic_int track_started, bye, closed;
} side;

/* Listeners run on the engine's dispatch thread, never on the audio thread. */
static void on_event(const parley_event *ev, void *user) {
  side *s = user;
  printf("[%s] %s", s->name, parley_event_kind_name(ev->kind));
  switch (ev->kind) {
  case PARLEY_EVENT_ICE_STATE_CHANGED: printf(" %s", parley_ice_state_name(ev->ice_state)); break;
  case PARLEY_EVENT_SIGNALING_STATE_CHANGED: printf(" %s", parley_signaling_state_name(ev->signaling_state)); break;
  case PARLEY_EVENT_TRACK_STARTED: atomic_store(&s->track_started, 1); break;
  case PARLEY_EVENT_TRACK_STOPPED:
    printf(" (%s)", parley_stop_reason_name(ev->reason));
    if (ev->reason == PARLEY_STOP_BYE) atomic_store(&s->bye, 1);
    break;
  case PARLEY_EVENT_INTERRUPTED: printf(" %s: %s", parley_interrupt_code_name(ev->code), ev->message); break;
  case PARLEY_EVENT_CLOSED: atomic_store(&s->closed, 1); break;
  default: break;
  }
  printf("\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  parley_engine_config ca, cb;
  parley_engine_config_init(&ca);
  ca.loopback_candidates = 1; /* stay on 127.0.0.1 */
  ca.ipv6 = 0;
  cb = ca;
  if (argc > 1) {
    ca.audio = PARLEY_AUDIO_FILE;
    ca.input_file = argv[1];
  }
  if (argc > 2) {
    cb.audio = PARLEY_AUDIO_FILE;
    cb.output_file = argv[2];
  }
  parley_engine *ea = NULL, *eb = NULL;
  if (check(parley_engine_new(&ca, &ea), "engine A") < 0) return 1;
  if (check(parley_engine_new(&cb, &eb), "engine B") < 0) return 1;

  side a = {.name = "A"}, b = {.name = "B"};
  parley_call *call_a, *call_b;
  if (check(parley_call_new(ea, &call_a), "call A") < 0 || check(parley_call_new(eb, &call_b), "call B") < 0)
    return 1;
  int ids_a[PARLEY_EVENT_CALL_KIND_COUNT], ids_b[PARLEY_EVENT_CALL_KIND_COUNT];
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    ids_a[k] = parley_call_on(call_a, (parley_event_kind)k, on_event, &a);
    ids_b[k] = parley_call_on(call_b, (parley_event_kind)k, on_event, &b);
  }

  /* Offer/answer. */
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  if (check(parley_call_create_offer(call_a, offer, sizeof offer), "offer") < 0 ||
      check(parley_call_set_local_description(call_a, offer), "A local") < 0)
    return 1;
  if (check(parley_call_set_remote_description(call_b, PARLEY_SDP_OFFER, offer, &se), "B remote") < 0) {
    fprintf(stderr, "line %d: %s\n", se.line, se.message);
    return 1;
  }
  if (check(parley_call_create_answer(call_b, answer, sizeof answer), "answer") < 0 ||
      check(parley_call_set_local_description(call_b, answer), "B local") < 0 ||
      check(parley_call_set_remote_description(call_a, PARLEY_SDP_ANSWER, answer, &se), "A remote") < 0)
    return 1;
  if (check(parley_call_start(call_a), "start A") < 0 || check(parley_call_start(call_b), "start B") < 0) return 1;

  /* Talk for up to 3 s once both tracks run (give up after 10 s overall). */
  int waited = 0;
  while (waited < 10000 && !(atomic_load(&a.track_started) && atomic_load(&b.track_started))) {
    sleep_ms(10);
    waited += 10;
  }
  sleep_ms(3000);
  parley_call_stats st;
  parley_call_get_stats(call_b, &st);
  printf("B received %llu packets, rtt %.1f ms, jitter buffer %.0f ms\n", (unsigned long long)st.packets_received,
         st.rtt_ms, st.jitter_buffer_ms);

  /* A hangs up; each call's last event is closed, after which it may be freed. */
  parley_call_hangup(call_a);
  for (int i = 0; i < 300 && !(atomic_load(&b.bye) && atomic_load(&a.closed)); i++) sleep_ms(10);
  parley_call_hangup(call_b);
  for (int i = 0; i < 300 && !atomic_load(&b.closed); i++) sleep_ms(10);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    parley_call_off(call_a, ids_a[k]);
    parley_call_off(call_b, ids_b[k]);
  }
  parley_call_free(call_a);
  parley_call_free(call_b);
  parley_engine_free(ea);
  parley_engine_free(eb);
  int ok = atomic_load(&a.track_started) && atomic_load(&b.track_started) && atomic_load(&b.bye) &&
           atomic_load(&a.closed) && atomic_load(&b.closed);
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
