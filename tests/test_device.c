/* test_device.c: the device layer. FILE copies checked sample-exact against the source file read
 * independently as 16-bit integers; APP and NULL data paths; error paths; a real PortAudio device
 * on a private JACK server (dummy driver) that the test starts and kills. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/device.h"
#include "engine/resampler.h"
#include "parley/parley.h"

/* ---- helpers ---- */

#define MAX_EVENTS 64
typedef struct events {
  parley__device_event ev[MAX_EVENTS];
  int err[MAX_EVENTS];
  int n;
} events;

static void record_event(void *user, parley__device_event ev, int err) {
  events *e = ((void **)user)[1];
  if (e->n < MAX_EVENTS) {
    e->ev[e->n] = ev;
    e->err[e->n] = err;
    e->n++;
  }
}

static int find_event(const events *e, parley__device_event ev) {
  for (int i = 0; i < e->n; i++)
    if (e->ev[i] == ev) return i;
  return -1;
}

/* process: out = in (same channel count). */
static void copy_process(void *user, const float *in, float *out, size_t frames) {
  int ch = *(int *)((void **)user)[0];
  memcpy(out, in, frames * (size_t)ch * sizeof(float));
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads a whole file as interleaved 16-bit integers (libsndfile, independent of the device). */
static short *read_s16(const char *path, SF_INFO *info) {
  memset(info, 0, sizeof *info);
  SNDFILE *f = sf_open(path, SFM_READ, info);
  if (!f) return NULL;
  size_t n = (size_t)info->frames * (size_t)info->channels;
  short *x = calloc(n ? n : 1, sizeof *x);
  if (x && sf_readf_short(f, x, info->frames) != info->frames) {
    free(x);
    x = NULL;
  }
  sf_close(f);
  return x;
}

static int write_s16(const char *path, const short *x, sf_count_t frames, int channels, int rate) {
  SF_INFO info = {.samplerate = rate, .channels = channels, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  if (!f) return -1;
  sf_count_t w = sf_writef_short(f, x, frames);
  sf_close(f);
  return w == frames ? 0 : -1;
}

static int count_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int n = 0;
  while (readdir(dir)) n++;
  closedir(dir);
  return n;
}

/* A private temporary directory per test, emptied and removed by the fixture. */
static char tmp_dir[64];

static void tmp_setup(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/parley-device-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp_dir));
}

static void tmp_teardown(void) {
  DIR *dir = opendir(tmp_dir);
  if (!dir) return;
  struct dirent *ent;
  char p[512];
  while ((ent = readdir(dir))) {
    if (ent->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", tmp_dir, ent->d_name);
    unlink(p);
  }
  closedir(dir);
  rmdir(tmp_dir);
}

static const char *tmp_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", tmp_dir, name);
  return buf;
}

#define SPEECH_A PARLEY_TEST_DATA "/speech_a_48k.wav"
#define SPEECH_B PARLEY_TEST_DATA "/speech_b_48k.wav"

/* A FILE device config in STEPPED pacing from `in` to `out` with a copy callback; user is
 * {&channels, events}. */
static void stepped_config(parley__device_config *cfg, const char *in, const char *out, void **user) {
  parley__device_config_init(cfg, PARLEY__DEVICE_FILE);
  cfg->input_path = in;
  cfg->output_path = out;
  cfg->channels = *(int *)user[0];
  cfg->pacing = PARLEY__DEVICE_PACE_STEPPED;
  cfg->process = copy_process;
  cfg->event = record_event;
  cfg->user = user;
}

/* Runs a FILE device in STEPPED pacing from `in` to `out` with a copy callback until the input is
 * finished (bounded), then stops and frees it. Returns the device rate; fills *ev. */
static int copy_stepped(const char *in, const char *out, int channels, events *ev) {
  void *user[2] = {&channels, ev};
  parley__device_config cfg;
  stepped_config(&cfg, in, out, user);
  int err = 1;
  parley__device *d = parley__device_new(&cfg, &err);
  cr_assert_not_null(d, "new: %s", parley_strerror(err));
  cr_assert_eq(err, 0);
  int rate = parley__device_rate_hz(d);
  cr_assert_eq(parley__device_start(d), 0);
  /* 6 s at 10 ms periods is 600 steps; bound well above. */
  for (int i = 0; i < 5000 && find_event(ev, PARLEY__DEVICE_EV_FINISHED) < 0; i++) {
    cr_assert_eq(parley__device_step(d), 0);
    parley__device_poll_events(d, 0);
  }
  cr_assert_geq(find_event(ev, PARLEY__DEVICE_EV_FINISHED), 0, "input never finished");
  /* After the end, steps go on with silence. */
  cr_assert_eq(parley__device_step(d), 0);
  cr_assert_eq(parley__device_stop(d), 0);
  parley__device_poll_events(d, 0);
  parley__device_free(d);
  return rate;
}

/* out (channels_out) must hold `expect` (frames x channels_out) then only zeros. */
static void assert_output(const char *out, const short *expect, sf_count_t frames, int channels,
                          int rate) {
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o, "output is not a readable audio file");
  cr_expect_eq(oi.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  cr_expect_eq(oi.channels, channels);
  cr_expect_eq(oi.samplerate, rate);
  cr_assert_geq(oi.frames, frames);
  size_t n = (size_t)frames * (size_t)channels;
  size_t first_diff = SIZE_MAX;
  for (size_t i = 0; i < n && first_diff == SIZE_MAX; i++)
    if (o[i] != expect[i]) first_diff = i;
  cr_assert_eq(first_diff, SIZE_MAX, "sample %zu differs: %d vs %d", first_diff,
               first_diff < n ? o[first_diff] : 0, first_diff < n ? expect[first_diff] : 0);
  for (size_t i = n; i < (size_t)oi.frames * (size_t)channels; i++)
    cr_assert_eq(o[i], 0, "tail sample %zu not silent", i);
  free(o);
}

/* ---- configuration ---- */

static void nop_process(void *user, const float *in, float *out, size_t frames) {
  (void)user, (void)in, (void)out, (void)frames;
}

Test(device, rejects_bad_config) {
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_NULL);
  cr_expect_eq(cfg.sample_rate_hz, 48000);
  cr_expect_eq(cfg.channels, 1);
  int err = 0;
  cr_expect_null(parley__device_new(&cfg, &err)); /* no process callback */
  cr_expect_eq(err, PARLEY_EINVAL);
  cfg.process = nop_process;
  int bad_rates[] = {0, 22050, 96000, -48000};
  for (size_t i = 0; i < sizeof bad_rates / sizeof *bad_rates; i++) {
    cfg.sample_rate_hz = bad_rates[i];
    err = 0;
    cr_expect_null(parley__device_new(&cfg, &err));
    cr_expect_eq(err, PARLEY_EINVAL);
  }
  cfg.sample_rate_hz = 16000;
  cfg.channels = 3;
  cr_expect_null(parley__device_new(&cfg, &err));
  cfg.channels = 2;
  cfg.period_frames = 16001;
  cr_expect_null(parley__device_new(&cfg, &err));
  cfg.period_frames = 0;
  cfg.backend = (parley__device_backend)42;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_null(parley__device_new(NULL, &err));
  parley__device_free(NULL);
  cr_expect_eq(parley__device_start(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__device_step(NULL), PARLEY_EINVAL);

  cfg.backend = PARLEY__DEVICE_NULL;
  cfg.pacing = PARLEY__DEVICE_PACE_STEPPED;
  parley__device *d = parley__device_new(&cfg, &err);
  cr_assert_not_null(d);
  cr_expect_eq(parley__device_period_frames(d), 160); /* 10 ms at 16 kHz */
  cr_expect_eq(parley__device_channels(d), 2);
  cr_expect_eq(parley__device_step(d), PARLEY_ESTATE); /* not started */
  cr_expect_eq(parley__device_app_push(d, NULL, 0), PARLEY_ESTATE); /* not an APP device */
  cr_expect_eq(parley__device_start(d), 0);
  cr_expect_eq(parley__device_start(d), PARLEY_ESTATE);
  cr_expect_eq(parley__device_stop(d), 0);
  cr_expect_eq(parley__device_stop(d), 0);
  parley__device_free(d);
}

