/* bench_room.c: `parley-bench room [--janus URL]`: rooms through the public room API, rows for the Janus
 * backend (PARLEY_ROOM_JANUS, an AudioBridge room; N = 3, 10, 30; here) and the mesh backend
 * (bench_room_mesh.c; N = 3 and 10, its limit), or --participants N; bench_room_row.c runs a row and
 * says what each figure is. Then the crossover: the N at which mesh's CPU per participant passes
 * Janus's, from the rows. Threads: the main thread (the rows start their own). */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_room.h"
#include "parley/parley.h"
#include "sim/cli.h"

/* ---- the Janus backend ---- */

typedef struct janus_ctx {
  const char *url, *room_id;
  int go_fd;
} janus_ctx;

static int janus_join(void *ctx, int i, parley_engine *e, parley_room_config *rc, parley_room **out) {
  janus_ctx *j = ctx;
  rc->backend = PARLEY_ROOM_JANUS;
  rc->room_id = j->room_id;
  rc->janus_url = j->url;
  int err = parley_room_join(e, rc, out);
  if (err < 0) fprintf(stderr, "room: participant %d cannot join %s room %s\n", i, j->url, j->room_id);
  return err;
}

/* The process listening on the URL's TCP port in this network namespace (the Janus that
 * scripts/bench-room-janus.sh runs beside the bench), or 0: the port's socket inode in /proc/net/tcp,
 * then the process with that socket open. */
static pid_t janus_pid(const char *url) {
  const char *host = strstr(url, "://"), *colon = host ? strchr(host + 3, ':') : NULL;
  unsigned port = colon ? (unsigned)atoi(colon + 1) : 0, p, st;
  unsigned long inode = 0, ino;
  char line[512], want[64], link[64];
  FILE *f = port ? fopen("/proc/net/tcp", "r") : NULL;
  while (f && !inode && fgets(line, sizeof line, f))
    if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*s %*s %*s %*d %*d %lu", &p, &st, &ino) == 3 && p == port && st == 0x0A)
      inode = ino; /* LISTEN */
  if (f) fclose(f);
  snprintf(want, sizeof want, "socket:[%lu]", inode);
  DIR *procs = inode ? opendir("/proc") : NULL;
  pid_t found = 0;
  for (struct dirent *d; procs && !found && (d = readdir(procs));) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/fd", d->d_name);
    DIR *fds = d->d_name[0] >= '1' && d->d_name[0] <= '9' ? opendir(path) : NULL;
    for (struct dirent *fd; fds && !found && (fd = readdir(fds));) {
      char fdpath[600];
      snprintf(fdpath, sizeof fdpath, "%s/%s", path, fd->d_name);
      ssize_t n = readlink(fdpath, link, sizeof link - 1);
      if (n > 0 && (link[n] = '\0', strcmp(link, want) == 0)) found = (pid_t)atoi(d->d_name);
    }
    if (fds) closedir(fds);
  }
  if (procs) closedir(procs);
  return found;
}

static int janus_start(void *ctx, int victim_fd) {
  ((janus_ctx *)ctx)->go_fd = victim_fd;
  return 0;
}

static int janus_victim_go(void *ctx) { return write(((janus_ctx *)ctx)->go_fd, "g", 1) == 1 ? 0 : -1; }

static void janus_victim_serve(void *ctx, parley_room *room, int fd) {
  (void)ctx, (void)room, (void)fd;
  for (;;) pause();
}

/* The N where mesh's CPU per participant passes Janus's (with the server's share when with_server),
 * from rows measured at the same N: linear between the last N where mesh costs less and the first
 * where it costs more. */
static void crossover(bench_report *rep, const room_result *janus, int nj, const room_result *mesh, int nm,
                      bool with_server) {
  const char *what = with_server ? "this process + Janus's" : "this process's, Janus's not counted,";
  double prev_n = 0, prev_d = 0;
  int pairs = 0;
  char figures[400] = "";
  size_t used = 0;
  for (int m = 0; m < nm; m++)
    for (int j = 0; j < nj; j++) {
      double jc = janus[j].cpu_pct + (with_server ? janus[j].server_cpu_pct : 0);
      if (janus[j].n != mesh[m].n || janus[j].cpu_pct < 0 || mesh[m].cpu_pct < 0 ||
          (with_server && janus[j].server_cpu_pct < 0))
        continue;
      double d = mesh[m].cpu_pct - jc;
      if (used < sizeof figures)
        used += (size_t)snprintf(figures + used, sizeof figures - used, "%sN=%d mesh %.2f, janus %.2f",
                                 used ? "; " : "", mesh[m].n, mesh[m].cpu_pct, jc);
      if (d > 0 && !pairs) {
        bench_note(rep, "crossover (%s CPU): mesh costs more per participant already at N=%d, the smallest "
                   "measured (%s)", what, mesh[m].n, figures);
        return;
      }
      if (d > 0 && prev_d <= 0) {
        bench_note(rep, "crossover (%s CPU): mesh passes Janus per participant at N=%.1f (%s)", what,
                   prev_n + (mesh[m].n - prev_n) * -prev_d / (d - prev_d), figures);
        return;
      }
      prev_n = mesh[m].n, prev_d = d, pairs++;
    }
  if (pairs)
    bench_note(rep, "crossover (%s CPU): none up to N=%.0f%s: mesh costs less per participant (%s)", what, prev_n,
               prev_n >= PARLEY_ROOM_MESH_MAX_MEMBERS ? ", mesh's limit" : "", figures);
  else
    bench_note(rep, "crossover (%s CPU): no N measured with both backends", what);
}

