/* device.h: the audio device layer. One full-duplex interface over four backends:
 *   PORTAUDIO  real sound hardware (ALSA, JACK, ... through PortAudio),
 *   FILE       capture from a WAV/FLAC file, play out into a 16-bit WAV file (libsndfile),
 *   APP        the app pushes capture samples and pulls playout samples; the engine ticks the device,
 *   NULL       silence in, output discarded (CI, benches).
 *
 * Data path: the device calls cfg.process(user, in, out, frames) once per period with interleaved
 * float samples at the device rate (parley__device_rate_hz) and channel count. `in` always holds
 * `frames` captured frames (silence when there is nothing to capture); `out` arrives zeroed and the
 * callback writes `frames` frames of playout into it. Both are borrowed for the call only. process
 * runs on the device's real-time thread (PortAudio's callback thread, the FILE/NULL pacing thread, or
 * the thread calling parley__device_step) and must be real-time safe: no allocation, locks, blocking,
 * logging or system calls.
 *
 * Events: cfg.event(user, ev, err) reports device state. It is NEVER called on the real-time thread:
 * the real-time side only sets atomic flags; every event is delivered from parley__device_poll_events,
 * on the thread that calls it (the engine's control thread, polled every few tens of ms). Events that
 * happen between two polls are delivered in order at the next poll; LOST and FINISHED are reported at
 * most once per start. A device that is LOST stays silent until stop (then start may be tried again).
 *
 * Threads: new, start, stop, free, poll_events and the getters belong to one control thread at a time
 * (the caller serialises them). step is called by the caller's audio thread and must not overlap
 * start/stop/free. The APP push/pull functions are for the app's threads: one capture producer, one
 * playout consumer. parley__device_list may be called from any thread that is not real-time.
 */
#ifndef PARLEY_ENGINE_DEVICE_H
#define PARLEY_ENGINE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum parley__device_backend {
  PARLEY__DEVICE_NULL = 0,
  PARLEY__DEVICE_FILE,
  PARLEY__DEVICE_APP,
  PARLEY__DEVICE_PORTAUDIO,
} parley__device_backend;

/* How the FILE, NULL and APP backends run periods (PORTAUDIO is clocked by the hardware). APP in
 * REALTIME pacing is the engine's clock for PARLEY_AUDIO_APP: one period per period of wall time, the
 * app's rings in between. */
typedef enum parley__device_pacing {
  /* A thread runs one period per period of wall time (clock_nanosleep to absolute deadlines), like a
   * sound card. Input ends -> silence keeps flowing at the same pace. */
  PARLEY__DEVICE_PACE_REALTIME = 0,
  /* A thread runs periods back to back as fast as it can. With an input file it stops calling process
   * after the period in which the input ended (FINISHED); without one it runs until stop. */
  PARLEY__DEVICE_PACE_FREERUN,
  /* No thread: each parley__device_step call runs exactly one period (deterministic tests). After the
   * input ended, steps keep producing silence. */
  PARLEY__DEVICE_PACE_STEPPED,
} parley__device_pacing;

typedef enum parley__device_event {
  PARLEY__DEVICE_EV_STARTED = 1, /* start succeeded */
  PARLEY__DEVICE_EV_STOPPED,     /* stop completed */
  PARLEY__DEVICE_EV_LOST,        /* device disappeared, stream error, stall, or output write error */
  PARLEY__DEVICE_EV_BUSY,        /* start could not open the device: in use by someone else */
  PARLEY__DEVICE_EV_FINISHED,    /* FILE: the input file ended; silence follows */
} parley__device_event;

/* Interleaved frames at the device rate. Real-time thread, must be real-time safe. */
typedef void (*parley__device_process_fn)(void *user, const float *in, float *out, size_t frames);
/* err: 0, or the PARLEY_E* code behind LOST/BUSY (PARLEY_EDEVICE, PARLEY_EIO, PARLEY_ETIMEDOUT).
 * Called only from parley__device_poll_events. */
typedef void (*parley__device_event_fn)(void *user, parley__device_event ev, int err);