/* ---- FILE ---- */

TestSuite(device_file, .init = tmp_setup, .fini = tmp_teardown);

Test(device_file, mono_copy_is_sample_exact) {
  char out[128];
  events ev = {0};
  SF_INFO ii;
  short *x = read_s16(SPEECH_A, &ii);
  cr_assert_not_null(x);
  cr_assert_eq(ii.channels, 1);
  int rate = copy_stepped(SPEECH_A, tmp_path(out, sizeof out, "mono.wav"), 1, &ev);
  cr_expect_eq(rate, ii.samplerate);
  assert_output(out, x, ii.frames, 1, ii.samplerate);
  /* Events in order: STARTED, FINISHED, STOPPED, nothing else. */
  cr_assert_eq(ev.n, 3);
  cr_expect_eq(ev.ev[0], PARLEY__DEVICE_EV_STARTED);
  cr_expect_eq(ev.ev[1], PARLEY__DEVICE_EV_FINISHED);
  cr_expect_eq(ev.ev[2], PARLEY__DEVICE_EV_STOPPED);
  free(x);
}

/* A 16 kHz stereo file: the device runs at the file's rate and downmixes by averaging. R is chosen
 * so that L + R is even: the average is then an exact integer, whatever the rounding mode. */
Test(device_file, stereo_to_mono_averages_at_native_rate) {
  char in[128], out[128];
  events ev = {0};
  SF_INFO ia, ib;
  short *a = read_s16(SPEECH_A, &ia), *b = read_s16(SPEECH_B, &ib);
  cr_assert(a && b);
  sf_count_t n = 24007; /* not a whole number of periods */
  cr_assert(ia.frames >= n && ib.frames >= n);
  short *st = malloc((size_t)n * 2 * sizeof *st), *expect = malloc((size_t)n * sizeof *expect);
  cr_assert(st && expect);
  for (sf_count_t i = 0; i < n; i++) {
    int l = a[i], r = b[i];
    if ((l + r) & 1) r += r > 0 ? -1 : 1;
    st[2 * i] = (short)l;
    st[2 * i + 1] = (short)r;
    expect[i] = (short)((l + r) / 2);
  }
  cr_assert_eq(write_s16(tmp_path(in, sizeof in, "stereo.wav"), st, n, 2, 16000), 0);
  int rate = copy_stepped(in, tmp_path(out, sizeof out, "down.wav"), 1, &ev);
  cr_expect_eq(rate, 16000);
  assert_output(out, expect, n, 1, 16000);
  free(a), free(b), free(st), free(expect);
}

Test(device_file, mono_to_stereo_duplicates) {
  char out[128];
  events ev = {0};
  SF_INFO ii;
  short *x = read_s16(SPEECH_A, &ii);
  cr_assert_not_null(x);
  short *expect = malloc((size_t)ii.frames * 2 * sizeof *expect);
  cr_assert_not_null(expect);
  for (sf_count_t i = 0; i < ii.frames; i++) expect[2 * i] = expect[2 * i + 1] = x[i];
  copy_stepped(SPEECH_A, tmp_path(out, sizeof out, "dup.wav"), 2, &ev);
  assert_output(out, expect, ii.frames, 2, ii.samplerate);
  free(x), free(expect);
}

/* A 22.05 kHz stereo file (a rate no device runs at): the device stays at 48 kHz and converts the
 * file. Each channel must come out as its own tone at 48 kHz, delayed by the resampler's filter delay,
 * for the file's whole length (nothing lost at the end), then silence. */
Test(device_file, odd_rate_file_is_converted_to_the_device_rate) {
  char in[128], out[128];
  events ev = {0};
  const int file_rate = 22050;
  const double f[2] = {440.0, 1000.0};
  sf_count_t n = 33333; /* about 1.5 s, not a whole number of periods */
  short *st = malloc((size_t)n * 2 * sizeof *st);
  cr_assert_not_null(st);
  for (sf_count_t i = 0; i < n; i++)
    for (int c = 0; c < 2; c++) st[2 * i + c] = (short)lrint(16000.0 * sin(2 * M_PI * f[c] * (double)i / file_rate));
  cr_assert_eq(write_s16(tmp_path(in, sizeof in, "odd.wav"), st, n, 2, file_rate), 0);
  int rate = copy_stepped(in, tmp_path(out, sizeof out, "odd_out.wav"), 2, &ev);
  cr_expect_eq(rate, 48000);

  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  cr_assert_eq(oi.samplerate, 48000);
  cr_assert_eq(oi.channels, 2);
  parley__resampler *r = parley__resampler_new(file_rate, 48000, PARLEY__RESAMPLER_QUALITY_DEFAULT, NULL);
  cr_assert_not_null(r);
  double delay = parley__resampler_delay_samples_exact(r);
  parley__resampler_free(r);
  double span = (double)n * 48000 / file_rate; /* the file's length at 48 kHz */
  cr_assert_geq((double)oi.frames, span + delay, "output %ld frames, the file needs %.0f", (long)oi.frames, span + delay);
  /* The tones, away from the filter's start-up and the file's cut-off end. */
  size_t from = (size_t)(delay + 960), to = (size_t)(span + delay - 960);
  for (int c = 0; c < 2; c++) {
    double sig = 0, err = 0;
    for (size_t i = from; i < to; i++) {
      double ideal = 16000.0 * sin(2 * M_PI * f[c] * ((double)i - delay) / 48000);
      double e = o[2 * i + c] - ideal;
      sig += ideal * ideal;
      err += e * e;
    }
    double snr = 10 * log10(sig / err);
    cr_expect_geq(snr, 50.0, "channel %d: SNR %.1f dB", c, snr);
  }
  /* The file's last samples leave the filter only after its delay: they must be there too. */
  cr_assert_gt(delay, 40.0);
  for (int c = 0; c < 2; c++) {
    double sum = 0;
    size_t a = (size_t)span + 10, b = (size_t)(span + delay) - 25;
    for (size_t i = a; i < b; i++) sum += (double)o[2 * i + c] * o[2 * i + c];
    double rms = sqrt(sum / (double)(b - a));
    cr_expect_gt(rms, 3000.0, "channel %d: the last %.0f samples of the file are missing (rms %.0f)", c, delay, rms);
  }
  /* Then silence: nothing after the converted file but the filter's ringing (a few ms). */
  for (size_t i = (size_t)(span + delay + 480); i < (size_t)oi.frames; i++)
    cr_assert_leq(abs(o[2 * i]) + abs(o[2 * i + 1]), 2, "frame %zu after the end is not silent", i);
  free(o);
  free(st);
}

