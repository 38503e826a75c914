/* bench_latency.c: `parley-bench latency`: mouth-to-ear latency of a complete call (capture, resample,
 * preprocess, Opus, SRTP, UDP on 127.0.0.1, ICE, jitter buffer, decode, playout) between two engines
 * in this process, measured by correlation against its algorithmic floor.
 *
 * Path "app" (file mode): both engines use PARLEY_AUDIO_APP and this thread is their sound card,
 * driven by CLOCK_MONOTONIC at the device period (absolute deadlines, not free-running): each tick it
 * pushes one period of capture into A and pulls one period of playout from B (and feeds/drains the
 * other directions with silence). A's capture stream carries a known signal: after 2 s of silence, a
 * Hann-windowed 300..3400 Hz chirp of 400 ms once a second (BURSTS times). Each burst is found in B's
 * playout stream by normalised cross-correlation (coarse: every 4th sample at 8-sample lag steps, then
 * every lag around the best), giving the stream lag in samples. The real buffering is all in it: the
 * APP rings, the engines' ticker threads, the network thread, the jitter buffer.
 *
 * measured_ms = stream lag + one frame of capture fill: a card hands over a period only once it is
 * full, so the first sample of a period was spoken one frame before the engine sees it; the stream
 * lag cannot show that, a microphone would.
 * floor_ms (engine/latency.h, read from the live call): device input (capture fill: one frame) +
 * device buffering (one period: the frame crosses from capture tick to A's tick to B's tick to the
 * playout tick within one period when the ticks are ordered so) + capture resampler + preprocessor +
 * Opus lookahead + jitter min delay + playout resampler + device output (0 for APP).
 * The tick phases are set, not left to chance: A's ticker is measured (its audio cycle counter,
 * engine/engine_internal.h), B is re-created until its ticker runs a quarter to three quarters of a
 * period after A's (so a packet is on B's side before B's next tick), and this thread's ticks come a
 * quarter period before A's. Unordered phases add up to one more period of waiting (reported as a
 * note); that is clock-domain crossing between two machines, not pipeline delay.
 *
 * Rows "app" run this thread and the engines' threads (which inherit it) at SCHED_FIFO priority 10 when
 * permitted, as an audio app's threads would run: the clean-conditions figure on a shared host. Rows
 * "app-no-rt" run at default scheduling (--no-rt: only those), exposed to the host's other load.
 *
 * Path "app-callback": both engines use PARLEY_AUDIO_APP_CALLBACK; this thread is one card that runs A's
 * period and then B's (parley_engine_process) at each deadline, at SCHED_FIFO when permitted: no rings
 * and no ticker between the card and the engines, so no tick phases to place.
 *
 * Path "jack": both engines use PARLEY_AUDIO_DEVICE on PortAudio's JACK host API ("system" device)
 * against a private `jackd --no-realtime -d dummy -r 48000 -p <frame>` that the bench starts and
 * always stops (bench/latency_jack.c; skipped only when jackd is not installed). Both engines' streams
 * live in one PortAudio JACK client ("PortAudio", ports in_0/out_0 for the first stream, in_1/out_1 for
 * the second: its port numbering runs on across streams); the bench tells them apart by the ports each
 * engine's creation added. The bench's own two JACK clients replace the card: an injector wired to A's
 * input port and a recorder wired from B's output port (PortAudio's connections to the system ports
 * removed). Both index samples by the graph cycle's frame time, so the lag is exact in samples, with
 * no clock-domain crossing: A and B run in the same cycle, and a frame A encodes in cycle k is played
 * by B in cycle k+1 (the crossing period).
 * measured_ms = graph lag + the card's latencies as the server reports them for its ports
 * (system:capture_1 capture latency: sound at the microphone to its cycle, one period; and
 * system:playback_1 playback latency: a cycle's output to the speaker, two periods for the dummy
 * driver); floor_ms = the engine's own figure, whose device input/output come from PortAudio's
 * callback time stamps (engine/device_pa.c), an independent report of the same card. Any buffering
 * between the JACK ports and the engine (PortAudio's buffer processor, device_pa's period adapter)
 * shows up in the graph lag and not in the floor, unless the engine reports it. (That is how the
 * extra period of PortAudio's JACK buffer processor with a fixed framesPerBuffer was found: measured
 * was floor + one period at both frame sizes until device_pa.c took JACK's buffers as they come.)
 * Not real-time code; bounded: each configuration runs ~8 s. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "sim/cli.h"
#include "bench/latency_jack.h"
#include "engine/engine_internal.h"
#include "engine/latency.h"
#include "sim/xcorr.h"
#include "parley/parley.h"

#define RATE 48000
#define WARMUP_S 2
#define BURSTS 6
#define BURST_SAMPLES (RATE * 4 / 10)
#define BURST_EVERY (RATE)
#define MAX_LAG (RATE * 3 / 10) /* search 0..300 ms */

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_us(int64_t t) {
  struct timespec ts = {(time_t)(t / 1000000), (long)(t % 1000000) * 1000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static int64_t pmod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

/* The phase (0..period) of an engine's audio ticks against CLOCK_MONOTONIC: the times its cycle
 * counter moves, over 6 periods, averaged on the circle. -1 if it did not tick. */
static int64_t tick_phase_us(parley_engine *e, int64_t period_us) {
  uint64_t last = atomic_load(&e->audio_cycles);
  double sx = 0, sy = 0;
  int n = 0;
  int64_t end = mono_us() + 6 * period_us;
  while (mono_us() < end) {
    uint64_t c = atomic_load(&e->audio_cycles);
    if (c != last) {
      double a = 2 * M_PI * (double)pmod(mono_us(), period_us) / (double)period_us;
      sx += cos(a);
      sy += sin(a);
      n++;
      last = c;
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
  if (n == 0) return -1;
  double a = atan2(sy, sx);
  if (a < 0) a += 2 * M_PI;
  return (int64_t)(a / (2 * M_PI) * (double)period_us) % period_us;
}

typedef struct side {
  atomic_int track_started;
} side;

static void on_track(const parley_event *ev, void *user) {
  (void)ev;
  atomic_store(&((side *)user)->track_started, 1);
}

static int negotiate(parley_call *a, parley_call *b) {
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  if (parley_call_create_offer(a, offer, sizeof offer) < 0 || parley_call_set_local_description(a, offer) < 0 ||
      parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se) < 0 || parley_call_create_answer(b, answer, sizeof answer) < 0 ||
      parley_call_set_local_description(b, answer) < 0 || parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se) < 0)
    return -1;
  if (parley_call_start(a) < 0 || parley_call_start(b) < 0) return -1;
  return 0;
}

static void make_chirp(float *x, size_t n) {
  double f0 = 300, f1 = 3400, dur = (double)n / RATE, ph = 0;
  for (size_t i = 0; i < n; i++) {
    double t = (double)i / RATE;
    double f = f0 + (f1 - f0) * t / dur;
    ph += 2 * M_PI * f / RATE;
    double w = 0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)(n - 1));
    x[i] = (float)(0.5 * w * sin(ph));
  }
}