typedef struct parley__device_config {
  parley__device_backend backend;
  int sample_rate_hz;   /* 8000, 16000, 32000, 44100 or 48000; default 48000. FILE with an input
                         * file at one of these rates: ignored, the device runs at the file's own
                         * rate (see rate_hz); at any other rate the file is converted to this one */
  int channels;         /* 1 or 2; default 1 */
  size_t period_frames; /* frames per process call; 0 (default) = 10 ms at the device rate */

  /* PORTAUDIO. Strings are copied by parley__device_new. */
  const char *host_api;    /* NULL = any; else a host API name ("ALSA", "JACK"): exact, then
                            * substring, case-insensitive */
  const char *input_name;  /* NULL = the (host API's) default input; else exact, then substring,
                            * case-insensitive, among devices with enough input channels */
  const char *output_name; /* same for output */
  int stall_timeout_ms;    /* running but no callback for this long -> LOST; 0 = off; default 2000 */

  /* FILE. input_path: any mono or stereo file libsndfile reads (WAV, FLAC, ...), converted to
   * `channels` (stereo->mono averages, mono->stereo duplicates); NULL = capture silence.
   * output_path: written as 16-bit PCM WAV at the device rate; NULL = discard playout. */
  const char *input_path;
  const char *output_path;
  parley__device_pacing pacing; /* FILE and NULL; default REALTIME */
  bool input_loop; /* FILE: at the input's end start over (FINISHED never comes) [false: silence] */
  bool input_hold; /* FILE: capture silence, the input unread, until parley__device_input_release */

  /* APP: capacity of each sample ring in frames, rounded up to a power of two; 0 (default) = 8
   * periods. */
  size_t app_ring_frames;
  /* APP: drop a standing backlog. Rate-matched ends keep whatever backlog they start with (an app that
   * starts pulling late, or pre-fills capture), and every frame of it is latency. With this set, the
   * consumer side of each ring tracks the fewest frames left over after each read (tick or pull);
   * when even that minimum stayed above zero for PARLEY__DEVICE_APP_TRIM_WINDOW reads in a row, that
   * many oldest frames are skipped (counted in trimmed_frames). Transient surges are left alone.
   * [false: keep every frame] */
  bool app_trim_backlog;

  parley__device_process_fn process; /* required */
  parley__device_event_fn event;     /* optional */
  void *user;                        /* passed to both, borrowed */
} parley__device_config;

#define PARLEY__DEVICE_APP_TRIM_WINDOW 50

typedef struct parley__device_stats {
  uint64_t frames;           /* frames passed through process since new */
  uint64_t xruns;            /* PORTAUDIO over/underflow flags; REALTIME pacer: late periods */
  uint64_t underrun_frames;  /* APP: capture frames missing at a tick (filled with silence) */
  uint64_t overrun_frames;   /* APP: playout frames dropped because the app did not pull them */
  uint64_t trimmed_frames;   /* APP with app_trim_backlog: standing backlog skipped (both rings) */
} parley__device_stats;

typedef struct parley__device_info {
  char name[128];
  char host_api[64];
  int max_input_channels;
  int max_output_channels;
  int default_rate_hz;
  bool default_input;  /* the system's default input device */
  bool default_output; /* the system's default output device */
} parley__device_info;

typedef struct parley__device parley__device;

/* Fills cfg with the defaults above for `backend`. NULL is ignored. Any thread. */
void parley__device_config_init(parley__device_config *cfg, parley__device_backend backend);

/* Creates a stopped device. cfg and its strings are copied. Opens what can be checked early: FILE opens
 * both files (so rate_hz is known), PORTAUDIO resolves device names. Returns NULL and sets *err
 * (err may be NULL; 0 on success) to: PARLEY_EINVAL (bad config), PARLEY_ENOMEM, PARLEY_ENOTFOUND (no
 * such input file, device or host API), PARLEY_EFORMAT (input is not a readable mono/stereo audio
 * file), PARLEY_EIO (output file cannot be created), PARLEY_ENOTSUP (device cannot do the rate or
 * channel count), PARLEY_EDEVICE (PortAudio failed). Control thread; not real-time safe. */
parley__device *parley__device_new(const parley__device_config *cfg, int *err);
/* Stops if running, closes files (the output WAV is finalised) and frees. Undelivered events are
 * dropped. NULL is ignored. Control thread. */
void parley__device_free(parley__device *d);

/* Starts periods flowing; queues STARTED. PARLEY_ESTATE if already running; PARLEY_EDEVICE when the
 * device cannot be opened (BUSY is queued when it is in use). Control thread. */