/* Runs a mono 48 kHz FILE device in STEPPED pacing (480-frame periods) with a copy callback for
 * `steps` periods, releasing a held input before step `release_at` (-1: never). Fills *ev. */
static void run_steps(const char *in, const char *out, bool loop, bool hold, int steps, int release_at,
                      events *ev) {
  int ch = 1;
  void *user[2] = {&ch, ev};
  parley__device_config cfg;
  stepped_config(&cfg, in, out, user);
  cfg.period_frames = 480;
  cfg.input_loop = loop;
  cfg.input_hold = hold;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_start(d), 0);
  for (int i = 0; i < steps; i++) {
    if (i == release_at) parley__device_input_release(d);
    cr_assert_eq(parley__device_step(d), 0);
    parley__device_poll_events(d, 0);
  }
  cr_assert_eq(parley__device_stop(d), 0);
  parley__device_poll_events(d, 0);
  parley__device_free(d);
}

/* An n-frame ramp: no two samples alike. */
static short *write_ramp(const char *path, sf_count_t n) {
  short *x = malloc((size_t)n * sizeof *x);
  cr_assert_not_null(x);
  for (sf_count_t i = 0; i < n; i++) x[i] = (short)(10 * i + 7);
  cr_assert_eq(write_s16(path, x, n, 1, 48000), 0);
  return x;
}

/* A looping n-frame ramp played for `steps` periods comes out as the ramp over and over, exactly, and
 * never finishes. */
static void check_loop(sf_count_t n, int steps) {
  char in[128], out[128];
  events ev = {0};
  short *x = write_ramp(tmp_path(in, sizeof in, "ramp.wav"), n);
  run_steps(in, tmp_path(out, sizeof out, "loop.wav"), true, false, steps, -1, &ev);
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  cr_assert_eq(oi.frames, steps * 480);
  for (sf_count_t i = 0; i < oi.frames; i++) cr_assert_eq(o[i], x[i % n], "frame %ld", (long)i);
  cr_expect_eq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), -1, "a looping input never finishes");
  free(o);
  free(x);
}

Test(device_file, loop_starts_the_file_over_sample_exact) { check_loop(1234, 20); }

/* A file shorter than one period loops several times within it. */
Test(device_file, loop_of_a_file_shorter_than_a_period) { check_loop(100, 3); }

/* A held input is silence and unread until released, then plays from its first frame. */
Test(device_file, held_input_starts_at_release) {
  char in[128], out[128];
  events ev = {0};
  const sf_count_t n = 1234;
  short *x = write_ramp(tmp_path(in, sizeof in, "ramp.wav"), n);
  run_steps(in, tmp_path(out, sizeof out, "held.wav"), false, true, 12, 5, &ev);
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  cr_assert_eq(oi.frames, 12 * 480);
  for (sf_count_t i = 0; i < oi.frames; i++) {
    sf_count_t k = i - 5 * 480;
    short want = k >= 0 && k < n ? x[k] : 0;
    cr_assert_eq(o[i], want, "frame %ld", (long)i);
  }
  cr_expect_geq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), 0, "the released input finishes");
  free(o);
  free(x);
}

/* Never released: nothing is read, and nothing finishes. */
Test(device_file, held_input_never_released_is_silence) {
  char out[128];
  events ev = {0};
  run_steps(SPEECH_A, tmp_path(out, sizeof out, "never.wav"), false, true, 10, -1, &ev);
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  for (sf_count_t i = 0; i < oi.frames; i++) cr_assert_eq(o[i], 0, "frame %ld", (long)i);
  cr_expect_eq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), -1);
  free(o);
}

/* An odd-rate file loops through its resampler: sound goes on long past the file's length. */
Test(device_file, odd_rate_file_loops) {
  char in[128], out[128];
  events ev = {0};
  const int file_rate = 22050;
  sf_count_t n = 2250; /* 45 whole cycles of 441 Hz, about 0.1 s */
  short *x = malloc((size_t)n * sizeof *x);
  cr_assert_not_null(x);
  for (sf_count_t i = 0; i < n; i++) x[i] = (short)lrint(16000.0 * sin(2 * M_PI * 441.0 * (double)i / file_rate));
  cr_assert_eq(write_s16(tmp_path(in, sizeof in, "odd_loop.wav"), x, n, 1, file_rate), 0);
  run_steps(in, tmp_path(out, sizeof out, "odd_loop_out.wav"), true, false, 100, -1, &ev); /* 1 s */
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  cr_assert_eq(oi.frames, 100 * 480);
  /* Every 10 ms after the filter's start-up holds the tone (whole cycles: the loop joins smoothly). */
  for (int p = 2; p < 100; p++) {
    double sum = 0;
    for (int i = 0; i < 480; i++) sum += (double)o[p * 480 + i] * o[p * 480 + i];
    double rms = sqrt(sum / 480);
    cr_assert_gt(rms, 9000.0, "period %d: rms %.0f", p, rms);
  }
  cr_expect_eq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), -1);
  free(o);
  free(x);
}

/* FLAC input goes through the same path (libsndfile decodes it). */
Test(device_file, flac_input) {
  char in[128], out[128];
  events ev = {0};
  SF_INFO ii;
  short *x = read_s16(SPEECH_B, &ii);
  cr_assert_not_null(x);
  SF_INFO fi = {.samplerate = 32000, .channels = 1, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open(tmp_path(in, sizeof in, "b.flac"), SFM_WRITE, &fi);
  cr_assert_not_null(f);
  cr_assert_eq(sf_writef_short(f, x, ii.frames), ii.frames);
  sf_close(f);
  cr_expect_eq(copy_stepped(in, tmp_path(out, sizeof out, "b.wav"), 1, &ev), 32000);
  assert_output(out, x, ii.frames, 1, 32000);
  free(x);
}

/* FREERUN: the pacing thread copies the file as fast as it can and stops after the end. */
Test(device_file, freerun_copy) {
  char out[128];
  events ev = {0};
  int ch = 1;
  void *user[2] = {&ch, &ev};
  SF_INFO ii;
  short *x = read_s16(SPEECH_A, &ii);
  cr_assert_not_null(x);
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
  cfg.input_path = SPEECH_A;
  cfg.output_path = tmp_path(out, sizeof out, "free.wav");
  cfg.pacing = PARLEY__DEVICE_PACE_FREERUN;
  cfg.period_frames = 441; /* any size works */
  cfg.process = copy_process;
  cfg.event = record_event;
  cfg.user = user;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_step(d), PARLEY_ESTATE); /* a thread drives it, not step */
  cr_assert_eq(parley__device_start(d), 0);
  cr_assert_eq(parley__device_step(d), PARLEY_ESTATE);
  for (int i = 0; i < 10000 && find_event(&ev, PARLEY__DEVICE_EV_FINISHED) < 0; i++) {
    parley__device_poll_events(d, now_us());
    sleep_ms(1);
  }
  cr_assert_geq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), 0);
  cr_assert_eq(parley__device_stop(d), 0);
  parley__device_stats st;
  parley__device_get_stats(d, &st);
  /* It stopped by itself after the period that held the last input frame. */
  cr_expect_eq(st.frames, ((uint64_t)ii.frames + 440) / 441 * 441);
  parley__device_free(d);
  assert_output(out, x, ii.frames, 1, ii.samplerate);
  free(x);
}

