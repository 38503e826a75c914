/* bench_room_row.c: one row of `parley-bench room` (bench_room.c) through any backend (bench_room.h):
 * N parley participants in one room through the public room API, in this process. The figures:
 *  - join_ms: p50 over participants 1..N-1 (each joins a room where participant 0 plays a tone) of
 *    parley_room_join to the first 10 ms of its playout that carries the tone (RMS above 0.01): the
 *    signalling, ICE, DTLS and (Janus) the server's mix all done, one joiner after the other;
 *  - mouth_to_ear_ms: participant 0 says a speech clip (tests/data/speech_a_48k.wav) while the others
 *    are silent; participant 1's playout is searched for its 1 s pieces (sim/xcorr.h): the wall time at
 *    which a piece's first sample was pulled from 1's engine minus the time it was pushed into 0's
 *    (PARLEY_AUDIO_APP engines, one pump thread pushing and pulling every engine's 10 ms in real
 *    time), the median over the pieces;
 *  - cpu_pct_per_participant: this process's CPU time (getrusage: every engine's threads, the pump,
 *    the signalling) over the talk window, per participant, in percent of one core. A server's (Janus's
 *    mixing) is another process: server_cpu_pct_per_participant, the same for the backend's server_pid
 *    (/proc/PID/stat), -1 when it has none;
 *  - vanish_to_interrupted_ms and vanish_to_members_changed_ms: participant N-1 leaves and a member in a
 *    child process takes its place (the room has N members again); once every member lists it, it gets
 *    the backend's vanish_signal, and the times until the first member here sees it interrupted (-1:
 *    the backend reported no interruption before the removal) and leave the room. Janus notices a
 *    killed member at once over ws:// (its connection closes), over http:// only when the session times
 *    out (its session_timeout, plus up to 2 s of its watchdog; scripts/bench-room-janus.sh runs Janus
 *    with 5 s and passes the ws:// URL). A mesh member is
 *    interrupted when its calls' liveness monitors give up and removed grace_ms later.
 * Threads: the main thread runs the rows; the pump thread moves audio; listeners run on each engine's
 * dispatch thread and take the row's mutex. Real time, not deterministic. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_room.h"
#include "parley/parley.h"
#include "sim/xcorr.h"

#define MAX_N ROOM_MAX_N
#define PERIOD 480 /* 10 ms at 48 kHz */
#define REC_MAX (48000 * 20)

typedef struct room_row {
  int n;
  const room_backend *b;
  int grace_ms;
  parley_engine *e[MAX_N];
  parley_room *room[MAX_N];
  int ids[MAX_N][2];
  bool left[MAX_N];
  pthread_mutex_t mu;
  int closed;                      /* CLOSED delivered, all participants */
  char victim[PARLEY_ROOM_ID_MAX]; /* the member whose events count below; "" = none yet */
  int64_t interrupted_ns, left_ns; /* its first interruption and its leave, 0 before */
  parley_leave_reason left_reason;
  /* audio */
  const float *clip;
  size_t clip_n;
  atomic_bool tone, talk, stop, listen_victim;
  _Atomic int64_t join_ns[MAX_N], heard_ns[MAX_N]; /* join: parley_room_join called; heard: the tone */
  _Atomic int64_t victim_heard_ns[MAX_N];          /* the victim's tone heard, once listened for */
  int64_t clip_t0_ns;   /* when its first sample was pushed */
  float *rec;           /* participant 1's playout */
  size_t rec_n;
  int rec_short;        /* pulls into rec that came back short (the engine's playout late) */
  int64_t rec_t0_ns;    /* when rec[0] was pulled */
} room_row;

