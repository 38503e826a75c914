/* test_room_janus.c: parley in a real Janus AudioBridge room (Debian's janus, never a mock). Each test
 * starts its own janus process through scripts/janus-room.sh (a configuration with the HTTP and the
 * WebSocket transports on 127.0.0.1 and the AudioBridge plugin, room 1234 at 48 kHz with talking events), in a
 * network namespace of its own: Janus's libnice does not gather loopback addresses, so the namespace
 * has a veth pair, 10.77.0.1 and 10.77.0.2, both ends here (accept_local); Janus gathers on pj1.
 *
 * client_*: participants on the Janus client (transport/janus.h) with parley calls. Two: each hears the
 * other's speech through Janus's mix (piecewise correlation with the fixture it sent) and not its own
 * (mix-minus), sees the other join with its name, and Janus's talking events arrive for both. One
 * killed (SIGKILL, a child process): the other sees it leave once Janus times its session out.
 *
 * three_members_*: the room API (PARLEY_ROOM_JANUS, engine/room_janus.c). Alice and Bob here, Carol
 * `parley-call room` in a child process (Alice's clip reversed: speech-like, unlike both clips, and
 * its printed timeline must list the other two); all loop their clips. Each
 * hears both others and not itself; members are listed by name, the local user first; speakers events
 * name the others; Carol killed -> members-changed (left) at both; Bob mutes -> Alice sees him muted
 * and hears silence; every UDP datagram into the namespace dropped (nft) -> the room is interrupted,
 * and resumed once they pass again. The delays are logged, not asserted (parley-bench room measures).
 * vanish_over_websocket_*: the same members over ws:// with a 60 s session_timeout: Carol killed ->
 * members-changed (left) at both long before that, since Janus ends a session whose WebSocket closed.
 * frozen_over_websocket_*: Carol stopped (SIGSTOP) instead, session_timeout 3 s: she leaves when her
 * session times out (her connection stays open).
 * engine_free_*: an engine freed with its room joined says goodbye to Janus: the other sees it leave.
 * kicked_*: a moderator's kick (tests/interop/janus_kick.py) closes the member's room, reason KICKED.
 * join_without_janus_*: nothing at the URL is PARLEY_ENETWORK; a room id that is no number, EINVAL. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "interop_helpers.h"
#include "parley/parley.h"
#include "transport/janus.h"

#define JANUS_URL "http://127.0.0.1:8088/janus"
#define JANUS_WS_URL "ws://127.0.0.1:8188/"
#define ROOM 1234
#define JANUS_SCRIPT PARLEY_TEST_DATA "/../../scripts/janus-room.sh"

static void sleep_ms(long ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Janus, started and stopped by the test ---- */

typedef struct janus_proc {
  pid_t pid;
  char dir[64];
} janus_proc;

/* The namespace, then scripts/janus-room.sh (the configuration, then exec janus) in a child that dies
 * with the test, and a wait (10 s at most) for its HTTP API. */
static void janus_start(janus_proc *jp, int session_timeout_s) {
  cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): run as root");
  cr_assert_eq(system("ip link set lo up && ip link add pj0 type veth peer name pj1 && "
                      "ip addr add 10.77.0.1/24 dev pj0 && ip addr add 10.77.0.2/24 dev pj1 && "
                      "ip link set pj0 up && ip link set pj1 up && "
                      "sysctl -q -w net.ipv4.conf.pj0.accept_local=1 net.ipv4.conf.pj1.accept_local=1"),
               0, "veth set-up failed");
  if (access("/usr/bin/janus", X_OK) != 0) cr_assert_fail("janus is not installed (scripts/install-deps.sh)");
  snprintf(jp->dir, sizeof jp->dir, "/tmp/parley_janus_XXXXXX");
  cr_assert(mkdtemp(jp->dir));
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", session_timeout_s);
  jp->pid = fork();
  cr_assert_geq(jp->pid, 0);
  if (jp->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test (kept across the script's exec) */
    execl("/bin/sh", "sh", JANUS_SCRIPT, jp->dir, timeout, "pj1", (char *)NULL);
    _exit(127);
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "curl -s -o /dev/null --max-time 1 %s/info", JANUS_URL);
  bool http = false, ws = false;
  for (int i = 0; i < 100 && !(http && ws); i++) {
    http = http || system(cmd) == 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8188), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ws = ws || (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    if (fd >= 0) close(fd);
    if (!(http && ws)) sleep_ms(100);
  }
  cr_assert(http && ws, "janus did not answer on %s and %s within 10 s (log: %s/janus.log)", JANUS_URL, JANUS_WS_URL,
            jp->dir);
}