typedef struct result {
  bool ok;
  char why[160];
  double measured_ms, peak;
  int bursts_found;
  parley__pipeline_delays d;
  double phase_b_ms; /* B's ticks after A's */
  double jb_ms;
  uint64_t underruns_a, overruns_b, trimmed_a, trimmed_b, concealed_b;
  char lags_text[96]; /* per burst, ms */
  bool skipped;       /* jack: jackd (or libjack) not available */
  unsigned jack_capture, jack_playback; /* jack: the server's system port latencies, frames */
  unsigned long jack_cycles, jack_xruns;
  char ports[320];    /* jack: the engines' ports as wired */
} result;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* B's playout buffer for a capture of `total` samples: room for the last burst at the longest lag. */
static size_t y_len(size_t total) { return total + MAX_LAG + BURST_SAMPLES; }

/* Finds each burst of tpl in y (A's capture burst k starts at WARMUP_S + k s) and sets r's measured
 * figure: the median stream lag + extra_ms (what the stream lag cannot show: capture fill, device
 * output). -1 (r->why set) if no burst was found. */
static int analyse(const float *tpl, const float *y, size_t ny, double extra_ms, result *r) {
  double lags[BURSTS];
  int nl = 0;
  double peak_sum = 0;
  for (int k = 0; k < BURSTS; k++) {
    size_t s = (size_t)WARMUP_S * RATE + (size_t)k * BURST_EVERY;
    double pk = 0;
    long lag = parley__xcorr_best_lag(tpl, BURST_SAMPLES, y + s, ny - s, MAX_LAG, &pk);
    if (pk >= 0.5) {
      lags[nl++] = (double)lag * 1000.0 / RATE;
      peak_sum += pk;
    }
    size_t used = strlen(r->lags_text);
    if (pk >= 0.5)
      snprintf(r->lags_text + used, sizeof r->lags_text - used, "%s%.1f", k ? " " : "",
               (double)lag * 1000.0 / RATE + extra_ms);
    else
      snprintf(r->lags_text + used, sizeof r->lags_text - used, "%s-", k ? " " : "");
  }
  r->bursts_found = nl;
  if (nl == 0) {
    snprintf(r->why, sizeof r->why, "no burst found in B's playout (correlation < 0.5)");
    return -1;
  }
  qsort(lags, (size_t)nl, sizeof *lags, cmp_d);
  r->measured_ms = lags[nl / 2] + extra_ms;
  r->peak = peak_sum / nl;
  return 0;
}

