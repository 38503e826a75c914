/* bench_quality.c: `parley-bench quality [--clip FILE] [--repeat N]`: the speech quality and the
 * buffering delay of the receive chain's playout on impaired paths, through the real chains: a speech
 * clip -> send chain (preprocess, Opus 20 ms) -> sim/impair -> receive chain (jitter buffer with
 * time-scaling, decode, PLC/FEC) -> playout, in simulated time.
 *
 * Modes: the receive chain on 20 ms device frames (`20ms-ticks`) and on 10 ms ones (`10ms-ticks`, where
 * it can start a packet on any 10 ms tick); packets are 20 ms in both, everything else is
 * parley__recv_config_init's defaults (48 kHz).
 *
 * Input: the clip (default tests/data/speech_a_48k.wav, relative to the current directory; mono 48 kHz)
 * played --repeat times back to back (default 5: 30 s of the 6 s clip) so the buffers settle and the
 * losses are not a handful. Clock phase: the sender's capture clock is offset against the receiver's
 * device clock by 0, 5, 10 and 15 ms (spread over the 20 ms packet period) and the four runs pooled, as
 * in `parley-bench jitter`: with regular arrivals one phase alone would decide how long a packet waits
 * for its tick. Each path keeps one network seed for all its runs.
 *
 * Metrics (pooled over the phases):
 *  - piecewise_corr: the playout cut into 200 ms pieces of the input (pieces quieter than rms 0.03
 *    skipped), each compared with the output at its own best lag in 0..300 ms (normalised
 *    cross-correlation, coarse-to-fine search); the mean over the pieces. Time-scaling moves the output
 *    against the input as it goes, so one lag for the whole clip would misjudge it; per piece, both
 *    modes are judged the same way. Opus and the preprocessor alone give about 0.84 on a clean path.
 *    An accelerate or expansion inside a piece still splits it between two lags, which costs time-scaling
 *    some correlation that a listener would not hear as damage, so each note repeats the comparison
 *    on 80 ms pieces: the part of a gap that shrinks there is the measure, the part that stays is audio.
 *  - mean_delay_ms: buffering delay, play time minus arrival time, in the mean over the pieces: each
 *    piece's lag, less the clock phase, the chains' algorithmic delays (resamplers, preprocessor, Opus
 *    lookahead: send and receive delay_samples) and the mean network transit of the packets delivered
 *    in that run.
 *  - concealed_pct: audio not decoded from its own packet (PLC frames, FEC frames, EXPAND samples), in
 *    20 ms frames, % of packets sent.
 * Single-threaded; not real-time code.
 */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "sim/cli.h"
#include "engine/pipeline.h"
#include "parley/parley.h"
#include "sim/impair.h"

#define RATE 48000
#define PACKET_US 20000
#define PIECE (RATE / 5)          /* 200 ms */
#define SHORT_PIECE (RATE * 2 / 25) /* 80 ms, for the note: how much of a gap is edits inside a piece */
#define MAX_LAG (RATE * 3 / 10)   /* 300 ms */
#define PIECE_MIN_RMS 0.03
#define DECIM 8                   /* coarse search on means of 8 samples */
#define N_PHASES 4
#define MAX_FLIGHT 256
#define TAIL_S 1

typedef struct flight {
  int64_t deliver_us;
  parley__send_packet pkt;
  uint16_t seq;
} flight;

/* The send chain's output for the whole input, made once: the sender does the same work on every run
 * (the phase only moves the send times). */
typedef struct encoded {
  parley__send_packet *pkts;
  int *frame_of; /* capture frame that produced each packet */
  int n_pkts;
  int delay_samples;
} encoded;

typedef struct tally {
  double corr_sum, delay_sum_ms, short_corr_sum;
  long pieces, short_pieces;
  double concealed_frames, fec_frames;
  long sent;
} tally;

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* Normalised cross-correlation of a[0..n) with b[0..n). */
static double ncorr(const float *a, const float *b, size_t n) {
  double aa = dot(a, a, n), bb = dot(b, b, n);
  return aa > 0 && bb > 0 ? dot(a, b, n) / sqrt(aa * bb) : 0;
}

/* Best lag of y against the piece x[off..off+piece) in 0..MAX_LAG: every lag of the DECIM-sample means
 * (xd, yd) first, then each full-rate lag within 2 * DECIM of the coarse best. */
