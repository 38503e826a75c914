/* latency_jack.c: the JACK rig of `parley-bench latency` (see latency_jack.h): a private dummy jackd
 * and the bench's injector and recorder clients.
 *
 * Server: the name is fixed (parley-latbench) and runs are serialised with a lock file, as
 * scripts/test-jack-call.sh does with its own name: JACK's shared registry holds only a few server
 * entries and a killed server's entry is reclaimed only by a server of the same name. jackd is our
 * child with PR_SET_PDEATHSIG = SIGKILL, so it dies with the bench even when the bench is killed;
 * close stops it and removes /dev/shm/ *_parley-latbench_* leftovers.
 *
 * Taps: two clients, not one with both ports: one client feeding the engines' client and fed by it
 * would be a cycle in JACK's graph. Each cycle the injector runs before the engines' client (it feeds
 * it) and the recorder after it; both index samples by the cycle's frame time relative to the frame
 * time of the first armed cycle, published by the injector. The recorder starts recording only once
 * that start is published and its own cycle's frame time has reached it, so the two agree in samples.
 * Process callbacks: copies and atomics only.
 */
#define _GNU_SOURCE
#include "bench/latency_jack.h"

#include <stdio.h>
#include <string.h>

#ifndef PARLEY_HAVE_JACK

int bench_jack_open(int period_frames, bench_jack **out, char *why, size_t cap) {
  (void)period_frames;
  *out = NULL;
  snprintf(why, cap, "parley-bench was built without libjack (install libjack-jackd2-dev and reconfigure)");
  return 1;
}
int bench_jack_other_ports(bench_jack *j, bool inputs, char names[][BENCH_JACK_PORT_NAME], int cap) {
  (void)j, (void)inputs, (void)names, (void)cap;
  return 0;
}
int bench_jack_wire(bench_jack *j, const char *a_in, const char *a_out, const char *b_in, const char *b_out,
                    char *why, size_t cap) {
  (void)j, (void)a_in, (void)a_out, (void)b_in, (void)b_out;
  snprintf(why, cap, "no libjack");
  return -1;
}
void bench_jack_arm(bench_jack *j, const float *x, float *y, size_t n) { (void)j, (void)x, (void)y, (void)n; }
bool bench_jack_done(bench_jack *j) {
  (void)j;
  return true;
}
void bench_jack_system_latency(bench_jack *j, unsigned *capture_frames, unsigned *playback_frames) {
  (void)j;
  *capture_frames = *playback_frames = 0;
}
void bench_jack_counts(bench_jack *j, unsigned long *cycles, unsigned long *xruns) {
  (void)j;
  *cycles = *xruns = 0;
}
void bench_jack_close(bench_jack *j) { (void)j; }

#else

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <jack/jack.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCK_PATH "/tmp/parley-latbench-jackd.lock"
#define LOCK_WAIT_MS 30000
#define SERVER_WAIT_MS 10000

struct bench_jack {
  int lock_fd;
  pid_t jackd;
  char *old_server, *old_nostart; /* environment to restore */
  bool env_set;
  jack_client_t *inj, *rec;
  jack_port_t *inj_port, *rec_port;
  /* armed span: written by arm before the flag, read by the callbacks after it */
  const float *x;
  float *y;
  size_t n;
  atomic_int armed;           /* 1: the injector starts at its next cycle */
  atomic_int started;         /* 1: t0 is published */
  _Atomic jack_nframes_t t0;  /* frame time of the first injected sample */
  atomic_size_t recorded;     /* samples of y written */
  atomic_ulong cycles, xruns;
};

static void quiet(const char *msg) { (void)msg; }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static bool in_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  char buf[4096];
  while (*path) {
    const char *end = strchr(path, ':');
    size_t len = end ? (size_t)(end - path) : strlen(path);
    if (len && len + strlen(prog) + 2 < sizeof buf) {
      memcpy(buf, path, len);
      buf[len] = '/';
      strcpy(buf + len + 1, prog);
      if (access(buf, X_OK) == 0) return true;
    }
    path += len + (end ? 1 : 0);
  }
  return false;
}

/* ---- process callbacks (libjack's thread) ---- */

static int inj_process(jack_nframes_t nframes, void *arg) {
  bench_jack *j = arg;
  float *out = jack_port_get_buffer(j->inj_port, nframes);
  memset(out, 0, nframes * sizeof *out);
  if (!atomic_load(&j->armed)) return 0;
  jack_nframes_t now = jack_last_frame_time(j->inj);
  if (!atomic_load(&j->started)) {
    atomic_store(&j->t0, now);
    atomic_store(&j->started, 1);
  }
  size_t idx = (size_t)(jack_nframes_t)(now - atomic_load(&j->t0));
  for (jack_nframes_t i = 0; i < nframes && idx + i < j->n; i++) out[i] = j->x[idx + i];
  return 0;
}

