/* device_backend.h: what device.c shares with the backend files (device_pa.c, device_file.c,
 * device_app.c, device_null.c). Not for use outside engine/device*.c.
 *
 * device.c owns the parley__device object, its config copy, the scratch period buffers, the event
 * queue and the pacing thread. A backend owns its `impl` state and implements the ops below.
 */
#ifndef PARLEY_ENGINE_DEVICE_BACKEND_H
#define PARLEY_ENGINE_DEVICE_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/thread_check.h"
#include "engine/device.h"

/* Real-time -> control flags (atomic bits in parley__device.rt_flags). */
#define PARLEY__DEVICE_RT_FINISHED 1u
#define PARLEY__DEVICE_RT_LOST 2u

/* Period result for the pacer: keep going, input finished (a FREERUN pacer stops), or fatal. */
#define PARLEY__DEVICE_PERIOD_MORE 0
#define PARLEY__DEVICE_PERIOD_DONE 1

typedef struct parley__device_ops {
  /* At new, after the common config checks: open resources, may set d->rate_hz. Control thread. */
  int (*open)(parley__device *d);
  /* At new, once period_frames and the scratch buffers exist: allocate per-period state. May be
   * NULL. Control thread. */
  int (*prepare)(parley__device *d);
  /* Start/stop the backend's own clock (PORTAUDIO); NULL when the common pacer or step drives it. */
  int (*start)(parley__device *d);
  int (*stop)(parley__device *d);
  /* One period into d->in_buf / d->out_buf (FILE, NULL, APP): returns PERIOD_MORE, PERIOD_DONE or a
   * negative error (LOST already flagged). Pacing thread or step caller. */
  int (*period)(parley__device *d);
  /* Control-thread health check while running (PORTAUDIO). May be NULL. */
  void (*poll)(parley__device *d);
  /* At stop: make files durable (FILE). May be NULL. */
  int (*flush)(parley__device *d);
  /* At free: release everything `open` took. May be NULL. */
  void (*close)(parley__device *d);
  /* The running stream's latencies in seconds as the host reports them: input_s from the sound at the
   * input to the callback that hands over the period it starts (capture fill included), output_s from
   * the callback to its first output sample at the output (see parley__device_get_latency). May be
   * NULL (no buffering beyond the period). Returns 0, or PARLEY_ESTATE when there is no stream.
   * Control thread. */
  int (*latency)(const parley__device *d, double *input_s, double *output_s);
} parley__device_ops;

#define PARLEY__DEVICE_QUEUE 32

struct parley__device {
  parley__device_config cfg; /* strings point at the copies below */
  char *host_api, *input_name, *output_name, *input_path, *output_path;
  const parley__device_ops *ops;
  void *impl;

  int rate_hz;
  int channels;
  size_t period_frames;
  float *in_buf;  /* period_frames * channels, for backends driven by period() */
  float *out_buf;

  bool running;  /* control thread */
  bool lost;     /* control thread: LOST delivered to the queue for this run */
  bool finished; /* control thread: FINISHED queued for this run */

  /* Real-time side -> control thread. */
  parley__owner rt_owner; /* debug builds: the thread running periods, from start to stop */
  atomic_uint rt_flags;
  atomic_int rt_err;
  atomic_uint_least64_t frames;
  atomic_uint_least64_t xruns;
  atomic_uint_least64_t underrun_frames;
  atomic_uint_least64_t overrun_frames;
  atomic_uint_least64_t trimmed_frames;

  /* Pacing thread (FILE, NULL in REALTIME/FREERUN). */
  pthread_t pacer;
  bool pacer_live;
  atomic_bool pacer_run;

  /* Stall detection (control thread). */
  uint64_t stall_frames;
  int64_t stall_since_us;

  /* Event queue (control thread only). */
  struct {
    parley__device_event ev;
    int err;
  } queue[PARLEY__DEVICE_QUEUE];
  size_t q_head, q_len;
};

extern const parley__device_ops parley__device_null_ops;
extern const parley__device_ops parley__device_file_ops;
extern const parley__device_ops parley__device_app_ops;
extern const parley__device_ops parley__device_pa_ops;

/* Real-time safe: flag an event for the control thread (first error code wins). */
void parley__device_flag(parley__device *d, unsigned flag, int err);
/* Control thread: queue an event for the next poll. */
void parley__device_queue(parley__device *d, parley__device_event ev, int err);
/* Real-time safe: count frames that went through process. */
void parley__device_count_frames(parley__device *d, size_t frames);

/* PORTAUDIO device list (device_pa.c). */
int parley__device_pa_list(parley__device_info *out, size_t cap);

#endif
