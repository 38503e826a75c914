/* device.c: the backend-independent half of the device layer (see device.h). Owns the device object,
 * the copied config strings, the scratch period buffers, the control-thread event queue and the
 * pacing thread that clocks the FILE and NULL backends.
 *
 * Events: the real-time side (PortAudio callback, pacing thread, step caller) only ever sets bits in
 * rt_flags with an atomic OR and the first error code with a compare-exchange; both are wait-free.
 * The control thread folds those bits into its plain queue before every operation that queues an
 * event of its own (start, stop, poll), so the queue keeps the order things happened in, and
 * poll_events delivers the queue. User code is therefore only ever called from poll_events.
 *
 * Pacing: REALTIME sleeps to absolute CLOCK_MONOTONIC deadlines computed from the frame count (no
 * drift from rounding a period to nanoseconds); a period that starts more than 4 periods late counts
 * an xrun and moves the schedule instead of bursting to catch up, like a sound card would.
 * The pacing thread runs at normal priority: it imitates a card's clock, not its priority.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/device_backend.h"
#include "parley/parley.h"

#define LATE_PERIODS 4

void parley__device_config_init(parley__device_config *cfg, parley__device_backend backend) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->backend = backend;
  cfg->sample_rate_hz = 48000;
  cfg->channels = 1;
  cfg->period_frames = 0;
  cfg->stall_timeout_ms = 2000;
  cfg->pacing = PARLEY__DEVICE_PACE_REALTIME;
}

bool parley__device_rate_supported(int rate_hz) {
  return rate_hz == 8000 || rate_hz == 16000 || rate_hz == 32000 || rate_hz == 44100 ||
         rate_hz == 48000;
}

static int copy_str(char **dst, const char *src) {
  *dst = NULL;
  if (!src) return 0;
  size_t n = strlen(src) + 1;
  *dst = malloc(n);
  if (!*dst) return PARLEY_ENOMEM;
  memcpy(*dst, src, n);
  return 0;
}

static const parley__device_ops *ops_for(parley__device_backend b) {
  switch (b) {
    case PARLEY__DEVICE_NULL: return &parley__device_null_ops;
    case PARLEY__DEVICE_FILE: return &parley__device_file_ops;
    case PARLEY__DEVICE_APP: return &parley__device_app_ops;
    case PARLEY__DEVICE_PORTAUDIO: return &parley__device_pa_ops;
  }
  return NULL;
}

static void release(parley__device *d) {
  if (d->ops && d->ops->close) d->ops->close(d);
  free(d->in_buf);
  free(d->out_buf);
  free(d->host_api);
  free(d->input_name);
  free(d->output_name);
  free(d->input_path);
  free(d->output_path);
  free(d);
}

parley__device *parley__device_new(const parley__device_config *cfg, int *err) {
  int e = PARLEY_EINVAL;
  parley__device *d = NULL;
  if (!cfg || !cfg->process || !ops_for(cfg->backend)) goto fail;
  if (!parley__device_rate_supported(cfg->sample_rate_hz) || (cfg->channels != 1 && cfg->channels != 2)) goto fail;
  if (cfg->pacing != PARLEY__DEVICE_PACE_REALTIME && cfg->pacing != PARLEY__DEVICE_PACE_FREERUN &&
      cfg->pacing != PARLEY__DEVICE_PACE_STEPPED)
    goto fail;
  if (cfg->stall_timeout_ms < 0 || cfg->app_ring_frames > ((size_t)1 << 24)) goto fail;
  if ((cfg->input_path && !*cfg->input_path) || (cfg->output_path && !*cfg->output_path)) goto fail;

  e = PARLEY_ENOMEM;
  d = calloc(1, sizeof *d);
  if (!d) goto fail;
  d->cfg = *cfg;
  if (copy_str(&d->host_api, cfg->host_api) || copy_str(&d->input_name, cfg->input_name) ||
      copy_str(&d->output_name, cfg->output_name) || copy_str(&d->input_path, cfg->input_path) ||
      copy_str(&d->output_path, cfg->output_path))
    goto fail;
  d->cfg.host_api = d->host_api;
  d->cfg.input_name = d->input_name;
  d->cfg.output_name = d->output_name;
  d->cfg.input_path = d->input_path;
  d->cfg.output_path = d->output_path;
  d->ops = ops_for(cfg->backend);
  d->rate_hz = cfg->sample_rate_hz;
  d->channels = cfg->channels;
  atomic_init(&d->rt_flags, 0);
  atomic_init(&d->rt_err, 0);
  atomic_init(&d->frames, 0);
  atomic_init(&d->xruns, 0);
  atomic_init(&d->underrun_frames, 0);
  atomic_init(&d->overrun_frames, 0);
  atomic_init(&d->trimmed_frames, 0);
  atomic_init(&d->pacer_run, false);

  /* open may change the rate (FILE takes the input file's), so the period is settled after it. */
  e = d->ops->open(d);
  if (e < 0) goto fail;
  size_t period = cfg->period_frames ? cfg->period_frames : (size_t)d->rate_hz / 100;
  e = PARLEY_EINVAL;
  if (period == 0 || period > (size_t)d->rate_hz) goto fail;
  d->period_frames = period;
  e = PARLEY_ENOMEM;
  d->in_buf = calloc(period * (size_t)d->channels, sizeof(float));
  d->out_buf = calloc(period * (size_t)d->channels, sizeof(float));
  if (!d->in_buf || !d->out_buf) goto fail;
  /* Second stage for backends whose buffers depend on the period (APP rings, FILE conversion). */
  if (d->ops->prepare) {
    e = d->ops->prepare(d);
    if (e < 0) goto fail;
  }
  if (err) *err = 0;
  return d;

