/* audio_helpers.h: signal fixtures and measurements shared by the tests (not part of libparley).
 * Everything here is plain single-threaded code; buffers are owned by the caller unless said. */
#ifndef PARLEY_TESTS_AUDIO_HELPERS_H
#define PARLEY_TESTS_AUDIO_HELPERS_H

#include <stddef.h>

/* Reads tests/data/NAME (mono) as float samples in [-1, 1]. Returns a malloc'd buffer (caller frees)
 * and sets *n and *rate_hz, or NULL on failure. */
float *th_load_wav(const char *name, size_t *n, int *rate_hz);
/* The same for a mono WAV at path (e.g. what an engine wrote); NULL if unreadable or not mono. */
float *th_read_wav(const char *path, size_t *n, int *rate_hz);
/* Writes mono float samples to PATH as 16-bit WAV; 0 on success. For inspecting failures by ear. */
int th_save_wav(const char *path, const float *x, size_t n, int rate_hz);

void th_sine(float *x, size_t n, double freq_hz, int rate_hz, double amplitude);
/* Seeded white noise, uniform in [-amplitude, amplitude]. */
void th_noise(float *x, size_t n, unsigned long long seed, double amplitude);

double th_rms(const float *x, size_t n);
/* 10*log10(energy(x) / energy(y)); +inf-safe (tiny floors). */
double th_energy_ratio_db(const float *x, const float *y, size_t n);
/* SNR of `test` against `ref`: 10*log10(sum ref^2 / sum (ref - test)^2). */
double th_snr_db(const float *ref, const float *test, size_t n);
/* Normalised cross-correlation of a and b shifted by lag (b[i + lag] against a[i]) over n samples. */
double th_xcorr_at(const float *a, const float *b, size_t n, long lag);
/* The lag in [0, max_lag] that maximises th_xcorr_at; *peak gets its value when non-NULL. */
long th_best_lag(const float *a, const float *b, size_t n, long max_lag, double *peak);
/* The same search for broadband signals such as speech, coarse to fine: every lag of 8-sample block
 * means first, then each lag within 16 samples of the best, at full rate. About 60 times cheaper for
 * long lags; not for pure tones, whose coarse peaks repeat every period. */
long th_best_lag_speech(const float *a, const float *b, size_t n, long max_lag, double *peak);

#endif
