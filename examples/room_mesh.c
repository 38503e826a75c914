/* room_mesh.c: a three-party room (parley_room_*, the mesh backend). Three engines in one process
 * (alice, bob, carol) join room "standup"; parley makes the calls between them itself and only asks the
 * app to carry short text messages (cfg.send), which this example queues and hands back with
 * parley_room_receive() from the main loop, as an app would with its own signalling channel (a
 * WebSocket, the mini-program platform's messaging). Alice speaks (a WAV file); then she mutes, and
 * finally carol leaves.
 *
 *   room_mesh speech.wav       (48 kHz)
 *
 * Exits 0 when every member listed all three with their names, bob and carol heard alice as the
 * speaker, both saw her muted, and both saw carol leave (reason "left") while carol got CLOSED.
 * Bounded: about 10 s. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_util.h"

enum { ALICE, BOB, CAROL, PARTIES };
static const char *const ids[PARTIES] = {"alice", "bob", "carol"};
static const char *const names[PARTIES] = {"Alice", "Bob", "Carol"};

typedef struct party {
  int index;
  parley_engine *eng;
  parley_room *room;
  int listeners[3];
  /* Written by the engine's dispatch thread, read by main. */
  atomic_int heard_alice, saw_alice_muted, saw_carol_left, closed;
} party;

static party parties[PARTIES];

/* The app's signalling channel: a queue of (from, to, text); to NULL = everyone else. */
typedef struct message {
  struct message *next;
  int from;
  char to[PARLEY_ROOM_ID_MAX];
  char *text;
} message;
static pthread_mutex_t channel_lock = PTHREAD_MUTEX_INITIALIZER;
static message *channel_head, **channel_tail = &channel_head;

/* parley calls this to send; it must not block for long, so the message is only queued. */
static int send_message(const char *to, const char *text, void *user) {
  party *p = user;
  message *m = calloc(1, sizeof *m);
  if (!m || !(m->text = malloc(strlen(text) + 1))) {
    free(m);
    return -1;
  }
  strcpy(m->text, text);
  m->from = p->index;
  snprintf(m->to, sizeof m->to, "%s", to ? to : "");
  pthread_mutex_lock(&channel_lock);
  *channel_tail = m;
  channel_tail = &m->next;
  pthread_mutex_unlock(&channel_lock);
  return 0;
}

/* Delivers what is queued to the rooms still joined. */
static void deliver(void) {
  pthread_mutex_lock(&channel_lock);
  message *m = channel_head;
  channel_head = NULL;
  channel_tail = &channel_head;
  pthread_mutex_unlock(&channel_lock);
  while (m) {
    for (int i = 0; i < PARTIES; i++)
      if (i != m->from && parties[i].room && !atomic_load(&parties[i].closed) &&
          (!m->to[0] || strcmp(m->to, ids[i]) == 0))
        (void)parley_room_receive(parties[i].room, ids[m->from], m->text);
    message *next = m->next;
    free(m->text);
    free(m);
    m = next;
  }
}

/* Room listeners run on the engine's dispatch thread. */
static void on_members(const parley_event *ev, void *user) {
  party *p = user;
  const parley_room_member *mb = ev->member;
  printf("[%s] members-changed: %s (%s)%s%s, %s, %zu member(s)\n", ids[p->index], mb->id, mb->name,
         mb->muted ? " muted" : "", mb->interrupted ? " interrupted" : "", parley_leave_reason_name(ev->leave_reason),
         ev->count);
  if (strcmp(mb->id, "alice") == 0 && mb->muted) atomic_store(&p->saw_alice_muted, 1);
  if (strcmp(mb->id, "carol") == 0 && ev->leave_reason == PARLEY_LEAVE_LEFT) atomic_store(&p->saw_carol_left, 1);
}

static void on_speakers(const parley_event *ev, void *user) {
  party *p = user;
  printf("[%s] speakers-changed:", ids[p->index]);
  for (size_t i = 0; i < ev->count; i++) printf(" %s", ev->speaker_ids[i]);
  printf("%s\n", ev->count ? "" : " nobody");
  if (ev->count > 0 && strcmp(ev->speaker_ids[0], "alice") == 0) atomic_store(&p->heard_alice, 1);
}