static long piece_lag(const float *x, const float *y, const float *xd, const float *yd, size_t off,
                      size_t piece, double *peak) {
  const size_t m = piece / DECIM;
  const float *a = xd + off / DECIM, *b = yd + off / DECIM;
  double aa = dot(a, a, m), bb = dot(b, b, m); /* bb: energy of b[l..l+m), kept running */
  long coarse = 0;
  double best = -2;
  for (long l = 0; l <= MAX_LAG / DECIM; l++) {
    if (l > 0) bb += (double)b[l + (long)m - 1] * b[l + (long)m - 1] - (double)b[l - 1] * b[l - 1];
    double v = aa > 0 && bb > 1e-12 ? dot(a, b + l, m) / sqrt(aa * bb) : 0;
    if (v > best) {
      best = v;
      coarse = l * DECIM;
    }
  }
  long lag = coarse;
  best = -2;
  for (long l = coarse - 2 * DECIM; l <= coarse + 2 * DECIM; l++) {
    if (l < 0 || l > MAX_LAG) continue;
    double v = ncorr(x + off, y + off + (size_t)l, piece);
    if (v > best) {
      best = v;
      lag = l;
    }
  }
  *peak = best;
  return lag;
}

static void decimate(const float *x, size_t n, float *out) {
  for (size_t i = 0; i < n / DECIM; i++) {
    float s = 0;
    for (size_t k = 0; k < DECIM; k++) s += x[i * DECIM + k];
    out[i] = s;
  }
}

/* Runs x (n samples, 20 ms capture frames) through a fresh send chain once, its FEC planned for
 * loss_hint_pct; fills *e. */
static int encode_all(const float *x, size_t n, int loss_hint_pct, encoded *e) {
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.opus.expected_loss_pct = loss_hint_pct;
  int err = 0;
  parley__send_chain *s = parley__send_chain_new(&sc, &err);
  if (!s) {
    fprintf(stderr, "parley-bench quality: send chain: %s\n", parley_strerror(err));
    return -1;
  }
  size_t cap = parley__send_chain_device_frame(s), frames = n / cap;
  e->pkts = malloc(frames * PARLEY__SEND_MAX_PACKETS * sizeof *e->pkts);
  e->frame_of = malloc(frames * PARLEY__SEND_MAX_PACKETS * sizeof *e->frame_of);
  e->n_pkts = 0;
  int rc = e->pkts && e->frame_of ? 0 : -1;
  for (size_t k = 0; rc == 0 && k < frames; k++) {
    int np = parley__send_chain_process(s, x + k * cap, e->pkts + e->n_pkts, PARLEY__SEND_MAX_PACKETS);
    if (np < 0) rc = -1;
    for (int i = 0; i < np; i++) e->frame_of[e->n_pkts++] = (int)k;
  }
  parley__send_stats ss;
  parley__send_chain_stats(s, &ss);
  e->delay_samples = ss.delay_samples;
  parley__send_chain_free(s);
  return rc;
}

/* One run: the encoded stream through impair -> receive chain on frame_ms device frames (20 or 10),
 * the sender's clock phase_us behind the receiver's; adds its pieces and counts to *t. y and yd hold n + TAIL_S s. Returns 0 or -1. */
