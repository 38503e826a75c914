/* device_pa.c: the PORTAUDIO backend: real sound hardware through PortAudio (ALSA, JACK, ...).
 *
 * Owns: one reference on the process-wide PortAudio library (Pa_Initialize is not thread-safe nor
 * refcounted across users, so every user here goes through pa_acquire/pa_release under one mutex;
 * the last release calls Pa_Terminate), the resolved device indices, and while running one callback
 * stream plus the small `link` its callbacks reach the device through.
 *
 * Periods on JACK: PortAudio's JACK host runs its buffer processor in "unknown host buffer size" mode,
 * which with a fixed framesPerBuffer delays the output by one whole buffer even when JACK's period is
 * exactly ours (one extra period mouth-to-ear: `parley-bench latency` shows it on its jack path). So on JACK the
 * stream is opened with paFramesPerBufferUnspecified (PortAudio hands over JACK's own buffers) and the
 * callback adapts them to our period itself: when JACK's period equals ours, each callback is exactly
 * one process call with no added delay; otherwise (or after a buffer-size change) the output is
 * primed once with one period of silence, which is what any period adapter needs (output produced
 * then always covers output consumed) and is reported as latency. Other host APIs keep PortAudio's
 * fixed framesPerBuffer.
 * Latency report: the callback records the host's own time stamps (capture time of the first input
 * sample, play time of the first output sample, PaStreamCallbackTimeInfo) as frame counts in atomics;
 * parley__device_get_latency reads them (the stream info's figures until the first callback).
 *
 * Threads: open/start/stop/poll/close run on the control thread. pa_callback runs on PortAudio's
 * real-time thread: it only calls process, touches atomics and memsets; stream trouble is reported
 * by flagging LOST (finished callback, or Pa_IsStreamActive going false seen by poll).
 *
 * Stopping a stream whose host has gone can block inside PortAudio: with the JACK host API of
 * PortAudio 19.6, once the server has died Pa_AbortStream and Pa_CloseStream wait ten minutes on a
 * condition nobody signals. So the stream is always stopped and closed on a short-lived "reaper"
 * thread that holds its own library reference: stop waits for it a few seconds (not at all when the
 * stream is already known dead), and if it is not done the reaper is detached and finishes (and frees
 * the link) on its own. Before giving the link up, stop marks it gone and waits for any callback in
 * flight to leave, so a late callback never touches the device.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <portaudio.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/device_backend.h"
#include "parley/parley.h"

#define STOP_WAIT_MS 3000
#define CALLBACK_DRAIN_MS 1000

/* ---- quiet host libraries ---- */

/* ALSA and JACK print to stderr while PortAudio probes them: dozens of lines about absent cards and
 * servers on every initialisation, which is what a machine without one of them looks like, not an
 * error (66 lines for a --list-devices on a server). Their process-wide printers are replaced by
 * silent ones once, before the first Pa_Initialize; what matters reaches us as PortAudio errors. The
 * setters are looked up at run time: they exist only when PortAudio brought the library in, and
 * libparley links neither. Control thread, under pa_lock; never on the audio path. */
static void alsa_silent(const char *file, int line, const char *function, int err, const char *fmt, ...) {
  (void)file, (void)line, (void)function, (void)err, (void)fmt;
}
static void jack_silent(const char *msg) { (void)msg; }

static void quiet_host_libraries(void) {
  static bool done;
  if (done) return;
  done = true;
  /* dlsym hands back an object pointer; memcpy turns it into the function pointer it is. */
  int (*alsa_set)(void (*)(const char *, int, const char *, int, const char *, ...)) = NULL;
  void *sym = dlsym(RTLD_DEFAULT, "snd_lib_error_set_handler");
  if (sym) {
    memcpy(&alsa_set, &sym, sizeof sym);
    (void)alsa_set(alsa_silent);
  }
  const char *jack_setters[] = {"jack_set_error_function", "jack_set_info_function"};
  for (size_t i = 0; i < 2; i++) {
    void (*set)(void (*)(const char *)) = NULL;
    if ((sym = dlsym(RTLD_DEFAULT, jack_setters[i])) == NULL) continue;
    memcpy(&set, &sym, sizeof sym);
    set(jack_silent);
  }
}