static void sleep_ms(long ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

static void on_members(const parley_event *ev, void *user) {
  room_row *r = user;
  pthread_mutex_lock(&r->mu);
  if (r->victim[0] && ev->member && strcmp(ev->member->id, r->victim) == 0) {
    if (ev->leave_reason == PARLEY_LEAVE_NONE && ev->member->interrupted && !r->interrupted_ns)
      r->interrupted_ns = bench_now_ns();
    if (ev->leave_reason != PARLEY_LEAVE_NONE && !r->left_ns) {
      r->left_ns = bench_now_ns();
      r->left_reason = ev->leave_reason;
    }
  }
  pthread_mutex_unlock(&r->mu);
}

static void on_closed(const parley_event *ev, void *user) {
  (void)ev;
  room_row *r = user;
  pthread_mutex_lock(&r->mu);
  r->closed++;
  pthread_mutex_unlock(&r->mu);
}

/* Pushes every engine's capture and pulls its playout, 10 ms at a time, in real time. */
static void *pump(void *arg) {
  room_row *r = arg;
  float silence[PERIOD] = {0}, out[PERIOD], tone[PERIOD];
  for (int k = 0; k < PERIOD; k++) tone[k] = 0.1f * sinf(2.0f * 3.14159265f * 500.0f * (float)k / 48000.0f); /* 5 cycles */
  size_t clip_pos = 0;
  int64_t next = bench_now_ns();
  while (!atomic_load(&r->stop)) {
    for (int i = 0; i < r->n; i++) {
      const float *cap = i == 0 && atomic_load(&r->tone) ? tone : silence;
      if (i == 0 && atomic_load(&r->talk) && clip_pos + PERIOD <= r->clip_n) {
        if (clip_pos == 0) r->clip_t0_ns = bench_now_ns();
        cap = r->clip + clip_pos;
        clip_pos += PERIOD;
      }
      (void)parley_engine_push_capture(r->e[i], cap, PERIOD);
      int got = parley_engine_pull_playout(r->e[i], out, PERIOD);
      double e = 0;
      for (int k = 0; k < PERIOD; k++) e += (double)out[k] * out[k];
      if (i > 0 && atomic_load(&r->join_ns[i]) && !atomic_load(&r->heard_ns[i]) && e > 0.01 * 0.01 * PERIOD)
        atomic_store(&r->heard_ns[i], bench_now_ns());
      if (atomic_load(&r->listen_victim) && !atomic_load(&r->victim_heard_ns[i]) && e > 0.01 * 0.01 * PERIOD)
        atomic_store(&r->victim_heard_ns[i], bench_now_ns());
      if (i == 1 && r->rec_n + PERIOD <= REC_MAX && atomic_load(&r->talk)) {
        if (r->rec_n == 0) r->rec_t0_ns = bench_now_ns();
        memcpy(r->rec + r->rec_n, out, sizeof out);
        r->rec_n += PERIOD;
        r->rec_short += got < PERIOD;
      }
    }
    next += 10000000;
    int64_t wait = next - bench_now_ns();
    if (wait > 0) nanosleep(&(struct timespec){0, (long)wait}, NULL);
  }
  return NULL;
}

static int engine_new(parley_audio_backend audio, bool loopback, parley_engine **e) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = audio;
  cfg.ipv6 = false;
  cfg.loopback_candidates = loopback;
  cfg.frame_ms = 20;
  cfg.echo_cancellation = cfg.noise_suppression = false;
  cfg.opus_dtx = false;
  return parley_engine_new(&cfg, e);
}

/* Joins participant i (slot 0 of a child's row for ROOM_VICTIM) through the row's backend. */
static int join_one(room_row *r, int i) {
  int slot = i == ROOM_VICTIM ? 0 : i;
  char name[32];
  if (i == ROOM_VICTIM)
    snprintf(name, sizeof name, "bench-v");
  else
    snprintf(name, sizeof name, "bench-%d", i);
  parley_room_config rc;
  parley_room_config_init(&rc);
  rc.display_name = name;
  rc.vanish_grace_ms = r->grace_ms;
  int rc_join = r->b->join(r->b->ctx, i, r->e[slot], &rc, &r->room[slot]);
  if (rc_join < 0) return rc_join;
  r->ids[slot][0] = parley_room_on(r->room[slot], PARLEY_EVENT_MEMBERS_CHANGED, on_members, r);
  r->ids[slot][1] = parley_room_on(r->room[slot], PARLEY_EVENT_CLOSED, on_closed, r);
  return 0;
}

