/* resampler.h: streaming sample-rate conversion between a device rate and the engine rate, on top of
 * speexdsp's resampler (float API).
 *
 * Rates: any from 1 kHz to 384 kHz, in any pair. The engine's devices run at 8000, 16000, 32000, 44100
 * or 48000 Hz (device <-> 48 kHz); other rates come from audio files (engine/device_file.c converts
 * those to the device rate).
 * Equal rates are a plain copy with no delay. The stage keeps its own filter history, so input may come
 * in chunks of any size (1 sample or 10000): the output stream is the same as if everything had been
 * passed in one call.
 *
 * Threads: one object is used by one thread at a time. new/free allocate and are NOT real-time safe;
 * process, max_output, delay_samples and reset are real-time safe (no allocation, locks or syscalls).
 */
#ifndef PARLEY_ENGINE_RESAMPLER_H
#define PARLEY_ENGINE_RESAMPLER_H

#include <stddef.h>

typedef struct parley__resampler parley__resampler;

/* speexdsp quality, 0 (cheapest) .. 10 (best). With speexdsp's float build a 1 kHz tone survives a
 * 44.1k -> 48k -> 44.1k round trip at ~72 dB SNR at quality 2, ~100 dB at 3, ~105 dB at 5, ~128 dB at
 * 10; DEFAULT (5) keeps a wide margin over the 60 dB goal with a flatter passband than 3. */
#define PARLEY__RESAMPLER_QUALITY_MIN 0
#define PARLEY__RESAMPLER_QUALITY_MAX 10
#define PARLEY__RESAMPLER_QUALITY_DEFAULT 5

#define PARLEY__RESAMPLER_MIN_RATE_HZ 1000
#define PARLEY__RESAMPLER_MAX_RATE_HZ 384000

/* Largest in_len one process call accepts (keeps all size arithmetic far from overflow). */
#define PARLEY__RESAMPLER_MAX_IN_SAMPLES ((size_t)1 << 24)

/* Creates a converter from in_rate_hz to out_rate_hz. Returns NULL and sets *err (when err is non-NULL)
 * to PARLEY_EINVAL for an unsupported rate or quality, PARLEY_ENOMEM or PARLEY_EDSP on failure; sets
 * *err = 0 on success. Not real-time safe. */
parley__resampler *parley__resampler_new(int in_rate_hz, int out_rate_hz, int quality, int *err);
/* NULL is ignored. Not real-time safe. */
void parley__resampler_free(parley__resampler *r);

/* An upper bound on the samples the next process call may write for in_len input samples, given the
 * current state. Size `out` with it. Real-time safe. */
size_t parley__resampler_max_output(const parley__resampler *r, size_t in_len);

/* Converts in[0..in_len) (borrowed, read only) and writes the output to out (borrowed, out_cap samples).
 * in and out must not overlap. Returns the number of samples written (0 for tiny inputs is normal:
 * they are kept in the filter history and come out later), or
 * PARLEY_EINVAL (NULL pointers with a non-zero length, in_len > PARLEY__RESAMPLER_MAX_IN_SAMPLES),
 * PARLEY_ENOSPC when out_cap < parley__resampler_max_output(r, in_len): then nothing was consumed and the
 * state is unchanged, so the call may be repeated with a larger buffer; PARLEY_EDSP on a library
 * failure. Real-time safe. */
int parley__resampler_process(parley__resampler *r, const float *in, size_t in_len, float *out,
                              size_t out_cap);

/* The delay the stage adds, in output-rate samples (0 for equal rates): an input event at time t comes
 * out at t + delay. Real-time safe. */
int parley__resampler_delay_samples(const parley__resampler *r);
/* The same delay without rounding, in output-rate samples: speexdsp's filter delays by exactly half its
 * length in input samples, which is usually a fraction of an output sample. For aligning measurements.
 * Real-time safe. */
double parley__resampler_delay_samples_exact(const parley__resampler *r);

/* Forgets the filter history (starts a new, unrelated stream); the delay is unchanged. Real-time safe. */
void parley__resampler_reset(parley__resampler *r);

int parley__resampler_in_rate_hz(const parley__resampler *r);
int parley__resampler_out_rate_hz(const parley__resampler *r);

#endif