static void janus_stop(janus_proc *jp) {
  kill(jp->pid, SIGTERM);
  int status;
  for (int i = 0; i < 50 && waitpid(jp->pid, &status, WNOHANG) == 0; i++) sleep_ms(100);
  kill(jp->pid, SIGKILL);
  waitpid(jp->pid, &status, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", jp->dir);
  if (!getenv("PARLEY_TEST_KEEP")) (void)system(cmd); /* PARLEY_TEST_KEEP=1 keeps janus.log */
}

/* ---- a participant on the Janus client ---- */

typedef struct part {
  const char *name, *says;
  char out[64];
  parley_engine *e;
  parley_call *c;
  parley__janus *j;
  pthread_mutex_t mu;
  char *answer;
  uint64_t self;
  int joined, talking, stopped_talking, errors;
  uint64_t left; /* the last participant seen leaving */
  uint64_t others[8]; /* ids seen joining */
  char other_names[8][PARLEY__JANUS_NAME_MAX];
  int n_others;
} part;

static void on_janus(const parley__janus_event *ev, void *user) {
  part *p = user;
  pthread_mutex_lock(&p->mu);
  switch (ev->kind) {
  case PARLEY__JANUS_JOINED:
    p->self = ev->id;
    p->joined++;
    __attribute__((fallthrough)); /* the participants already there */
  case PARLEY__JANUS_PARTICIPANTS:
    for (size_t i = 0; i < ev->count; i++) {
      bool known = false;
      for (int k = 0; k < p->n_others; k++) known |= p->others[k] == ev->participants[i].id;
      if (!known && p->n_others < 8) {
        p->others[p->n_others] = ev->participants[i].id;
        snprintf(p->other_names[p->n_others++], PARLEY__JANUS_NAME_MAX, "%s", ev->participants[i].display);
      }
    }
    break;
  case PARLEY__JANUS_ANSWER:
    free(p->answer);
    p->answer = strdup(ev->sdp);
    break;
  case PARLEY__JANUS_LEAVING: p->left = ev->id; break;
  case PARLEY__JANUS_TALKING: p->talking++; break;
  case PARLEY__JANUS_STOPPED_TALKING: p->stopped_talking++; break;
  case PARLEY__JANUS_ERROR:
    p->errors++;
    cr_log_warn("%s: Janus error %d %s", p->name, ev->error_code, ev->message);
    break;
  default: break;
  }
  pthread_mutex_unlock(&p->mu);
}

static void part_join(part *p) {
  pthread_mutex_init(&p->mu, NULL);
  snprintf(p->out, sizeof p->out, "/tmp/parley_janus_rec_XXXXXX.wav");
  int fd = mkstemps(p->out, 4);
  cr_assert_geq(fd, 0);
  close(fd);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ipv6 = false;
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = p->says;
  cfg.output_file = p->out;
  cfg.input_file_at_media = true;
  cfg.echo_cancellation = cfg.noise_suppression = false;
  cfg.opus_dtx = false;
  cr_assert_eq(parley_engine_new(&cfg, &p->e), 0);
  cr_assert_eq(parley_call_new(p->e, &p->c), 0);
  char err[256];
  cr_assert_eq(parley__janus_open(JANUS_URL, on_janus, p, &p->j, err, sizeof err), 0, "%s", err);
  static char offer[8192];
  cr_assert_gt(parley_call_create_offer(p->c, offer, sizeof offer), 0);
  cr_assert_eq(parley_call_set_local_description(p->c, offer), 0);
  cr_assert_eq(parley__janus_join(p->j, ROOM, p->name, NULL, false, offer, err, sizeof err), 0, "%s", err);
  char *answer = NULL;
  for (int i = 0; i < 500 && !answer; i++) {
    pthread_mutex_lock(&p->mu);
    if (p->answer) answer = strdup(p->answer);
    pthread_mutex_unlock(&p->mu);
    if (!answer) sleep_ms(10);
  }
  cr_assert(answer, "%s: no answer from Janus within 5 s", p->name);
  parley_sdp_error se;
  cr_assert_eq(parley_call_set_remote_description(p->c, PARLEY_SDP_ANSWER, answer, &se), 0, "%s\n%s", se.message,
               answer);
  cr_expect(strstr(answer, "ssrc-audio-level"), "%s: Janus negotiated no audio-level extension:\n%s", p->name,
            answer);
  free(answer);
  cr_assert_eq(parley_call_start(p->c), 0);
}

static void part_leave(part *p) {
  parley__janus_close(p->j);
  p->j = NULL;
  (void)parley_call_hangup(p->c);
  sleep_ms(50);
  cr_expect_eq(parley_call_free(p->c), 0);
  parley_engine_free(p->e); /* finalises the recording */
  free(p->answer);
}

/* How well the clip at path (6 s; played once or looped, from any point) is heard in y: the lag of 2 s
 * of it within one clip length of y (coarse), then th_piecewise_speech on the clip (repeated, from the
 * phase found) and y (from the point found), so that the clip sits 0.5 s into y. 0 when y is too short:
 * it needs 6.5 s from that point (a looped clip heard from its middle: 12 s in all). */
static double heard_clip(const char *path, const float *y, size_t ny) {
  size_t n;
  int rate;
  float *x = th_read_wav(path, &n, &rate);
  cr_assert(x && n > 96000, "%s", path);
  if (ny < 96000 + 312000) {
    free(x);
    return 0;
  }
  float *x3 = malloc(3 * n * sizeof *x3);
  cr_assert(x3);
  for (int k = 0; k < 3; k++) memcpy(x3 + k * n, x, n * sizeof *x);
  double whole;
  long max_lag = (long)(ny - 96000 < n ? ny - 96000 : n) - 1;
  long lag = th_best_lag_speech(x + 24000, y, 96000, max_lag, &whole); /* y[lag + i] ~ x[24000 + i] */
  size_t skip_y = lag > 48000 ? (size_t)(lag - 48000) : 0, phase = lag > 48000 ? 0 : (size_t)(48000 - lag);
  double r = ny - skip_y >= 312000 ? th_piecewise_speech(x3 + phase, 3 * n - phase, y + skip_y, ny - skip_y) : 0;
  free(x3);
  free(x);
  return r;
}

/* The recording at path holds each of said[0..n) (at least min_peak: 0.6 for one talker, less for one
 * of two in a mix) and not `own` (what who said: the control). */
static void heard(const char *who, const char *path, const char *const *said, int n, const char *own, double min_peak) {
  size_t ny;
  int rate;
  float *y = th_read_wav(path, &ny, &rate);
  cr_assert(y, "%s: unreadable recording %s", who, path);
  double control = heard_clip(own, y, ny);
  for (int i = 0; i < n; i++) {
    double peak = heard_clip(said[i], y, ny);
    cr_log_info("%s heard %s: piecewise correlation %.3f (its own speech %.3f), %.1f s recorded", who, said[i], peak,
                control, (double)ny / 48000);
    cr_expect_geq(peak, min_peak, "%s: correlation with %s %.3f", who, said[i], peak);
    cr_expect_lt(control, peak * 0.75, "%s: own speech %.3f vs %.3f", who, control, peak);
  }
  free(y);
}

#define SPEECH_A PARLEY_TEST_DATA "/speech_a_48k.wav"
#define SPEECH_B PARLEY_TEST_DATA "/speech_b_48k.wav"

Test(room_janus, client_two_participants_hear_each_other, .timeout = 120) {
  janus_proc jp;
  int64_t t_start = mono_ms();
  janus_start(&jp, 60);
  cr_log_info("janus up after %lld ms", (long long)(mono_ms() - t_start));
  part a = {.name = "Alice", .says = SPEECH_A}, b = {.name = "Bob", .says = SPEECH_B};
  part_join(&a);
  part_join(&b);
  cr_log_info("joined after %lld ms", (long long)(mono_ms() - t_start));
  sleep_ms(9000); /* the 6 s clips, and heard_clip needs 8.5 s */
  pthread_mutex_lock(&a.mu);
  pthread_mutex_lock(&b.mu);
  cr_expect_eq(a.joined, 1);
  cr_expect_eq(b.joined, 1);
  cr_expect(a.self && b.self && a.self != b.self);
  cr_expect_eq(a.n_others, 1, "Alice sees Bob join");
  cr_expect_eq(a.others[0], b.self);
  cr_expect_str_eq(a.other_names[0], "Bob");
  cr_expect_eq(b.n_others, 1, "Bob finds Alice there");
  cr_expect_str_eq(b.other_names[0], "Alice");
  cr_log_info("talking events: Alice saw %d/%d, Bob %d/%d", a.talking, a.stopped_talking, b.talking,
              b.stopped_talking);
  cr_expect_geq(a.talking, 2, "talking: both of them, as Alice sees it");
  cr_expect_geq(b.talking, 2, "talking: both of them, as Bob sees it");
  cr_expect_eq(a.errors + b.errors, 0);
  pthread_mutex_unlock(&b.mu);
  pthread_mutex_unlock(&a.mu);
  int64_t t0 = mono_ms();
  part_leave(&a);
  part_leave(&b);
  int64_t t1 = mono_ms();
  janus_stop(&jp);
  cr_log_info("leave %lld ms, janus stop %lld ms", (long long)(t1 - t0), (long long)(mono_ms() - t1));
  heard("Alice", a.out, (const char *[]){SPEECH_B}, 1, SPEECH_A, 0.6);
  heard("Bob", b.out, (const char *[]){SPEECH_A}, 1, SPEECH_B, 0.6);
  unlink(a.out);
  unlink(b.out);
}

/* A participant killed (SIGKILL: no leave, no hang-up) leaves the room when Janus times its session
 * out: session_timeout (here 3 s) after its last request, plus up to 2 s of Janus's watchdog. */
Test(room_janus, client_killed_participant_leaves_after_session_timeout, .timeout = 120) {
  janus_proc jp;
  janus_start(&jp, 3);
  int go[2];
  cr_assert_eq(pipe(go), 0);
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0) { /* Bob, joined only when Alice is in, killed below */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    part b = {.name = "Bob", .says = SPEECH_B};
    part_join(&b);
    unlink(b.out); /* nobody reads it: the process dies */
    for (;;) pause();
  }
  close(go[0]);
  part a = {.name = "Alice", .says = SPEECH_A};
  part_join(&a);
  cr_assert_eq(write(go[1], "g", 1), 1);
  for (int i = 0; i < 1000 && !a.n_others; i++) sleep_ms(10);
  pthread_mutex_lock(&a.mu);
  uint64_t bob = a.n_others ? a.others[0] : 0;
  pthread_mutex_unlock(&a.mu);
  cr_assert(bob, "Alice never saw Bob join");
  sleep_ms(1500); /* media flowing */
  int64_t killed = mono_ms();
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  int64_t left = 0;
  for (int i = 0; i < 1500 && !left; i++) {
    pthread_mutex_lock(&a.mu);
    if (a.left == bob) left = mono_ms();
    pthread_mutex_unlock(&a.mu);
    sleep_ms(10);
  }
  cr_assert(left, "Bob never left in Alice's view (15 s)");
  cr_log_info("Bob killed -> leaving at Alice after %lld ms (session_timeout 3 s)", (long long)(left - killed));
  part_leave(&a);
  janus_stop(&jp);
  unlink(a.out);
}

