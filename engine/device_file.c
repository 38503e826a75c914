/* device_file.c: the FILE backend (libsndfile). Captures from an audio file, plays out into a 16-bit
 * PCM WAV file. Owns both SNDFILE handles (opened at new, closed at free) and two conversion buffers
 * of one period each, and for an odd-rate input its resamplers and their buffers (allocated at new).
 *
 * Input: any mono or stereo file libsndfile reads. At a rate a device can run at (8, 16, 32, 44.1 or
 * 48 kHz) the device takes the file's rate (parley__device_rate_hz) and the caller resamples. Any
 * other rate (11.025, 22.05, 96 kHz, ...) is converted here to the configured device rate with one
 * engine/resampler per channel, so every file plays. Channels are converted to the configured count
 * (stereo->mono averages L and R, mono->stereo duplicates). What follows the file's end is the
 * config's choice: by default the rest of that period and every later one is silence, and FINISHED
 * is flagged once (the engine may end its calls on it); with input_loop the file starts over at its
 * first frame within the same period (after the resampler's buffered frames, no tail flush), and
 * FINISHED is never flagged. With input_hold the input is not read (capture is silence) until
 * parley__device_input_release, so a file can start when a call's media does rather than at open.
 * Output: floats are scaled by 32768 and rounded, clipped to [-32768, 32767], so a 16-bit input
 * copied straight through (libsndfile reads 16-bit as s / 32768) comes out sample-exact. A failed
 * write flags LOST with PARLEY_EIO and stops output; stop rewrites the WAV header and syncs, free
 * closes the file, so whatever was written stays a valid WAV.
 *
 * Threads: the period runs on the pacing thread (REALTIME/FREERUN) or the step caller. It reads and
 * writes the files between process calls, so it is a stand-in for a sound card, not real-time safe
 * itself; the process callback it drives still gets the full real-time contract.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/device_backend.h"
#include "engine/resampler.h"
#include "parley/parley.h"

#define MAX_CHANNELS 2

typedef struct file_state {
  SNDFILE *in;
  int in_channels;
  sf_count_t in_total; /* frames in the input file, as libsndfile reports them */
  sf_count_t in_read;
  bool in_done;
  atomic_bool in_held; /* input_hold: true until parley__device_input_release (any thread) */
  SNDFILE *out;
  bool write_failed;
  float *read_buf;   /* read_frames * in_channels */
  int16_t *write_buf; /* period * channels */

  /* Odd-rate input only (rs[0] != NULL): file rate -> device rate, one resampler per device channel. */
  int file_rate_hz;
  parley__resampler *rs[MAX_CHANNELS];
  size_t read_frames;        /* file frames read per refill: about one period's worth */
  float *conv_buf;           /* read_frames * channels: read_buf converted to the device channels */
  float *plane_in;           /* read_frames: one channel of conv_buf */
  float *pend[MAX_CHANNELS]; /* resampled frames not yet handed out, per channel */
  size_t pend_len, pend_cap;
  bool tail_flushed; /* the file ended and the resamplers' delay was pushed out */
} file_state;

static int open_input(parley__device *d, file_state *s) {
  int fd = open(d->cfg.input_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? PARLEY_ENOTFOUND : PARLEY_EIO;
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    return PARLEY_EFORMAT;
  }
  SF_INFO info;
  memset(&info, 0, sizeof info);
  s->in = sf_open_fd(fd, SFM_READ, &info, SF_TRUE); /* closes fd on failure too */
  if (!s->in) return sf_error(NULL) == SF_ERR_SYSTEM ? PARLEY_EIO : PARLEY_EFORMAT;
  if (info.channels < 1 || info.channels > 2 || info.samplerate < 1000 || info.samplerate > 384000)
    return PARLEY_EFORMAT;
  s->in_channels = info.channels;
  s->in_total = info.frames;
  atomic_init(&s->in_held, d->cfg.input_hold);
  if (parley__device_rate_supported(info.samplerate)) {
    d->rate_hz = info.samplerate;
    return 0;
  }
  s->file_rate_hz = info.samplerate; /* d->rate_hz stays the configured rate */
  for (int c = 0; c < d->channels; c++) {
    int e = 0;
    s->rs[c] = parley__resampler_new(info.samplerate, d->rate_hz, PARLEY__RESAMPLER_QUALITY_DEFAULT, &e);
    if (!s->rs[c]) return e;
  }
  return 0;
}

