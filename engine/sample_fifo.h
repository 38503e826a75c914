/* sample_fifo.h: a fixed-capacity FIFO of float samples for one thread, used inside the chains to
 * absorb the few-sample wobble between a resampler's output and whole frames. Storage is caller-owned
 * (allocated with the chain); push and pop are real-time safe. Not for crossing threads: use ring.h. */
#ifndef PARLEY_ENGINE_SAMPLE_FIFO_H
#define PARLEY_ENGINE_SAMPLE_FIFO_H

#include <stddef.h>
#include <string.h>

typedef struct parley__sample_fifo {
  float *buf;
  size_t cap;
  size_t len; /* samples held, always at the front of buf */
} parley__sample_fifo;

/* Appends up to n samples; returns how many fit. */
static inline size_t parley__sample_fifo_push(parley__sample_fifo *f, const float *x, size_t n) {
  if (n > f->cap - f->len) n = f->cap - f->len;
  memcpy(f->buf + f->len, x, n * sizeof *x);
  f->len += n;
  return n;
}

/* Takes exactly n samples if held; returns 0 or -1 (nothing taken). The move is O(len), and len stays
 * below two frames, so it costs less than the stages around it. */
static inline int parley__sample_fifo_pop(parley__sample_fifo *f, float *out, size_t n) {
  if (f->len < n) return -1;
  memcpy(out, f->buf, n * sizeof *out);
  memmove(f->buf, f->buf + n, (f->len - n) * sizeof *out);
  f->len -= n;
  return 0;
}

#endif