/* ---- the test through parley_room_* ---- */

typedef struct member {
  const char *name;
  char out[64];
  parley_engine *e;
  parley_room *room;
  int ids[5];
  pthread_mutex_t mu;
  int joined, left, flags, speakers, interrupted, resumed, closed;
  parley_leave_reason closed_reason;
  int64_t left_ms, interrupted_ms, resumed_ms; /* mono_ms() when seen */
  char names_seen[4][PARLEY_ROOM_ID_MAX];
  int n_names;
  char spoke[8][PARLEY_ROOM_ID_MAX]; /* every id a SPEAKERS_CHANGED named */
  int n_spoke;
  char muted_seen[PARLEY_ROOM_ID_MAX]; /* the name of a member seen muted */
  int64_t started_ms;                  /* its engine started: its recording's time 0 */
} member;

static void on_room(const parley_event *ev, void *user) {
  member *m = user;
  pthread_mutex_lock(&m->mu);
  switch (ev->kind) {
  case PARLEY_EVENT_MEMBERS_CHANGED:
    if (ev->leave_reason != PARLEY_LEAVE_NONE) {
      m->left++;
      m->left_ms = mono_ms();
    } else if (ev->member && ev->member->muted) {
      m->flags++;
      snprintf(m->muted_seen, sizeof m->muted_seen, "%s", ev->member->name);
    } else if (ev->member && !ev->member->local) {
      bool known = false;
      for (int i = 0; i < m->n_names; i++) known |= strcmp(m->names_seen[i], ev->member->name) == 0;
      if (!known && m->n_names < 4) snprintf(m->names_seen[m->n_names++], PARLEY_ROOM_ID_MAX, "%s", ev->member->name);
      m->joined++;
    }
    break;
  case PARLEY_EVENT_SPEAKERS_CHANGED:
    m->speakers++;
    for (size_t i = 0; i < ev->count && i < PARLEY_SESSION_MAX_SPEAKERS; i++) {
      bool known = false;
      for (int k = 0; k < m->n_spoke; k++) known |= !strcmp(m->spoke[k], ev->speaker_ids[i]);
      if (!known && m->n_spoke < 8) snprintf(m->spoke[m->n_spoke++], PARLEY_ROOM_ID_MAX, "%s", ev->speaker_ids[i]);
    }
    break;
  case PARLEY_EVENT_INTERRUPTED:
    if (!ev->member && !m->interrupted++) m->interrupted_ms = mono_ms();
    break;
  case PARLEY_EVENT_RESUMED:
    if (!ev->member && !m->resumed++) m->resumed_ms = mono_ms();
    break;
  case PARLEY_EVENT_CLOSED:
    m->closed++;
    m->closed_reason = ev->leave_reason;
    break;
  default: break;
  }
  pthread_mutex_unlock(&m->mu);
}