static int open_output(parley__device *d, file_state *s) {
  /* Refuse to truncate the file being read. */
  struct stat in_st, out_st;
  if (d->cfg.input_path && stat(d->cfg.input_path, &in_st) == 0 &&
      stat(d->cfg.output_path, &out_st) == 0 && in_st.st_dev == out_st.st_dev &&
      in_st.st_ino == out_st.st_ino)
    return PARLEY_EINVAL;
  int fd = open(d->cfg.output_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return PARLEY_EIO;
  SF_INFO info;
  memset(&info, 0, sizeof info);
  info.samplerate = d->rate_hz;
  info.channels = d->channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  s->out = sf_open_fd(fd, SFM_WRITE, &info, SF_TRUE);
  return s->out ? 0 : PARLEY_EIO;
}

static int file_open(parley__device *d) {
  file_state *s = calloc(1, sizeof *s);
  if (!s) return PARLEY_ENOMEM;
  d->impl = s;
  if (d->cfg.input_path) {
    int e = open_input(d, s);
    if (e < 0) return e;
  }
  if (d->cfg.output_path) {
    int e = open_output(d, s);
    if (e < 0) return e;
  }
  return 0;
}

static int file_prepare(parley__device *d) {
  file_state *s = d->impl;
  size_t ch = (size_t)d->channels;
  s->read_frames = d->period_frames;
  if (s->in && s->rs[0]) {
    s->read_frames = (size_t)((double)d->period_frames * s->file_rate_hz / d->rate_hz) + 1;
    size_t per_refill = parley__resampler_max_output(s->rs[0], s->read_frames);
    s->pend_cap = d->period_frames + 2 * per_refill;
    s->conv_buf = calloc(s->read_frames * ch, sizeof(float));
    s->plane_in = calloc(s->read_frames, sizeof(float));
    if (!s->conv_buf || !s->plane_in) return PARLEY_ENOMEM;
    for (size_t c = 0; c < ch; c++) {
      s->pend[c] = calloc(s->pend_cap, sizeof(float));
      if (!s->pend[c]) return PARLEY_ENOMEM;
    }
  }
  if (s->in) {
    s->read_buf = calloc(s->read_frames * (size_t)s->in_channels, sizeof(float));
    if (!s->read_buf) return PARLEY_ENOMEM;
  }
  if (s->out) {
    s->write_buf = calloc(d->period_frames * (size_t)d->channels, sizeof(int16_t));
    if (!s->write_buf) return PARLEY_ENOMEM;
  }
  return 0;
}

static void file_close(parley__device *d) {
  file_state *s = d->impl;
  if (!s) return;
  if (s->in) sf_close(s->in);
  if (s->out) sf_close(s->out); /* writes the final header */
  free(s->read_buf);
  free(s->write_buf);
  free(s->conv_buf);
  free(s->plane_in);
  for (int c = 0; c < MAX_CHANNELS; c++) {
    parley__resampler_free(s->rs[c]);
    free(s->pend[c]);
  }
  free(s);
  d->impl = NULL;
}

static int16_t to_s16(float x) {
  float y = x * 32768.0f;
  if (y != y) return 0; /* NaN */
  if (y >= 32767.0f) return 32767;
  if (y <= -32768.0f) return -32768;
  return (int16_t)lrintf(y);
}

/* read_buf (in_channels) -> dst (the device's channels), `frames` frames. */
static void convert_in(const parley__device *d, const file_state *s, float *dst, size_t frames) {
  const float *src = s->read_buf;
  if (s->in_channels == d->channels) {
    memcpy(dst, src, frames * (size_t)d->channels * sizeof(float));
  } else if (s->in_channels == 2) {
    for (size_t i = 0; i < frames; i++) dst[i] = (src[2 * i] + src[2 * i + 1]) * 0.5f;
  } else {
    for (size_t i = 0; i < frames; i++) dst[2 * i] = dst[2 * i + 1] = src[i];
  }
}

/* Resamples the first `frames` frames of conv (the device's channels; NULL: that many zeros, to push
 * the filter delay out) onto the end of pend. Returns 0 or the resampler's error. */
static int resample_append(parley__device *d, file_state *s, const float *conv, size_t frames) {
  size_t ch = (size_t)d->channels;
  size_t got = 0;
  for (size_t c = 0; c < ch; c++) {
    for (size_t i = 0; i < frames; i++) s->plane_in[i] = conv ? conv[i * ch + c] : 0.0f;
    int r = parley__resampler_process(s->rs[c], s->plane_in, frames, s->pend[c] + s->pend_len,
                                      s->pend_cap - s->pend_len);
    if (r < 0) return r;
    got = (size_t)r; /* the same for every channel: same rates, same input lengths */
  }
  s->pend_len += got;
  return 0;
}

/* input_loop at the end of the file: back to its first frame. progressed: the pass that reached the
 * end read something (a file that yields nothing after a rewind ends instead of spinning). Returns
 * true when reading can go on. */
static bool rewind_input(const parley__device *d, file_state *s, bool progressed) {
  if (!d->cfg.input_loop || !progressed || s->in_total <= 0 || sf_seek(s->in, 0, SEEK_SET) != 0) return false;
  s->in_read = 0;
  return true;
}

/* Odd-rate input: refills pend from the file until a period is there or the input (and then the
 * resamplers' tail) is exhausted, and hands out up to one period into d->in_buf. Returns the frames
 * handed out, or a negative code when the file could not be read or converted. */
static int read_resampled(parley__device *d, file_state *s) {
  size_t n = d->period_frames, ch = (size_t)d->channels;
  /* Each refill adds about a period; the guard only bounds the loop. */
  for (int guard = 0; s->pend_len < n && !s->tail_flushed && guard < 16; guard++) {
    sf_count_t want = (sf_count_t)s->read_frames;
    if (s->in_total - s->in_read < want) want = s->in_total - s->in_read;
    sf_count_t r = want > 0 ? sf_readf_float(s->in, s->read_buf, want) : 0;
    if (r < want && sf_error(s->in) != SF_ERR_NO_ERROR) return PARLEY_EIO;
    if (r > 0) {
      s->in_read += r;
      convert_in(d, s, s->conv_buf, (size_t)r);
      int e = resample_append(d, s, s->conv_buf, (size_t)r);
      if (e < 0) return e;
    }
    if ((r < want || s->in_read >= s->in_total) && rewind_input(d, s, r > 0)) continue;
    if (r < want || s->in_read >= s->in_total) {
      /* The last input sample leaves the filter delay_samples later: push zeros for it (a refill's
       * worth at most, which is longer than any quality's delay). */
      double delay_in = (double)parley__resampler_delay_samples(s->rs[0]) * s->file_rate_hz / d->rate_hz;
      size_t k = (size_t)delay_in + 2;
      if (k > s->read_frames) k = s->read_frames;
      int e = resample_append(d, s, NULL, k);
      if (e < 0) return e;
      s->tail_flushed = true;
    }
  }
  size_t out = s->pend_len < n ? s->pend_len : n;
  for (size_t i = 0; i < out; i++)
    for (size_t c = 0; c < ch; c++) d->in_buf[i * ch + c] = s->pend[c][i];
  for (size_t c = 0; c < ch; c++) memmove(s->pend[c], s->pend[c] + out, (s->pend_len - out) * sizeof(float));
  s->pend_len -= out;
  return (int)out;
}

/* Fills d->in_buf with the next period of input; flags FINISHED (or LOST on a read error) once. */
static void read_period(parley__device *d, file_state *s) {
  if (s->in && s->rs[0]) {
    size_t n = d->period_frames, ch = (size_t)d->channels, got = 0;
    if (!s->in_done && !atomic_load_explicit(&s->in_held, memory_order_relaxed)) {
      int r = read_resampled(d, s);
      if (r < 0) {
        s->in_done = true;
        parley__device_flag(d, PARLEY__DEVICE_RT_LOST, PARLEY_EIO);
      } else {
        got = (size_t)r;
        if (s->tail_flushed && s->pend_len == 0) {
          s->in_done = true;
          parley__device_flag(d, PARLEY__DEVICE_RT_FINISHED, 0);
        }
      }
    }
    if (got < n) memset(d->in_buf + got * ch, 0, (n - got) * ch * sizeof(float));
    return;
  }
  size_t n = d->period_frames, ch = (size_t)d->channels, got = 0;
  /* Each pass reads up to the rest of the period or the file's end; a looping file rewinds there
   * (each pass that goes on read at least one frame, so at most n passes). */
  while (s->in && !s->in_done && got < n && !atomic_load_explicit(&s->in_held, memory_order_relaxed)) {
    sf_count_t want = (sf_count_t)(n - got);
    if (s->in_total - s->in_read < want) want = s->in_total - s->in_read;
    sf_count_t r = want > 0 ? sf_readf_float(s->in, s->read_buf, want) : 0;
    if (r > 0) {
      convert_in(d, s, d->in_buf + got * ch, (size_t)r);
      got += (size_t)r;
      s->in_read += r;
    }
    if (r < want && sf_error(s->in) != SF_ERR_NO_ERROR) {
      s->in_done = true;
      parley__device_flag(d, PARLEY__DEVICE_RT_LOST, PARLEY_EIO);
    } else if (r < want || s->in_read >= s->in_total) {
      if (rewind_input(d, s, r > 0)) continue;
      s->in_done = true;
      parley__device_flag(d, PARLEY__DEVICE_RT_FINISHED, 0);
    }
  }
  if (got < n) memset(d->in_buf + got * ch, 0, (n - got) * ch * sizeof(float));
}

static int file_period(parley__device *d) {
  file_state *s = d->impl;
  if (s->write_failed) return PARLEY_EIO;
  size_t n = d->period_frames, samples = n * (size_t)d->channels;
  read_period(d, s);
  memset(d->out_buf, 0, samples * sizeof(float));
  d->cfg.process(d->cfg.user, d->in_buf, d->out_buf, n);
  parley__device_count_frames(d, n);
  if (s->out) {
    for (size_t i = 0; i < samples; i++) s->write_buf[i] = to_s16(d->out_buf[i]);
    if (sf_writef_short(s->out, s->write_buf, (sf_count_t)n) != (sf_count_t)n) {
      s->write_failed = true;
      parley__device_flag(d, PARLEY__DEVICE_RT_LOST, PARLEY_EIO);
      return PARLEY_EIO;
    }
  }
  return s->in_done ? PARLEY__DEVICE_PERIOD_DONE : PARLEY__DEVICE_PERIOD_MORE;
}

/* At stop: bring the WAV header up to date and push it to disk, so the file is valid now. */
static int file_flush(parley__device *d) {
  file_state *s = d->impl;
  if (s->out) {
    sf_command(s->out, SFC_UPDATE_HEADER_NOW, NULL, 0);
    sf_write_sync(s->out);
  }
  return s->write_failed ? PARLEY_EIO : 0;
}

void parley__device_input_release(parley__device *d) {
  if (d && d->cfg.backend == PARLEY__DEVICE_FILE && d->impl)
    atomic_store_explicit(&((file_state *)d->impl)->in_held, false, memory_order_relaxed);
}

const parley__device_ops parley__device_file_ops = {
    .open = file_open,
    .prepare = file_prepare,
    .period = file_period,
    .flush = file_flush,
    .close = file_close,
};