fail:
  if (d) release(d);
  if (err) *err = e;
  return NULL;
}

void parley__device_flag(parley__device *d, unsigned flag, int err) {
  if (err) {
    int none = 0;
    atomic_compare_exchange_strong_explicit(&d->rt_err, &none, err, memory_order_relaxed,
                                            memory_order_relaxed);
  }
  atomic_fetch_or_explicit(&d->rt_flags, flag, memory_order_release);
}

void parley__device_count_frames(parley__device *d, size_t frames) {
  PARLEY__OWNER_CHECK(&d->rt_owner, "a device period (the device's real-time thread)");
  atomic_fetch_add_explicit(&d->frames, frames, memory_order_relaxed);
}

void parley__device_queue(parley__device *d, parley__device_event ev, int err) {
  if (d->q_len == PARLEY__DEVICE_QUEUE) return; /* the caller is not polling; drop the newest */
  size_t i = (d->q_head + d->q_len) % PARLEY__DEVICE_QUEUE;
  d->queue[i].ev = ev;
  d->queue[i].err = err;
  d->q_len++;
}

/* Moves real-time flags into the queue, latching LOST and FINISHED once per run. Control thread. */
static void collect(parley__device *d) {
  unsigned f = atomic_exchange_explicit(&d->rt_flags, 0u, memory_order_acquire);
  if (!f) return;
  int err = atomic_exchange_explicit(&d->rt_err, 0, memory_order_relaxed);
  if ((f & PARLEY__DEVICE_RT_FINISHED) && !d->finished) {
    d->finished = true;
    parley__device_queue(d, PARLEY__DEVICE_EV_FINISHED, 0);
  }
  if ((f & PARLEY__DEVICE_RT_LOST) && !d->lost) {
    d->lost = true;
    parley__device_queue(d, PARLEY__DEVICE_EV_LOST, err ? err : PARLEY_EDEVICE);
  }
}

/* ---- pacing thread ---- */

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t frames_to_ns(uint64_t frames, int rate_hz) {
  uint64_t r = (uint64_t)rate_hz;
  return (int64_t)(frames / r) * 1000000000 + (int64_t)((frames % r) * 1000000000u / r);
}

static void *pacer_main(void *arg) {
  parley__device *d = arg;
  bool realtime = d->cfg.pacing == PARLEY__DEVICE_PACE_REALTIME;
  int64_t base_ns = mono_ns();
  uint64_t frames = 0; /* since base_ns */
  while (atomic_load_explicit(&d->pacer_run, memory_order_acquire)) {
    int r = d->ops->period(d);
    if (r < 0) break;
    if (r == PARLEY__DEVICE_PERIOD_DONE && !realtime) break;
    if (!realtime) continue;
    frames += d->period_frames;
    int64_t deadline = base_ns + frames_to_ns(frames, d->rate_hz);
    int64_t now = mono_ns();
    if (now - deadline > frames_to_ns(LATE_PERIODS * (uint64_t)d->period_frames, d->rate_hz)) {
      atomic_fetch_add_explicit(&d->xruns, 1, memory_order_relaxed);
      base_ns = now;
      frames = 0;
      continue;
    }
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
  }
  return NULL;
}

static bool uses_pacer(const parley__device *d) {
  return d->cfg.backend != PARLEY__DEVICE_PORTAUDIO && d->cfg.pacing != PARLEY__DEVICE_PACE_STEPPED;
}

/* ---- control ---- */

int parley__device_start(parley__device *d) {
  if (!d) return PARLEY_EINVAL;
  if (d->running) return PARLEY_ESTATE;
  collect(d);
  d->lost = false;
  d->finished = false;
  d->stall_frames = atomic_load_explicit(&d->frames, memory_order_relaxed);
  d->stall_since_us = INT64_MIN; /* set by the first poll */
  if (d->ops->start) {
    int e = d->ops->start(d);
    if (e < 0) return e;
  } else if (uses_pacer(d)) {
    atomic_store_explicit(&d->pacer_run, true, memory_order_release);
    if (pthread_create(&d->pacer, NULL, pacer_main, d) != 0) {
      atomic_store_explicit(&d->pacer_run, false, memory_order_release);
      return PARLEY_ENOMEM;
    }
    d->pacer_live = true;
  }
  d->running = true;
  parley__device_queue(d, PARLEY__DEVICE_EV_STARTED, 0);
  return 0;
}