static void member_join_at(member *m, const char *says, const char *url) {
  pthread_mutex_init(&m->mu, NULL);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ipv6 = false;
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = says;
  cfg.input_file_end = PARLEY_INPUT_END_LOOP;
  cfg.echo_cancellation = cfg.noise_suppression = false;
  cfg.opus_dtx = false;
  snprintf(m->out, sizeof m->out, "/tmp/parley_janus_room_XXXXXX.wav");
  int fd = mkstemps(m->out, 4);
  cr_assert_geq(fd, 0);
  close(fd);
  cfg.output_file = m->out;
  cr_assert_eq(parley_engine_new(&cfg, &m->e), 0);
  m->started_ms = mono_ms();
  parley_room_config rc;
  parley_room_config_init(&rc);
  rc.backend = PARLEY_ROOM_JANUS;
  rc.room_id = "1234";
  rc.display_name = m->name;
  rc.janus_url = url;
  cr_assert_eq(parley_room_join(m->e, &rc, &m->room), 0, "%s joins", m->name);
  static const parley_event_kind kinds[5] = {PARLEY_EVENT_MEMBERS_CHANGED, PARLEY_EVENT_SPEAKERS_CHANGED,
                                             PARLEY_EVENT_INTERRUPTED, PARLEY_EVENT_RESUMED, PARLEY_EVENT_CLOSED};
  for (int k = 0; k < 5; k++) cr_assert_gt(m->ids[k] = parley_room_on(m->room, kinds[k], on_room, m), 0);
}