static int run_once(const float *x, size_t n, const float *xd, const encoded *e, float *y, float *yd,
                    const parley__impair_config *ic, uint64_t seed, int frame_ms,
                    int64_t phase_us, tally *t) {
  parley__recv_config rc;
  parley__recv_config_init(&rc); /* 48 kHz */
  rc.frame_ms = frame_ms;
  int err = 0;
  parley__recv_chain *r = parley__recv_chain_new(&rc, &err);
  parley__impair *net = r ? parley__impair_new(ic, seed, &err) : NULL;
  flight *air = calloc(MAX_FLIGHT, sizeof *air);
  int rc_code = -1;
  if (!r || !net || !air) {
    fprintf(stderr, "parley-bench quality: cannot build the path: %s\n", parley_strerror(err ? err : PARLEY_ENOMEM));
    goto out;
  }
  size_t play = parley__recv_chain_device_frame(r), n_out = n + (size_t)TAIL_S * RATE;
  int64_t frame_us = (int64_t)rc.frame_ms * 1000;
  memset(y, 0, n_out * sizeof *y);
  int n_air = 0, next = 0;
  double transit_sum_us = 0;
  long delivered = 0;
  parley__recv_stats rs, at_last_play = {0};
  for (size_t j = 0; (j + 1) * play <= n_out; j++) {
    int64_t now = (int64_t)j * frame_us;
    for (; next < e->n_pkts && (int64_t)e->frame_of[next] * PACKET_US + phase_us <= now; next++) {
      int64_t send_us = (int64_t)e->frame_of[next] * PACKET_US + phase_us;
      parley__impair_verdict v;
      if (parley__impair_packet(net, send_us, e->pkts[next].len, &v) < 0) goto out;
      if (v.n_deliveries > 0) {
        transit_sum_us += (double)(v.deliver_us[0] - send_us);
        delivered++;
      }
      for (int d = 0; d < v.n_deliveries && n_air < MAX_FLIGHT; d++)
        air[n_air++] = (flight){v.deliver_us[d], e->pkts[next], (uint16_t)next};
    }
    for (;;) { /* deliver what is due, earliest first */
      int best = -1;
      for (int i = 0; i < n_air; i++)
        if (air[i].deliver_us <= now && (best < 0 || air[i].deliver_us < air[best].deliver_us)) best = i;
      if (best < 0) break;
      flight f = air[best];
      air[best] = air[--n_air];
      parley__recv_chain_put(r, f.seq, f.pkt.timestamp, 0x1234, f.pkt.marker, f.pkt.data, f.pkt.len,
                             f.deliver_us);
    }
    if (parley__recv_chain_process(r, now, y + j * play) != 0) goto out;
    /* Concealment counts up to the last packet played, not in the tail after the stream ends. */
    parley__recv_chain_stats(r, &rs);
    if (rs.jitter.packets_out != at_last_play.jitter.packets_out) at_last_play = rs;
  }
  double fixed_ms = (double)(e->delay_samples + at_last_play.delay_samples) * 1000.0 / RATE;
  double transit_ms = delivered ? transit_sum_us / (double)delivered / 1000.0 : 0;
  decimate(y, n_out, yd);
  for (size_t off = 0; off + PIECE + MAX_LAG <= n_out && off + PIECE <= n; off += PIECE) {
    if (sqrt(dot(x + off, x + off, PIECE) / PIECE) < PIECE_MIN_RMS) continue;
    double peak = 0;
    long lag = piece_lag(x, y, xd, yd, off, PIECE, &peak);
    t->corr_sum += peak;
    t->delay_sum_ms += (double)lag * 1000.0 / RATE - (double)phase_us / 1000.0 - fixed_ms - transit_ms;
    t->pieces++;
  }
  for (size_t off = 0; off + SHORT_PIECE + MAX_LAG <= n_out && off + SHORT_PIECE <= n; off += SHORT_PIECE) {
    if (sqrt(dot(x + off, x + off, SHORT_PIECE) / SHORT_PIECE) < PIECE_MIN_RMS) continue;
    double peak = 0;
    piece_lag(x, y, xd, yd, off, SHORT_PIECE, &peak);
    t->short_corr_sum += peak;
    t->short_pieces++;
  }
  t->concealed_frames += (double)(at_last_play.jitter.concealed + at_last_play.jitter.fec_recoveries) +
                         (double)at_last_play.expand_samples / (RATE / 50);
  t->fec_frames += (double)at_last_play.fec_recovered;
  t->sent += e->n_pkts;
  rc_code = 0;
out:
  parley__recv_chain_free(r);
  parley__impair_free(net);
  free(air);
  return rc_code;
}

/* The FEC loss hint a call on this path converges to: the impairment's loss over each second of
 * packets (frames: the 20 ms packets of the clip), fed to parley__loss_hint_update as the peer's RTCP
 * reports would be, averaged over the reports. -1 on failure. */
static int path_loss_hint(const parley__impair_config *ic, uint64_t seed, size_t frames) {
  int err = 0;
  parley__impair *net = parley__impair_new(ic, seed, &err);
  if (!net) return -1;
  parley__encoder_config oc;
  parley__encoder_config_init(&oc);
  double tracked = oc.expected_loss_pct / 100.0;
  long sum = 0, reports = 0, lost = 0, in_window = 0;
  for (size_t k = 0; k < frames; k++) {
    parley__impair_verdict v;
    lost += parley__impair_packet(net, (int64_t)k * PACKET_US, 80, &v) == 0;
    if (++in_window == 50) { /* a report a second */
      sum += parley__loss_hint_update(&tracked, (double)lost / (double)in_window);
      reports++;
      lost = in_window = 0;
    }
  }
  parley__impair_free(net);
  return reports ? (int)(sum / reports) : oc.expected_loss_pct;
}