/* The capture signal and its buffers, for periods of n samples: *x the capture (silence, then the chirp
 * burst once a second), *y room for B's playout, *tpl the burst; *total the capture length, whole
 * periods. Returns 0, or -1 when out of memory (whatever was allocated is left for the caller to free). */
static int make_signal(size_t n, float **x, float **y, float **tpl, size_t *total) {
  *total = (size_t)(WARMUP_S * RATE + BURSTS * BURST_EVERY + RATE / 2);
  *total = (*total + n - 1) / n * n;
  *x = calloc(*total, sizeof **x);
  *y = calloc(y_len(*total), sizeof **y);
  *tpl = calloc(BURST_SAMPLES, sizeof **tpl);
  if (!*x || !*y || !*tpl) return -1;
  make_chirp(*tpl, BURST_SAMPLES);
  for (int k = 0; k < BURSTS; k++)
    memcpy(*x + (size_t)WARMUP_S * RATE + (size_t)k * BURST_EVERY, *tpl, BURST_SAMPLES * sizeof **x);
  return 0;
}

/* A's call to B on two engines, with B's track-started watched. Zero-initialise. */
typedef struct pair {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  side sb;
  int idb;
} pair;

/* Creates the calls on p->ea and p->eb, negotiates and starts them (A offers), and reads B's pipeline
 * delays into r->d. 0, or -1 with r->why set. */
static int pair_connect(pair *p, result *r) {
  const char *why = NULL;
  if (parley_call_new(p->ea, &p->a) < 0 || parley_call_new(p->eb, &p->b) < 0) why = "call creation failed";
  else if ((p->idb = parley_call_on(p->b, PARLEY_EVENT_TRACK_STARTED, on_track, &p->sb)) < 0) why = "parley_on failed";
  else if (negotiate(p->a, p->b) < 0) why = "negotiation failed";
  else if (parley__call_pipeline_delays(p->b, &r->d) < 0) why = "no pipeline delays for B's call";
  if (!why) return 0;
  snprintf(r->why, sizeof r->why, "%s", why);
  return -1;
}

static void pair_close(pair *p) {
  if (p->b && p->idb > 0) parley_call_off(p->b, p->idb);
  parley_call_free(p->a);
  parley_call_free(p->b);
  parley_engine_free(p->ea);
  parley_engine_free(p->eb);
}

/* After a run: B's jitter-buffer figures, then the bursts found in B's playout y (a capture of `total`
 * samples; extra_ms as for analyse). Sets r->ok, or r->why. */
static void conclude(result *r, const pair *p, const float *tpl, const float *y, size_t total, double extra_ms) {
  parley_call_stats st;
  if (parley_call_get_stats(p->b, &st) == 0) {
    r->jb_ms = st.jitter_buffer_ms;
    r->concealed_b = st.concealed_frames;
  }
  if (!atomic_load(&p->sb.track_started)) {
    snprintf(r->why, sizeof r->why, "B never saw A's track");
    return;
  }
  r->ok = analyse(tpl, y, y_len(total), extra_ms, r) == 0;
}

static void app_cfg(parley_engine_config *c, int frame_ms, bool low_delay) {
  parley_engine_config_init(c);
  c->low_delay = low_delay;
  c->audio = PARLEY_AUDIO_APP;
  c->frame_ms = frame_ms;
  c->loopback_candidates = true;
  c->ipv6 = false;
}