static void member_join(member *m, const char *says) { member_join_at(m, says, JANUS_URL); }

static int member_count(member *m, const int *field) {
  pthread_mutex_lock(&m->mu);
  int n = *field;
  pthread_mutex_unlock(&m->mu);
  return n;
}

/* Waits up to ms for *field of m to reach at least n. */
static bool wait_for(member *m, const int *field, int n, long ms) {
  for (long t = 0; t < ms; t += 10) {
    if (member_count(m, field) >= n) return true;
    sleep_ms(10);
  }
  return member_count(m, field) >= n;
}

static void member_leave(member *m) {
  cr_expect_eq(parley_room_leave(m->room), 0, "%s leaves", m->name);
  cr_expect(wait_for(m, &m->closed, 1, 5000), "%s: CLOSED", m->name);
  for (int k = 0; k < 5; k++) cr_expect_eq(parley_room_off(m->room, m->ids[k]), 0);
  cr_expect_eq(parley_room_free(m->room), 0);
  parley_engine_free(m->e);
}

/* The third member: `parley-call room` (the tool, PARLEY_CALL_TOOL) on Janus at url in a child process
 * the test kills; it says `says` in a loop, records to out and prints its timeline to the file timeline. */
static pid_t tool_member_at(const char *url, const char *says, const char *out, const char *timeline) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  FILE *f = freopen(timeline, "w", stdout);
  if (!f) _exit(126);
  execl(PARLEY_CALL_TOOL, "parley-call", "room", "--janus", url, "--room", "1234", "--name", "Carol", "--in",
        says, "--in-end", "loop", "--out", out, "--no-aec", "--no-ns", (char *)NULL);
  _exit(127);
}

static pid_t tool_member(const char *says, const char *out, const char *timeline) {
  return tool_member_at(JANUS_URL, says, out, timeline);
}

/* RMS of the recording at path between from_s and to_s. */
static double rms_between(const char *path, double from_s, double to_s) {
  size_t n;
  int rate;
  float *x = th_read_wav(path, &n, &rate);
  cr_assert(x, "%s", path);
  size_t a = (size_t)(from_s * rate), b = (size_t)(to_s * rate);
  if (b > n) b = n;
  double r = a < b ? th_rms(x + a, b - a) : 0;
  free(x);
  return r;
}

/* A WAV of the speech at `from` backwards: as broadband and voiced as speech, like neither clip. */
static void reversed_clip(const char *from, char *path) {
  size_t n;
  int rate;
  float *x = th_read_wav(from, &n, &rate);
  cr_assert(x, "%s", from);
  for (size_t i = 0; i < n / 2; i++) {
    float t = x[i];
    x[i] = x[n - 1 - i];
    x[n - 1 - i] = t;
  }
  int fd = mkstemps(path, 4);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(th_save_wav(path, x, n, rate), 0);
  free(x);
}

