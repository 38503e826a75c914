/* peer_helpers.c: see peer_helpers.h. */
#define _GNU_SOURCE
#include "tests/peer_helpers.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void th_peer_start(th_peer *p, const char *const *args) {
  int in[2], out[2];
  cr_assert_eq(pipe(in), 0);
  cr_assert_eq(pipe(out), 0);
  pid_t parent = getpid();
  p->pid = fork();
  cr_assert_geq(p->pid, 0);
  if (p->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    if (getppid() != parent) _exit(127);
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    const char *argv[16] = {"python3"};
    int n = 1;
    for (; args[n - 1] && n < 15; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    execv("/usr/bin/python3", (char *const *)argv);
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
  bool exited = false;
  for (int i = 0; i < timeout_s * 20 && !exited; i++) {
    exited = waitpid(p->pid, &status, WNOHANG) == p->pid;
    if (!exited) nanosleep(&(struct timespec){0, 50000000L}, NULL);
  }
  if (!exited) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
  }
  if (p->to) fclose(p->to);
  if (p->from) fclose(p->from);
  p->to = p->from = NULL;
  return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
