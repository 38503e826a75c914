/* bench_room.c: `parley-bench room --janus URL`: N parley participants in one Janus AudioBridge room
 * (PARLEY_ROOM_JANUS through the public room API), in this process, rows for N = 3 and 10 (or
 * --participants N). Per row:
 *  - join_ms: p50 over participants 1..N-1 (each joins a room where participant 0 plays a tone) of
 *    parley_room_join to the first 10 ms of its playout that carries the tone (RMS above 0.01): the
 *    session, the join, ICE, DTLS and Janus's mix all done, one after the other;
 *  - mouth_to_ear_ms: participant 0 says a speech clip (tests/data/speech_a_48k.wav) while the others
 *    are silent; participant 1's playout is searched for it (sim/xcorr.h): the wall time at which its
 *    first sample was pulled from 1's engine minus the time it was pushed into 0's (PARLEY_AUDIO_APP
 *    engines, one pump thread pushing and pulling every engine's 10 ms in real time);
 *  - cpu_pct_per_participant: this process's CPU time (getrusage: every engine's threads, the pump,
 *    the Janus clients) over the talk window, per participant, in percent of one core. Janus's own
 *    mixing is another process and is not in it;
 *  - vanish_to_members_changed_ms: one more participant in a child process, killed (SIGKILL) once
 *    every member lists it; the time until the first member here sees it leave. Janus only notices
 *    when the session times out (its session_timeout, plus up to 2 s of its watchdog), so the figure
 *    is the server's setting; scripts/bench-room-janus.sh runs Janus with 5 s.
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
#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/xcorr.h"

#define MAX_N 16
#define PERIOD 480 /* 10 ms at 48 kHz */
#define REC_MAX (48000 * 20)

typedef struct room_row {
  int n;
  parley_engine *e[MAX_N];
  parley_room *room[MAX_N];
  int ids[MAX_N][2];
  pthread_mutex_t mu;
  int closed;              /* CLOSED delivered, all participants */
  int64_t left_ns;         /* first "left" seen, 0 before */
  /* audio */
  const float *clip;
  size_t clip_n;
  atomic_bool tone, talk, stop;
  _Atomic int64_t join_ns[MAX_N], heard_ns[MAX_N]; /* join: parley_room_join called; heard: the tone */
  int64_t clip_t0_ns;   /* when its first sample was pushed */
  float *rec;           /* participant 1's playout */
  size_t rec_n;
  int64_t rec_t0_ns;    /* when rec[0] was pulled */
} room_row;

static void sleep_ms(long ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

static void on_members(const parley_event *ev, void *user) {
  room_row *r = user;
  pthread_mutex_lock(&r->mu);
  if (ev->leave_reason != PARLEY_LEAVE_NONE && !r->left_ns) r->left_ns = bench_now_ns();
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
      (void)parley_engine_pull_playout(r->e[i], out, PERIOD);
      double e = 0;
      for (int k = 0; k < PERIOD; k++) e += (double)out[k] * out[k];
      if (i > 0 && atomic_load(&r->join_ns[i]) && !atomic_load(&r->heard_ns[i]) && e > 0.01 * 0.01 * PERIOD)
        atomic_store(&r->heard_ns[i], bench_now_ns());
      if (i == 1 && r->rec_n + PERIOD <= REC_MAX && atomic_load(&r->talk)) {
        if (r->rec_n == 0) r->rec_t0_ns = bench_now_ns();
        memcpy(r->rec + r->rec_n, out, sizeof out);
        r->rec_n += PERIOD;
      }
    }
    next += 10000000;
    int64_t wait = next - bench_now_ns();
    if (wait > 0) nanosleep(&(struct timespec){0, (long)wait}, NULL);
  }
  return NULL;
}

static int engine_new(parley_audio_backend audio, parley_engine **e) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = audio;
  cfg.ipv6 = false;
  cfg.frame_ms = 20;
  cfg.echo_cancellation = cfg.noise_suppression = false;
  cfg.opus_dtx = false;
  return parley_engine_new(&cfg, e);
}