/* Makes the temporary file named by tmpl (XXXXXX, then `suffix` characters). */
static void temp_file(char *tmpl, int suffix) {
  int fd = mkstemps(tmpl, suffix);
  cr_assert_geq(fd, 0, "%s", tmpl);
  close(fd);
}

/* Waits (10 s at most) until Alice and Bob both list three members. */
static void three_listed(member *a, member *b) {
  bool all = false;
  for (int i = 0; i < 1000 && !all; i++, sleep_ms(10))
    all = parley_room_members(a->room, NULL, 0) == 3 && parley_room_members(b->room, NULL, 0) == 3;
  cr_assert(all, "the three did not all list each other within 10 s (Alice %d, Bob %d)",
            parley_room_members(a->room, NULL, 0), parley_room_members(b->room, NULL, 0));
}

/* The id of the member of m's room named name, or "" (copied to id). */
static void id_of(member *m, const char *name, char *id) {
  parley_room_member list[8];
  int n = parley_room_members(m->room, list, 8);
  id[0] = '\0';
  for (int i = 0; i < n && i < 8; i++)
    if (!strcmp(list[i].name, name)) snprintf(id, PARLEY_ROOM_ID_MAX, "%s", list[i].id);
}

static bool spoke(member *m, const char *id) {
  pthread_mutex_lock(&m->mu);
  bool seen = false;
  for (int i = 0; i < m->n_spoke; i++) seen |= !strcmp(m->spoke[i], id);
  pthread_mutex_unlock(&m->mu);
  return seen;
}

Test(room_janus, three_members_hear_see_mute_vanish_interrupt, .timeout = 240) {
  janus_proc jp;
  janus_start(&jp, 3);
  char carol_says[] = "/tmp/parley_janus_carol_XXXXXX.wav", carol_out[] = "/tmp/parley_janus_carol_rec_XXXXXX.wav";
  char carol_timeline[] = "/tmp/parley_janus_carol_XXXXXX.txt";
  reversed_clip(SPEECH_A, carol_says);
  temp_file(carol_out, 4);
  temp_file(carol_timeline, 4);
  member a = {.name = "Alice"}, b = {.name = "Bob"};
  member_join(&a, SPEECH_A);
  member_join(&b, SPEECH_B);
  pid_t carol = tool_member(carol_says, carol_out, carol_timeline);
  three_listed(&a, &b);
  char bob[PARLEY_ROOM_ID_MAX], carol_id[PARLEY_ROOM_ID_MAX], alice[PARLEY_ROOM_ID_MAX];
  id_of(&a, "Bob", bob);
  id_of(&a, "Carol", carol_id);
  id_of(&b, "Alice", alice);
  cr_expect(bob[0] && carol_id[0] && alice[0], "members listed by name: Bob '%s', Carol '%s', Alice '%s'", bob,
            carol_id, alice);
  parley_room_member first;
  cr_assert_eq(parley_room_members(a.room, &first, 1), 3);
  cr_expect(first.local && !strcmp(first.name, "Alice"), "the local user first: %s", first.name);
  cr_expect_str_eq(first.id, alice, "Alice's own id is the one Bob lists: Janus's");
  sleep_ms(12500); /* the clips loop: everyone talks (Carol records 12 s: heard_clip's need) */
  cr_expect(spoke(&a, bob) && spoke(&a, carol_id), "Alice's speakers events name Bob and Carol");
  cr_expect(spoke(&b, alice), "Bob's speakers events name Alice");
  cr_expect_eq(member_count(&a, &a.left), 0);

  /* Carol vanishes. */
  int64_t killed = mono_ms();
  kill(carol, SIGKILL);
  waitpid(carol, NULL, 0);
  cr_expect(wait_for(&a, &a.left, 1, 15000) && wait_for(&b, &b.left, 1, 1000), "Carol's leaving reaches both");
  cr_log_info("Carol killed -> members-changed (left) at Alice after %lld ms (Janus session_timeout 3 s)",
              (long long)(a.left_ms - killed));
  cr_expect_eq(parley_room_members(a.room, NULL, 0), 2);
  char timeline[8192] = "";
  FILE *tf = fopen(carol_timeline, "r");
  cr_assert(tf);
  size_t got = fread(timeline, 1, sizeof timeline - 1, tf);
  timeline[got] = '\0';
  fclose(tf);
  cr_expect(strstr(timeline, "member Alice") && strstr(timeline, "member Bob"),
            "Carol's parley-call timeline lists Alice and Bob:\n%s", timeline);

  /* Bob mutes: Alice sees the flag, and hears nothing more (Carol is gone). */
  cr_assert_eq(parley_room_set_mute_microphone(b.room, true), 0);
  int64_t muted_at = mono_ms();
  cr_expect(wait_for(&a, &a.flags, 1, 5000), "Alice sees Bob muted");
  pthread_mutex_lock(&a.mu);
  cr_expect_str_eq(a.muted_seen, "Bob");
  pthread_mutex_unlock(&a.mu);
  sleep_ms(3000);

  /* The local path cut (every UDP datagram into this namespace dropped): interrupted, then resumed. */
  cr_assert_eq(system("nft add table inet parley_cut && "
                      "nft add chain inet parley_cut in '{ type filter hook input priority 0; }' && "
                      "nft add rule inet parley_cut in meta l4proto udp drop"), 0, "nft");
  int64_t cut = mono_ms();
  cr_expect(wait_for(&a, &a.interrupted, 1, 5000), "Alice's room interrupted");
  sleep_ms(2000);
  int64_t restored = mono_ms();
  cr_assert_eq(system("nft delete table inet parley_cut"), 0);
  cr_expect(wait_for(&a, &a.resumed, 1, 10000), "Alice's room resumed");
  cr_log_info("path cut -> interrupted after %lld ms; restored -> resumed after %lld ms",
              (long long)(a.interrupted_ms - cut), (long long)(a.resumed_ms - restored));
  member_leave(&a);
  member_leave(&b);
  janus_stop(&jp);

  /* Each hears the two others at once, so each is a part of the mix: a lower correlation. */
  heard("Alice", a.out, (const char *[]){SPEECH_B, carol_says}, 2, SPEECH_A, 0.4);
  heard("Bob", b.out, (const char *[]){SPEECH_A, carol_says}, 2, SPEECH_B, 0.4);
  heard("Carol", carol_out, (const char *[]){SPEECH_A, SPEECH_B}, 2, carol_says, 0.4);
  double s = (double)(muted_at - a.started_ms) / 1000;
  double before = rms_between(a.out, s - 2.5, s - 0.5), after = rms_between(a.out, s + 1.0, s + 2.5);
  cr_log_info("Alice's playout: rms %.4f before Bob muted, %.4f after", before, after);
  cr_expect_gt(before, 0.01, "Alice heard Bob before he muted");
  cr_expect_lt(after, before * 0.1, "and nothing after");
  unlink(a.out);
  unlink(b.out);
  unlink(carol_out);
  unlink(carol_says);
  unlink(carol_timeline);
}