/* ---- library reference count ---- */

static pthread_mutex_t pa_lock = PTHREAD_MUTEX_INITIALIZER;
static int pa_refs;

static int pa_acquire(void) {
  int e = 0;
  pthread_mutex_lock(&pa_lock);
  if (pa_refs == 0) quiet_host_libraries();
  if (pa_refs == 0 && Pa_Initialize() != paNoError) e = PARLEY_EDEVICE;
  if (e == 0) pa_refs++;
  pthread_mutex_unlock(&pa_lock);
  return e;
}

static void pa_release(void) {
  pthread_mutex_lock(&pa_lock);
  if (pa_refs > 0 && --pa_refs == 0) Pa_Terminate();
  pthread_mutex_unlock(&pa_lock);
}

/* ---- state ---- */

/* What the callbacks see; outlives the device if the stream has to be abandoned. */
typedef struct pa_link {
  parley__device *d;
  atomic_bool gone;   /* set by stop before abandoning: callbacks must not touch d */
  atomic_int inside;  /* callbacks in flight */
  atomic_bool stopping;
  /* Period adapter (adapt == true: JACK). Callback thread only, except the atomics. */
  bool adapt;
  size_t acc;         /* input frames gathered in d->in_buf */
  float *fifo;        /* output frames waiting: 2 periods, interleaved */
  size_t fifo_head, fifo_len, fifo_cap; /* frames */
  bool primed;        /* the fifo was primed with a period of silence */
  /* Host time stamps of the last callback, frames (-1: none yet), and the adapter's priming. */
  atomic_long in_frames, out_frames;
  atomic_long adapter_frames;
} pa_link;

static void link_free(pa_link *l) {
  if (!l) return;
  free(l->fifo);
  free(l);
}

typedef struct pa_state {
  PaDeviceIndex in_dev, out_dev; /* paNoDevice: that direction is absent */
  PaTime in_latency, out_latency;
  PaTime stream_in_s, stream_out_s; /* the open stream's reported latencies (until a callback ran) */
  PaStream *stream;
  pa_link *link;
  bool have_ref;
} pa_state;

/* ---- name matching ---- */

static bool contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  if (n == 0) return true;
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n) return true;
  }
  return false;
}

/* exact (pass 0) then substring (pass 1), case-insensitive */
static bool name_matches(const char *name, const char *want, int pass) {
  return pass == 0 ? strcasecmp(name, want) == 0 : contains_nocase(name, want);
}

static int find_host_api(const char *want) {
  int n = Pa_GetHostApiCount();
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      const PaHostApiInfo *h = Pa_GetHostApiInfo(i);
      if (h && h->name && name_matches(h->name, want, pass)) return i;
    }
  return PARLEY_ENOTFOUND;
}

static PaDeviceIndex find_device(const char *want, int host, bool input, int channels) {
  int n = Pa_GetDeviceCount();
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      const PaDeviceInfo *info = Pa_GetDeviceInfo(i);
      if (!info || !info->name || (host >= 0 && info->hostApi != host)) continue;
      if ((input ? info->maxInputChannels : info->maxOutputChannels) < channels) continue;
      if (name_matches(info->name, want, pass)) return i;
    }
  return paNoDevice;
}

/* The device for one direction: by name, else the host API's (or the system's) default. */
static int resolve(const parley__device *d, int host, bool input, PaDeviceIndex *out) {
  const char *want = input ? d->cfg.input_name : d->cfg.output_name;
  if (want) {
    *out = find_device(want, host, input, d->channels);
    return *out == paNoDevice ? PARLEY_ENOTFOUND : 0;
  }
  if (host >= 0) {
    const PaHostApiInfo *h = Pa_GetHostApiInfo(host);
    *out = h ? (input ? h->defaultInputDevice : h->defaultOutputDevice) : paNoDevice;
  } else {
    *out = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
  }
  if (*out == paNoDevice) return 0; /* no default for this direction: run without it */
  const PaDeviceInfo *info = Pa_GetDeviceInfo(*out);
  if (!info) return PARLEY_EDEVICE;
  int have = input ? info->maxInputChannels : info->maxOutputChannels;
  return have >= d->channels ? 0 : PARLEY_ENOTSUP;
}