static void on_closed(const parley_event *ev, void *user) {
  party *p = user;
  printf("[%s] closed: %s\n", ids[p->index], parley_leave_reason_name(ev->leave_reason));
  atomic_store(&p->closed, 1);
}

static int index_of(const char *id) {
  for (int k = 0; k < PARTIES; k++)
    if (strcmp(ids[k], id) == 0) return k;
  return -1;
}

/* Every member lists all three, names included. */
static int converged(void) {
  for (int i = 0; i < PARTIES; i++) {
    parley_room_member list[PARLEY_ROOM_MESH_MAX_MEMBERS];
    int n = parley_room_members(parties[i].room, list, PARLEY_ROOM_MESH_MAX_MEMBERS);
    if (n != PARTIES) return 0;
    for (int k = 0; k < n; k++) {
      int who = index_of(list[k].id);
      if (who < 0 || strcmp(list[k].name, names[who]) != 0) return 0;
    }
  }
  return 1;
}

/* Runs the channel for up to ms, or until done() says so. */
static void run(int ms, int (*done)(void)) {
  for (int waited = 0; waited < ms && !(done && done()); waited += 10) {
    deliver();
    sleep_ms(10);
  }
}

static int heard(void) { return atomic_load(&parties[BOB].heard_alice) && atomic_load(&parties[CAROL].heard_alice); }
static int muted(void) {
  return atomic_load(&parties[BOB].saw_alice_muted) && atomic_load(&parties[CAROL].saw_alice_muted);
}
static int carol_gone(void) {
  return atomic_load(&parties[ALICE].saw_carol_left) && atomic_load(&parties[BOB].saw_carol_left) &&
         atomic_load(&parties[CAROL].closed);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: room_mesh speech.wav\n");
    return 2;
  }
  for (int i = 0; i < PARTIES; i++) {
    party *p = &parties[i];
    p->index = i;
    parley_engine_config cfg;
    parley_engine_config_init(&cfg);
    cfg.loopback_candidates = true; /* stay on 127.0.0.1 */
    cfg.ipv6 = false;
    if (i == ALICE) {
      cfg.audio = PARLEY_AUDIO_FILE;
      cfg.input_file = argv[1];
      cfg.input_file_end = PARLEY_INPUT_END_LOOP;
    }
    if (check(parley_engine_new(&cfg, &p->eng), ids[i]) < 0) return 1;
    parley_room_config rc;
    parley_room_config_init(&rc);
    rc.backend = PARLEY_ROOM_MESH;
    rc.room_id = "standup";
    rc.member_id = ids[i];
    rc.display_name = names[i];
    rc.send = send_message;
    rc.user = p;
    if (check(parley_room_join(p->eng, &rc, &p->room), "join") < 0 ||
        check(p->listeners[0] = parley_room_on(p->room, PARLEY_EVENT_MEMBERS_CHANGED, on_members, p), "on") < 0 ||
        check(p->listeners[1] = parley_room_on(p->room, PARLEY_EVENT_SPEAKERS_CHANGED, on_speakers, p), "on") < 0 ||
        check(p->listeners[2] = parley_room_on(p->room, PARLEY_EVENT_CLOSED, on_closed, p), "on") < 0)
      return 1;
  }
  run(5000, converged);
  int ok = converged();
  run(4000, heard);
  check(parley_room_set_mute_microphone(parties[ALICE].room, true), "mute");
  run(2000, muted);
  check(parley_room_leave(parties[CAROL].room), "leave");
  run(2000, carol_gone);
  ok &= heard() && muted() && carol_gone();

  /* Everyone else leaves; after CLOSED, listeners off, then the room and the engine are freed. */
  for (int i = 0; i < PARTIES; i++) {
    party *p = &parties[i];
    if (!atomic_load(&p->closed)) check(parley_room_leave(p->room), "leave");
    for (int waited = 0; waited < 2000 && !atomic_load(&p->closed); waited += 10) sleep_ms(10);
    for (int k = 0; k < 3; k++) parley_room_off(p->room, p->listeners[k]);
    check(parley_room_free(p->room), "free");
    p->room = NULL;
    parley_engine_free(p->eng);
  }
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
