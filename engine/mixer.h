/* mixer.h: conference mixer. N participants' frames in, one full mix and N mix-minus outputs out
 * (each participant hears everyone but itself), a look-ahead limiter on every output, and an active-speaker
 * ranking (top K, with hysteresis).
 *
 * Cost per frame is O(N * frame_samples): each put adds its gained frame to a float sum as it copies
 * it, and each participant's mix-minus is that sum minus its own gained contribution. A gain or mute
 * change, second put or remove between a put and the run makes the run rebuild the sum from the
 * copies (one more pass over the inputs), so every change still takes effect at the next run.
 *
 * Threads: a mixer belongs to one thread at a time (normally the audio thread). Every function after
 * parley__mixer_new() is real-time safe: all buffers for max_participants are allocated at create, so
 * add/remove/set_gain/set_mute may be called on the audio thread between frames. Another thread that
 * wants to change membership or gains must hand the request over (e.g. through a parley__ring).
 *
 * Frame cycle: parley__mixer_put() for each participant that has a frame (at most once each; a second
 * put replaces the first), then parley__mixer_run(); then read parley__mixer_full()/_minus() and
 * parley__mixer_speakers(). Participants without a put since the last run count as silence (VAD false).
 *
 * Limiter (one per output, the full mix and every mix-minus): a look-ahead peak limiter with a smooth
 * gain. Every output is delayed by B = PARLEY_MIXER_LIMIT_BLOCK samples (32 = 0.67 ms at 48 kHz): the
 * look-ahead. The signal is cut in blocks of B; at each block boundary the gain is
 *   G = min(target, G_prev * R),  target = min(1, C / max(peak of the block before, peak of the block after))
 * with C = PARLEY_MIXER_LIMIT_CEILING and R the release, PARLEY_MIXER_LIMIT_RELEASE_DB_S dB per second
 * (6 dB in 100 ms). Within a block the gain ramps linearly between its two boundaries, so:
 *  - |output| <= C (to float rounding) < 1 always: both ends of every ramp are at most C / the block's peak;
 *  - attack: the gain falls to the target over the one block before a peak (the look-ahead), by at
 *    most 1 / B per sample; release: it rises by at most a factor R per block, never above 1;
 *  - transparent: while the gain is 1 (peaks below C, release complete), an output is its input
 *    delayed by B samples, bit for bit.
 * No per-sample division: one per block. A safety net against clipping when many talk at once, not a
 * compressor.
 * Speaker ranking: each run, a participant's level is the RMS of its gained contribution in dB
 * (floor -100 dB; muted or missing = floor), smoothed exponentially with a fast attack (20 ms time
 * constant) and slow release (200 ms). A participant is a candidate while its VAD flag was true within
 * the last 300 ms (hangover) and it is not muted; non-candidates are never ranked, however loud.
 * The ranking holds at most top_k candidates, loudest first, with hysteresis:
 *  - a member that stops being a candidate (or is removed) leaves at once;
 *  - a free place is filled at once by the loudest non-member candidate (inserted by level);
 *  - when full, a non-member must be louder than the weakest member by PARLEY_MIXER_RANK_MARGIN_DB for
 *    PARLEY_MIXER_RANK_HOLD_MS in a row before it replaces it;
 *  - two members swap places only under the same margin-and-hold rule.
 * parley__mixer_run() returns 1 when the ranking (membership or order) changed, and
 * parley__mixer_speakers_epoch() counts changes, for a "speakers-changed" event.
 */
#ifndef PARLEY_ENGINE_MIXER_H
#define PARLEY_ENGINE_MIXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY_MIXER_MAX_PARTICIPANTS 4096
#define PARLEY_MIXER_MAX_TOP_K 16
#define PARLEY_MIXER_MAX_GAIN 16.0f /* +24 dB */
#define PARLEY_MIXER_LIMIT_CEILING 0.99f
#define PARLEY_MIXER_LIMIT_BLOCK 32 /* samples: look-ahead and output delay */
#define PARLEY_MIXER_LIMIT_RELEASE_DB_S 60.0f
#define PARLEY_MIXER_RANK_MARGIN_DB 3.0f
#define PARLEY_MIXER_RANK_HOLD_MS 150
#define PARLEY_MIXER_VAD_HANGOVER_MS 300
#define PARLEY_MIXER_ATTACK_MS 20.0f
#define PARLEY_MIXER_RELEASE_MS 200.0f
#define PARLEY_MIXER_FLOOR_DB (-100.0f)