Test(device_file, missing_input_is_not_found) {
  char in[128];
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
  cfg.process = nop_process;
  cfg.input_path = tmp_path(in, sizeof in, "no-such.wav");
  int err = 0;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_ENOTFOUND);
  cfg.input_path = "/nonexistent-dir/x.wav";
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_ENOTFOUND);
}

Test(device_file, text_file_is_a_format_error_without_leaks) {
  char in[128], out[128];
  FILE *f = fopen(tmp_path(in, sizeof in, "notes.wav"), "w");
  cr_assert_not_null(f);
  fputs("These are not the samples you are looking for.\n", f);
  fclose(f);
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
  cfg.process = nop_process;
  cfg.input_path = in;
  cfg.output_path = tmp_path(out, sizeof out, "o.wav");
  int fds = count_fds();
  int err = 0;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EFORMAT);
  cr_expect_eq(count_fds(), fds, "file descriptors leaked");
  cr_expect_neq(access(out, F_OK), 0, "output created although the input was refused");
  /* A directory is not an audio file either. */
  cfg.input_path = tmp_dir;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EFORMAT);
  /* Three channels: readable, but not mono or stereo. */
  short three[3 * 100] = {0};
  cr_assert_eq(write_s16(tmp_path(in, sizeof in, "three.wav"), three, 100, 3, 48000), 0);
  cfg.input_path = in;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EFORMAT);
  cr_expect_eq(count_fds(), fds, "file descriptors leaked");
}

/* We run as root in CI, so permission bits do not stop us: use paths that cannot be created. */
Test(device_file, unwritable_output_is_an_error) {
  char out[256], blocker[128];
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
  cfg.process = nop_process;
  cfg.input_path = SPEECH_A;
  cfg.output_path = "/nonexistent-dir/out.wav";
  int err = 0, fds = count_fds();
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EIO);
  /* The "directory" is a regular file. */
  FILE *f = fopen(tmp_path(blocker, sizeof blocker, "file"), "w");
  cr_assert_not_null(f);
  fclose(f);
  snprintf(out, sizeof out, "%s/out.wav", blocker);
  cfg.output_path = out;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EIO);
  /* The output is the input: refused rather than truncating the input. */
  cfg.output_path = SPEECH_A;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_EINVAL);
  cr_expect_eq(count_fds(), fds, "file descriptors leaked");
}

/* A write error in the middle of a run (file size limit): step reports PARLEY_EIO, LOST carries
 * PARLEY_EIO, stop reports it too, and the file holds a valid WAV with what was written. Runs in a
 * child so the limit does not touch the test process. */
#define FSIZE_LIMIT 100044 /* 44-byte WAV header + 50000 samples */
Test(device_file, write_error_keeps_a_valid_file) {
  char out[128];
  tmp_path(out, sizeof out, "limited.wav");
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {FSIZE_LIMIT, FSIZE_LIMIT};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
    events ev = {0};
    int ch = 1;
    void *user[2] = {&ch, &ev};
    parley__device_config cfg;
    parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
    cfg.input_path = SPEECH_A;
    cfg.output_path = out;
    cfg.pacing = PARLEY__DEVICE_PACE_STEPPED;
    cfg.process = copy_process;
    cfg.event = record_event;
    cfg.user = user;
    parley__device *d = parley__device_new(&cfg, NULL);
    if (!d || parley__device_start(d) != 0) _exit(11);
    int r = 0, steps = 0;
    while (steps < 1000 && (r = parley__device_step(d)) == 0) steps++;
    if (r != PARLEY_EIO) _exit(12);
    if (parley__device_step(d) != PARLEY_EIO) _exit(13); /* stays failed */
    parley__device_poll_events(d, 0);
    int lost = find_event(&ev, PARLEY__DEVICE_EV_LOST);
    if (lost < 0 || ev.err[lost] != PARLEY_EIO) _exit(14);
    if (parley__device_stop(d) != PARLEY_EIO) _exit(15);
    parley__device_free(d);
    _exit(0);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "child died");
  cr_assert_eq(WEXITSTATUS(status), 0, "child step %d failed", WEXITSTATUS(status));
  SF_INFO ii, oi;
  short *x = read_s16(SPEECH_A, &ii);
  short *o = read_s16(out, &oi);
  cr_assert(x && o, "truncated output is not a readable WAV");
  cr_expect_gt(oi.frames, 0);
  cr_expect_leq(oi.frames, (FSIZE_LIMIT - 44) / 2);
  for (sf_count_t i = 0; i < oi.frames; i++) cr_assert_eq(o[i], x[i], "sample %ld", (long)i);
  free(x), free(o);
}

/* REALTIME pacing: periods flow on the thread (no timing asserted), stop ends them. */
Test(device_file, realtime_pacing_runs_and_stops) {
  char out[128];
  events ev = {0};
  int ch = 1;
  void *user[2] = {&ch, &ev};
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_FILE);
  cfg.output_path = tmp_path(out, sizeof out, "rt.wav"); /* no input: silence */
  cfg.process = copy_process;
  cfg.event = record_event;
  cfg.user = user;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_start(d), 0);
  parley__device_stats st = {0};
  for (int i = 0; i < 2000 && st.frames < 4800; i++) {
    sleep_ms(1);
    parley__device_get_stats(d, &st);
  }
  cr_assert_geq(st.frames, 4800);
  cr_assert_eq(parley__device_stop(d), 0);
  parley__device_get_stats(d, &st);
  uint64_t at_stop = st.frames;
  sleep_ms(30);
  parley__device_get_stats(d, &st);
  cr_expect_eq(st.frames, at_stop, "periods after stop");
  /* Stop made the file valid before free. */
  SF_INFO oi;
  short *o = read_s16(out, &oi);
  cr_assert_not_null(o);
  cr_expect_eq((uint64_t)oi.frames, at_stop);
  for (sf_count_t i = 0; i < oi.frames; i++) cr_assert_eq(o[i], 0);
  free(o);
  parley__device_poll_events(d, now_us());
  cr_expect_eq(find_event(&ev, PARLEY__DEVICE_EV_FINISHED), -1); /* no input, never finishes */
  parley__device_free(d);
}

/* ---- APP ---- */

static void negate_process(void *user, const float *in, float *out, size_t frames) {
  int ch = *(int *)user;
  for (size_t i = 0; i < frames * (size_t)ch; i++) out[i] = -in[i];
}