/* Over ws://, Carol (the tool in a child process, Alice and Bob in this one, all on ws://) vanishes by
 * signal sig with Janus's session_timeout at timeout_s: Alice and Bob get members-changed (left) for
 * her within bound_ms, the member list shrinks and their rooms stay open. The delay is logged. */
static void ws_vanish(int sig, int timeout_s, long bound_ms) {
  janus_proc jp;
  janus_start(&jp, timeout_s);
  char carol_out[] = "/tmp/parley_janus_carol_rec_XXXXXX.wav", carol_timeline[] = "/tmp/parley_janus_carol_XXXXXX.txt";
  temp_file(carol_out, 4);
  temp_file(carol_timeline, 4);
  member a = {.name = "Alice"}, b = {.name = "Bob"};
  member_join_at(&a, SPEECH_A, JANUS_WS_URL);
  member_join_at(&b, SPEECH_B, JANUS_WS_URL);
  pid_t carol = tool_member_at(JANUS_WS_URL, SPEECH_B, carol_out, carol_timeline);
  three_listed(&a, &b);
  sleep_ms(2000); /* media flowing, keepalives under way */
  cr_expect_eq(member_count(&a, &a.left) + member_count(&b, &b.left), 0, "nobody left before the signal");
  int64_t t0 = mono_ms();
  kill(carol, sig);
  bool both = wait_for(&a, &a.left, 1, bound_ms) && wait_for(&b, &b.left, 1, 1000);
  cr_expect(both, "Carol's leaving (%s) reaches Alice and Bob within %ld ms", strsignal(sig), bound_ms);
  if (both)
    cr_log_info("over ws://: Carol %s -> members-changed (left) at Alice after %lld ms, Bob after %lld ms "
                "(Janus session_timeout %d s)",
                strsignal(sig), (long long)(a.left_ms - t0), (long long)(b.left_ms - t0), timeout_s);
  kill(carol, SIGKILL);
  waitpid(carol, NULL, 0);
  cr_expect_eq(parley_room_members(a.room, NULL, 0), 2);
  cr_expect_eq(parley_room_members(b.room, NULL, 0), 2);
  cr_expect_eq(member_count(&a, &a.closed), 0, "Alice's room stays open");
  member_leave(&a);
  member_leave(&b);
  janus_stop(&jp);
  unlink(a.out);
  unlink(b.out);
  unlink(carol_out);
  unlink(carol_timeline);
}