typedef struct parley__mixer parley__mixer;

/* max_participants in [1, PARLEY_MIXER_MAX_PARTICIPANTS]; frame_samples 480 (10 ms) or 960 (20 ms) at
 * 48 kHz; top_k in [1, PARLEY_MIXER_MAX_TOP_K]. Allocates everything. NULL on bad arguments or when
 * out of memory. Any thread, not real-time safe. */
parley__mixer *parley__mixer_new(size_t max_participants, size_t frame_samples, size_t top_k);
/* NULL is ignored. Not real-time safe. Invalidates every pointer the mixer handed out. */
void parley__mixer_free(parley__mixer *m);

size_t parley__mixer_frame_samples(const parley__mixer *m);
/* Participants currently added. */
size_t parley__mixer_count(const parley__mixer *m);

/* Adds participant `id` (any uint32_t) with gain 1, unmuted, silent until its first put.
 * 0; PARLEY_EINVAL (NULL m or id already present); PARLEY_EFULL (max_participants reached). */
int parley__mixer_add(parley__mixer *m, uint32_t id);
/* Removes `id` (and any pending frame; it leaves the speaker ranking at once, bumping the epoch).
 * 0; PARLEY_EINVAL (NULL); PARLEY_ENOTFOUND. */
int parley__mixer_remove(parley__mixer *m, uint32_t id);
/* Linear gain applied to id's input, in [0, PARLEY_MIXER_MAX_GAIN]; takes effect at the next run.
 * 0; PARLEY_EINVAL (NULL, NaN); PARLEY_ERANGE (out of range); PARLEY_ENOTFOUND. */
int parley__mixer_set_gain(parley__mixer *m, uint32_t id, float gain);
/* A muted participant contributes nothing to any output (its own mix-minus included) and is not
 * ranked as a speaker; it still receives its mix-minus. 0; PARLEY_EINVAL; PARLEY_ENOTFOUND. */
int parley__mixer_set_mute(parley__mixer *m, uint32_t id, bool muted);

/* Gives id's frame for the next run: frame_samples floats (borrowed, copied). Non-finite samples are
 * replaced by 0. voice: the caller's VAD decision for this frame.
 * 0; PARLEY_EINVAL (NULL m or frame); PARLEY_ENOTFOUND. */
int parley__mixer_put(parley__mixer *m, uint32_t id, const float *frame, bool voice);
/* Mixes the frames put since the last run, updates levels and the ranking, and clears the inputs.
 * 1 if the speaker ranking changed, 0 if not; PARLEY_EINVAL (NULL). */
int parley__mixer_run(parley__mixer *m);

/* The limited mix of every unmuted participant, delayed by PARLEY_MIXER_LIMIT_BLOCK samples (the
 * limiter's look-ahead): frame_samples floats, owned by the mixer, valid until the next
 * run/remove/free. NULL if m is NULL. Silence before the first run. */
const float *parley__mixer_full(const parley__mixer *m);
/* What `id` hears: the limited mix of everyone but id, delayed likewise. Owned by the mixer, valid
 * until the next run/remove/free. NULL for a NULL m or an unknown id. Silence until the first run
 * after its add. */
const float *parley__mixer_minus(const parley__mixer *m, uint32_t id);

/* Copies up to cap ids of the current speaker ranking into ids, loudest first. Returns the number
 * written (the ranking has at most top_k entries); PARLEY_EINVAL for NULL m, or NULL ids with cap > 0. */
int parley__mixer_speakers(const parley__mixer *m, uint32_t *ids, size_t cap);
/* Counts ranking changes since create (run and remove both count). Poll and compare to detect one. */
uint64_t parley__mixer_speakers_epoch(const parley__mixer *m);
/* id's smoothed level in dB (see above), into *level_db. 0; PARLEY_EINVAL; PARLEY_ENOTFOUND. */
int parley__mixer_level_db(const parley__mixer *m, uint32_t id, float *level_db);

#endif