static void run_app(int frame_ms, bool low_delay, result *r) {
  memset(r, 0, sizeof *r);
  const int64_t P = frame_ms * 1000;
  const size_t N = (size_t)RATE * (size_t)frame_ms / 1000;
  parley_engine_config ca, cb;
  app_cfg(&ca, frame_ms, low_delay);
  app_cfg(&cb, frame_ms, low_delay);
  pair p = {0};
  float *x = NULL, *y = NULL, *zero = NULL, *sink = NULL, *tpl = NULL;
  if (parley_engine_new(&ca, &p.ea) < 0) {
    snprintf(r->why, sizeof r->why, "engine A failed");
    goto out;
  }
  int64_t pa = tick_phase_us(p.ea, P), pb = -1;
  for (int tries = 0; tries < 8 && pa >= 0; tries++) {
    /* Aim B's ticker start half a period after A's ticks. */
    int64_t now = mono_us();
    int64_t target = now - pmod(now - pa, P) + P + P / 2;
    sleep_until_us(target - 300);
    if (parley_engine_new(&cb, &p.eb) < 0) break;
    pb = tick_phase_us(p.eb, P);
    int64_t d = pmod(pb - pa, P);
    if (pb >= 0 && d >= P / 4 && d <= 3 * P / 4) break;
    parley_engine_free(p.eb);
    p.eb = NULL;
  }
  if (!p.eb || pa < 0) {
    snprintf(r->why, sizeof r->why, "could not place B's ticks after A's");
    goto out;
  }
  r->phase_b_ms = (double)pmod(pb - pa, P) / 1000.0;
  if (pair_connect(&p, r) < 0) goto out;

  size_t total;
  zero = calloc(N, sizeof *zero);
  sink = calloc(N, sizeof *sink);
  if (make_signal(N, &x, &y, &tpl, &total) < 0 || !zero || !sink) goto out;

  /* Our ticks: a quarter period before A's. */
  int64_t now = mono_us();
  int64_t t = now - pmod(now - (pa - P / 4), P) + P;
  for (size_t k = 0; k < total / N; k++, t += P) {
    sleep_until_us(t);
    (void)parley_engine_push_capture(p.ea, x + k * N, N);
    (void)parley_engine_push_capture(p.eb, zero, N);
    (void)parley_engine_pull_playout(p.eb, y + k * N, N);
    (void)parley_engine_pull_playout(p.ea, sink, N);
  }
  parley__device_stats ds;
  parley__device_get_stats(p.ea->dev, &ds);
  r->underruns_a = ds.underrun_frames;
  r->trimmed_a = ds.trimmed_frames;
  parley__device_get_stats(p.eb->dev, &ds);
  r->overruns_b = ds.overrun_frames;
  r->trimmed_b = ds.trimmed_frames;
  conclude(r, &p, tpl, y, total, r->d.frame_ms);
out:
  pair_close(&p);
  free(x);
  free(y);
  free(zero);
  free(sink);
  free(tpl);
}

/* ---- path "app-callback" ---- */

/* Both engines in PARLEY_AUDIO_APP_CALLBACK: this thread is one sound card that runs A's period, then
 * B's, at each deadline (parley_engine_process), so capture and playout are sample-locked and no ring
 * or ticker sits between the card and the engines. A's packet crosses to B within the period and is
 * played at B's next one: the floor's one crossing period. */
static void run_callback(int frame_ms, bool low_delay, result *r) {
  memset(r, 0, sizeof *r);
  const int64_t P = frame_ms * 1000;
  const size_t N = (size_t)RATE * (size_t)frame_ms / 1000;
  parley_engine_config ca;
  app_cfg(&ca, frame_ms, low_delay);
  ca.audio = PARLEY_AUDIO_APP_CALLBACK;
  pair p = {0};
  float *x = NULL, *y = NULL, *sink = NULL, *tpl = NULL;
  if (parley_engine_new(&ca, &p.ea) < 0 || parley_engine_new(&ca, &p.eb) < 0) {
    snprintf(r->why, sizeof r->why, "engine creation failed");
    goto out;
  }
  if (pair_connect(&p, r) < 0) goto out;
  size_t total;
  sink = calloc(N, sizeof *sink);
  if (make_signal(N, &x, &y, &tpl, &total) < 0 || !sink) goto out;
  int64_t t = mono_us() + P;
  for (size_t k = 0; k < total / N; k++, t += P) {
    sleep_until_us(t);
    (void)parley_engine_process(p.ea, x + k * N, sink, N);
    (void)parley_engine_process(p.eb, NULL, y + k * N, N);
  }
  conclude(r, &p, tpl, y, total, r->d.frame_ms);
out:
  pair_close(&p);
  free(x);
  free(y);
  free(sink);
  free(tpl);
}

