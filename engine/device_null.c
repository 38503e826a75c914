/* device_null.c: the NULL backend. Captures silence, discards playout; owns nothing.
 *
 * Paced like the FILE backend by device.c's pacing thread (REALTIME or FREERUN) or by
 * parley__device_step (STEPPED). Its period is real-time safe: two memsets and the process call.
 */
#include <string.h>

#include "engine/device_backend.h"

static int null_open(parley__device *d) {
  (void)d;
  return 0;
}

static int null_period(parley__device *d) {
  size_t n = d->period_frames * (size_t)d->channels;
  memset(d->in_buf, 0, n * sizeof(float));
  memset(d->out_buf, 0, n * sizeof(float));
  d->cfg.process(d->cfg.user, d->in_buf, d->out_buf, d->period_frames);
  parley__device_count_frames(d, d->period_frames);
  return PARLEY__DEVICE_PERIOD_MORE;
}

const parley__device_ops parley__device_null_ops = {
    .open = null_open,
    .period = null_period,
};