int parley__device_start(parley__device *d);
/* Stops the flow; after it returns process is no longer called. Queues STOPPED. FILE: the output WAV
 * header is brought up to date and synced, so the file is valid while the device lives on. Returns 0,
 * PARLEY_EIO if output writing had failed, PARLEY_ETIMEDOUT if PortAudio did not stop within a few
 * seconds (the stream is then abandoned to a background thread). Stopping a stopped device is a
 * no-op returning 0. Control thread; never call from process. */
int parley__device_stop(parley__device *d);

/* Runs one period now: FILE, NULL and APP in STEPPED pacing. 0, PARLEY_ESTATE
 * (not running, or another backend/pacing), PARLEY_EIO (FILE output write failed; LOST is queued).
 * The caller's audio thread. Real-time safe for APP and NULL; FILE reads and writes its files. */
int parley__device_step(parley__device *d);

/* Collects what the real-time side flagged, checks PORTAUDIO stream health (inactive stream or no
 * callback for stall_timeout_ms -> LOST) and delivers queued events through cfg.event, in order.
 * now_us: the caller's monotonic clock (only used for stall detection). Returns the number of events
 * delivered. Control thread; not real-time safe. */
int parley__device_poll_events(parley__device *d, int64_t now_us);

/* The device's sample rate: FILE with an input file reports the file's native rate (the caller
 * resamples to the engine rate); otherwise the configured rate. Control thread. */
int parley__device_rate_hz(const parley__device *d);
int parley__device_channels(const parley__device *d);
size_t parley__device_period_frames(const parley__device *d);
/* What the device adds to mouth-to-ear latency around the process call, in frames at the device rate.
 *   input_frames: from a sound reaching the input to the process call that hands over the period it
 *     starts (timed for the period's first sample). At least one period: a device hands a period over
 *     only once it is full (APP, FILE, NULL: exactly one period, the capture fill). PORTAUDIO: the
 *     host's own figure from the last callback's time stamps (currentTime - inputBufferAdcTime; JACK:
 *     the capture port's latency), before the first callback the stream info's inputLatency.
 *   output_frames: from the process call that writes a sample (at the period's start) to the sample
 *     leaving the output. APP, FILE, NULL: 0 (the period is handed over as the call returns).
 *     PORTAUDIO: outputBufferDacTime - currentTime of the last callback (JACK: the playback port's
 *     latency; before the first callback the stream info's outputLatency), plus the period adapter's
 *     priming on JACK when its buffers are not our period (device_pa.c).
 * Returns 0; PARLEY_EINVAL (NULL); PARLEY_ESTATE (PORTAUDIO not running: nothing reported yet).
 * Control thread (serialised with start/stop). */
typedef struct parley__device_latency {
  size_t input_frames;
  size_t output_frames;
} parley__device_latency;
int parley__device_get_latency(const parley__device *d, parley__device_latency *out);

/* Snapshot of the counters. Any thread; counters are read individually (not one atomic snapshot). */
void parley__device_get_stats(const parley__device *d, parley__device_stats *out);

/* The rates a device runs at: 8000, 16000, 32000, 44100 or 48000 Hz. Pure. */
bool parley__device_rate_supported(int rate_hz);

/* FILE with input_hold: the input file starts at the next period. Any thread, real-time safe (one
 * atomic store); ignored for other backends and after the first call. */
void parley__device_input_release(parley__device *d);

/* APP only. The app's capture thread copies up to `frames` interleaved frames in; returns how many fit
 * (the rest is dropped by the caller's choice), or PARLEY_EINVAL / PARLEY_ESTATE (not an APP device).
 * Real-time safe; works whether or not the device is running. */
int parley__device_app_push(parley__device *d, const float *in, size_t frames);
/* APP only. The app's playout thread copies up to `frames` frames out; returns how many were
 * available; the rest of `out` is zero-filled. Real-time safe. */
int parley__device_app_pull(parley__device *d, float *out, size_t frames);

/* Lists the PortAudio devices: fills up to cap entries of out (out may be NULL when cap is 0) and
 * returns the total number of devices, or PARLEY_EDEVICE. Initialises PortAudio for the duration when
 * no device holds it. PortAudio sees a JACK server only if it runs when PortAudio initialises, and
 * PortAudio stays initialised while any PORTAUDIO device exists (or a stream abandoned after a loss is
 * still being closed in the background, see device_pa.c), so a server started later shows up only
 * once all of those are gone. Not real-time safe. */
int parley__device_list(parley__device_info *out, size_t cap);

#endif
