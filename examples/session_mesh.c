/* session_mesh.c: a three-party call as a mesh. Three engines in one process (Alice, Bob, Carol) each
 * call the other two over loopback UDP, so every pair has its own call (ICE + SDES-SRTP). Each engine
 * joins its two calls into a session (parley_session_*): one capture sent on both calls (each call
 * encodes it for its own peer), and one mix of both calls' audio with an active-speaker ranking.
 * Alice speaks (a WAV file); Bob and Carol are silent. A real app runs one engine per process and
 * sends the SDP strings over its own signalling.
 *
 *   session_mesh speech.wav       (48 kHz: a session needs the engine at 48000 Hz)
 *
 * Exits 0 when every session reported members-changed up to two members and back to none, and Bob's
 * and Carol's sessions each named their call with Alice as the loudest speaker. Bounded: about 10 s. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <stdatomic.h>
#include <stdio.h>

#include "example_util.h"

enum { ALICE, BOB, CAROL, PARTIES };
static const char *const names[PARTIES] = {"Alice", "Bob", "Carol"};

typedef struct party {
  const char *name;
  parley_engine *eng;
  parley_session *session;
  parley_call *calls[PARTIES]; /* calls[k]: the call with party k (NULL for itself) */
  int listeners[2];            /* session listener ids, for parley_session_off */
  /* Written by the engine's dispatch thread, read by main. */
  atomic_int members_max, members_now;
  atomic_int heard_alice; /* a speakers-changed event ranked the call with Alice first */
} party;

static party parties[PARTIES];

/* Which party is at the other end of one of p's calls. */
static const char *peer_name(const party *p, const parley_call *c) {
  for (int k = 0; k < PARTIES; k++)
    if (c && p->calls[k] == c) return names[k];
  return "?";
}

/* Session listeners run on the engine's dispatch thread, never on the audio thread. */
static void on_members(const parley_event *ev, void *user) {
  party *p = user;
  printf("[%s] members-changed: %s, %zu member(s)\n", p->name, peer_name(p, ev->call), ev->count);
  atomic_store(&p->members_now, (int)ev->count);
  if ((int)ev->count > atomic_load(&p->members_max)) atomic_store(&p->members_max, (int)ev->count);
}

static void on_speakers(const parley_event *ev, void *user) {
  party *p = user;
  printf("[%s] speakers-changed:", p->name);
  for (size_t i = 0; i < ev->count; i++) printf(" %s", peer_name(p, ev->speakers[i]));
  printf("%s\n", ev->count ? "" : " nobody");
  if (ev->count > 0 && ev->speakers[0] == p->calls[ALICE]) atomic_store(&p->heard_alice, 1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: session_mesh speech.wav\n");
    return 2;
  }
  for (int i = 0; i < PARTIES; i++) {
    party *p = &parties[i];
    p->name = names[i];
    parley_engine_config cfg;
    parley_engine_config_init(&cfg);
    cfg.loopback_candidates = true; /* stay on 127.0.0.1 */
    cfg.ipv6 = false;
    if (i == ALICE) { /* Alice talks; Bob and Carol have no audio I/O (silence in, playout discarded) */
      cfg.audio = PARLEY_AUDIO_FILE;
      cfg.input_file = argv[1];
    }
    if (check(parley_engine_new(&cfg, &p->eng), p->name) < 0) return 1;
    /* The session and its listeners first, so that no members-changed event is missed. */
    if (check(parley_session_new(p->eng, &p->session), "session") < 0 ||
        check(p->listeners[0] = parley_session_on(p->session, PARLEY_EVENT_MEMBERS_CHANGED, on_members, p),
              "listen") < 0 ||
        check(p->listeners[1] = parley_session_on(p->session, PARLEY_EVENT_SPEAKERS_CHANGED, on_speakers, p),
              "listen") < 0)
      return 1;
  }

  /* The mesh: one call for every pair, joined into both parties' sessions. */
  for (int i = 0; i < PARTIES; i++)
    for (int k = 0; k < PARTIES; k++)
      if (k != i && (check(parley_call_new(parties[i].eng, &parties[i].calls[k]), "call") < 0 ||
                     check(parley_session_join(parties[i].session, parties[i].calls[k]), "join") < 0))
        return 1;
  for (int i = 0; i < PARTIES; i++)
    for (int k = i + 1; k < PARTIES; k++)
      if (negotiate(parties[i].calls[k], parties[k].calls[i]) < 0) return 1;

  /* Wait until Bob and Carol both rank Alice as the loudest speaker (at most 8 s). */
  for (int waited = 0; waited < 8000; waited += 20) {
    if (atomic_load(&parties[BOB].heard_alice) && atomic_load(&parties[CAROL].heard_alice)) break;
    sleep_ms(20);
  }

  /* Everyone leaves: the sessions report the members going. Then hang up; a call may be freed once it
   * has no listeners (these calls have none of their own), and a session once it is empty. */
  for (int i = 0; i < PARTIES; i++)
    for (int k = 0; k < PARTIES; k++)
      if (k != i) check(parley_session_leave(parties[i].session, parties[i].calls[k]), "leave");
  for (int waited = 0; waited < 2000; waited += 20) {
    int left = 1;
    for (int i = 0; i < PARTIES; i++) left &= atomic_load(&parties[i].members_now) == 0;
    if (left) break;
    sleep_ms(20);
  }
  int ok = 1;
  for (int i = 0; i < PARTIES; i++) {
    party *p = &parties[i];
    ok &= atomic_load(&p->members_max) == PARTIES - 1 && atomic_load(&p->members_now) == 0;
    if (i != ALICE) ok &= atomic_load(&p->heard_alice);
    for (int k = 0; k < PARTIES; k++)
      if (k != i) {
        parley_call_hangup(p->calls[k]);
        parley_call_free(p->calls[k]);
      }
  }
  for (int i = 0; i < PARTIES; i++) {
    parley_session_off(parties[i].session, parties[i].listeners[0]);
    parley_session_off(parties[i].session, parties[i].listeners[1]);
    check(parley_session_free(parties[i].session), "session free");
    parley_engine_free(parties[i].eng);
  }
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
