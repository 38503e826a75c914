/* bench_room.h: what `parley-bench room`'s two backends share. bench_room.c runs a row the same way for
 * both (engines, the pump, joins, the talk window, the vanish) and holds the Janus backend;
 * bench_room_mesh.c holds the mesh backend (its signalling channel). A backend is a table of hooks;
 * the row calls them from its main thread unless a hook says otherwise. Not real-time code. */
#ifndef PARLEY_BENCH_ROOM_H
#define PARLEY_BENCH_ROOM_H

#include <stdbool.h>
#include <sys/types.h>

#include "bench/bench.h"
#include "parley/parley.h"

#define ROOM_MAX_N 32  /* participants in one row */
#define ROOM_VICTIM (-1) /* the participant index of the member that vanishes (a child process) */

typedef struct room_backend {
  const char *name;     /* the rows' "backend" */
  bool loopback;        /* engines use loopback candidates only */
  int vanish_signal;    /* what the victim gets: SIGKILL, SIGSTOP */
  pid_t server_pid;     /* the server's process on this machine (its CPU is measured too), or 0 */
  void *ctx;            /* the backend's, passed to every hook */
  /* Before the row's fork (no thread yet): 0 or an error. May be NULL. */
  int (*prepare)(void *ctx);
  /* Fills in rc (display name, grace and mute set) and joins participant i (ROOM_VICTIM in the child)
   * to the room; its handle in *out before any message reaches it. */
  int (*join)(void *ctx, int i, parley_engine *e, parley_room_config *rc, parley_room **out);
  /* In the parent after the fork: victim_fd is the pipe to the child; start threads here. May be NULL. */
  int (*start)(void *ctx, int victim_fd);
  /* Tells the child to join (it reads one byte from the pipe). */
  int (*victim_go)(void *ctx);
  /* In the child, after its join: serves the room until killed (fd: the pipe from the parent). */
  void (*victim_serve)(void *ctx, parley_room *room, int fd);
  /* Rooms left, child gone: stop what start started, before the rooms are freed. May be NULL. */
  void (*stop)(void *ctx);
} room_backend;

/* One row's figures (-1: not measured). */
typedef struct room_result {
  int n;
  double join_ms, m2e_ms, cpu_pct, server_cpu_pct, interrupted_ms, vanish_ms;
} room_result;

/* Runs one row of n participants; reports it and fills *out. 0, or 1 after a message on stderr. */
int room_run_row(bench_report *rep, const room_backend *b, int n, int grace_ms, const float *clip, size_t clip_n,
                 room_result *out);

/* bench_room_mesh.c: the mesh backend (its context is static: one row at a time). */
const room_backend *room_mesh_backend(void);

#endif