static void params(const parley__device *d, const pa_state *s, bool input, PaStreamParameters *p) {
  memset(p, 0, sizeof *p);
  p->device = input ? s->in_dev : s->out_dev;
  p->channelCount = d->channels;
  p->sampleFormat = paFloat32;
  p->suggestedLatency = input ? s->in_latency : s->out_latency;
}

static int pa_open(parley__device *d) {
  pa_state *s = calloc(1, sizeof *s);
  if (!s) return PARLEY_ENOMEM;
  d->impl = s;
  s->in_dev = s->out_dev = paNoDevice;
  if (pa_acquire() < 0) return PARLEY_EDEVICE;
  s->have_ref = true;
  int host = -1;
  if (d->cfg.host_api) {
    host = find_host_api(d->cfg.host_api);
    if (host < 0) return host;
  }
  int e = resolve(d, host, true, &s->in_dev);
  if (e == 0) e = resolve(d, host, false, &s->out_dev);
  if (e < 0) return e;
  if (s->in_dev == paNoDevice && s->out_dev == paNoDevice) return PARLEY_ENOTFOUND;
  if (s->in_dev != paNoDevice) s->in_latency = Pa_GetDeviceInfo(s->in_dev)->defaultLowInputLatency;
  if (s->out_dev != paNoDevice)
    s->out_latency = Pa_GetDeviceInfo(s->out_dev)->defaultLowOutputLatency;

  /* Only definite "cannot do this format" answers fail here; "in use" is start's business. */
  PaStreamParameters ip, op;
  params(d, s, true, &ip);
  params(d, s, false, &op);
  PaError pe = Pa_IsFormatSupported(s->in_dev != paNoDevice ? &ip : NULL,
                                    s->out_dev != paNoDevice ? &op : NULL, d->rate_hz);
  if (pe == paInvalidSampleRate || pe == paInvalidChannelCount || pe == paSampleFormatNotSupported)
    return PARLEY_ENOTSUP;
  return 0;
}

static void pa_close(parley__device *d) {
  pa_state *s = d->impl;
  if (!s) return;
  if (s->have_ref) pa_release();
  free(s);
  d->impl = NULL;
}

/* ---- real-time side ---- */

/* The host's latencies as this callback's time stamps tell them, in frames (0 when it gives none). */
static void note_times(pa_link *l, const PaStreamCallbackTimeInfo *t, bool in, bool out) {
  if (!t) return;
  double rate = l->d->rate_hz;
  if (in && t->inputBufferAdcTime > 0 && t->currentTime >= t->inputBufferAdcTime)
    atomic_store_explicit(&l->in_frames, (long)((t->currentTime - t->inputBufferAdcTime) * rate + 0.5),
                          memory_order_relaxed);
  if (out && t->outputBufferDacTime > 0 && t->outputBufferDacTime >= t->currentTime)
    atomic_store_explicit(&l->out_frames, (long)((t->outputBufferDacTime - t->currentTime) * rate + 0.5),
                          memory_order_relaxed);
}

static void fifo_push(pa_link *l, const float *x, size_t n, size_t ch) {
  for (size_t i = 0; i < n && l->fifo_len < l->fifo_cap; i++, l->fifo_len++) {
    size_t at = (l->fifo_head + l->fifo_len) % l->fifo_cap;
    memcpy(l->fifo + at * ch, x + i * ch, ch * sizeof(float));
  }
}

/* n frames out of the fifo into out (zeros for what is missing, never expected once primed). */
static void fifo_pop(pa_link *l, float *out, size_t n, size_t ch) {
  size_t i = 0;
  for (; i < n && l->fifo_len > 0; i++, l->fifo_len--) {
    memcpy(out + i * ch, l->fifo + l->fifo_head * ch, ch * sizeof(float));
    l->fifo_head = (l->fifo_head + 1) % l->fifo_cap;
  }
  if (i < n) memset(out + i * ch, 0, (n - i) * ch * sizeof(float));
}