static int join_one(room_row *r, int i, const char *url, const char *room_id) {
  char name[32];
  snprintf(name, sizeof name, "bench-%d", i);
  parley_room_config rc_cfg;
  parley_room_config_init(&rc_cfg);
  rc_cfg.backend = PARLEY_ROOM_JANUS;
  rc_cfg.room_id = room_id;
  rc_cfg.display_name = name;
  rc_cfg.janus_url = url;
  int rc = parley_room_join(r->e[i], &rc_cfg, &r->room[i]);
  if (rc < 0) return rc;
  r->ids[i][0] = parley_room_on(r->room[i], PARLEY_EVENT_MEMBERS_CHANGED, on_members, r);
  r->ids[i][1] = parley_room_on(r->room[i], PARLEY_EVENT_CLOSED, on_closed, r);
  return 0;
}

/* Waits up to ms for every participant here to list `others` other members. */
static bool wait_members(room_row *r, int others, long ms) {
  for (long t = 0; t <= ms; t += 20) {
    bool all = true;
    for (int i = 0; i < r->n; i++) all = all && parley_room_members(r->room[i], NULL, 0) - 1 >= others;
    if (all) return true;
    sleep_ms(20);
  }
  return false;
}

/* The participant to kill: a child process with an engine of its own (no audio), forked before this
 * process starts the row's threads. It joins when go[1] gets a byte. */