/* Waits up to ms for participants 0..count-1 here to list `others` other members each. */
static bool wait_members(room_row *r, int count, int others, long ms) {
  for (long t = 0; t <= ms; t += 20) {
    bool all = true;
    for (int i = 0; i < count; i++) all = all && parley_room_members(r->room[i], NULL, 0) - 1 == others;
    if (all) return true;
    sleep_ms(20);
  }
  return false;
}

/* The member participant 0 lists that is no participant here (the victim), into r->victim. */
static bool find_victim(room_row *r) {
  parley_room_member list[MAX_N + 2], self;
  int n = parley_room_members(r->room[0], list, MAX_N + 2);
  for (int k = 1; k < n && k < MAX_N + 2; k++) {
    bool here = false;
    for (int i = 0; i < r->n && !here; i++)
      here = parley_room_members(r->room[i], &self, 1) >= 1 && strcmp(self.id, list[k].id) == 0;
    if (!here) {
      pthread_mutex_lock(&r->mu);
      snprintf(r->victim, sizeof r->victim, "%s", list[k].id);
      pthread_mutex_unlock(&r->mu);
      return true;
    }
  }
  return false;
}

/* The participant that vanishes: a child process with an engine of its own playing the tone, forked
 * before this process starts the row's threads. It joins when the backend's victim_go says so. Returns
 * its pid (the pipe's write end in *go_fd) or -1. */