/* ---- path "jack" ---- */

/* Stderr off while PortAudio initialises (its ALSA host API probes every card and complains). */
static int quiet_stderr(void) {
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved >= 0 && devnull >= 0) dup2(devnull, STDERR_FILENO);
  if (devnull >= 0) close(devnull);
  return saved;
}

static void restore_stderr(int saved) {
  if (saved < 0) return;
  dup2(saved, STDERR_FILENO);
  close(saved);
}

/* The ports that appeared since `before` (n of them) among the other clients' ports with `flags`. */
static int new_port(bench_jack *j, bool inputs, char before[][BENCH_JACK_PORT_NAME], int n, char *out) {
  static char now[BENCH_JACK_MAX_PORTS][BENCH_JACK_PORT_NAME];
  int m = bench_jack_other_ports(j, inputs, now, BENCH_JACK_MAX_PORTS), found = 0;
  for (int i = 0; i < m; i++) {
    bool old = false;
    for (int k = 0; k < n && !old; k++) old = !strcmp(now[i], before[k]);
    if (!old) {
      if (found++ == 0) memcpy(out, now[i], BENCH_JACK_PORT_NAME); /* NUL-terminated within */
    }
  }
  return found == 1 ? 0 : -1;
}

/* Creates an engine on the server's "system" device and names the ports its stream added. */
static int jack_engine(bench_jack *j, int frame_ms, bool low_delay, parley_engine **e, char *in, char *out, char *why, size_t cap) {
  static char ins[BENCH_JACK_MAX_PORTS][BENCH_JACK_PORT_NAME], outs[BENCH_JACK_MAX_PORTS][BENCH_JACK_PORT_NAME];
  int ni = bench_jack_other_ports(j, true, ins, BENCH_JACK_MAX_PORTS);
  int no = bench_jack_other_ports(j, false, outs, BENCH_JACK_MAX_PORTS);
  parley_engine_config c;
  parley_engine_config_init(&c);
  c.audio = PARLEY_AUDIO_DEVICE;
  c.input_device = "system";
  c.output_device = "system";
  c.frame_ms = frame_ms;
  c.low_delay = low_delay;
  c.loopback_candidates = true;
  c.ipv6 = false;
  int saved = quiet_stderr();
  int err = parley_engine_new(&c, e);
  restore_stderr(saved);
  if (err < 0) {
    snprintf(why, cap, "engine on PortAudio/JACK: %s", parley_strerror(err));
    return -1;
  }
  if (new_port(j, true, ins, ni, in) < 0 || new_port(j, false, outs, no, out) < 0) {
    snprintf(why, cap, "could not tell which JACK ports the engine's stream opened");
    return -1;
  }
  return 0;
}

static void run_jack(int frame_ms, bool low_delay, result *r) {
  memset(r, 0, sizeof *r);
  const size_t N = (size_t)RATE * (size_t)frame_ms / 1000;
  bench_jack *j = NULL;
  pair p = {0};
  float *x = NULL, *y = NULL, *tpl = NULL;
  int rc = bench_jack_open((int)N, &j, r->why, sizeof r->why);
  if (rc != 0) {
    r->skipped = rc > 0;
    return;
  }
  char a_in[BENCH_JACK_PORT_NAME], a_out[BENCH_JACK_PORT_NAME], b_in[BENCH_JACK_PORT_NAME],
      b_out[BENCH_JACK_PORT_NAME];
  if (jack_engine(j, frame_ms, low_delay, &p.ea, a_in, a_out, r->why, sizeof r->why) < 0 ||
      jack_engine(j, frame_ms, low_delay, &p.eb, b_in, b_out, r->why, sizeof r->why) < 0 ||
      bench_jack_wire(j, a_in, a_out, b_in, b_out, r->why, sizeof r->why) < 0)
    goto out;
  snprintf(r->ports, sizeof r->ports, "inject -> %s (A), %s (B) -> record", a_in, b_out);
  if (pair_connect(&p, r) < 0) goto out;
  /* Before arming: the recording must not start while ICE is still connecting. */
  for (int i = 0; i < 500 && !atomic_load(&p.sb.track_started); i++) sleep_until_us(mono_us() + 10000);
  if (!atomic_load(&p.sb.track_started)) {
    snprintf(r->why, sizeof r->why, "B never saw A's track");
    goto out;
  }

  size_t total;
  if (make_signal(1, &x, &y, &tpl, &total) < 0) goto out; /* JACK records sample by sample */
  bench_jack_arm(j, x, y, total);
  int64_t end = mono_us() + (int64_t)(total / RATE + 5) * 1000000;
  while (!bench_jack_done(j) && mono_us() < end) sleep_until_us(mono_us() + 50000);
  if (!bench_jack_done(j)) {
    snprintf(r->why, sizeof r->why, "the JACK graph stopped running");
    goto out;
  }
  bench_jack_system_latency(j, &r->jack_capture, &r->jack_playback);
  bench_jack_counts(j, &r->jack_cycles, &r->jack_xruns);
  /* The injector stands in for the card's capture port and the recorder for its playback port: a
   * sound reached the microphone `capture` frames before the cycle that hands it over, and what a
   * cycle writes reaches the speaker `playback` frames after the cycle began. */
  conclude(r, &p, tpl, y, total, (double)(r->jack_capture + r->jack_playback) * 1000.0 / RATE);
out:
  pair_close(&p);
  bench_jack_close(j); /* after the engines: PortAudio's client leaves before the server stops */
  free(x);
  free(y);
  free(tpl);
}

