/* echo_suppress.h: the residual echo suppressor of the capture-side echo stage (engine/echo.c): takes
 * out what the linear canceller leaves of the echo, and leaves the near-end talker alone.
 *
 * Per block it compares the canceller's output with the echo the canceller estimated (microphone minus
 * output, held up by a reverberant decay of 0.05 dB/ms, since the room's tail outlasts the filter).
 * The leak, the output-to-estimate ratio of blocks that hold only echo, is the linear filter's echo
 * return; it follows echo-only blocks within ~200 ms and climbs only slowly through the others. A block
 * whose output stands 9 dB above leak * estimate holds near-end speech: the gain opens at once and
 * stays open 60 ms (double-talk detection). Every other block with echo is attenuated down to
 * max_atten_db, by at most 6 dB per block, ramped across the block (no clicks). Blocks without echo
 * (estimate under -50 dBFS, or a silent reference) pass. So the near-end talker passes at its own
 * level through double talk and alone, and the echo is taken out while the far end talks alone.
 *
 * Threads: a plain struct without allocation; init on any thread, run/reset on the audio thread,
 * real-time safe.
 */
#ifndef PARLEY_ENGINE_ECHO_SUPPRESS_H
#define PARLEY_ENGINE_ECHO_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__echo_suppress {
  size_t frame;         /* samples per block */
  float min_gain;       /* max_atten_db as a gain */
  double tail_decay;    /* per block */
  double ey_slow;       /* echo estimate power, decaying no faster than a reverberant tail */
  double leak_db;       /* output over echo estimate in echo-only blocks: the linear filter's echo return */
  int hang_blocks, hang; /* blocks the gain stays open after near-end speech, and those left */
  float gain;           /* gain at the end of the last block */
} parley__echo_suppress;

/* max_atten_db: the deepest attenuation, -90..0 (0: pass everything). */
void parley__echo_suppress_init(parley__echo_suppress *s, int rate_hz, size_t frame, int max_atten_db);
void parley__echo_suppress_reset(parley__echo_suppress *s);

/* One block: mic is what the microphone picked up, out the canceller's output for it (frame samples,
 * int16 scale), suppressed in place when apply is set (otherwise only leak_db is followed). far_active:
 * the reference the filter spans carried sound (without it there is no echo: mic - out is then only
 * what the canceller's DC notch took out). Returns the gain applied at the end of the block. */
float parley__echo_suppress_run(parley__echo_suppress *s, const int16_t *mic, int16_t *out, bool far_active,
                                bool apply);

#endif