/* JACK: host buffers of any size in, periods to process, host buffers out (see the top comment). */
static void adapt_frames(pa_link *l, const float *input, float *output, size_t frames) {
  parley__device *d = l->d;
  size_t ch = (size_t)d->channels, p = d->period_frames;
  if (output && !l->primed && (frames != p || l->acc != 0)) {
    size_t room = l->fifo_cap - l->fifo_len;
    size_t n = p < room ? p : room;
    for (size_t k = 0; k < n; k++, l->fifo_len++)
      memset(l->fifo + ((l->fifo_head + l->fifo_len) % l->fifo_cap) * ch, 0, ch * sizeof(float));
    l->primed = true;
    atomic_store_explicit(&l->adapter_frames, (long)p, memory_order_relaxed);
  }
  size_t done = 0;
  while (done < frames) {
    size_t c = p - l->acc;
    if (c > frames - done) c = frames - done;
    if (input) memcpy(d->in_buf + l->acc * ch, (const float *)input + done * ch, c * ch * sizeof(float));
    else memset(d->in_buf + l->acc * ch, 0, c * ch * sizeof(float));
    l->acc += c;
    if (l->acc == p) {
      memset(d->out_buf, 0, p * ch * sizeof(float));
      d->cfg.process(d->cfg.user, d->in_buf, d->out_buf, p);
      if (output) fifo_push(l, d->out_buf, p, ch); /* no output device: the playout goes nowhere */
      l->acc = 0;
    }
    if (output) fifo_pop(l, (float *)output + done * ch, c, ch);
    done += c;
  }
}

static int pa_callback(const void *input, void *output, unsigned long frames,
                       const PaStreamCallbackTimeInfo *time_info, PaStreamCallbackFlags flags,
                       void *user) {
  pa_link *l = user;
  atomic_fetch_add(&l->inside, 1);
  if (atomic_load(&l->gone)) {
    atomic_fetch_sub(&l->inside, 1);
    return paAbort;
  }
  parley__device *d = l->d;
  if (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow))
    atomic_fetch_add_explicit(&d->xruns, 1, memory_order_relaxed);
  note_times(l, time_info, input != NULL, output != NULL);
  size_t ch = (size_t)d->channels, done = 0;
  if (l->adapt) {
    adapt_frames(l, input, output, frames);
  } else {
    /* Fixed framesPerBuffer makes frames == period; chunk anyway so in_buf/out_buf always suffice. */
    while (done < frames) {
      size_t n = frames - done < d->period_frames ? frames - done : d->period_frames;
      const float *in = input ? (const float *)input + done * ch : d->in_buf; /* in_buf stays zero */
      float *out = output ? (float *)output + done * ch : d->out_buf;
      memset(out, 0, n * ch * sizeof(float));
      d->cfg.process(d->cfg.user, in, out, n);
      done += n;
    }
  }
  parley__device_count_frames(d, frames);
  atomic_fetch_sub(&l->inside, 1);
  return paContinue;
}

static void pa_finished(void *user) {
  pa_link *l = user;
  atomic_fetch_add(&l->inside, 1);
  if (!atomic_load(&l->gone) && !atomic_load(&l->stopping))
    parley__device_flag(l->d, PARLEY__DEVICE_RT_LOST, PARLEY_EDEVICE);
  atomic_fetch_sub(&l->inside, 1);
}

/* ---- start / stop ---- */

static bool is_busy(PaError pe) {
  if (pe == paDeviceUnavailable) return true;
  if (pe != paUnanticipatedHostError) return false;
  const PaHostErrorInfo *h = Pa_GetLastHostErrorInfo();
  if (!h) return false;
  return h->errorCode == -EBUSY || h->errorCode == EBUSY ||
         (h->errorText && contains_nocase(h->errorText, "busy"));
}