Test(device_app, push_tick_pull_round_trip) {
  int ch = 2;
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_APP);
  cfg.pacing = PARLEY__DEVICE_PACE_STEPPED; /* the test is the clock */
  cfg.channels = ch;
  cfg.period_frames = 480;
  cfg.app_ring_frames = 2000; /* rounds up to 2048 */
  cfg.process = negate_process;
  cfg.user = &ch;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  enum { PUSHED = 1000 };
  float in[PUSHED * 2];
  for (int i = 0; i < PUSHED * 2; i++) in[i] = (float)(i + 1) / 4096.0f;
  /* Pushing works before start (the app may pre-fill); the ring holds 2048 frames at most. */
  cr_assert_eq(parley__device_app_push(d, in, PUSHED), PUSHED);
  cr_assert_eq(parley__device_step(d), PARLEY_ESTATE);
  cr_assert_eq(parley__device_start(d), 0);
  for (int t = 0; t < 3; t++) cr_assert_eq(parley__device_step(d), 0);
  float out[1440 * 2 + 2];
  int got = parley__device_app_pull(d, out, 1441);
  cr_assert_eq(got, 1440);
  for (int i = 0; i < PUSHED * 2; i++) cr_assert_eq(out[i], -in[i], "sample %d", i);
  for (int i = PUSHED * 2; i < 1441 * 2; i++) cr_assert_eq(out[i], 0.0f, "sample %d", i);
  parley__device_stats st;
  parley__device_get_stats(d, &st);
  cr_expect_eq(st.frames, 1440);
  cr_expect_eq(st.underrun_frames, 1440 - PUSHED);
  cr_expect_eq(st.overrun_frames, 0);
  /* The app stops pulling: 5 ticks make 2400 frames, 2048 fit. */
  for (int t = 0; t < 5; t++) cr_assert_eq(parley__device_step(d), 0);
  parley__device_get_stats(d, &st);
  cr_expect_eq(st.overrun_frames, 2400 - 2048);
  /* Capture ring full: push accepts only what fits. */
  float chunk[2 * 1024] = {0};
  cr_expect_eq(parley__device_app_push(d, chunk, 1024), 1024);
  cr_expect_eq(parley__device_app_push(d, chunk, 1024), 1024);
  cr_expect_eq(parley__device_app_push(d, chunk, 1024), 0);
  cr_expect_eq(parley__device_app_push(d, NULL, 1), PARLEY_EINVAL);
  cr_expect_eq(parley__device_stop(d), 0);
  parley__device_free(d);
}

/* Two threads: the app pushes a ramp and pulls, the engine ticks once per period the app has pushed
 * (as a rate-matched audio callback would); every sample comes back, in order. */
typedef struct app_run {
  parley__device *d;
  atomic_long credits; /* periods pushed but not yet ticked */
  atomic_bool stop;
} app_run;

static void *ticker(void *arg) {
  app_run *r = arg;
  while (!atomic_load(&r->stop)) {
    if (atomic_load(&r->credits) > 0) {
      parley__device_step(r->d);
      atomic_fetch_sub(&r->credits, 1);
    } else {
      sched_yield();
    }
  }
  return NULL;
}

static void copy1_process(void *user, const float *in, float *out, size_t frames) {
  (void)user;
  memcpy(out, in, frames * sizeof(float));
}

Test(device_app, threads_keep_order, .timeout = 60) {
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_APP);
  cfg.pacing = PARLEY__DEVICE_PACE_STEPPED; /* the test is the clock */
  cfg.period_frames = 64;
  cfg.app_ring_frames = 4096;
  cfg.process = copy1_process;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_start(d), 0);
  app_run r = {.d = d};
  atomic_init(&r.credits, 0);
  atomic_init(&r.stop, false);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, ticker, &r), 0);
  enum { N = 64 * 3000 };
  long pushed = 0, granted = 0, next_pull = 1;
  bool bad = false;
  for (long it = 0; it < 20000000 && next_pull <= N && !bad; it++) {
    float buf[256];
    long k = 0;
    /* Keep at most one ring's worth in flight, as a real app's fixed buffers would. */
    while (k < 64 && pushed + k < N && pushed + k - (next_pull - 1) < 4096) {
      buf[k] = (float)(pushed + k + 1);
      k++;
    }
    if (k) pushed += parley__device_app_push(d, buf, (size_t)k);
    if (pushed / 64 > granted) {
      atomic_fetch_add(&r.credits, pushed / 64 - granted);
      granted = pushed / 64;
    }
    int got = parley__device_app_pull(d, buf, 256);
    for (int i = 0; i < got && !bad; i++) {
      if (buf[i] == (float)next_pull)
        next_pull++;
      else
        bad = true;
    }
  }
  atomic_store(&r.stop, true);
  pthread_join(t, NULL);
  cr_expect_not(bad, "sample %ld out of order", next_pull);
  cr_expect_eq(next_pull, N + 1, "got %ld of %d in order", next_pull - 1, N);
  parley__device_stats st;
  parley__device_get_stats(d, &st);
  cr_expect_eq(st.underrun_frames, 0);
  cr_expect_eq(st.overrun_frames, 0);
  parley__device_free(d);
}

/* app_trim_backlog: a backlog both ends keep forever (rate-matched) is skipped once it has stood for a
 * whole window of reads; a backlog that comes and goes (a surge) is kept. Playout frames carry their
 * tick's sequence number, capture frames the app's, so "latest" is checkable. */
typedef struct seq_state {
  float next_out; /* playout: sequence written by the next tick */
  float last_in;  /* capture: first sample of the last tick's input */
} seq_state;

static void seq_process(void *user, const float *in, float *out, size_t frames) {
  seq_state *s = user;
  s->last_in = in[0];
  for (size_t i = 0; i < frames; i++) out[i] = s->next_out;
  s->next_out += 1.0f;
}

static parley__device *trim_device(seq_state *st, bool trim) {
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_APP);
  cfg.pacing = PARLEY__DEVICE_PACE_STEPPED; /* the test is the clock */
  cfg.period_frames = 480;
  cfg.app_trim_backlog = trim;
  cfg.process = seq_process;
  cfg.user = st;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_start(d), 0);
  return d;
}

Test(device_app, standing_backlog_is_trimmed) {
  for (int trim = 0; trim < 2; trim++) {
    seq_state st = {0};
    parley__device *d = trim_device(&st, trim);
    /* The app starts late: 7 playout periods wait; and it pre-fills 5 capture periods. */
    float buf[480];
    for (int t = 0; t < 7; t++) cr_assert_eq(parley__device_step(d), 0);
    for (int k = 0; k < 5; k++) {
      for (int i = 0; i < 480; i++) buf[i] = (float)(-1 - k);
      cr_assert_eq(parley__device_app_push(d, buf, 480), 480);
    }
    float seq_in = 1;
    float pulled = -1;
    for (int t = 0; t < 2 * PARLEY__DEVICE_APP_TRIM_WINDOW + 5; t++) {
      for (int i = 0; i < 480; i++) buf[i] = seq_in;
      cr_assert_eq(parley__device_app_push(d, buf, 480), 480);
      cr_assert_eq(parley__device_step(d), 0);
      cr_assert_eq(parley__device_app_pull(d, buf, 480), 480);
      pulled = buf[0];
      seq_in += 1;
    }
    parley__device_stats ds;
    parley__device_get_stats(d, &ds);
    if (trim) {
      cr_expect_eq(ds.trimmed_frames, (5 + 7) * 480, "trimmed %llu", (unsigned long long)ds.trimmed_frames);
      cr_expect_eq(pulled, st.next_out - 1, "playout lags the tick by %g periods", st.next_out - 1 - pulled);
      cr_expect_eq(st.last_in, seq_in - 1, "capture lags the app by %g periods", seq_in - 1 - st.last_in);
    } else {
      cr_expect_eq(ds.trimmed_frames, 0);
      cr_expect_eq(pulled, st.next_out - 8, "untrimmed playout keeps its 7-period backlog");
      cr_expect_eq(st.last_in, seq_in - 6, "untrimmed capture keeps its 5-period backlog");
    }
    parley__device_free(d);
  }
}

