/* stages_gst.h: a GStreamer send chain's CPU cost per frame, for parley-bench stages (stages_gst.c). */
#ifndef PARLEY_BENCH_STAGES_GST_H
#define PARLEY_BENCH_STAGES_GST_H

#include <stdbool.h>
#include <stddef.h>

/* Runs the chain over voice (frames x frame_samples at 48 kHz) and stores its CPU ns per frame. 0, or -1
 * with the reason in why (GStreamer or a plugin missing, a child failed). Spawns processes; main
 * thread. */
int bench_gst_send_chain(const float *voice, size_t frames, size_t frame_samples, double *ns_per_frame, char *why,
                         size_t why_cap);

#endif
