/* echo_suppress.c: the residual echo suppressor (see echo_suppress.h). Owns nothing but its struct;
 * run() is arithmetic over the caller's block, on the audio thread. */
#include "engine/echo_suppress.h"

#include <math.h>

#define NEAR_DB 9.0       /* output this far above the expected residual: someone talks at the near end */
#define LEAK_RATE 0.05    /* leak average over echo-only blocks: ~200 ms */
#define LEAK_CLIMB 0.001  /* ... and its slow climb through near-end blocks (an echo path change) */
#define HANG_MS 60        /* the gain stays open this long after the near end was last heard */
#define TAIL_DB_PER_MS 0.05 /* the echo estimate's slowest decay: 60 dB in 1.2 s (RT60) */
#define FALL 0.5f         /* at most 6 dB less gain per block */
#define ECHO_FLOOR 100.0  /* echo estimate power (int16 units) below which there is no echo: -50 dBFS */

void parley__echo_suppress_init(parley__echo_suppress *s, int rate_hz, size_t frame, int max_atten_db) {
  s->frame = frame;
  s->min_gain = (float)pow(10, max_atten_db / 20.0);
  s->tail_decay = pow(10, -TAIL_DB_PER_MS * 1000.0 * (double)frame / rate_hz / 10);
  s->hang_blocks = (int)((size_t)rate_hz * HANG_MS / 1000 / frame) + 1;
  parley__echo_suppress_reset(s);
}

void parley__echo_suppress_reset(parley__echo_suppress *s) {
  s->leak_db = 0;
  s->ey_slow = 0;
  s->hang = 0;
  s->gain = 1.0f;
}

float parley__echo_suppress_run(parley__echo_suppress *s, const int16_t *mic, int16_t *out, bool far_active,
                                bool apply) {
  double ee = 0, ey = 0;
  for (size_t i = 0; i < s->frame; i++) {
    double y = (double)mic[i] - out[i];
    ee += (double)out[i] * out[i];
    ey += y * y;
  }
  /* The echo outlasts the filter's estimate of it (a reverberant tail longer than the filter): the
   * estimate decays no faster than TAIL_DB_PER_MS. */
  double kept = s->ey_slow * s->tail_decay;
  s->ey_slow = ey > kept ? ey : kept;
  ey = s->ey_slow;
  float target = 1.0f;
  if (far_active && ey > ECHO_FLOOR * (double)s->frame) {
    double q_db = 10 * log10((ee + 1) / ey);
    bool near = q_db > s->leak_db + NEAR_DB;
    s->leak_db += (near ? LEAK_CLIMB : LEAK_RATE) * (q_db - s->leak_db);
    if (s->leak_db > 0) s->leak_db = 0; /* an unconverged filter: the output is all echo at most */
    if (near) s->hang = s->hang_blocks;
    if (s->hang > 0) s->hang--;
    else target = s->min_gain;
  } else {
    s->hang = 0;
  }
  if (!apply) return 1.0f;
  float from = s->gain, to = target < from * FALL ? from * FALL : target;
  for (size_t i = 0; i < s->frame; i++) {
    float g = from + (to - from) * (float)(i + 1) / (float)s->frame;
    out[i] = (int16_t)lrintf((float)out[i] * g);
  }
  s->gain = to;
  return to;
}
