/* interop_helpers.c: see interop_helpers.h. */
#define _GNU_SOURCE
#include "tests/interop_helpers.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "tests/audio_helpers.h"

void th_peer_start(th_peer *p, char *const argv[]) {
  int in[2], out[2];
  cr_assert_eq(pipe(in), 0);
  cr_assert_eq(pipe(out), 0);
  p->pid = fork();
  cr_assert_geq(p->pid, 0);
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test, even if it crashes */
    execv("/usr/bin/python3", argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->to = fdopen(in[1], "w");
  p->from = fdopen(out[0], "r");
  cr_assert(p->to && p->from);
}

bool th_read_until_end(FILE *f, char *buf, size_t cap) {
  size_t n = 0;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "END", 3) == 0) return true;
    size_t len = strlen(line);
    if (n + len + 1 > cap) return false;
    memcpy(buf + n, line, len + 1);
    n += len;
  }
  return false;
}

int th_peer_wait(th_peer *p, int timeout_s) {
  int status = -1;
  bool done = false;
  for (int i = 0; i < timeout_s * 10 && !done; i++) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) done = true;
    else nanosleep(&(struct timespec){0, 100000000L}, NULL);
  }
  if (!done) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
  }
  fclose(p->to);
  fclose(p->from);
  return done && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double th_piecewise_speech(const float *x, size_t nx, const float *y, size_t ny) {
  /* A recording starts when its engine does, seconds before a peer that is still starting sends; the
   * lag search below spans 1.5 s, so begin 1 s before the first sound (a 10 ms block above -40 dBFS): the
   * fixture's own first sound is in its first 100 ms, and the first heard may be a little later in it. */
  size_t start = 0;
  while (start + 480 <= ny && th_rms(y + start, 480) < 0.01) start += 480;
  if (start + 480 > ny) return 0;
  start = start > 48000 ? start - 48000 : 0;
  y += start;
  ny -= start;
  if (nx < 240000 || ny < 240000 + 72000) return 0;
  double whole = 0;
  long lag = th_best_lag_speech(x + 24000, y + 24000, 192000, 72000, &whole);
  long from = lag > 4800 ? lag - 4800 : 0; /* +-100 ms: time-scaling on a loaded host moves it that far */
  double sum = 0;
  int pieces = 0;
  for (size_t p = 24000; p + 9600 <= 240000; p += 9600) {
    if (th_rms(x + p, 9600) < 0.03) continue;
    if (p + (size_t)from + 9600 + 9600 > ny) break;
    double peak = 0;
    (void)th_best_lag(x + p, y + p + from, 9600, 9600, &peak);
    sum += peak;
    pieces++;
  }
  return pieces >= 5 ? sum / pieces : 0;
}
