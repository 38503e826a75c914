/* resampler.c: streaming rate conversion (see resampler.h). Owns one speexdsp resampler state, or none
 * for equal rates (plain copy).
 *
 * Lossless streaming: speexdsp consumes all the input it is given as long as the output buffer has room
 * for every sample that input produces. process() therefore checks the room against an upper bound
 * first (max_output) and refuses with PARLEY_ENOSPC before touching the state, so a caller never loses
 * or duplicates a sample at a chunk boundary. Audio-thread calls never allocate.
 */
#include "engine/resampler.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <speex/speex_resampler.h>

#include "parley/parley.h"

struct parley__resampler {
  SpeexResamplerState *st; /* NULL for a same-rate copy */
  int in_rate_hz;
  int out_rate_hz;
};

static int rate_supported(int hz) {
  return hz >= PARLEY__RESAMPLER_MIN_RATE_HZ && hz <= PARLEY__RESAMPLER_MAX_RATE_HZ;
}

parley__resampler *parley__resampler_new(int in_rate_hz, int out_rate_hz, int quality, int *err) {
  int dummy;
  if (!err) err = &dummy;
  if (!rate_supported(in_rate_hz) || !rate_supported(out_rate_hz) ||
      quality < PARLEY__RESAMPLER_QUALITY_MIN || quality > PARLEY__RESAMPLER_QUALITY_MAX) {
    *err = PARLEY_EINVAL;
    return NULL;
  }
  parley__resampler *r = calloc(1, sizeof *r);
  if (!r) {
    *err = PARLEY_ENOMEM;
    return NULL;
  }
  r->in_rate_hz = in_rate_hz;
  r->out_rate_hz = out_rate_hz;
  if (in_rate_hz != out_rate_hz) {
    int serr = RESAMPLER_ERR_SUCCESS;
    r->st = speex_resampler_init(1, (spx_uint32_t)in_rate_hz, (spx_uint32_t)out_rate_hz, quality, &serr);
    if (!r->st || serr != RESAMPLER_ERR_SUCCESS) {
      if (r->st) speex_resampler_destroy(r->st);
      free(r);
      *err = serr == RESAMPLER_ERR_ALLOC_FAILED ? PARLEY_ENOMEM : PARLEY_EDSP;
      return NULL;
    }
  }
  *err = 0;
  return r;
}

void parley__resampler_free(parley__resampler *r) {
  if (!r) return;
  if (r->st) speex_resampler_destroy(r->st);
  free(r);
}

size_t parley__resampler_max_output(const parley__resampler *r, size_t in_len) {
  if (!r) return 0;
  if (in_len > PARLEY__RESAMPLER_MAX_IN_SAMPLES) in_len = PARLEY__RESAMPLER_MAX_IN_SAMPLES;
  if (!r->st) return in_len;
  /* Output instants advance by in/out input samples each and all lie inside the new input, so there
   * are at most ceil(in_len * out / in) of them; +1 covers the fractional phase carried over. */
  uint64_t num = (uint64_t)in_len * (uint64_t)r->out_rate_hz;
  return (size_t)((num + (uint64_t)r->in_rate_hz - 1) / (uint64_t)r->in_rate_hz) + 1;
}

int parley__resampler_process(parley__resampler *r, const float *in, size_t in_len, float *out,
                              size_t out_cap) {
  if (!r || in_len > PARLEY__RESAMPLER_MAX_IN_SAMPLES) return PARLEY_EINVAL;
  if (in_len == 0) return 0;
  if (!in || !out) return PARLEY_EINVAL;
  if (out_cap < parley__resampler_max_output(r, in_len)) return PARLEY_ENOSPC;
  if (!r->st) {
    memmove(out, in, in_len * sizeof *in);
    return (int)in_len;
  }
  spx_uint32_t ilen = (spx_uint32_t)in_len;
  spx_uint32_t olen = out_cap > UINT32_MAX ? UINT32_MAX : (spx_uint32_t)out_cap;
  int serr = speex_resampler_process_float(r->st, 0, in, &ilen, out, &olen);
  if (serr != RESAMPLER_ERR_SUCCESS) return PARLEY_EDSP;
  /* Cannot happen with the room checked above; if it did, input would be lost, so say so. */
  if (ilen != (spx_uint32_t)in_len) return PARLEY_EDSP;
  return (int)olen;
}

int parley__resampler_delay_samples(const parley__resampler *r) {
  if (!r || !r->st) return 0;
  return speex_resampler_get_output_latency(r->st);
}

double parley__resampler_delay_samples_exact(const parley__resampler *r) {
  if (!r || !r->st) return 0;
  return (double)speex_resampler_get_input_latency(r->st) * r->out_rate_hz / r->in_rate_hz;
}

void parley__resampler_reset(parley__resampler *r) {
  if (r && r->st) speex_resampler_reset_mem(r->st);
}

int parley__resampler_in_rate_hz(const parley__resampler *r) { return r ? r->in_rate_hz : 0; }
int parley__resampler_out_rate_hz(const parley__resampler *r) { return r ? r->out_rate_hz : 0; }