static int open_failed(parley__device *d, PaError pe) {
  if (is_busy(pe)) parley__device_queue(d, PARLEY__DEVICE_EV_BUSY, PARLEY_EDEVICE);
  return PARLEY_EDEVICE;
}

/* Whether the stream's devices belong to PortAudio's JACK host API. */
static bool on_jack(const pa_state *s) {
  PaDeviceIndex dev = s->in_dev != paNoDevice ? s->in_dev : s->out_dev;
  const PaDeviceInfo *info = dev != paNoDevice ? Pa_GetDeviceInfo(dev) : NULL;
  const PaHostApiInfo *h = info ? Pa_GetHostApiInfo(info->hostApi) : NULL;
  return h && h->type == paJACK;
}

static int pa_start(parley__device *d) {
  pa_state *s = d->impl;
  pa_link *l = calloc(1, sizeof *l);
  if (!l) return PARLEY_ENOMEM;
  l->d = d;
  atomic_init(&l->gone, false);
  atomic_init(&l->inside, 0);
  atomic_init(&l->stopping, false);
  atomic_init(&l->in_frames, -1);
  atomic_init(&l->out_frames, -1);
  atomic_init(&l->adapter_frames, 0);
  l->adapt = on_jack(s);
  if (l->adapt) {
    l->fifo_cap = 2 * d->period_frames;
    l->fifo = calloc(l->fifo_cap * (size_t)d->channels, sizeof(float));
    if (!l->fifo) {
      link_free(l);
      return PARLEY_ENOMEM;
    }
  }
  PaStreamParameters ip, op;
  params(d, s, true, &ip);
  params(d, s, false, &op);
  PaStream *stream = NULL;
  unsigned long fpb = l->adapt ? paFramesPerBufferUnspecified : (unsigned long)d->period_frames;
  PaError pe = Pa_OpenStream(&stream, s->in_dev != paNoDevice ? &ip : NULL,
                             s->out_dev != paNoDevice ? &op : NULL, d->rate_hz, fpb, paNoFlag,
                             pa_callback, l);
  if (pe != paNoError) {
    link_free(l);
    return open_failed(d, pe);
  }
  Pa_SetStreamFinishedCallback(stream, pa_finished);
  const PaStreamInfo *si = Pa_GetStreamInfo(stream);
  s->stream_in_s = si && s->in_dev != paNoDevice ? si->inputLatency : 0;
  s->stream_out_s = si && s->out_dev != paNoDevice ? si->outputLatency : 0;
  pe = Pa_StartStream(stream);
  if (pe != paNoError) {
    int e = open_failed(d, pe);
    Pa_CloseStream(stream);
    link_free(l);
    return e;
  }
  s->stream = stream;
  s->link = l;
  return 0;
}

typedef struct pa_reaper {
  PaStream *stream;
  pa_link *link;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done, orphaned;
} pa_reaper;

static void reaper_free(pa_reaper *r) {
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  link_free(r->link);
  free(r);
}