static int rec_process(jack_nframes_t nframes, void *arg) {
  bench_jack *j = arg;
  atomic_fetch_add(&j->cycles, 1);
  if (!atomic_load(&j->started)) return 0;
  const float *in = jack_port_get_buffer(j->rec_port, nframes);
  jack_nframes_t now = jack_last_frame_time(j->rec);
  int32_t rel = (int32_t)(now - atomic_load(&j->t0)); /* < 0: a cycle before the injector's first */
  if (rel < 0) return 0;
  size_t idx = (size_t)rel;
  size_t k = 0;
  for (; k < nframes && idx + k < j->n; k++) j->y[idx + k] = in[k];
  if (idx + k > atomic_load(&j->recorded)) atomic_store(&j->recorded, idx + k);
  return 0;
}

static int on_xrun(void *arg) {
  atomic_fetch_add(&((bench_jack *)arg)->xruns, 1);
  return 0;
}

/* ---- server ---- */

static int take_lock(bench_jack *j, char *why, size_t cap) {
  j->lock_fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (j->lock_fd < 0) {
    snprintf(why, cap, "cannot open %s: %s", LOCK_PATH, strerror(errno));
    return -1;
  }
  for (int waited = 0; flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0; waited += 100) {
    if (waited >= LOCK_WAIT_MS) {
      snprintf(why, cap, "another run holds %s", LOCK_PATH);
      return -1;
    }
    sleep_ms(100);
  }
  return 0;
}

