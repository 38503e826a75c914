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
 * floor_ms (engine/latency.h, read from the live call): capture fill (frame) + device buffering (one
 * period: the frame crosses from capture tick to A's tick to B's tick to the playout tick within one
 * period when the ticks are ordered so) + capture resampler + preprocessor + Opus lookahead + jitter
 * min delay + playout resampler.
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
 * Path "jack": PortAudio's JACK host API against a dummy jackd is not measured (see the row's note).
 * Not real-time code; bounded: each configuration runs ~8 s. */
#define _GNU_SOURCE
#include <errno.h>
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
#include "engine/engine_internal.h"
#include "engine/latency.h"
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

/* Normalised correlation of tpl[0..n) against y[lag..lag+n), using every `step`-th sample. */
static double ncorr(const float *tpl, const float *y, size_t n, size_t step) {
  double xy = 0, yy = 0, xx = 0;
  for (size_t i = 0; i < n; i += step) {
    xy += (double)tpl[i] * y[i];
    yy += (double)y[i] * y[i];
    xx += (double)tpl[i] * tpl[i];
  }
  return (xx > 0 && yy > 0) ? xy / sqrt(xx * yy) : 0;
}

/* Best lag of tpl in y[0..max_lag + n): coarse then fine. */
static long best_lag(const float *tpl, size_t n, const float *y, long max_lag, double *peak) {
  long best = 0;
  double bc = -2;
  for (long l = 0; l <= max_lag; l += 8) {
    double c = ncorr(tpl, y + l, n, 4);
    if (c > bc) bc = c, best = l;
  }
  long lo = best - 12 < 0 ? 0 : best - 12, hi = best + 12 > max_lag ? max_lag : best + 12;
  bc = -2;
  for (long l = lo; l <= hi; l++) {
    double c = ncorr(tpl, y + l, n, 1);
    if (c > bc) bc = c, best = l;
  }
  *peak = bc;
  return best;
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
} result;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void app_cfg(parley_engine_config *c, int frame_ms) {
  parley_engine_config_init(c);
  c->audio = PARLEY_AUDIO_APP;
  c->frame_ms = frame_ms;
  c->loopback_candidates = true;
  c->ipv6 = false;
}