/* A stall: the app misses a tick's push and then pushes two periods, once it has run in step for a
 * while (reads emptied the ring), in the middle of a trim window. The tick underruns, and the late
 * period becomes a one-period backlog: kept for exactly a window of reads in a row (a surge may still
 * drain by itself), then trimmed, not a window or more later. */
Test(device_app, stall_backlog_is_trimmed_one_window_after) {
  seq_state st = {0};
  parley__device *d = trim_device(&st, true);
  float buf[960];
  const int stall = 17; /* not a multiple of the window */
  int trimmed_at = -1;
  for (int t = 0; t < 3 * PARLEY__DEVICE_APP_TRIM_WINDOW && trimmed_at < 0; t++) {
    memset(buf, 0, sizeof buf);
    int push = t == stall ? 0 : t == stall + 1 ? 960 : 480;
    cr_assert_eq(parley__device_app_push(d, buf, (size_t)push), push);
    cr_assert_eq(parley__device_step(d), 0);
    cr_assert_eq(parley__device_app_pull(d, buf, 480), 480);
    parley__device_stats ds;
    parley__device_get_stats(d, &ds);
    if (ds.trimmed_frames) {
      cr_expect_eq(ds.trimmed_frames, 480, "the backlog was one period");
      trimmed_at = t;
    }
  }
  /* The tick after the double push is the first to leave a period over. */
  cr_expect_eq(trimmed_at, stall + PARLEY__DEVICE_APP_TRIM_WINDOW, "trimmed at tick %d", trimmed_at);
  parley__device_free(d);
}

Test(device_app, surges_are_not_trimmed) {
  seq_state st = {0};
  parley__device *d = trim_device(&st, true);
  float buf[960];
  /* The app pulls half periods, twice per tick, and every tenth tick two periods at once after
   * skipping one: after its reads the ring holds 0, half or one period, never a standing backlog. */
  for (int t = 0; t < 4 * PARLEY__DEVICE_APP_TRIM_WINDOW; t++) {
    memset(buf, 0, sizeof buf);
    cr_assert_eq(parley__device_app_push(d, buf, 480), 480);
    cr_assert_eq(parley__device_step(d), 0);
    if (t % 10 == 8) continue;
    if (t % 10 == 9) {
      cr_assert_eq(parley__device_app_pull(d, buf, 960), 960);
      continue;
    }
    cr_assert_eq(parley__device_app_pull(d, buf, 240), 240);
    cr_assert_eq(parley__device_app_pull(d, buf, 240), 240);
  }
  parley__device_stats ds;
  parley__device_get_stats(d, &ds);
  cr_expect_eq(ds.trimmed_frames, 0);
  cr_expect_eq(ds.underrun_frames, 0);
  parley__device_free(d);
}

/* ---- NULL ---- */

typedef struct null_check {
  atomic_ulong frames;
  atomic_ulong nonzero_in;
  atomic_ulong nonzero_out_seen;
} null_check;

static void null_process(void *user, const float *in, float *out, size_t frames) {
  null_check *c = user;
  for (size_t i = 0; i < frames; i++) {
    if (in[i] != 0.0f) atomic_fetch_add(&c->nonzero_in, 1);
    if (out[i] != 0.0f) atomic_fetch_add(&c->nonzero_out_seen, 1); /* out arrives zeroed */
    out[i] = 0.5f;
  }
  atomic_fetch_add(&c->frames, frames);
}

Test(device_null, stepped_silence) {
  null_check c = {0};
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_NULL);
  cfg.pacing = PARLEY__DEVICE_PACE_STEPPED;
  cfg.process = null_process;
  cfg.user = &c;
  parley__device *d = parley__device_new(&cfg, NULL);
  cr_assert_not_null(d);
  cr_assert_eq(parley__device_start(d), 0);
  for (int i = 0; i < 100; i++) cr_assert_eq(parley__device_step(d), 0);
  /* No buffering beyond the period: the capture fill in, nothing out. */
  parley__device_latency lat;
  cr_assert_eq(parley__device_get_latency(d, &lat), 0);
  cr_expect_eq(lat.input_frames, parley__device_period_frames(d));
  cr_expect_eq(lat.output_frames, 0);
  cr_expect_eq(parley__device_get_latency(NULL, &lat), PARLEY_EINVAL);
  cr_expect_eq(parley__device_get_latency(d, NULL), PARLEY_EINVAL);
  cr_expect_eq(atomic_load(&c.frames), 48000);
  cr_expect_eq(atomic_load(&c.nonzero_in), 0);
  cr_expect_eq(atomic_load(&c.nonzero_out_seen), 0);
  parley__device_free(d); /* free stops */
}

Test(device_null, threaded_pacings_run_and_stop) {
  parley__device_pacing modes[] = {PARLEY__DEVICE_PACE_REALTIME, PARLEY__DEVICE_PACE_FREERUN};
  for (int m = 0; m < 2; m++) {
    null_check c = {0};
    parley__device_config cfg;
    parley__device_config_init(&cfg, PARLEY__DEVICE_NULL);
    cfg.pacing = modes[m];
    cfg.sample_rate_hz = 8000;
    cfg.process = null_process;
    cfg.user = &c;
    parley__device *d = parley__device_new(&cfg, NULL);
    cr_assert_not_null(d);
    cr_assert_eq(parley__device_start(d), 0);
    for (int i = 0; i < 3000 && atomic_load(&c.frames) < 800; i++) sleep_ms(1);
    cr_assert_eq(parley__device_stop(d), 0);
    unsigned long at_stop = atomic_load(&c.frames);
    cr_expect_geq(at_stop, 800);
    sleep_ms(20);
    cr_expect_eq(atomic_load(&c.frames), at_stop);
    cr_expect_eq(atomic_load(&c.nonzero_in), 0);
    cr_expect_eq(atomic_load(&c.nonzero_out_seen), 0);
    parley__device_free(d);
  }
}

/* ---- PORTAUDIO ---- */

Test(device_pa, unknown_names_are_not_found) {
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_PORTAUDIO);
  cfg.process = nop_process;
  cfg.host_api = "no such host api";
  int err = 0;
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_ENOTFOUND);
  cfg.host_api = NULL;
  cfg.input_name = "no such device, surely";
  cr_expect_null(parley__device_new(&cfg, &err));
  cr_expect_eq(err, PARLEY_ENOTFOUND);
  /* Listing works with or without devices; a count-only call agrees with a filling call. */
  int n = parley__device_list(NULL, 0);
  cr_assert_geq(n, 0);
  parley__device_info info[64];
  cr_expect_eq(parley__device_list(info, 64), n);
  cr_expect_eq(parley__device_list(NULL, 3), PARLEY_EINVAL);
}

/* A private JACK server with the dummy driver: started by the test, always killed by the fixture.
 * Its name is fixed: JACK's shared registry holds at most 8 server entries and a server that dies
 * while a client is still attached (the point of this test) leaves its entry behind; a later server
 * of the same name reclaims it, a new name each run would fill the registry. Runs of this test on one
 * machine are serialised with a lock file instead. */
#define JACK_SERVER "parley-test"
#define JACK_LOCK "/tmp/parley-test-jackd.lock"
static pid_t jack_pid = -1;
static int jack_lock_fd = -1;