static void *reaper_main(void *arg) {
  pa_reaper *r = arg;
  Pa_AbortStream(r->stream);
  Pa_CloseStream(r->stream);
  pthread_mutex_lock(&r->mu);
  r->done = true;
  bool orphaned = r->orphaned;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (orphaned) {
    reaper_free(r);
    pa_release(); /* the reference the reaper was given */
  }
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Stops and closes the stream on a reaper thread, waiting up to wait_ms for it. */
static int reap(PaStream *stream, pa_link *link, int wait_ms) {
  pa_reaper *r = calloc(1, sizeof *r);
  pthread_condattr_t ca;
  bool ok = r && pthread_condattr_init(&ca) == 0;
  if (ok) {
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    ok = pthread_cond_init(&r->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
  }
  if (!ok) { /* no memory for the thread: do it here and hope the host is alive */
    free(r);
    Pa_AbortStream(stream);
    Pa_CloseStream(stream);
    link_free(link);
    return 0;
  }
  pthread_mutex_init(&r->mu, NULL);
  r->stream = stream;
  r->link = link;
  pthread_mutex_lock(&pa_lock);
  pa_refs++; /* the reaper's own reference: the library outlives an abandoned stream */
  pthread_mutex_unlock(&pa_lock);
  pthread_t t;
  if (pthread_create(&t, NULL, reaper_main, r) != 0) {
    reaper_main(r); /* same work inline */
    reaper_free(r);
    pa_release();
    return 0;
  }
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += wait_ms / 1000;
  dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  while (!r->done && wait_ms > 0)
    if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) break;
  bool done = r->done;
  if (!done) {
    /* Abandon: callbacks must leave the device alone from now on. */
    atomic_store(&link->gone, true);
    for (int i = 0; i < CALLBACK_DRAIN_MS && atomic_load(&link->inside) > 0; i++) sleep_ms(1);
    r->orphaned = true;
  }
  pthread_mutex_unlock(&r->mu);
  if (!done) {
    pthread_detach(t);
    return PARLEY_ETIMEDOUT;
  }
  pthread_join(t, NULL);
  reaper_free(r);
  pa_release();
  return 0;
}

static int pa_stop(parley__device *d) {
  pa_state *s = d->impl;
  if (!s->stream) return 0;
  atomic_store(&s->link->stopping, true);
  bool dead = d->lost || (atomic_load(&d->rt_flags) & PARLEY__DEVICE_RT_LOST) ||
              Pa_IsStreamActive(s->stream) != 1;
  int e = reap(s->stream, s->link, dead ? 0 : STOP_WAIT_MS);
  s->stream = NULL;
  s->link = NULL;
  /* A dead stream was expected not to stop in time; that is not a new error. */
  return dead ? 0 : e;
}

static void pa_poll(parley__device *d) {
  pa_state *s = d->impl;
  if (s->stream && Pa_IsStreamActive(s->stream) != 1)
    parley__device_flag(d, PARLEY__DEVICE_RT_LOST, PARLEY_EDEVICE);
}

static int pa_latency(const parley__device *d, double *input_s, double *output_s) {
  const pa_state *s = d->impl;
  if (!s || !s->stream) return PARLEY_ESTATE;
  long in = atomic_load_explicit(&s->link->in_frames, memory_order_relaxed);
  long out = atomic_load_explicit(&s->link->out_frames, memory_order_relaxed);
  long adapter = atomic_load_explicit(&s->link->adapter_frames, memory_order_relaxed);
  *input_s = in >= 0 ? (double)in / d->rate_hz : s->stream_in_s;
  *output_s = (out >= 0 ? (double)out / d->rate_hz : s->stream_out_s) + (double)adapter / d->rate_hz;
  return 0;
}

/* ---- listing ---- */

int parley__device_pa_list(parley__device_info *out, size_t cap) {
  if (pa_acquire() < 0) return PARLEY_EDEVICE;
  int n = Pa_GetDeviceCount();
  if (n < 0) {
    pa_release();
    return PARLEY_EDEVICE;
  }
  PaDeviceIndex din = Pa_GetDefaultInputDevice(), dout = Pa_GetDefaultOutputDevice();
  for (int i = 0; i < n && (size_t)i < cap; i++) {
    const PaDeviceInfo *info = Pa_GetDeviceInfo(i);
    parley__device_info *o = &out[i];
    memset(o, 0, sizeof *o);
    if (!info) continue;
    const PaHostApiInfo *h = Pa_GetHostApiInfo(info->hostApi);
    snprintf(o->name, sizeof o->name, "%s", info->name ? info->name : "");
    snprintf(o->host_api, sizeof o->host_api, "%s", h && h->name ? h->name : "");
    o->max_input_channels = info->maxInputChannels;
    o->max_output_channels = info->maxOutputChannels;
    o->default_rate_hz = (int)(info->defaultSampleRate + 0.5);
    o->default_input = i == din;
    o->default_output = i == dout;
  }
  pa_release();
  return n;
}

const parley__device_ops parley__device_pa_ops = {
    .open = pa_open,
    .start = pa_start,
    .stop = pa_stop,
    .poll = pa_poll,
    .close = pa_close,
    .latency = pa_latency,
};