/* A benchmarked configuration: the default profile at 10 and 20 ms, the low-delay one at 5 ms. */
typedef struct variant {
  const char *profile; /* "default" | "low-delay" */
  int frame_ms;
  bool low_delay;
  double allowed_ms;   /* the goal: measured <= floor + this */
} variant;

static const variant VARIANTS[] = {
    {"default", 10, false, 5.0},
    {"default", 20, false, 5.0},
    {"low-delay", 5, true, 2.0},
};
#define N_VARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

static void row(bench_report *rep, const char *path, const variant *v, double measured, double floor_ms,
                const char *note) {
  const int frame_ms = v->frame_ms;
  bench_row_begin(rep);
  bench_field_str(rep, "path", path);
  bench_field_str(rep, "profile", v->profile);
  bench_field_int(rep, "frame_ms", frame_ms);
  bench_field_num(rep, "measured_ms", measured, 1);
  bench_field_num(rep, "floor_ms", floor_ms, 1);
  bench_field_str(rep, "note", note);
  bench_row_end(rep);
}

static void report(bench_report *rep, const char *path, const variant *v, const result *r) {
  const int frame_ms = v->frame_ms;
  if (r->skipped) {
    row(rep, path, v, -1, -1, "skipped");
    bench_note(rep, "%s %d ms: skipped: %s", path, frame_ms, r->why);
    return;
  }
  if (!r->ok) {
    row(rep, path, v, -1, r->d.floor_ms, "FAILED");
    bench_note(rep, "%s %d ms: %s", path, frame_ms, r->why);
    return;
  }
  char note[96];
  double excess = r->measured_ms - r->d.floor_ms;
  snprintf(note, sizeof note, "%s floor+%.0f (+%.1f ms)", excess <= v->allowed_ms ? "HOLDS <=" : "FAILS >",
           v->allowed_ms, excess);
  row(rep, path, v, r->measured_ms, r->d.floor_ms, note);
  bench_note(rep,
             "%s %d ms: floor = device in %.1f + period %.1f + resamplers %.1f/%.1f + preprocessor %.1f + "
             "Opus lookahead %.2f + jitter min %.1f + device out %.1f; %d/%d bursts (mean correlation %.2f), "
             "per burst [%s] ms; B's jitter buffer %.1f ms at the end, %llu frames concealed",
             path, frame_ms, r->d.input_ms, r->d.period_ms, r->d.send_resampler_ms, r->d.recv_resampler_ms,
             r->d.echo_ms, r->d.lookahead_ms, r->d.jitter_min_ms, r->d.output_ms, r->bursts_found, BURSTS, r->peak,
             r->lags_text, r->jb_ms, (unsigned long long)r->concealed_b);
  if (!strcmp(path, "jack"))
    bench_note(rep,
               "jack %d ms: %s; the server reports capture %u + playback %u frames for its card (measured = "
               "graph lag + both; the floor's device in/out come from PortAudio's callback time stamps); %lu cycles, "
               "%lu xruns",
               frame_ms, r->ports, r->jack_capture, r->jack_playback, r->jack_cycles, r->jack_xruns);
  else if (!strcmp(path, "app-callback"))
    bench_note(rep, "app-callback %d ms: one card runs A's period then B's (sample-locked, no rings)", frame_ms);
  else
    bench_note(rep,
               "%s %d ms: B ticks %.1f ms after A; A capture underrun %llu, B playout overrun %llu; backlog "
               "trimmed A %llu, B %llu samples",
               path, frame_ms, r->phase_b_ms, (unsigned long long)r->underruns_a, (unsigned long long)r->overruns_b,
               (unsigned long long)r->trimmed_a, (unsigned long long)r->trimmed_b);
}