/* Killed: her kernel closes her WebSocket, Janus ends her session at once and its AudioBridge tells
 * the others. 15 s is far less than the 60 s session timeout, the only other way she could leave. */
Test(room_janus, vanish_over_websocket_reaches_the_others_at_once, .timeout = 120) { ws_vanish(SIGKILL, 60, 15000); }

/* Frozen (SIGSTOP): her TCP connection stays open, so only Janus's session timeout (3 s here, plus its
 * 2 s watchdog and the teardown) removes her, as over HTTP: what bounds a vanish over ws:// that is no
 * crash. */
Test(room_janus, frozen_over_websocket_leaves_after_session_timeout, .timeout = 120) { ws_vanish(SIGSTOP, 3, 15000); }

/* No Janus at the URL: the join fails at once with PARLEY_ENETWORK and no room is made; a room id that
 * is not an AudioBridge number is refused before any request. */
Test(room_janus, join_without_janus_is_a_network_error) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_room_config rc;
  parley_room_config_init(&rc);
  rc.backend = PARLEY_ROOM_JANUS;
  rc.room_id = "1234";
  rc.display_name = "Alice";
  rc.janus_url = "http://127.0.0.1:1/janus"; /* port 1: nothing listens, the connection is refused */
  parley_room *room = (parley_room *)&rc;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_ENETWORK);
  cr_expect_null(room);
  rc.janus_url = "ws://127.0.0.1:1/"; /* the same over the WebSocket transport */
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_ENETWORK);
  cr_expect_null(room);
  rc.janus_url = "wss://127.0.0.1:8989/";
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "wss:// is not built in");
  rc.janus_url = "ws://";
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "no host");
  rc.janus_url = "http://127.0.0.1:1/janus";
  rc.room_id = "standup";
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "not a room number");
  rc.room_id = "-5";
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "not a room number");
  parley_engine_free(e);
}

/* parley_engine_free with a room still joined: the backend says goodbye to Janus on the way out (leave,
 * detach, destroy), so the others see the member leave at once, not after Janus's session timeout. */
Test(room_janus, engine_free_leaves_the_room, .timeout = 120) {
  janus_proc jp;
  janus_start(&jp, 60);
  member a = {.name = "Alice"}, b = {.name = "Bob"};
  member_join(&a, SPEECH_A);
  member_join(&b, SPEECH_B);
  bool both = false;
  for (int i = 0; i < 1000 && !both; i++, sleep_ms(10))
    both = parley_room_members(a.room, NULL, 0) == 2 && parley_room_members(b.room, NULL, 0) == 2;
  cr_assert(both, "Alice and Bob list each other");
  int64_t freed = mono_ms();
  parley_engine_free(a.e); /* no parley_room_leave: the room goes with the engine */
  cr_expect(wait_for(&b, &b.left, 1, 10000), "Bob sees Alice leave");
  cr_log_info("Alice's engine freed -> Bob sees her leave after %lld ms", (long long)(b.left_ms - freed));
  cr_expect_eq(parley_room_members(b.room, NULL, 0), 1);
  member_leave(&b);
  janus_stop(&jp);
  unlink(a.out);
  unlink(b.out);
}

/* Janus kicks the member (a moderator's kick request: tests/interop/janus_kick.py on Janus's API): its
 * room closes with reason KICKED. */
Test(room_janus, kicked_closes_the_room, .timeout = 120) {
  janus_proc jp;
  janus_start(&jp, 60);
  member a = {.name = "Alice"};
  member_join(&a, SPEECH_A);
  sleep_ms(500);
  int rc = system("/usr/bin/python3 " PARLEY_TEST_DATA "/../interop/janus_kick.py " JANUS_URL " 1234 Alice");
  cr_assert_eq(rc, 0, "the kick request failed");
  cr_expect(wait_for(&a, &a.closed, 1, 5000), "Alice's room closed");
  cr_expect_eq(a.closed_reason, PARLEY_LEAVE_KICKED, "%s", parley_leave_reason_name(a.closed_reason));
  for (int k = 0; k < 5; k++) cr_expect_eq(parley_room_off(a.room, a.ids[k]), 0);
  cr_expect_eq(parley_room_free(a.room), 0);
  parley_engine_free(a.e);
  janus_stop(&jp);
  unlink(a.out);
}