static void run_app(int frame_ms, result *r) {
  memset(r, 0, sizeof *r);
  const int64_t P = frame_ms * 1000;
  const size_t N = (size_t)RATE * (size_t)frame_ms / 1000;
  parley_engine_config ca, cb;
  app_cfg(&ca, frame_ms);
  app_cfg(&cb, frame_ms);
  parley_engine *ea = NULL, *eb = NULL;
  parley_call *a = NULL, *b = NULL;
  float *x = NULL, *y = NULL, *zero = NULL, *sink = NULL, *tpl = NULL;
  side sa = {0}, sb = {0};
  int ida = -1, idb = -1;
  if (parley_engine_new(&ca, &ea) < 0) {
    snprintf(r->why, sizeof r->why, "engine A failed");
    goto out;
  }
  int64_t pa = tick_phase_us(ea, P), pb = -1;
  for (int tries = 0; tries < 8 && pa >= 0; tries++) {
    /* Aim B's ticker start half a period after A's ticks. */
    int64_t now = mono_us();
    int64_t target = now - pmod(now - pa, P) + P + P / 2;
    sleep_until_us(target - 300);
    if (parley_engine_new(&cb, &eb) < 0) break;
    pb = tick_phase_us(eb, P);
    int64_t d = pmod(pb - pa, P);
    if (pb >= 0 && d >= P / 4 && d <= 3 * P / 4) break;
    parley_engine_free(eb);
    eb = NULL;
  }
  if (!eb || pa < 0) {
    snprintf(r->why, sizeof r->why, "could not place B's ticks after A's");
    goto out;
  }
  r->phase_b_ms = (double)pmod(pb - pa, P) / 1000.0;
  if (parley_call_new(ea, &a) < 0 || parley_call_new(eb, &b) < 0) goto out;
  ida = parley_on(a, PARLEY_EVENT_TRACK_STARTED, on_track, &sa);
  idb = parley_on(b, PARLEY_EVENT_TRACK_STARTED, on_track, &sb);
  if (negotiate(a, b) < 0) {
    snprintf(r->why, sizeof r->why, "negotiation failed");
    goto out;
  }
  if (parley__call_pipeline_delays(b, &r->d) < 0) goto out;

  size_t total = (size_t)(WARMUP_S * RATE + BURSTS * BURST_EVERY + RATE / 2);
  total = (total + N - 1) / N * N;
  x = calloc(total, sizeof *x);
  y = calloc(total + MAX_LAG + BURST_SAMPLES, sizeof *y);
  zero = calloc(N, sizeof *zero);
  sink = calloc(N, sizeof *sink);
  tpl = calloc(BURST_SAMPLES, sizeof *tpl);
  if (!x || !y || !zero || !sink || !tpl) goto out;
  make_chirp(tpl, BURST_SAMPLES);
  for (int k = 0; k < BURSTS; k++)
    memcpy(x + (size_t)WARMUP_S * RATE + (size_t)k * BURST_EVERY, tpl, BURST_SAMPLES * sizeof *x);

  /* Our ticks: a quarter period before A's. */
  int64_t now = mono_us();
  int64_t t = now - pmod(now - (pa - P / 4), P) + P;
  for (size_t k = 0; k < total / N; k++, t += P) {
    sleep_until_us(t);
    (void)parley_engine_push_capture(ea, x + k * N, N);
    (void)parley_engine_push_capture(eb, zero, N);
    (void)parley_engine_pull_playout(eb, y + k * N, N);
    (void)parley_engine_pull_playout(ea, sink, N);
  }
  parley_call_stats st;
  if (parley_call_get_stats(b, &st) == 0) r->jb_ms = st.jitter_buffer_ms;
  parley__device_stats ds;
  parley__device_get_stats(ea->dev, &ds);
  r->underruns_a = ds.underrun_frames;
  r->trimmed_a = ds.trimmed_frames;
  parley__device_get_stats(eb->dev, &ds);
  r->overruns_b = ds.overrun_frames;
  r->trimmed_b = ds.trimmed_frames;
  r->concealed_b = st.concealed_frames;
  if (!atomic_load(&sb.track_started)) {
    snprintf(r->why, sizeof r->why, "B never saw A's track");
    goto out;
  }
  double lags[BURSTS];
  int nl = 0;
  double peak_sum = 0;
  for (int k = 0; k < BURSTS; k++) {
    size_t s = (size_t)WARMUP_S * RATE + (size_t)k * BURST_EVERY;
    double pk;
    long lag = best_lag(tpl, BURST_SAMPLES, y + s, MAX_LAG, &pk);
    if (pk >= 0.5) {
      lags[nl++] = (double)lag * 1000.0 / RATE;
      peak_sum += pk;
    }
    size_t used = strlen(r->lags_text);
    if (pk >= 0.5)
      snprintf(r->lags_text + used, sizeof r->lags_text - used, "%s%.1f", k ? " " : "",
               (double)lag * 1000.0 / RATE + r->d.frame_ms);
    else
      snprintf(r->lags_text + used, sizeof r->lags_text - used, "%s-", k ? " " : "");
  }
  r->bursts_found = nl;
  if (nl == 0) {
    snprintf(r->why, sizeof r->why, "no burst found in B's playout (correlation < 0.5)");
    goto out;
  }
  qsort(lags, (size_t)nl, sizeof *lags, cmp_d);
  r->measured_ms = lags[nl / 2] + r->d.frame_ms;
  r->peak = peak_sum / nl;
  r->ok = true;
out:
  if (a && ida > 0) parley_off(a, ida);
  if (b && idb > 0) parley_off(b, idb);
  parley_call_free(a);
  parley_call_free(b);
  parley_engine_free(ea);
  parley_engine_free(eb);
  free(x);
  free(y);
  free(zero);
  free(sink);
  free(tpl);
}

static void row(bench_report *rep, const char *path, int frame_ms, double measured, double floor_ms,
                const char *note) {
  bench_row_begin(rep);
  bench_field_str(rep, "path", path);
  bench_field_int(rep, "frame_ms", frame_ms);
  bench_field_num(rep, "measured_ms", measured, 1);
  bench_field_num(rep, "floor_ms", floor_ms, 1);
  bench_field_str(rep, "note", note);
  bench_row_end(rep);
}

