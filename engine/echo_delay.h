/* echo_delay.h: the echo delay estimator of the capture-side echo stage (engine/echo.c): where, after
 * the far-end reference, the echo starts in the microphone signal (a sound card's and an OS mixer's
 * buffering, the loudspeaker-to-microphone path), so that the adaptive filter's tail is placed there
 * instead of spending its length on the bulk delay.
 *
 * Method: both signals are reduced to 4 ms level envelopes with their slow mean taken out; their cross
 * correlation over lags 0..max_delay is averaged over a few seconds and searched every 100 ms. The
 * estimate is the onset of the correlation peak (the earliest lag before the peak still above a third of
 * it: the room's reverberation smears the peak later than the direct path), taken only when the far end
 * carried enough signal, the peak stands out, and three searches in a row agree within 8 ms.
 *
 * Threads: new/free on any thread (they allocate; not real-time safe); update, get and reset on the
 * audio thread, real-time safe (no allocation, locks or system calls).
 */
#ifndef PARLEY_ENGINE_ECHO_DELAY_H
#define PARLEY_ENGINE_ECHO_DELAY_H

#include <stddef.h>

typedef struct parley__echo_delay parley__echo_delay;

/* max_delay_ms: the largest lag searched, 0..2000. NULL on a bad argument or out of memory. */
parley__echo_delay *parley__echo_delay_new(int rate_hz, int max_delay_ms);
void parley__echo_delay_free(parley__echo_delay *d);

/* Feeds n samples of the reference (at capture alignment, before any estimated delay) and of the
 * microphone signal. Any n; envelopes are cut in 4 ms blocks across calls. */
void parley__echo_delay_update(parley__echo_delay *d, const float *far, const float *near, size_t n);

/* The echo's onset after the reference in samples, or -1 while there is no confident estimate. */
long parley__echo_delay_get(const parley__echo_delay *d);

/* Forgets everything (history and estimate). */
void parley__echo_delay_reset(parley__echo_delay *d);

#endif