int parley__device_stop(parley__device *d) {
  if (!d) return PARLEY_EINVAL;
  if (!d->running) return 0;
  int e = 0;
  if (d->ops->stop) e = d->ops->stop(d);
  if (d->pacer_live) {
    atomic_store_explicit(&d->pacer_run, false, memory_order_release);
    pthread_join(d->pacer, NULL);
    d->pacer_live = false;
  }
  if (d->ops->flush) {
    int fe = d->ops->flush(d);
    if (e == 0) e = fe;
  }
  d->running = false;
  PARLEY__OWNER_RELEASE(&d->rt_owner); /* the next start's thread takes over */
  collect(d);
  parley__device_queue(d, PARLEY__DEVICE_EV_STOPPED, 0);
  return e;
}

void parley__device_free(parley__device *d) {
  if (!d) return;
  parley__device_stop(d);
  release(d);
}

int parley__device_step(parley__device *d) {
  if (!d || !d->running || !d->ops->period) return d ? PARLEY_ESTATE : PARLEY_EINVAL;
  if (d->cfg.pacing != PARLEY__DEVICE_PACE_STEPPED) return PARLEY_ESTATE;
  int r = d->ops->period(d);
  return r < 0 ? r : 0;
}

int parley__device_poll_events(parley__device *d, int64_t now_us) {
  if (!d) return PARLEY_EINVAL;
  if (d->running && !d->lost && d->ops->poll) {
    d->ops->poll(d);
    /* Stall: hardware-clocked devices only (the others are clocked by us or by the caller). */
    uint64_t f = atomic_load_explicit(&d->frames, memory_order_relaxed);
    if (f != d->stall_frames || d->stall_since_us == INT64_MIN) {
      d->stall_frames = f;
      d->stall_since_us = now_us;
    } else if (d->cfg.stall_timeout_ms > 0 &&
               now_us - d->stall_since_us > (int64_t)d->cfg.stall_timeout_ms * 1000) {
      parley__device_flag(d, PARLEY__DEVICE_RT_LOST, PARLEY_ETIMEDOUT);
    }
  }
  collect(d);
  int n = 0;
  while (d->q_len) {
    parley__device_event ev = d->queue[d->q_head].ev;
    int err = d->queue[d->q_head].err;
    d->q_head = (d->q_head + 1) % PARLEY__DEVICE_QUEUE;
    d->q_len--;
    if (d->cfg.event) d->cfg.event(d->cfg.user, ev, err);
    n++;
  }
  return n;
}

int parley__device_rate_hz(const parley__device *d) { return d ? d->rate_hz : PARLEY_EINVAL; }
int parley__device_channels(const parley__device *d) { return d ? d->channels : PARLEY_EINVAL; }
size_t parley__device_period_frames(const parley__device *d) { return d ? d->period_frames : 0; }

int parley__device_get_latency(const parley__device *d, parley__device_latency *out) {
  if (!d || !out) return PARLEY_EINVAL;
  out->input_frames = d->period_frames;
  out->output_frames = 0;
  if (!d->ops->latency) return 0;
  double in_s = 0, out_s = 0;
  if (!d->running) return PARLEY_ESTATE;
  int e = d->ops->latency(d, &in_s, &out_s);
  if (e < 0) return e;
  size_t in = in_s > 0 ? (size_t)(in_s * d->rate_hz + 0.5) : 0;
  if (in > out->input_frames) out->input_frames = in; /* never less than the capture fill */
  out->output_frames = out_s > 0 ? (size_t)(out_s * d->rate_hz + 0.5) : 0;
  return 0;
}

void parley__device_get_stats(const parley__device *d, parley__device_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!d) return;
  parley__device *m = (parley__device *)d; /* atomics are read-only here */
  out->frames = atomic_load_explicit(&m->frames, memory_order_relaxed);
  out->xruns = atomic_load_explicit(&m->xruns, memory_order_relaxed);
  out->underrun_frames = atomic_load_explicit(&m->underrun_frames, memory_order_relaxed);
  out->overrun_frames = atomic_load_explicit(&m->overrun_frames, memory_order_relaxed);
  out->trimmed_frames = atomic_load_explicit(&m->trimmed_frames, memory_order_relaxed);
}

int parley__device_list(parley__device_info *out, size_t cap) {
  if (!out && cap) return PARLEY_EINVAL;
  return parley__device_pa_list(out, cap);
}