static void remove_shm(void) {
  glob_t g;
  if (glob("/dev/shm/*_" BENCH_JACK_SERVER "_*", 0, NULL, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++) (void)unlink(g.gl_pathv[i]);
  globfree(&g);
}

static pid_t spawn_jackd(int period_frames) {
  char period[16];
  snprintf(period, sizeof period, "%d", period_frames);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  /* child: dies with the bench; quiet; at normal priority like --no-realtime says (the bench's thread
   * may run at SCHED_FIFO, which a fork inherits) */
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  struct sched_param sp = {.sched_priority = 0};
  (void)sched_setscheduler(0, SCHED_OTHER, &sp);
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
  }
  char *args[] = {"jackd", "-n", BENCH_JACK_SERVER, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", period, NULL};
  execvp("jackd", args);
  _exit(127);
}

static char *dup_env(const char *name) {
  const char *v = getenv(name);
  return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, const char *old) {
  if (old) setenv(name, old, 1);
  else unsetenv(name);
}

static jack_client_t *open_client(const char *name) {
  jack_status_t st;
  return jack_client_open(name, JackNoStartServer | JackServerName | JackUseExactName, &st, BENCH_JACK_SERVER);
}

int bench_jack_open(int period_frames, bench_jack **out, char *why, size_t cap) {
  *out = NULL;
  if (!in_path("jackd")) {
    snprintf(why, cap, "jackd is not installed");
    return 1;
  }
  bench_jack *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(why, cap, "out of memory");
    return -1;
  }
  j->lock_fd = -1;
  j->jackd = -1;
  jack_set_error_function(quiet);
  jack_set_info_function(quiet);
  if (take_lock(j, why, cap) < 0) goto fail;
  remove_shm(); /* a killed server's leftovers; we hold the lock, so no live server of this name */
  j->old_server = dup_env("JACK_DEFAULT_SERVER");
  j->old_nostart = dup_env("JACK_NO_START_SERVER");
  j->env_set = true;
  setenv("JACK_DEFAULT_SERVER", BENCH_JACK_SERVER, 1);
  setenv("JACK_NO_START_SERVER", "1", 1);
  j->jackd = spawn_jackd(period_frames);
  if (j->jackd < 0) {
    snprintf(why, cap, "fork: %s", strerror(errno));
    goto fail;
  }
  for (int waited = 0; !(j->inj = open_client("parley-latbench-inject")); waited += 100) {
    int status;
    if (waitpid(j->jackd, &status, WNOHANG) == j->jackd) {
      j->jackd = -1;
      snprintf(why, cap, "jackd exited (status %d) before accepting clients", status);
      goto fail;
    }
    if (waited >= SERVER_WAIT_MS) {
      snprintf(why, cap, "jackd did not accept clients within %d ms", SERVER_WAIT_MS);
      goto fail;
    }
    sleep_ms(100);
  }
  j->rec = open_client("parley-latbench-record");
  if (!j->rec) {
    snprintf(why, cap, "the recorder client could not connect");
    goto fail;
  }
  if (jack_get_buffer_size(j->inj) != (jack_nframes_t)period_frames || jack_get_sample_rate(j->inj) != 48000) {
    snprintf(why, cap, "server runs %u frames at %u Hz, not %d at 48000", jack_get_buffer_size(j->inj),
             jack_get_sample_rate(j->inj), period_frames);
    goto fail;
  }
  j->inj_port = jack_port_register(j->inj, "out", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
  j->rec_port = jack_port_register(j->rec, "in", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
  if (!j->inj_port || !j->rec_port || jack_set_process_callback(j->inj, inj_process, j) != 0 ||
      jack_set_process_callback(j->rec, rec_process, j) != 0 || jack_set_xrun_callback(j->rec, on_xrun, j) != 0 ||
      jack_activate(j->inj) != 0 || jack_activate(j->rec) != 0) {
    snprintf(why, cap, "could not set up the bench's JACK clients");
    goto fail;
  }
  *out = j;
  return 0;
fail:
  bench_jack_close(j);
  return -1;
}

int bench_jack_other_ports(bench_jack *j, bool inputs, char names[][BENCH_JACK_PORT_NAME], int cap) {
  const char **ports =
      jack_get_ports(j->inj, NULL, JACK_DEFAULT_AUDIO_TYPE, inputs ? JackPortIsInput : JackPortIsOutput);
  int n = 0;
  for (size_t i = 0; ports && ports[i] && n < cap; i++) {
    if (!strncmp(ports[i], "system:", 7) || !strncmp(ports[i], "parley-latbench-", 16)) continue;
    snprintf(names[n++], BENCH_JACK_PORT_NAME, "%s", ports[i]);
  }
  jack_free(ports);
  return n;
}

/* Removes every connection of the named port. */
static int isolate(bench_jack *j, const char *name) {
  jack_port_t *p = jack_port_by_name(j->inj, name);
  if (!p) return -1;
  const char **peers = jack_port_get_all_connections(j->inj, p);
  bool out = (jack_port_flags(p) & JackPortIsOutput) != 0;
  int e = 0;
  for (size_t i = 0; peers && peers[i]; i++)
    if ((out ? jack_disconnect(j->inj, name, peers[i]) : jack_disconnect(j->inj, peers[i], name)) != 0) e = -1;
  jack_free(peers);
  return e;
}

int bench_jack_wire(bench_jack *j, const char *a_in, const char *a_out, const char *b_in, const char *b_out,
                    char *why, size_t cap) {
  const char *four[4] = {a_in, a_out, b_in, b_out};
  for (int i = 0; i < 4; i++)
    if (isolate(j, four[i]) < 0) {
      snprintf(why, cap, "could not disconnect %s", four[i]);
      return -1;
    }
  if (jack_connect(j->inj, jack_port_name(j->inj_port), a_in) != 0 ||
      jack_connect(j->inj, b_out, jack_port_name(j->rec_port)) != 0) {
    snprintf(why, cap, "could not connect the taps to %s / %s", a_in, b_out);
    return -1;
  }
  return 0;
}

void bench_jack_arm(bench_jack *j, const float *x, float *y, size_t n) {
  memset(y, 0, n * sizeof *y);
  j->x = x;
  j->y = y;
  j->n = n;
  atomic_store(&j->recorded, 0);
  atomic_store(&j->started, 0);
  atomic_store(&j->armed, 1); /* seq_cst: the span above is visible to the callbacks that see this */
}

bool bench_jack_done(bench_jack *j) { return atomic_load(&j->recorded) >= j->n; }

void bench_jack_system_latency(bench_jack *j, unsigned *capture_frames, unsigned *playback_frames) {
  jack_latency_range_t r;
  *capture_frames = *playback_frames = 0;
  jack_port_t *c = jack_port_by_name(j->inj, "system:capture_1");
  jack_port_t *p = jack_port_by_name(j->inj, "system:playback_1");
  if (c) {
    jack_port_get_latency_range(c, JackCaptureLatency, &r);
    *capture_frames = r.max;
  }
  if (p) {
    jack_port_get_latency_range(p, JackPlaybackLatency, &r);
    *playback_frames = r.max;
  }
}

void bench_jack_counts(bench_jack *j, unsigned long *cycles, unsigned long *xruns) {
  *cycles = atomic_load(&j->cycles);
  *xruns = atomic_load(&j->xruns);
}

void bench_jack_close(bench_jack *j) {
  if (!j) return;
  if (j->rec) jack_client_close(j->rec);
  if (j->inj) jack_client_close(j->inj);
  if (j->jackd > 0) {
    kill(j->jackd, SIGTERM);
    int status;
    int waited = 0;
    while (waitpid(j->jackd, &status, WNOHANG) != j->jackd) {
      if (waited >= 2000) {
        kill(j->jackd, SIGKILL);
        (void)waitpid(j->jackd, &status, 0);
        break;
      }
      sleep_ms(20);
      waited += 20;
    }
  }
  remove_shm();
  if (j->env_set) {
    restore_env("JACK_DEFAULT_SERVER", j->old_server);
    restore_env("JACK_NO_START_SERVER", j->old_nostart);
  }
  free(j->old_server);
  free(j->old_nostart);
  if (j->lock_fd >= 0) close(j->lock_fd); /* releases the lock */
  free(j);
}

#endif