static int run_room(bench_report *rep, int argc, char **argv) {
  janus_ctx j = {.room_id = "1234", .go_fd = -1};
  const char *backend = NULL;
  int participants = 0, grace_ms = 2000;
  const parley__cli_opt opts[] = {
      {"janus", PARLEY__CLI_STRING, &j.url, "URL", "the Janus API: ws://127.0.0.1:8188/ (WebSocket) or http://127.0.0.1:8088/janus (Janus rows only with it)", 0, 0},
      {"room", PARLEY__CLI_STRING, &j.room_id, "ID", "the AudioBridge room (48 kHz) [1234]", 0, 0},
      {"backend", PARLEY__CLI_STRING, &backend, "NAME", "janus or mesh [both]", 0, 0},
      {"participants", PARLEY__CLI_INT, &participants, "N", "one row of N participants [janus 3, 10, 30; mesh 3, 10]", 2, ROOM_MAX_N},
      {"grace-ms", PARLEY__CLI_INT, &grace_ms, "MS", "the rooms' vanish_grace_ms [2000]", 1, 60000},
  };
  int rc_args = bench_args("[--janus URL]", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  bool want_janus = !backend || strcmp(backend, "janus") == 0, want_mesh = !backend || strcmp(backend, "mesh") == 0;
  if (!want_janus && !want_mesh) {
    fprintf(stderr, "room: --backend is janus or mesh\n");
    return 2;
  }
  if (want_janus && !j.url && backend) {
    fprintf(stderr, "room: the Janus rows need --janus URL (scripts/bench-room-janus.sh starts a Janus and passes it)\n");
    return 2;
  }
  size_t clip_n;
  float *clip = bench_load_clip("room", "tests/data/speech_a_48k.wav", &clip_n);
  if (!clip) return 1;
  const room_backend janus = {"janus", false, SIGKILL, j.url ? janus_pid(j.url) : 0, &j, NULL, janus_join, janus_start,
                              janus_victim_go, janus_victim_serve, NULL};
  static const int janus_rows[] = {3, 10, 30}, mesh_rows[] = {3, 10};
  room_result jr[3], mr[2];
  int nj = 0, nm = 0, rc = 0;
  for (size_t i = 0; rc == 0 && want_janus && j.url && i < 3; i++) {
    int n = participants ? participants : janus_rows[i];
    rc = room_run_row(rep, &janus, n, grace_ms, clip, clip_n, &jr[nj++]);
    if (participants) break;
  }
  for (size_t i = 0; rc == 0 && want_mesh && i < 2; i++) {
    int n = participants ? participants : mesh_rows[i];
    if (n > PARLEY_ROOM_MESH_MAX_MEMBERS) break;
    rc = room_run_row(rep, room_mesh_backend(), n, grace_ms, clip, clip_n, &mr[nm++]);
    if (participants) break;
  }
  if (want_janus && !j.url)
    bench_note(rep, "janus: no rows without --janus URL (scripts/bench-room-janus.sh starts a Janus and passes it)");
  if (nj && !janus.server_pid) bench_note(rep, "janus: no process found listening on %s's port", j.url);
  if (nj)
    bench_note(rep, "janus vanish: SIGKILL; %s", strncmp(j.url, "ws://", 5) == 0
               ? "over ws:// its connection closes and Janus drops the session at once (a frozen member or a cut "
                 "network keeps it open: then session_timeout, checked every 2 s)"
               : "over http:// Janus drops a silent session after its session_timeout (checked every 2 s); that "
                 "setting, not parley, bounds it (ws:// is at once)");
  if (want_mesh)
    bench_note(rep, "mesh: no row beyond N=%d (PARLEY_ROOM_MESH_MAX_MEMBERS)%s; vanish: SIGSTOP (no packet, no ICMP, "
               "as a lost network), removed vanish_grace_ms = %d ms after interrupted", PARLEY_ROOM_MESH_MAX_MEMBERS,
               participants ? "" : ", so none for 30", grace_ms);
  if (nj && nm) {
    crossover(rep, jr, nj, mr, nm, false);
    crossover(rep, jr, nj, mr, nm, true);
  }
  free(clip);
  return rc;
}

BENCH_SUITE(room, "room", "rooms, Janus AudioBridge and mesh: join, mouth-to-ear, CPU per participant, vanish detection",
            run_room)
