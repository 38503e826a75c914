/* test_room_janus.c: parley in a real Janus AudioBridge room (Debian's janus, never a mock). Each test
 * starts its own janus process through scripts/janus-room.sh (a configuration with only the HTTP
 * transport on 127.0.0.1 and the AudioBridge plugin, room 1234 at 48 kHz with talking events), in a
 * network namespace of its own: Janus's libnice does not gather loopback addresses, so the namespace
 * has a veth pair, 10.77.0.1 and 10.77.0.2, both ends here (accept_local); Janus gathers on pj1.
 *
 * client: two participants on the Janus client (transport/janus.h) with parley calls: each hears the
 * other's speech through Janus's mix (piecewise correlation with the fixture it sent) and not its own
 * (mix-minus), sees the other join with its name, and Janus's talking events arrive for both. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "interop_helpers.h"
#include "parley/parley.h"
#include "transport/janus.h"

#define JANUS_URL "http://127.0.0.1:8088/janus"
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
  for (int i = 0; i < 100; i++) {
    if (system(cmd) == 0) return;
    sleep_ms(100);
  }
  cr_assert_fail("janus did not answer on %s within 10 s (log: %s/janus.log)", JANUS_URL, jp->dir);
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

/* The recording of p holds `said` (piecewise correlation with the fixture) and not `not_said`. */
static void heard(const part *p, const char *said, const char *not_said) {
  size_t nx, ny, nz;
  int rate;
  float *x = th_read_wav(said, &nx, &rate), *z = th_read_wav(not_said, &nz, &rate);
  float *y = th_read_wav(p->out, &ny, &rate);
  cr_assert(x && y && z, "%s: unreadable recording %s", p->name, p->out);
  double peak = th_piecewise_speech(x, nx, y, ny), own = th_piecewise_speech(z, nz, y, ny);
  cr_log_info("%s heard %s: piecewise correlation %.3f (its own speech %.3f), %.1f s recorded", p->name, said, peak,
              own, (double)ny / 48000);
  cr_expect_geq(peak, 0.6, "%s: correlation %.3f", p->name, peak);
  cr_expect_lt(own, peak * 0.6, "%s: own speech %.3f vs %.3f", p->name, own, peak);
  free(x);
  free(y);
  free(z);
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
  sleep_ms(8000); /* the 6 s clips, the join and jitter buffers */
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
  heard(&a, SPEECH_B, SPEECH_A);
  heard(&b, SPEECH_A, SPEECH_B);
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
