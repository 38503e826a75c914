/* timescale.h: time-scale modification of 48 kHz speech, pitch preserved (WSOLA-style single splice),
 * for the receive chain's playout: accelerate (play a decoded frame shorter by one pitch lag), stretch
 * (play it longer by one pitch lag), expand (continue the audio played so far when no packet is there)
 * and merge (join a decoded frame onto an expansion without a step).
 *
 * Method: a splice crossfades (raised cosine, overlap_samples long) between the frame's start and the
 * same frame shifted by a lag L, chosen by normalised correlation (waveform similarity): the longest
 * lag in the allowed range whose correlation is within 80 % of the best one's. In voiced speech L
 * lands on a pitch period or a multiple, so the cut or repeated piece is whole periods, the pitch is
 * kept, and each splice moves as much time as the caller allows (fewer splices). A near-silent frame
 * (20 dB under the speech level tracked from the played audio) is accelerated by the most allowed
 * without a match: a crossfade in near-silence is not heard. The output starts with the input's
 * first sample and ends with its last, so frames join their neighbours unchanged.
 *
 * Threads: one object per receive chain, used on the audio thread only. Real-time: every function but
 * new/free is allocation-free, lock-free and bounded (the lag search is O(lag range x overlap)).
 */
#ifndef PARLEY_ENGINE_TIMESCALE_H
#define PARLEY_ENGINE_TIMESCALE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct parley__timescale parley__timescale;

/* Shortest lag searched (2.5 ms, a 400 Hz pitch) and the crossfade length (5 ms), at 48 kHz. */
#define PARLEY__TIMESCALE_MIN_LAG_SAMPLES 120
#define PARLEY__TIMESCALE_OVERLAP_SAMPLES 240
/* Longest pitch lag expand() looks for (15 ms, a 67 Hz pitch). */
#define PARLEY__TIMESCALE_MAX_PITCH_SAMPLES 720

/* Creates a stage for frames of up to max_frame_samples (>= 2 x overlap) at 48 kHz. Allocates its
 * history and scratch. NULL and *err = PARLEY_EINVAL / PARLEY_ENOMEM on failure. Not real-time. */
parley__timescale *parley__timescale_new(size_t max_frame_samples, int *err);
void parley__timescale_free(parley__timescale *ts);

/* Writes in (n samples, borrowed) shortened by one lag L in [MIN_LAG, max_remove_samples] to out
 * (capacity >= n, may not alias in); L is the largest allowed if in is near-silent
 * (parley__timescale_is_quiet). L = 0 (out = in) when no lag fits in the frame or the best
 * correlation is too weak to cut without an audible seam. Returns the output length n - L, or
 * PARLEY_EINVAL. Real-time safe. */
int parley__timescale_accelerate(parley__timescale *ts, const float *in, size_t n, size_t max_remove_samples,
                                 float *out);

/* Writes in lengthened by one lag L in [MIN_LAG, max_insert_samples] (a repeated stretch of pitch
 * periods) to out (capacity >= n + max_insert_samples). Returns n + L (L may be 0) or PARLEY_EINVAL. */
int parley__timescale_stretch(parley__timescale *ts, const float *in, size_t n, size_t max_insert_samples,
                              float *out);

/* Whether x (n samples, borrowed) is near-silent: its rms 20 dB or more under the speech level of the
 * audio played so far (the loudest recent frames given to played(), falling 20 dB in 3 s), or under
 * 1e-4. False for bad arguments. Real-time safe. */
bool parley__timescale_is_quiet(const parley__timescale *ts, const float *x, size_t n);

/* Records audio that was just played (n samples, borrowed), so expand() can continue it and
 * is_quiet() knows the speech level. Call with everything the chain outputs, expansions included. */
void parley__timescale_played(parley__timescale *ts, const float *x, size_t n);

/* Writes exactly n samples continuing the played audio by repeating its last pitch period; the level
 * fades after 20 ms of continuous expansion (merge() ends the run). Call played() with the result.
 * Returns n or PARLEY_EINVAL. Real-time safe. */
int parley__timescale_expand(parley__timescale *ts, float *out, size_t n);

/* Crossfades the first overlap samples of a frame decoded after an expansion or concealment (x, n >=
 * overlap, modified in place) from the expansion's continuation into the frame, so the join has no
 * step. Real-time safe. */
void parley__timescale_merge(parley__timescale *ts, float *x, size_t n);

#endif