static void report_app(bench_report *rep, const char *path, int frame_ms, const result *r) {
  if (!r->ok) {
    row(rep, path, frame_ms, -1, r->d.floor_ms, "FAILED");
    bench_note(rep, "%s %d ms: %s", path, frame_ms, r->why);
    return;
  }
  char note[96];
  double excess = r->measured_ms - r->d.floor_ms;
  snprintf(note, sizeof note, "%s (+%.1f ms)", excess <= 5.0 ? "HOLDS <= floor+5" : "FAILS > floor+5", excess);
  row(rep, path, frame_ms, r->measured_ms, r->d.floor_ms, note);
  bench_note(rep,
             "%s %d ms: floor = frame %.1f + period %.1f + resamplers %.1f/%.1f + preprocessor %.1f + "
             "Opus lookahead %.2f + jitter min %.1f; %d/%d bursts (mean correlation %.2f), per burst [%s] ms; "
             "B ticks %.1f ms after A; B's jitter buffer %.1f ms at the end, %llu frames concealed; A capture "
             "underrun %llu, B playout overrun %llu; backlog trimmed A %llu, B %llu samples",
             path, frame_ms, r->d.frame_ms, r->d.period_ms, r->d.send_resampler_ms, r->d.recv_resampler_ms,
             r->d.echo_ms, r->d.lookahead_ms, r->d.jitter_min_ms, r->bursts_found, BURSTS, r->peak, r->lags_text,
             r->phase_b_ms, r->jb_ms, (unsigned long long)r->concealed_b, (unsigned long long)r->underruns_a,
             (unsigned long long)r->overruns_b, (unsigned long long)r->trimmed_a, (unsigned long long)r->trimmed_b);
}

static int run_latency(bench_report *rep, int argc, char **argv) {
  bool rt_rows = true;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--no-rt")) {
      rt_rows = false;
      continue;
    }
    fprintf(stderr, "usage: latency [--no-rt]\n");
    return 2;
  }
  static const int frames[2] = {10, 20};
  /* "app": this thread and every engine thread it creates (they inherit the policy) at SCHED_FIFO, as
   * an audio app's threads would be: clean conditions on a shared host. "app-no-rt": default
   * scheduling, exposed to whatever else the host runs. */
  for (int pass = rt_rows ? 0 : 1; pass < 2; pass++) {
    const char *path = pass == 0 ? "app" : "app-no-rt";
    if (pass == 0) {
      struct sched_param sp = {.sched_priority = 10};
      int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
      if (e != 0) {
        for (int i = 0; i < 2; i++) row(rep, path, frames[i], -1, -1, "skipped");
        bench_note(rep, "app: skipped: SCHED_FIFO not permitted (%s); see app-no-rt", strerror(e));
        continue;
      }
    }
    for (int i = 0; i < 2; i++) {
      result r;
      run_app(frames[i], &r);
      report_app(rep, path, frames[i], &r);
    }
    if (pass == 0) {
      struct sched_param sp = {.sched_priority = 0};
      (void)pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
  }
  row(rep, "jack", 10, -1, -1, "skipped");
  row(rep, "jack", 20, -1, -1, "skipped");
  bench_note(rep, "jack: skipped: a one-way figure needs B's JACK playout recorded on this bench's clock, i.e. a "
             "JACK client of the bench's own (libjack is not linked into parley-bench) or a PortAudio capture "
             "stream timed against CLOCK_MONOTONIC; not built in this round");
  double load[3];
  if (getloadavg(load, 3) == 3)
    bench_note(rep, "host load average %.2f %.2f %.2f on %ld CPUs. Without real-time priority, late wake-ups add "
               "whole frames: a packet after B's tick (the jitter buffer holds one frame more), a ticker or this "
               "thread slipping past the next one's phase (the frame waits a period; a standing ring backlog is "
               "trimmed after %d reads)",
               load[0], load[1], load[2], sysconf(_SC_NPROCESSORS_ONLN), PARLEY__DEVICE_APP_TRIM_WINDOW);
  bench_note(rep, "measured = correlation lag of B's playout against A's capture + one frame of capture fill");
  return 0;
}

BENCH_SUITE(latency, "latency", "mouth-to-ear latency of a call (app audio on a real-time clock) vs its floor",
            run_latency)