static int run_latency(bench_report *rep, int argc, char **argv) {
  bool no_rt = false, jack_only = false;
  const parley__cli_opt opts[] = {
      {"no-rt", PARLEY__CLI_FLAG, &no_rt, NULL, "skip the rows at real-time priority", 0, 0},
      {"jack-only", PARLEY__CLI_FLAG, &jack_only, NULL, "only the JACK rows", 0, 0},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  bool rt_rows = !no_rt, app_rows = !jack_only;
  /* "app": this thread and every engine thread it creates (they inherit the policy) at SCHED_FIFO, as
   * an audio app's threads would be: clean conditions on a shared host. "app-no-rt": default
   * scheduling, exposed to whatever else the host runs. */
  for (int pass = rt_rows ? 0 : 1; app_rows && pass < 2; pass++) {
    const char *path = pass == 0 ? "app" : "app-no-rt";
    if (pass == 0) {
      struct sched_param sp = {.sched_priority = 10};
      int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
      if (e != 0) {
        for (size_t i = 0; i < N_VARIANTS; i++) row(rep, path, &VARIANTS[i], -1, -1, "skipped");
        bench_note(rep, "app: skipped: SCHED_FIFO not permitted (%s); see app-no-rt", strerror(e));
        continue;
      }
    }
    for (size_t i = 0; i < N_VARIANTS; i++) {
      result r;
      run_app(VARIANTS[i].frame_ms, VARIANTS[i].low_delay, &r);
      report(rep, path, &VARIANTS[i], &r);
    }
    if (pass == 0) {
      struct sched_param sp = {.sched_priority = 0};
      (void)pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
  }
  /* "app-callback": the app's audio callback drives both engines (PARLEY_AUDIO_APP_CALLBACK), at
   * SCHED_FIFO when permitted, like "app". */
  if (rt_rows && app_rows) {
    struct sched_param sp = {.sched_priority = 10};
    bool rt = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    for (size_t i = 0; i < N_VARIANTS; i++) {
      result r;
      run_callback(VARIANTS[i].frame_ms, VARIANTS[i].low_delay, &r);
      report(rep, "app-callback", &VARIANTS[i], &r);
    }
    sp.sched_priority = 0;
    if (rt) (void)pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
  }
  /* "jack": PortAudio's JACK host API on a private dummy server, engine threads as for "app" when
   * permitted (JACK's own process thread runs at normal priority: the server is --no-realtime). */
  if (rt_rows) {
    struct sched_param sp = {.sched_priority = 10};
    bool rt = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    for (size_t i = 0; i < N_VARIANTS; i++) {
      result r;
      run_jack(VARIANTS[i].frame_ms, VARIANTS[i].low_delay, &r);
      report(rep, "jack", &VARIANTS[i], &r);
    }
    sp.sched_priority = 0;
    if (rt) (void)pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
  }
  double load[3];
  if (getloadavg(load, 3) == 3)
    bench_note(rep, "host load average %.2f %.2f %.2f on %ld CPUs. Without real-time priority, late wake-ups add "
               "whole frames: a packet after B's tick (the jitter buffer holds one frame more), a ticker or this "
               "thread slipping past the next one's phase (the frame waits a period; a standing ring backlog is "
               "trimmed after %d reads)",
               load[0], load[1], load[2], sysconf(_SC_NPROCESSORS_ONLN), PARLEY__DEVICE_APP_TRIM_WINDOW);
  bench_note(rep, "measured = correlation lag of B's playout against A's capture + one frame of capture fill (app) "
             "or + the JACK card's capture and playback port latencies (jack)");
  return 0;
}

BENCH_SUITE(latency, "latency", "mouth-to-ear latency of a call (app audio on a real-time clock) vs its floor",
            run_latency)