static pid_t victim(room_row *r, int *go_fd) {
  int go[2];
  if (pipe(go) != 0) return -1;
  pid_t pid = fork();
  if (pid != 0) {
    close(go[0]);
    *go_fd = go[1];
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  close(go[1]);
  char c;
  if (read(go[0], &c, 1) != 1) _exit(1);
  room_row solo = {.n = 1, .b = r->b, .grace_ms = r->grace_ms, .tone = true};
  pthread_mutex_init(&solo.mu, NULL);
  pthread_t th;
  if (engine_new(PARLEY_AUDIO_APP, r->b->loopback, &solo.e[0]) < 0 || pthread_create(&th, NULL, pump, &solo) != 0 ||
      join_one(&solo, ROOM_VICTIM) < 0)
    _exit(2);
  r->b->victim_serve(r->b->ctx, solo.room[0], go[0]);
  for (;;) pause();
}

/* pid's CPU time (user + system) in seconds, or -1. */
static double proc_cpu_s(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  unsigned long ut, st;
  /* Field 2 (comm) is in parentheses and may hold spaces: parse from its closing one. */
  char line[1024];
  bool ok = f && fgets(line, sizeof line, f) && strrchr(line, ')') &&
            sscanf(strrchr(line, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2;
  if (f) fclose(f);
  return ok ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : -1;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Where each 1 s piece of the clip (every 0.5 s from 0.5 s on) turns up in participant 1's playout, up
 * to 2 s later: the median delay (ms) over the pieces found (correlation above 0.5), their range in
 * *lo..*hi; -1 when fewer than half are found. Pieces, not the whole clip: a jitter buffer that grew
 * under load shrinks again while the clip plays, and the delay with it. */
static double mouth_to_ear(const room_row *r, double *lo, double *hi, int *found_out, int *tried_out) {
  enum { PIECE = 48000, STEP = 24000, MAX_LAG = 96000 };
  double delay[16];
  int found = 0, tried = 0;
  for (size_t o = STEP; o + PIECE <= r->clip_n && tried < 16; o += STEP, tried++) {
    long max_lag = (long)r->rec_n - (long)(o + PIECE);
    if (max_lag > MAX_LAG) max_lag = MAX_LAG;
    double peak = 0;
    long lag = max_lag < 0 ? -1 : parley__xcorr_best_lag(r->clip + o, PIECE, r->rec + o, r->rec_n - o, max_lag, &peak);
    if (lag >= 0 && peak > 0.5)
      delay[found++] = ((double)(r->rec_t0_ns - r->clip_t0_ns) + (double)lag / 48000.0 * 1e9) / 1e6;
  }
  *found_out = found, *tried_out = tried;
  if (!found || found * 2 < tried) return -1;
  *lo = bench_quantile(delay, (size_t)found, 0.0);
  *hi = bench_quantile(delay, (size_t)found, 1.0);
  return bench_quantile(delay, (size_t)found, 0.5);
}

/* Participant i leaves; 0 when it did (its CLOSED follows). */
static int leave(room_row *r, int i) {
  if (!r->room[i] || r->left[i] || parley_room_leave(r->room[i]) != 0) return -1;
  r->left[i] = true;
  return 0;
}

/* Participant n-1 leaves, the victim joins, everyone lists it and hears its tone, it gets the signal: the times until the
 * first member here sees it interrupted and gone into *interrupted and *vanish (-1: not seen). */
static void vanish(room_row *r, pid_t child, double *interrupted, double *vanish) {
  *interrupted = *vanish = -1;
  int n = r->n - 1;
  if (leave(r, n) != 0 || !wait_members(r, n, n - 1, 10000)) {
    fprintf(stderr, "room: %s %d: participant %d's leave not seen by all within 10 s\n", r->b->name, r->n, n);
    return;
  }
  atomic_store(&r->listen_victim, true);
  if (r->b->victim_go(r->b->ctx) != 0 || !wait_members(r, n, n, 20000) || !find_victim(r)) {
    fprintf(stderr, "room: %s %d: the member to vanish not listed by all within 20 s\n", r->b->name, r->n);
    return;
  }
  for (int i = 0, t = 0; i < n && t < 1000; t++) { /* 20 s at most */
    if (atomic_load(&r->victim_heard_ns[i]))
      i++;
    else
      sleep_ms(20);
    if (t == 999) {
      fprintf(stderr, "room: %s %d: participant %d did not hear the member to vanish within 20 s\n", r->b->name, r->n, i);
      return;
    }
  }
  int64_t t0 = bench_now_ns();
  kill(child, r->b->vanish_signal);
  for (int t = 0; t < 6000; t++) { /* 120 s at most */
    pthread_mutex_lock(&r->mu);
    int64_t in = r->interrupted_ns, left = r->left_ns;
    pthread_mutex_unlock(&r->mu);
    if (left) {
      *vanish = (double)(left - t0) / 1e6;
      if (in) *interrupted = (double)(in - t0) / 1e6;
      return;
    }
    sleep_ms(20);
  }
}

int room_run_row(bench_report *rep, const room_backend *b, int n, int grace_ms, const float *clip, size_t clip_n,
                 room_result *out) {
  *out = (room_result){n, -1, -1, -1, -1, -1, -1};
  room_row *r = calloc(1, sizeof *r);
  float *rec = calloc(REC_MAX, sizeof *rec);
  if (!r || !rec) {
    free(r);
    free(rec);
    return 1;
  }
  r->n = n, r->b = b, r->grace_ms = grace_ms, r->clip = clip, r->clip_n = clip_n, r->rec = rec;
  pthread_mutex_init(&r->mu, NULL);
  int go_fd = -1, rc = b->prepare ? b->prepare(b->ctx) : 0;
  pid_t child = rc == 0 ? victim(r, &go_fd) : -1;
  if (child < 0 || (b->start && b->start(b->ctx, go_fd) != 0)) rc = 1;
  for (int i = 0; rc == 0 && i < n; i++)
    if (engine_new(PARLEY_AUDIO_APP, b->loopback, &r->e[i]) < 0) rc = 1;
  pthread_t th;
  bool pumping = rc == 0 && pthread_create(&th, NULL, pump, r) == 0;
  if (!pumping) rc = 1;
  atomic_store(&r->tone, true);
  double join[MAX_N];
  int n_join = 0;
  for (int i = 0; rc == 0 && i < n; i++) { /* one at a time: each hears the tone before the next joins */
    atomic_store(&r->join_ns[i], bench_now_ns());
    int err = join_one(r, i);
    if (err < 0) {
      fprintf(stderr, "room: %s participant %d cannot join: %s\n", b->name, i, parley_strerror(err));
      rc = 1;
    }
    for (int t = 0; rc == 0 && i > 0 && t < 500 && !atomic_load(&r->heard_ns[i]); t++) sleep_ms(20);
    if (i > 0 && atomic_load(&r->heard_ns[i]))
      join[n_join++] = (double)(atomic_load(&r->heard_ns[i]) - atomic_load(&r->join_ns[i])) / 1e6;
  }
  atomic_store(&r->tone, false);
  if (rc == 0 && !wait_members(r, n, n - 1, 20000)) {
    fprintf(stderr, "room: the %d %s participants did not all see each other within 20 s (others listed:", n, b->name);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", parley_room_members(r->room[i], NULL, 0) - 1); /* now */
    fprintf(stderr, ")\n");
    rc = 1;
  }
  double cpu0 = cpu_s(), srv0 = b->server_pid ? proc_cpu_s(b->server_pid) : -1;
  int64_t t0 = bench_now_ns();
  if (rc == 0) {
    sleep_ms(1000); /* jitter buffers settle */
    atomic_store(&r->talk, true);
    sleep_ms(8000);
  }
  double window_s = (double)(bench_now_ns() - t0) / 1e9, srv1 = srv0 >= 0 ? proc_cpu_s(b->server_pid) : -1;
  double cpu_pct = (cpu_s() - cpu0) / window_s * 100.0 / n, srv_pct = srv1 >= 0 ? (srv1 - srv0) / window_s * 100.0 / n : -1;
  double m2e_lo = -1, m2e_hi = -1;
  int pieces = 0, tried = 0;
  double m2e = rc == 0 ? mouth_to_ear(r, &m2e_lo, &m2e_hi, &pieces, &tried) : -1;
  double interrupted = -1, vanished = -1;
  if (rc == 0) vanish(r, child, &interrupted, &vanished);
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  if (go_fd >= 0) close(go_fd);
  atomic_store(&r->stop, true);
  if (pumping) pthread_join(th, NULL);
  int joined = 0;
  for (int i = 0; i < n; i++) joined += r->left[i] || leave(r, i) == 0;
  for (int t = 0; t < 250; t++) { /* CLOSED, 5 s at most */
    pthread_mutex_lock(&r->mu);
    bool all = r->closed >= joined;
    pthread_mutex_unlock(&r->mu);
    if (all) break;
    sleep_ms(20);
  }
  if (b->stop) b->stop(b->ctx);
  for (int i = 0; i < n; i++) {
    if (r->room[i]) {
      (void)parley_room_off(r->room[i], r->ids[i][0]);
      (void)parley_room_off(r->room[i], r->ids[i][1]);
      (void)parley_room_free(r->room[i]);
    }
    parley_engine_free(r->e[i]);
  }
  if (rc == 0) {
    *out = (room_result){n, n_join ? bench_quantile(join, (size_t)n_join, 0.5) : -1, m2e, cpu_pct, srv_pct,
                         interrupted, vanished};
    bench_row_begin(rep);
    bench_field_str(rep, "backend", b->name);
    bench_field_int(rep, "participants", n);
    bench_field_num(rep, "join_ms", out->join_ms, 0);
    bench_field_num(rep, "mouth_to_ear_ms", m2e, 1);
    bench_field_num(rep, "cpu_pct_per_participant", cpu_pct, 2);
    bench_field_num(rep, "server_cpu_pct_per_participant", srv_pct, 2);
    bench_field_num(rep, "vanish_to_interrupted_ms", interrupted, 0);
    bench_field_num(rep, "vanish_to_members_changed_ms", vanished, 0);
    bench_row_end(rep);
    bench_note(rep, "%s %d: tone heard by %d of %d joiners (max %.0f ms); clip found in %d of %d pieces (%.0f..%.0f "
               "ms), participant 1's playout late in %.0f%% of its pulls; this process used %.0f%% of a core; "
               "vanished member left as \"%s\"", b->name, n, n_join, n - 1,
               n_join ? bench_quantile(join, (size_t)n_join, 1.0) : -1, pieces, tried, m2e_lo, m2e_hi,
               r->rec_n ? 100.0 * r->rec_short * PERIOD / (double)r->rec_n : 0, cpu_pct * n,
               vanished >= 0 ? parley_leave_reason_name(r->left_reason) : "(not seen)");
  }
  free(rec);
  free(r);
  return rc;
}
