/* latency.c: a started call's algorithmic latency floor (see latency.h), read from its live chains'
 * fixed delays and its device's reported latencies under the engine lock (the chains cannot be freed
 * nor the device stopped meanwhile). App threads only; not real-time. */
#include "engine/latency.h"

#include <string.h>

#include "engine/call_internal.h" /* reads the call's live media */

static double ms48(int samples) { return (double)samples * 1000.0 / PARLEY__ENGINE_RATE_HZ; }

int parley__call_pipeline_delays(parley_call *call, parley__pipeline_delays *out) {
  if (!call || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  parley_engine *e = call->eng;
  pthread_mutex_lock(&e->lock);
  parley__call_media *m = call->media;
  if (!m || call->hungup) {
    pthread_mutex_unlock(&e->lock);
    return PARLEY_ESTATE;
  }
  parley__send_delays sd;
  parley__recv_delays rd;
  parley__send_chain_delays(m->send, &sd);
  parley__recv_chain_delays(m->recv, &rd);
  out->device_rate_hz = e->rate_hz;
  out->frame_ms = e->cfg.frame_ms;
  out->period_ms = (double)e->frame_samples * 1000.0 / e->rate_hz;
  parley__device_latency dl;
  out->device_reported = parley__device_get_latency(e->dev, &dl) == 0;
  if (!out->device_reported) dl = (parley__device_latency){.input_frames = e->frame_samples, .output_frames = 0};
  out->input_ms = (double)dl.input_frames * 1000.0 / e->rate_hz;
  out->output_ms = (double)dl.output_frames * 1000.0 / e->rate_hz;
  pthread_mutex_unlock(&e->lock);
  out->send_resampler_ms = ms48(sd.resampler_samples);
  out->echo_ms = ms48(sd.echo_samples);
  out->lookahead_ms = ms48(sd.lookahead_samples);
  out->jitter_min_ms = ms48(rd.jitter_min_samples);
  out->recv_resampler_ms = ms48(rd.resampler_samples);
  out->floor_ms = out->input_ms + out->period_ms + out->send_resampler_ms + out->echo_ms + out->lookahead_ms +
                  out->jitter_min_ms + out->recv_resampler_ms + out->output_ms;
  return 0;
}