/* Sends sig (and SIGCONT, in case the server is frozen) and reaps the server within wait_ms, else
 * SIGKILLs it. A SIGTERM lets it exit cleanly; a SIGKILL leaves its shared memory behind. */
static void jack_stop_server(int sig, int wait_ms) {
  if (jack_pid <= 0) return;
  kill(jack_pid, sig);
  kill(jack_pid, SIGCONT);
  for (int i = 0; i < wait_ms / 10; i++) {
    if (waitpid(jack_pid, NULL, WNOHANG) == jack_pid) {
      jack_pid = -1;
      return;
    }
    sleep_ms(10);
  }
  kill(jack_pid, SIGKILL);
  waitpid(jack_pid, NULL, 0);
  jack_pid = -1;
}

/* Fixture teardown, whatever the test did: no server survives, the shared-memory files a server
 * (or a client whose server died) leaves in /dev/shm under its name are removed, the lock is
 * released. */
static void jack_teardown(void) {
  jack_stop_server(SIGTERM, 2000);
  DIR *dir = opendir("/dev/shm");
  if (dir) {
    struct dirent *ent;
    char p[400];
    while ((ent = readdir(dir)))
      if (strstr(ent->d_name, "_" JACK_SERVER "_")) {
        snprintf(p, sizeof p, "/dev/shm/%s", ent->d_name);
        unlink(p);
      }
    closedir(dir);
  }
  if (jack_lock_fd >= 0) {
    close(jack_lock_fd); /* drops the flock */
    jack_lock_fd = -1;
  }
}

/* Waits up to ~30 s for another run of this test to finish. */
static bool jack_lock(void) {
  jack_lock_fd = open(JACK_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (jack_lock_fd < 0) return false;
  for (int i = 0; i < 300; i++) {
    if (flock(jack_lock_fd, LOCK_EX | LOCK_NB) == 0) return true;
    sleep_ms(100);
  }
  return false;
}

static bool in_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  char buf[1024];
  while (*path) {
    size_t len = strcspn(path, ":");
    snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, prog);
    if (access(buf, X_OK) == 0) return true;
    path += len + (path[len] == ':');
  }
  return false;
}

static const char *jack_period = "480"; /* the server's period, frames */

static pid_t jack_spawn(void) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test process, even if it crashes */
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  /* One capture port and two playback ports: unequal, so a list that swaps them shows. */
  execlp("jackd", "jackd", "-n", JACK_SERVER, "--no-realtime", "-d", "dummy", "-r", "48000", "-p",
         jack_period, "-C", "1", "-P", "2", (char *)NULL);
  _exit(127);
}

static bool jack_listed(void) {
  parley__device_info info[32];
  int n = parley__device_list(info, 32);
  for (int i = 0; i < n && i < 32; i++)
    if (strstr(info[i].host_api, "JACK")) return true;
  return false;
}

typedef struct jack_count {
  atomic_ulong frames;
} jack_count;

static void jack_process(void *user, const float *in, float *out, size_t frames) {
  (void)in;
  jack_count *c = user;
  for (size_t i = 0; i < frames; i++) out[i] = 0.1f;
  atomic_fetch_add(&c->frames, frames);
}

static events jack_events;
static void jack_event(void *user, parley__device_event ev, int err) {
  (void)user;
  void *u[2] = {NULL, &jack_events};
  record_event(u, ev, err);
}

/* Starts the private server and waits until PortAudio sees it; skips when jackd is missing. */
static void jack_up(void) {
  if (!in_path("jackd")) cr_skip("jackd is not installed");
  cr_assert(jack_lock(), "another run holds " JACK_LOCK);
  setenv("JACK_DEFAULT_SERVER", JACK_SERVER, 1);
  setenv("JACK_NO_START_SERVER", "1", 1); /* libjack must not start a server of its own */
  jack_pid = jack_spawn();
  cr_assert_gt(jack_pid, 0);
  /* Up when PortAudio lists the JACK host API: at most ~10 s. The first look waits a little, as
   * every failed look makes libjack print its complaints. */
  sleep_ms(200);
  bool up = false;
  for (int i = 0; i < 100 && !up; i++) {
    int status;
    if (waitpid(jack_pid, &status, WNOHANG) == jack_pid) {
      jack_pid = -1;
      cr_assert_fail("jackd exited early (status %d)", status);
    }
    up = jack_listed();
    if (!up) sleep_ms(100);
  }
  cr_assert(up, "JACK server did not come up");
}

static parley__device *jack_device(jack_count *c, int rate_hz, int stall_timeout_ms, int *err) {
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_PORTAUDIO);
  cfg.host_api = "jack";     /* substring, case-insensitive: "JACK Audio Connection Kit" */
  cfg.input_name = "SYSTEM"; /* exact name, case-insensitive */
  cfg.output_name = "sys";   /* substring */
  cfg.sample_rate_hz = rate_hz;
  cfg.period_frames = 480;
  cfg.stall_timeout_ms = stall_timeout_ms;
  cfg.process = jack_process;
  cfg.event = jack_event;
  cfg.user = c;
  return parley__device_new(&cfg, err);
}

/* Polls events every 10 ms until ev shows up; at most ~5 s. Returns its index or -1. */
static int jack_wait_event(parley__device *d, parley__device_event ev) {
  for (int i = 0; i < 500 && find_event(&jack_events, ev) < 0; i++) {
    parley__device_poll_events(d, now_us());
    sleep_ms(10);
  }
  return find_event(&jack_events, ev);
}

Test(device_pa, jack_dummy_frames_flow_then_lost, .fini = jack_teardown, .timeout = 60) {
  jack_up();
  jack_count c = {0};
  memset(&jack_events, 0, sizeof jack_events);
  int err = 0;
  /* The server runs at 48 kHz: another rate is refused up front. */
  cr_expect_null(jack_device(&c, 44100, 0, &err));
  cr_expect_eq(err, PARLEY_ENOTSUP);
  parley__device *d = jack_device(&c, 48000, 2000, &err);
  cr_assert_not_null(d, "open JACK device: %s", parley_strerror(err));
  parley__device_latency lat;
  cr_expect_eq(parley__device_get_latency(d, &lat), PARLEY_ESTATE, "no stream, nothing reported yet");
  cr_assert_eq(parley__device_start(d), 0);
  /* A JACK card hands a period over a period after it began (capture) and plays what a cycle wrote
   * one cycle later at the earliest (playback). */
  cr_assert_eq(parley__device_get_latency(d, &lat), 0);
  cr_expect_geq(lat.input_frames, 480, "input %zu frames", lat.input_frames);
  cr_expect_geq(lat.output_frames, 480, "output %zu frames", lat.output_frames);
  /* About one second of running: at least half the nominal 48000 frames must have flowed. */
  int64_t t0 = now_us();
  for (int i = 0; i < 100 && now_us() - t0 < 1000000; i++) {
    parley__device_poll_events(d, now_us());
    sleep_ms(10);
  }
  double secs = (double)(now_us() - t0) / 1e6;
  unsigned long frames = atomic_load(&c.frames);
  cr_assert_geq((double)frames, 0.5 * 48000 * secs, "%lu frames in %.2f s", frames, secs);
  cr_assert_eq(find_event(&jack_events, PARLEY__DEVICE_EV_STARTED), 0);
  cr_assert_eq(find_event(&jack_events, PARLEY__DEVICE_EV_LOST), -1);

  /* The server goes away: the device must say LOST within a few seconds. */
  jack_stop_server(SIGTERM, 5000);
  int lost = jack_wait_event(d, PARLEY__DEVICE_EV_LOST);
  cr_assert_geq(lost, 0, "no LOST after the JACK server died");
  cr_expect_eq(jack_events.err[lost], PARLEY_EDEVICE);
  /* Stopping a lost device does not hang and reports no new error. */
  cr_expect_eq(parley__device_stop(d), 0);
  parley__device_free(d);
}

