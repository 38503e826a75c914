/* bench_room_mesh.c: the mesh backend of `parley-bench room` (bench_room.h): PARLEY_ROOM_MESH rooms
 * whose signalling (parley-room/1 text messages) this file carries as an app would. Participant i is
 * member "bench-i"; the victim, in a child process, is "bench-v".
 *  - In this process, cfg.send queues a message and the channel thread hands it to the rooms it is for
 *    (parley_room_receive), and to the victim through a pipe once it was told to join.
 *  - The victim's messages come back through a second pipe (a reader thread queues them as from
 *    "bench-v"); in the child, its send writes to that pipe and victim_serve reads the first pipe.
 * Frames on the pipes: two native uint32 lengths (id, text), the id (the peer: `to` from the child,
 * `from` to it, "" = everyone), the text. The victim vanishes by SIGSTOP: its sockets stay open, so no
 * ICMP tells anyone; only the calls' liveness monitors notice (then the room's grace period).
 * Threads: the hooks run on the row's main thread; send on the engines' dispatch threads (or inside
 * parley_room_join / _receive); `rooms_mu` (the room table, held while delivering and while joining, so
 * that no message reaches a room before its handle is known) is taken before `queue_mu`. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_room.h"

#define SLOTS 32

typedef struct msg {
  struct msg *next;
  char from[PARLEY_ROOM_ID_MAX], to[PARLEY_ROOM_ID_MAX];
  char *text;
} msg;

typedef struct mesh_ctx {
  pthread_mutex_t rooms_mu, queue_mu, pipe_mu;
  pthread_cond_t queue_cv;
  parley_room *rooms[SLOTS]; /* under rooms_mu */
  bool victim_on;            /* under rooms_mu: the victim was told to join */
  msg *head, **tail;         /* under queue_mu */
  bool stopping;             /* under queue_mu */
  int to_victim, from_victim[2]; /* pipes: parent -> child (write end), child -> parent */
  pthread_t channel, reader;
  bool threads;
} mesh_ctx;

static mesh_ctx M = {.rooms_mu = PTHREAD_MUTEX_INITIALIZER, .queue_mu = PTHREAD_MUTEX_INITIALIZER,
                     .pipe_mu = PTHREAD_MUTEX_INITIALIZER, .queue_cv = PTHREAD_COND_INITIALIZER};

static void id_of(int i, char *id, size_t cap) {
  if (i == ROOM_VICTIM)
    snprintf(id, cap, "bench-v");
  else
    snprintf(id, cap, "bench-%d", i);
}

static bool write_all(int fd, const void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const char *)p + done, n - done);
    if (w <= 0) return false;
    done += (size_t)w;
  }
  return true;
}

static bool read_all(int fd, void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t r = read(fd, (char *)p + done, n - done);
    if (r <= 0) return false;
    done += (size_t)r;
  }
  return true;
}

static bool write_frame(int fd, const char *id, const char *text) {
  uint32_t len[2] = {(uint32_t)strlen(id), (uint32_t)strlen(text)};
  return write_all(fd, len, sizeof len) && write_all(fd, id, len[0]) && write_all(fd, text, len[1]);
}

/* A frame into id (cap bytes) and *text (malloc'd); false at EOF or on a bad frame. */
static bool read_frame(int fd, char *id, size_t cap, char **text) {
  uint32_t len[2];
  if (!read_all(fd, len, sizeof len) || len[0] >= cap || len[1] > (1u << 20)) return false;
  *text = malloc(len[1] + 1);
  if (!*text || !read_all(fd, id, len[0]) || !read_all(fd, *text, len[1])) {
    free(*text);
    return false;
  }
  id[len[0]] = (*text)[len[1]] = '\0';
  return true;
}

static void enqueue(const char *from, const char *to, const char *text) {
  msg *x = calloc(1, sizeof *x);
  if (!x || !(x->text = strdup(text))) {
    free(x);
    return; /* lost, as on a real channel */
  }
  snprintf(x->from, sizeof x->from, "%s", from);
  snprintf(x->to, sizeof x->to, "%s", to ? to : "");
  pthread_mutex_lock(&M.queue_mu);
  *M.tail = x;
  M.tail = &x->next;
  pthread_cond_signal(&M.queue_cv);
  pthread_mutex_unlock(&M.queue_mu);
}

/* cfg.send in this process; user is the sender's index. */
static int send_here(const char *to, const char *message, void *user) {
  char from[PARLEY_ROOM_ID_MAX];
  id_of((int)(intptr_t)user, from, sizeof from);
  enqueue(from, to, message);
  return 0;
}

/* cfg.send in the child: to the parent's reader thread. */
static int send_from_victim(const char *to, const char *message, void *user) {
  (void)user;
  pthread_mutex_lock(&M.pipe_mu);
  bool ok = write_frame(M.from_victim[1], to ? to : "", message);
  pthread_mutex_unlock(&M.pipe_mu);
  return ok ? 0 : -1;
}