static pid_t victim(int go[2], const char *url, const char *room_id) {
  if (pipe(go) != 0) return -1;
  pid_t pid = fork();
  if (pid != 0) {
    close(go[0]);
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  close(go[1]);
  char c;
  if (read(go[0], &c, 1) != 1) _exit(1);
  room_row solo = {.n = 1};
  pthread_mutex_init(&solo.mu, NULL);
  if (engine_new(PARLEY_AUDIO_NONE, &solo.e[0]) < 0 || join_one(&solo, 0, url, room_id) < 0) _exit(2);
  for (;;) pause();
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int run_row(bench_report *rep, int n, const char *url, const char *room_id, const float *clip, size_t clip_n) {
  room_row *r = calloc(1, sizeof *r);
  float *rec = calloc(REC_MAX, sizeof *rec);
  if (!r || !rec) return 1;
  r->n = n;
  r->clip = clip;
  r->clip_n = clip_n;
  r->rec = rec;
  pthread_mutex_init(&r->mu, NULL);
  int go[2];
  pid_t child = victim(go, url, room_id);
  int rc = child < 0 ? 1 : 0;
  for (int i = 0; rc == 0 && i < n; i++)
    if (engine_new(PARLEY_AUDIO_APP, &r->e[i]) < 0) rc = 1;
  pthread_t th;
  bool pumping = rc == 0 && pthread_create(&th, NULL, pump, r) == 0;
  if (!pumping) rc = 1;
  atomic_store(&r->tone, true);
  double join[MAX_N];
  int n_join = 0;
  for (int i = 0; rc == 0 && i < n; i++) { /* one at a time: each hears the tone before the next joins */
    atomic_store(&r->join_ns[i], bench_now_ns());
    int err = join_one(r, i, url, room_id);
    if (err < 0) {
      fprintf(stderr, "room: participant %d cannot join %s room %s: %s\n", i, url, room_id, parley_strerror(err));
      rc = 1;
    }
    for (int t = 0; rc == 0 && i > 0 && t < 500 && !atomic_load(&r->heard_ns[i]); t++) sleep_ms(20);
    if (i > 0 && atomic_load(&r->heard_ns[i]))
      join[n_join++] = (double)(atomic_load(&r->heard_ns[i]) - atomic_load(&r->join_ns[i])) / 1e6;
  }
  atomic_store(&r->tone, false);
  if (rc == 0 && !wait_members(r, n - 1, 20000)) {
    fprintf(stderr, "room: the %d participants did not all see each other within 20 s (others listed:", n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", parley_room_members(r->room[i], NULL, 0) - 1); /* now */
    fprintf(stderr, ")\n");
    rc = 1;
  }
  double cpu0 = cpu_s();
  int64_t t0 = bench_now_ns();
  if (rc == 0) {
    sleep_ms(1000); /* jitter buffers settle */
    atomic_store(&r->talk, true);
    sleep_ms(8000);
  }
  double cpu_pct = (cpu_s() - cpu0) / ((double)(bench_now_ns() - t0) / 1e9) * 100.0 / n;
  double m2e = -1, peak = 0;
  if (rc == 0 && r->rec_n > 48000 * 3 && r->clip_t0_ns) {
    long lag = parley__xcorr_best_lag(clip + 24000, 96000, rec, r->rec_n, (long)(r->rec_n - 96000 - 1), &peak);
    if (lag >= 0 && peak > 0.5)
      m2e = ((double)r->rec_t0_ns + (double)(lag - 24000) / 48000.0 * 1e9 - (double)r->clip_t0_ns) / 1e6;
  }
  /* The victim joins, everyone lists it, it dies. */
  double vanish = -1;
  if (rc == 0) {
    pthread_mutex_lock(&r->mu);
    r->left_ns = 0;
    pthread_mutex_unlock(&r->mu);
    if (write(go[1], "g", 1) == 1 && wait_members(r, n, 20000)) {
      int64_t killed = bench_now_ns();
      kill(child, SIGKILL);
      for (int t = 0; t < 6000; t++) { /* 120 s at most */
        pthread_mutex_lock(&r->mu);
        int64_t left = r->left_ns;
        pthread_mutex_unlock(&r->mu);
        if (left) {
          vanish = (double)(left - killed) / 1e6;
          break;
        }
        sleep_ms(20);
      }
    }
  }
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(go[1]);
  }
  atomic_store(&r->stop, true);
  if (pumping) pthread_join(th, NULL);
  int joined = 0;
  for (int i = 0; i < n; i++)
    if (r->room[i] && parley_room_leave(r->room[i]) == 0) joined++;
  for (int t = 0; t < 250; t++) { /* CLOSED, 5 s at most */
    pthread_mutex_lock(&r->mu);
    bool all = r->closed >= joined;
    pthread_mutex_unlock(&r->mu);
    if (all) break;
    sleep_ms(20);
  }
  for (int i = 0; i < n; i++) {
    if (r->room[i]) {
      (void)parley_room_off(r->room[i], r->ids[i][0]);
      (void)parley_room_off(r->room[i], r->ids[i][1]);
      (void)parley_room_free(r->room[i]);
    }
    parley_engine_free(r->e[i]);
  }
  if (rc == 0) {
    bench_row_begin(rep);
    bench_field_str(rep, "backend", "janus");
    bench_field_int(rep, "participants", n);
    bench_field_num(rep, "join_ms", n_join ? bench_quantile(join, (size_t)n_join, 0.5) : -1, 0);
    bench_field_num(rep, "mouth_to_ear_ms", m2e, 1);
    bench_field_num(rep, "cpu_pct_per_participant", cpu_pct, 2);
    bench_field_num(rep, "vanish_to_members_changed_ms", vanish, 0);
    bench_row_end(rep);
    bench_note(rep, "%d participants: tone heard by %d of %d joiners (join_ms p50; max %.0f ms); clip found in "
               "participant 1's playout with correlation %.2f", n, n_join, n - 1,
               n_join ? bench_quantile(join, (size_t)n_join, 1.0) : -1, peak);
  }
  free(rec);
  free(r);
  return rc;
}

static int run_room(bench_report *rep, int argc, char **argv) {
  const char *url = NULL, *room_id = "1234";
  int participants = 0;
  const parley__cli_opt opts[] = {
      {"janus", PARLEY__CLI_STRING, &url, "URL", "the Janus HTTP API, e.g. http://127.0.0.1:8088/janus (required)", 0, 0},
      {"room", PARLEY__CLI_STRING, &room_id, "ID", "the AudioBridge room (48 kHz) [1234]", 0, 0},
      {"participants", PARLEY__CLI_INT, &participants, "N", "one row of N participants [rows for 3 and 10]", 2, MAX_N},
  };
  int rc_args = bench_args("--janus URL", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  if (!url) {
    fprintf(stderr, "room: --janus URL is required (scripts/bench-room-janus.sh starts a Janus and passes it)\n");
    return 2;
  }
  size_t clip_n;
  float *clip = bench_load_clip("room", "tests/data/speech_a_48k.wav", &clip_n);
  if (!clip) return 1;
  int rc = 0;
  static const int rows[] = {3, 10};
  for (size_t i = 0; rc == 0 && i < 2; i++) {
    int n = participants ? participants : rows[i];
    rc = run_row(rep, n, url, room_id, clip, clip_n);
    if (participants) break;
  }
  bench_note(rep, "vanish: Janus drops a silent session after its session_timeout (checked every 2 s); that "
             "setting, not parley, bounds it");
  free(clip);
  return rc;
}

BENCH_SUITE(room, "room", "Janus AudioBridge rooms: join, mouth-to-ear, CPU per participant, vanish detection",
            run_room)