/* A server that freezes (SIGSTOP) keeps the stream "active" but callbacks stop: the stall watch
 * reports LOST with PARLEY_ETIMEDOUT. */
Test(device_pa, jack_stall_is_lost, .fini = jack_teardown, .timeout = 60) {
  jack_up();
  jack_count c = {0};
  memset(&jack_events, 0, sizeof jack_events);
  int err = 0;
  parley__device *d = jack_device(&c, 48000, 300, &err);
  cr_assert_not_null(d, "open JACK device: %s", parley_strerror(err));
  cr_assert_eq(parley__device_start(d), 0);
  for (int i = 0; i < 500 && atomic_load(&c.frames) < 4800; i++) {
    parley__device_poll_events(d, now_us());
    sleep_ms(10);
  }
  cr_assert_geq(atomic_load(&c.frames), 4800, "frames never flowed");
  cr_assert_eq(find_event(&jack_events, PARLEY__DEVICE_EV_LOST), -1);
  kill(jack_pid, SIGSTOP);
  int lost = jack_wait_event(d, PARLEY__DEVICE_EV_LOST);
  cr_assert_geq(lost, 0, "no LOST while the JACK server was frozen");
  cr_expect_eq(jack_events.err[lost], PARLEY_ETIMEDOUT);
  jack_stop_server(SIGTERM, 5000);
  cr_expect_eq(parley__device_stop(d), 0);
  parley__device_free(d);
}

/* JACK's period (256) is not the device's (480): device_pa adapts. Every process call gets exactly one
 * period, and with the device's output wired back to its input in the JACK graph, a counter written to
 * the output comes back in order: no sample lost, repeated or reordered by the adapter. The reported
 * output latency includes the adapter's one period of priming on top of JACK's own playback latency
 * (at least one JACK period). */
typedef struct ramp {
  atomic_ulong calls, odd_calls, frames;
  float next_out;
  float expect; /* next input value once the ramp came round; -1 before */
  atomic_ulong in_order, breaks;
} ramp;

static void ramp_process(void *user, const float *in, float *out, size_t frames) {
  ramp *r = user;
  atomic_fetch_add(&r->calls, 1);
  if (frames != 480) atomic_fetch_add(&r->odd_calls, 1);
  for (size_t i = 0; i < frames; i++) {
    r->next_out = r->next_out >= 4095 ? 1 : r->next_out + 1; /* 1..4095: never 0, exact in float */
    out[i] = r->next_out;
    if (in[i] == 0) continue; /* the loop not closed yet, or the priming's silence */
    if (r->expect > 0) {
      if (in[i] == r->expect) atomic_fetch_add(&r->in_order, 1);
      else atomic_fetch_add(&r->breaks, 1);
    }
    r->expect = in[i] >= 4095 ? 1 : in[i] + 1;
  }
  atomic_fetch_add(&r->frames, frames);
}

Test(device_pa, jack_other_period_is_adapted, .fini = jack_teardown, .timeout = 60) {
  if (!in_path("jack_connect") || !in_path("jack_disconnect")) cr_skip("jack_connect is not installed");
  jack_period = "256";
  jack_up();
  ramp r = {.next_out = 0, .expect = -1};
  parley__device_config cfg;
  parley__device_config_init(&cfg, PARLEY__DEVICE_PORTAUDIO);
  cfg.host_api = "jack";
  cfg.input_name = "system";
  cfg.output_name = "system";
  cfg.period_frames = 480;
  cfg.process = ramp_process;
  cfg.user = &r;
  int err = 0;
  parley__device *d = parley__device_new(&cfg, &err);
  cr_assert_not_null(d, "open JACK device: %s", parley_strerror(err));
  cr_assert_eq(parley__device_start(d), 0);
  /* Close the loop out_0 -> in_0 (PortAudio connected in_0 to the card's capture at start). */
  cr_assert_eq(system("jack_disconnect system:capture_1 PortAudio:in_0 >/dev/null 2>&1; "
                      "jack_connect PortAudio:out_0 PortAudio:in_0"),
               0);
  int64_t t0 = now_us();
  while (atomic_load(&r.in_order) < 48000 && now_us() - t0 < 10000000) {
    parley__device_poll_events(d, now_us());
    sleep_ms(10);
  }
  parley__device_latency lat;
  cr_assert_eq(parley__device_get_latency(d, &lat), 0);
  cr_expect_eq(parley__device_stop(d), 0);
  cr_expect_gt(atomic_load(&r.calls), 0);
  cr_expect_eq(atomic_load(&r.odd_calls), 0, "process always gets one whole period");
  cr_expect_geq(atomic_load(&r.in_order), 48000, "a second of the ramp came back in order (%lu samples)",
                atomic_load(&r.in_order));
  cr_expect_eq(atomic_load(&r.breaks), 0, "the ramp came back with %lu breaks", atomic_load(&r.breaks));
  cr_expect_geq(lat.output_frames, 480 + 256, "output latency %zu frames", lat.output_frames);
  parley__device_free(d);
}

/* The public list (parley_device_list) shows the private server as the jackd command line made it: a
 * JACK device "system" with 1 capture and 2 playback channels at 48 kHz. */
Test(device_pa, public_list_shows_the_jack_server, .fini = jack_teardown, .timeout = 60) {
  cr_expect_eq(parley_device_list(NULL, 2), PARLEY_EINVAL);
  jack_up();
  parley_device_info info[64];
  int n = parley_device_list(info, 64);
  cr_assert_gt(n, 0);
  cr_expect_eq(parley_device_list(NULL, 0), n, "the count alone agrees");
  int jack = -1, default_in = 0, default_out = 0;
  for (int i = 0; i < n && i < 64; i++) {
    cr_expect_gt(strlen(info[i].name), 0);
    if (strstr(info[i].host_api, "JACK") && strcmp(info[i].name, "system") == 0) jack = i;
    default_in += info[i].default_input;
    default_out += info[i].default_output;
  }
  cr_expect_leq(default_in, 1, "one system default input at most");
  cr_expect_leq(default_out, 1, "one system default output at most");
  cr_assert_geq(jack, 0, "no JACK 'system' device among %d", n);
  cr_expect_eq(info[jack].input_channels, 1);
  cr_expect_eq(info[jack].output_channels, 2);
  cr_expect_eq(info[jack].default_rate_hz, 48000);
  /* A short buffer gets the first entries and the whole count; nothing past cap is written. */
  parley_device_info two[2];
  memset(&two[1], 0x5a, sizeof two[1]);
  cr_expect_eq(parley_device_list(two, 1), n);
  cr_expect_str_eq(two[0].name, info[0].name);
  cr_expect_eq(((unsigned char *)&two[1])[0], 0x5a);
}