static int run_quality(bench_report *rep, int argc, char **argv) {
  const char *clip = "tests/data/speech_a_48k.wav";
  int repeat = 5;
  const parley__cli_opt opts[] = {
      {"clip", PARLEY__CLI_STRING, &clip, "FILE", "mono 48 kHz speech WAV [tests/data/speech_a_48k.wav]", 0, 0},
      {"repeat", PARLEY__CLI_INT, &repeat, "N", "play the clip N times back to back [5]", 1, 100},
  };
  int rc_args = bench_args("", opts, sizeof opts / sizeof opts[0], argc, argv);
  if (rc_args) return rc_args;
  size_t n_clip = 0;
  float *c = bench_load_clip("quality", clip, &n_clip);
  if (!c) return 1;
  size_t n = n_clip * (size_t)repeat, n_out = n + (size_t)TAIL_S * RATE;
  float *x = malloc(n * sizeof *x), *y = malloc(n_out * sizeof *y);
  float *xd = malloc(n / DECIM * sizeof *xd), *yd = malloc(n_out / DECIM * sizeof *yd);
  if (!x || !y || !xd || !yd) {
    free(c);
    free(x);
    free(y);
    free(xd);
    free(yd);
    return 1;
  }
  for (int k = 0; k < repeat; k++) memcpy(x + (size_t)k * n_clip, c, n_clip * sizeof *x);
  free(c);
  decimate(x, n, xd);
  enum { N_PATHS = 4 };
  static const char *names[N_PATHS] = {"clean_30ms", "jitter20_loss3", "jitter_30ms", "ge_burst_5pct"};
  parley__impair_config cfgs[N_PATHS];
  memset(cfgs, 0, sizeof cfgs);
  cfgs[0].base_delay_us = 30000;
  cfgs[1].base_delay_us = 40000;
  cfgs[1].jitter_sd_us = 20000;
  cfgs[1].loss_pct = 3;
  cfgs[2].base_delay_us = 40000;
  cfgs[2].jitter_sd_us = 30000;
  cfgs[3].base_delay_us = 40000;
  cfgs[3].ge_enabled = true;
  parley__impair_ge_from_mean(5.0, 3.0, &cfgs[3].ge);

  int code = 0;
  encoded enc = {0};
  for (int p = 0; p < N_PATHS && code == 0; p++) {
    /* The encoder's FEC follows the loss the receiver reports, as in a call (call_media.c): the hint
     * the path's per-second loss drives parley__loss_hint_update to, from the default 10 %. */
    int hint = path_loss_hint(&cfgs[p], 70 + (uint64_t)p, n / (RATE / 50));
    free(enc.pkts);
    free(enc.frame_of);
    enc = (encoded){0};
    if (hint < 0 || encode_all(x, n, hint, &enc) != 0) {
      code = 1;
      break;
    }
    /* mode 0: 20 ms device frames, 1: 10 ms. */
    double corr[2] = {0}, delay[2] = {0}, short_corr[2] = {0}, concealed[2] = {0}, fec[2] = {0};
    for (int mode = 0; mode < 2 && code == 0; mode++) {
      tally t = {0};
      for (int ph = 0; ph < N_PHASES && code == 0; ph++) {
        int64_t phase_us = (int64_t)ph * PACKET_US / N_PHASES;
        if (run_once(x, n, xd, &enc, y, yd, &cfgs[p], 70 + (uint64_t)p, mode == 1 ? 10 : 20,
                     phase_us, &t) != 0) code = 1;
      }
      if (code) break;
      corr[mode] = t.pieces ? t.corr_sum / (double)t.pieces : 0;
      delay[mode] = t.pieces ? t.delay_sum_ms / (double)t.pieces : 0;
      short_corr[mode] = t.short_pieces ? t.short_corr_sum / (double)t.short_pieces : 0;
      concealed[mode] = t.sent ? 100.0 * t.concealed_frames / (double)t.sent : 0;
      fec[mode] = t.sent ? 100.0 * t.fec_frames / (double)t.sent : 0;
      bench_row_begin(rep);
      bench_field_str(rep, "path", names[p]);
      bench_field_str(rep, "mode", mode == 1 ? "10ms-ticks" : "20ms-ticks");
      bench_field_num(rep, "mean_delay_ms", delay[mode], 1);
      bench_field_num(rep, "piecewise_corr", corr[mode], 3);
      bench_field_num(rep, "concealed_pct", concealed[mode], 2);
      bench_field_int(rep, "fec_loss_hint_pct", hint);
      bench_field_num(rep, "fec_pct", fec[mode], 2);
      bench_row_end(rep);
    }
    if (code == 0)
      bench_note(rep, "%s: 80 ms pieces: %.3f on 20 ms ticks, %.3f on 10 ms ticks", names[p], short_corr[0],
                 short_corr[1]);
  }
  bench_note(rep, "%s x %d, 20 ms packets on 20 or 10 ms device frames at 48 kHz, %d sender-clock phases pooled;"
                  " piecewise_corr: 200 ms pieces at their own best lag; mean_delay_ms: piece lag less phase,"
                  " algorithmic delays and mean network transit (buffering only); fec_loss_hint_pct: the"
                  " encoder's FEC planned for the loss the path's per-second reports show (parley__loss_hint_update,"
                  " as a call does), fec_pct: packets rebuilt from FEC, %% of sent", clip, repeat, N_PHASES);
  free(enc.pkts);
  free(enc.frame_of);
  free(x);
  free(y);
  free(xd);
  free(yd);
  return code;
}

BENCH_SUITE(quality, "quality", "speech quality and delay of the receive chain's playout on impaired paths",
            run_quality)
