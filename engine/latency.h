/* latency.h: what a started call's pipeline adds to mouth-to-ear latency by construction (its
 * algorithmic floor), for benches and diagnostics. Not installed.
 *
 * Mouth-to-ear through one call between two like-configured engines:
 *   device input: from the sound at the microphone to the callback that hands its period over. At
 *     least the capture fill (one frame: a device hands a period over only once it is full); a
 *     PortAudio stream adds what its host buffers before the callback (parley__device_get_latency)
 *   + send chain: capture resampler + preprocessor + Opus lookahead
 *   + network (not counted here)
 *   + device buffering: one period crossing from the capture callback to the far end's playout
 *     callback (the packet waits for the far end's next period, its frame goes out in that period)
 *   + receive chain: jitter-buffer floor + playout resampler
 *   + device output: from the playout callback to the sound at the speaker. 0 for APP/FILE/NULL (the
 *     period is handed over as the callback returns); a PortAudio stream's reported output latency
 *     (JACK: the playback port's latency, e.g. two periods with the dummy driver's defaults).
 */
#ifndef PARLEY_ENGINE_LATENCY_H
#define PARLEY_ENGINE_LATENCY_H

#include <stdbool.h>

#include "parley/parley.h"

typedef struct parley__pipeline_delays {
  int device_rate_hz;
  double frame_ms;              /* one Opus frame = one device period */
  double input_ms;              /* device input latency, capture fill included (>= frame_ms) */
  double period_ms;             /* device buffering: one period */
  double send_resampler_ms;     /* device rate -> 48 kHz (0 at 48 kHz) */
  double echo_ms;               /* preprocessor (parley__echo_delay_samples) */
  double lookahead_ms;          /* Opus encoder lookahead */
  double jitter_min_ms;         /* jitter buffer min_delay */
  double recv_resampler_ms;     /* 48 kHz -> device rate (0 at 48 kHz) */
  double output_ms;             /* device output latency */
  bool device_reported;         /* input_ms/output_ms are the device's own report; false: it had none
                                 * (a PortAudio device not running): capture fill and 0 assumed */
  double floor_ms;              /* the sum of the above */
} parley__pipeline_delays;

/* Fills *out from call's live chains and its engine's device (this end's send chain, receive chain
 * and device; for a call between two like-configured engines, one end's figures describe both
 * directions). Returns 0, PARLEY_EINVAL (NULL) or PARLEY_ESTATE (the call was not started or is hung
 * up). Any app thread (takes the engine lock, which also serialises it with device start/stop). */
int parley__call_pipeline_delays(parley_call *call, parley__pipeline_delays *out);

#endif
