/* latency.h: what a started call's pipeline adds to mouth-to-ear latency by construction (its
 * algorithmic floor), for benches and diagnostics. Not installed.
 *
 * Mouth-to-ear through one call, with a device period of one frame on both ends:
 *   capture fill (one frame: the device hands over a period only once it is full)
 *   + send chain: capture resampler + preprocessor + Opus lookahead
 *   + network (not counted here)
 *   + receive chain: jitter-buffer floor + playout resampler
 *   + device buffering: one period crossing from the capture callback to the playout callback (the
 *     packet waits for the far end's next tick, its frame for the next playout period).
 */
#ifndef PARLEY_ENGINE_LATENCY_H
#define PARLEY_ENGINE_LATENCY_H

#include "parley/parley.h"

typedef struct parley__pipeline_delays {
  int device_rate_hz;
  double frame_ms;              /* capture fill: one Opus frame = one device period */
  double period_ms;             /* device buffering: one period */
  double send_resampler_ms;     /* device rate -> 48 kHz (0 at 48 kHz) */
  double echo_ms;               /* preprocessor (parley__echo_delay_samples) */
  double lookahead_ms;          /* Opus encoder lookahead */
  double jitter_min_ms;         /* jitter buffer min_delay */
  double recv_resampler_ms;     /* 48 kHz -> device rate (0 at 48 kHz) */
  double floor_ms;              /* the sum of the above */
} parley__pipeline_delays;

/* Fills *out from call's live chains (this end's send chain and receive chain; for a call between two
 * like-configured engines, one end's figures describe both directions). Returns 0, PARLEY_EINVAL (NULL)
 * or PARLEY_ESTATE (the call was not started or is hung up). Any app thread (takes the engine lock). */
int parley__call_pipeline_delays(parley_call *call, parley__pipeline_delays *out);

#endif