static void deliver(msg *x) {
  pthread_mutex_lock(&M.rooms_mu);
  for (int i = 0; i < SLOTS; i++) {
    char id[PARLEY_ROOM_ID_MAX];
    id_of(i, id, sizeof id);
    if (M.rooms[i] && strcmp(id, x->from) != 0 && (!x->to[0] || strcmp(x->to, id) == 0))
      (void)parley_room_receive(M.rooms[i], x->from, x->text); /* ESTATE after a leave: dropped */
  }
  if (M.victim_on && strcmp(x->from, "bench-v") != 0 && (!x->to[0] || strcmp(x->to, "bench-v") == 0))
    (void)write_frame(M.to_victim, x->from, x->text); /* fails once the victim is dead: lost */
  pthread_mutex_unlock(&M.rooms_mu);
}

static void *channel(void *arg) {
  (void)arg;
  pthread_mutex_lock(&M.queue_mu);
  while (!M.stopping) {
    msg *x = M.head;
    if (!x) {
      pthread_cond_wait(&M.queue_cv, &M.queue_mu);
      continue;
    }
    M.head = x->next;
    if (!M.head) M.tail = &M.head;
    pthread_mutex_unlock(&M.queue_mu);
    deliver(x);
    free(x->text);
    free(x);
    pthread_mutex_lock(&M.queue_mu);
  }
  pthread_mutex_unlock(&M.queue_mu);
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  char to[PARLEY_ROOM_ID_MAX], *text;
  while (read_frame(M.from_victim[0], to, sizeof to, &text)) {
    enqueue("bench-v", to[0] ? to : NULL, text);
    free(text);
  }
  return NULL;
}

static int prepare(void *ctx) {
  (void)ctx;
  M.tail = &M.head;
  M.stopping = M.victim_on = false;
  memset(M.rooms, 0, sizeof M.rooms);
  return pipe(M.from_victim) == 0 ? 0 : -1;
}

static int join(void *ctx, int i, parley_engine *e, parley_room_config *rc, parley_room **out) {
  (void)ctx;
  char id[PARLEY_ROOM_ID_MAX];
  id_of(i, id, sizeof id);
  rc->backend = PARLEY_ROOM_MESH;
  rc->room_id = "bench";
  rc->member_id = id;
  rc->send = i == ROOM_VICTIM ? send_from_victim : send_here;
  rc->user = (void *)(intptr_t)i;
  if (i == ROOM_VICTIM) return parley_room_join(e, rc, out);
  if (i >= SLOTS) return PARLEY_EINVAL;
  pthread_mutex_lock(&M.rooms_mu);
  int err = parley_room_join(e, rc, out);
  if (err == 0) M.rooms[i] = *out;
  pthread_mutex_unlock(&M.rooms_mu);
  return err;
}

static int start(void *ctx, int victim_fd) {
  (void)ctx;
  signal(SIGPIPE, SIG_IGN); /* a write to the dead victim's pipe fails instead */
  close(M.from_victim[1]);
  M.to_victim = victim_fd;
  if (pthread_create(&M.channel, NULL, channel, NULL) != 0) return -1;
  if (pthread_create(&M.reader, NULL, reader, NULL) != 0) {
    pthread_mutex_lock(&M.queue_mu);
    M.stopping = true;
    pthread_cond_signal(&M.queue_cv);
    pthread_mutex_unlock(&M.queue_mu);
    pthread_join(M.channel, NULL);
    return -1;
  }
  M.threads = true;
  return 0;
}

static int victim_go(void *ctx) {
  (void)ctx;
  pthread_mutex_lock(&M.rooms_mu);
  M.victim_on = write(M.to_victim, "g", 1) == 1;
  pthread_mutex_unlock(&M.rooms_mu);
  return M.victim_on ? 0 : -1;
}

static void victim_serve(void *ctx, parley_room *room, int fd) {
  (void)ctx;
  char from[PARLEY_ROOM_ID_MAX], *text;
  while (read_frame(fd, from, sizeof from, &text)) {
    (void)parley_room_receive(room, from, text);
    free(text);
  }
}

/* The child is dead (so the reader sees EOF) and the rooms have left. */
static void stop(void *ctx) {
  (void)ctx;
  if (M.threads) {
    pthread_join(M.reader, NULL);
    pthread_mutex_lock(&M.queue_mu);
    M.stopping = true;
    pthread_cond_signal(&M.queue_cv);
    pthread_mutex_unlock(&M.queue_mu);
    pthread_join(M.channel, NULL);
    M.threads = false;
  }
  close(M.from_victim[0]);
  while (M.head) {
    msg *x = M.head;
    M.head = x->next;
    free(x->text);
    free(x);
  }
  memset(M.rooms, 0, sizeof M.rooms);
}

static const room_backend mesh = {"mesh", true, SIGSTOP, 0, &M, prepare, join, start, victim_go, victim_serve, stop};

const room_backend *room_mesh_backend(void) { return &mesh; }
