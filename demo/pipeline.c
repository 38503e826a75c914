/* pipeline.c: parley-pipeline, the engine-core demo: a speech file through the whole audio pipeline
 * (capture chain, Opus, a seeded lossy and jittery simulated network, jitter buffer, decode, playout)
 * in simulated time, faster than real time, and a report of what each stage did.
 * Single-threaded: the FILE device runs stepped, one frame per simulated tick. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/device.h"
#include "engine/pipeline.h"
#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/impair.h"

#define MAX_FLIGHT 1024

typedef struct flight {
  int64_t deliver_us;
  uint16_t seq;
  parley__send_packet pkt;
} flight;

typedef struct demo {
  parley__send_chain *send;
  parley__recv_chain *recv;
  parley__impair *net;
  flight *air;
  int n_air;
  uint16_t seq;
  int64_t now_us, frame_us;
  uint64_t sent, lost, send_ns, recv_ns, frames;
  int error;
  bool finished; /* the device said the input file ended */
  int device_error;
} demo;

static void on_device_event(void *user, parley__device_event ev, int err) {
  demo *d = user;
  if (ev == PARLEY__DEVICE_EV_FINISHED) d->finished = true;
  if (ev == PARLEY__DEVICE_EV_LOST) d->device_error = err ? err : PARLEY_EDEVICE;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One device period: capture through the send chain onto the simulated network, deliver what is due,
 * play one frame out. */
static void process(void *user, const float *in, float *out, size_t frames) {
  demo *d = user;
  (void)frames;
  parley__send_packet pkts[PARLEY__SEND_MAX_PACKETS];
  int64_t t0 = mono_ns();
  int n = parley__send_chain_process(d->send, in, pkts, PARLEY__SEND_MAX_PACKETS);
  int64_t t1 = mono_ns();
  if (n < 0) d->error = n;
  for (int i = 0; i < n; i++) {
    parley__impair_verdict v;
    d->sent++;
    uint16_t seq = d->seq++;
    if (parley__impair_packet(d->net, d->now_us, pkts[i].len, &v) < 0 || v.n_deliveries == 0) {
      d->lost++;
      continue;
    }
    for (int k = 0; k < v.n_deliveries && d->n_air < MAX_FLIGHT; k++)
      d->air[d->n_air++] = (flight){v.deliver_us[k], seq, pkts[i]};
  }
  int64_t t2 = mono_ns();
  for (;;) { /* deliver what is due, earliest first */
    int best = -1;
    for (int i = 0; i < d->n_air; i++)
      if (d->air[i].deliver_us <= d->now_us && (best < 0 || d->air[i].deliver_us < d->air[best].deliver_us))
        best = i;
    if (best < 0) break;
    flight f = d->air[best];
    d->air[best] = d->air[--d->n_air];
    parley__recv_chain_put(d->recv, f.seq, f.pkt.timestamp, 0x5eed, f.pkt.marker, f.pkt.data, f.pkt.len,
                           f.deliver_us);
  }
  if (parley__recv_chain_process(d->recv, d->now_us, out) < 0) d->error = PARLEY_EINVAL;
  int64_t t3 = mono_ns();
  d->send_ns += (uint64_t)(t1 - t0);
  d->recv_ns += (uint64_t)(t3 - t2);
  d->frames++;
  d->now_us += d->frame_us;
}

static parley__device *open_device(const char *in, const char *out, size_t period, demo *d, int *err) {
  parley__device_config dc;
  parley__device_config_init(&dc, PARLEY__DEVICE_FILE);
  dc.input_path = in;
  dc.output_path = out;
  dc.channels = 1;
  dc.pacing = PARLEY__DEVICE_PACE_STEPPED;
  dc.period_frames = period;
  dc.process = process;
  dc.event = on_device_event;
  dc.user = d;
  return parley__device_new(&dc, err);
}

int main(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  double delay = 40, jitter = 15, loss = 3, burst = 1.5;
  uint64_t seed = 1;
  int frame = 1; /* choice index: 20 ms */
  static const char usage[] = "parley-pipeline --in FILE.wav --out FILE.wav [options]\n"
                              "Runs a speech file through parley's audio pipeline over a simulated network, in "
                              "simulated time.";
  const parley__cli_opt opts[] = {
      {"in", PARLEY__CLI_STRING, &in, "FILE", "mono or stereo WAV (or FLAC) at 8, 16, 32, 44.1 or 48 kHz", 0, 0},
      {"out", PARLEY__CLI_STRING, &out, "FILE", "received audio, 16-bit mono WAV at the input's rate", 0, 0},
      {"frame-ms", PARLEY__CLI_CHOICE, &frame, "10|20", "frame size (default 20)", 0, 0},
      {"delay", PARLEY__CLI_DOUBLE, &delay, "MS", "one-way base delay (default 40)", 0, 10000},
      {"jitter", PARLEY__CLI_DOUBLE, &jitter, "MS", "Gaussian jitter, standard deviation (default 15)", 0, 1000},
      {"loss", PARLEY__CLI_DOUBLE, &loss, "PCT", "mean loss, bursty Gilbert-Elliott (default 3)", 0, 99},
      {"burst", PARLEY__CLI_DOUBLE, &burst, "N", "mean burst length in packets (default 1.5)", 1, 100},
      {"seed", PARLEY__CLI_U64, &seed, "N", "network seed (default 1)", 0, 0},
  };
  int first = argc;
  int parsed = parley__cli_parse(usage, opts, sizeof opts / sizeof opts[0], argc, argv, &first);
  if (parsed != 0) return parsed == 1 ? 0 : 2; /* --help, or a usage error (said, with the help) */
  if (first < argc || !in || !out) {
    if (first < argc) fprintf(stderr, "parley-pipeline: unexpected argument '%s'\n", argv[first]);
    else fprintf(stderr, "parley-pipeline: --in and --out are required\n");
    fprintf(stderr, "(see parley-pipeline --help)\n");
    return 2;
  }
  double frame_ms = frame ? 20 : 10;

  demo d = {0};
  int err = 0;
  /* Open once to learn the file's rate, then again with a period of one frame at that rate. */
  parley__device *dev = open_device(in, out, 0, &d, &err);
  if (!dev) {
    fprintf(stderr, "parley-pipeline: %s: %s\n", in, parley_strerror(err));
    return 1;
  }
  int rate = parley__device_rate_hz(dev);
  parley__device_free(dev);
  dev = open_device(in, out, (size_t)(rate * (int)frame_ms / 1000), &d, &err);
  if (!dev) {
    fprintf(stderr, "parley-pipeline: %s: %s\n", in, parley_strerror(err));
    return 1;
  }

  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.device_rate_hz = rate;
  sc.frame_ms = (int)frame_ms;
  sc.opus.expected_loss_pct = loss > 0 ? (int)(loss + 0.5) + 5 : 0;
  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.device_rate_hz = rate;
  rc.frame_ms = (int)frame_ms;
  parley__impair_config ic = {.base_delay_us = (int64_t)(delay * 1000), .jitter_sd_us = (int64_t)(jitter * 1000)};
  if (loss > 0) {
    ic.ge_enabled = true;
    parley__impair_ge_from_mean(loss, burst, &ic.ge);
  }
  d.send = parley__send_chain_new(&sc, &err);
  if (d.send) d.recv = parley__recv_chain_new(&rc, &err);
  if (d.recv) d.net = parley__impair_new(&ic, seed, &err);
  d.air = calloc(MAX_FLIGHT, sizeof *d.air);
  if (!d.send || !d.recv || !d.net || !d.air) {
    fprintf(stderr, "parley-pipeline: cannot build the pipeline at %d Hz: %s\n", rate,
            parley_strerror(d.air ? err : PARLEY_ENOMEM));
    return 1;
  }
  parley__recv_chain_link_echo(d.recv, parley__send_chain_echo(d.send));
  d.frame_us = (int64_t)frame_ms * 1000;

  if ((err = parley__device_start(dev)) < 0) {
    fprintf(stderr, "parley-pipeline: cannot start: %s\n", parley_strerror(err));
    return 1;
  }
  /* Step until the input ends, then 600 ms more so the packets in flight and the buffer drain.
   * Bounded: at most 24 h of audio. */
  int rc_code = 0, tail_frames = (int)(600 / frame_ms);
  for (int64_t step = 0; step < (int64_t)(86400 * 1000 / frame_ms) && tail_frames > 0; step++) {
    if ((err = parley__device_step(dev)) < 0) {
      fprintf(stderr, "parley-pipeline: device: %s\n", parley_strerror(err));
      rc_code = 1;
      break;
    }
    parley__device_poll_events(dev, d.now_us);
    if (d.device_error || d.error) {
      fprintf(stderr, "parley-pipeline: %s: %s\n", d.device_error ? out : "pipeline",
              parley_strerror(d.device_error ? d.device_error : d.error));
      rc_code = 1;
      break;
    }
    if (d.finished) tail_frames--;
  }
  parley__device_stop(dev); /* finalises the output file: whatever was written is kept */
  parley__device_free(dev);

  parley__send_stats ss;
  parley__recv_stats rs;
  parley__impair_stats ns;
  parley__send_chain_stats(d.send, &ss);
  parley__recv_chain_stats(d.recv, &rs);
  parley__impair_get_stats(d.net, &ns);
  double secs = (double)d.frames * frame_ms / 1000;
  printf("parley-pipeline: %s -> %s, %d Hz, %d ms frames, %.2f s of audio in %.2f s simulated\n", in, out, rate,
         (int)frame_ms, secs, (double)d.now_us / 1e6);
  printf("network: %.0f ms delay, %.0f ms jitter (sd), %.1f %% bursty loss (mean burst %.1f), seed %llu\n\n", delay,
         jitter, loss, burst, (unsigned long long)seed);
  printf("%-26s %s\n", "stage", "what happened");
  printf("%-26s %llu frames, %llu voiced (VAD)\n", "capture + preprocess", (unsigned long long)ss.frames,
         (unsigned long long)ss.voice_frames);
  printf("%-26s %llu packets, %llu DTX frames not sent, %.1f kbit/s while sending\n", "opus encode",
         (unsigned long long)ss.packets, (unsigned long long)ss.dtx_frames,
         ss.packets ? (double)ss.bytes * 8 / ((double)ss.packets * frame_ms) : 0.0);
  printf("%-26s %llu sent, %llu lost (%.1f %%), %llu duplicated\n", "simulated network", (unsigned long long)d.sent,
         (unsigned long long)d.lost, d.sent ? 100.0 * (double)d.lost / (double)d.sent : 0.0,
         (unsigned long long)ns.duplicated);
  printf("%-26s delay now %.1f ms, target %.1f ms, jitter %.1f ms; %llu late, %llu duplicates\n", "jitter buffer",
         rs.jitter.current_delay_ms, rs.jitter.target_delay_ms, rs.jitter.jitter_ms,
         (unsigned long long)rs.jitter.late, (unsigned long long)rs.jitter.duplicates);
  printf("%-26s %llu decoded, %llu rebuilt from FEC, %llu concealed (PLC), %llu DTX silence, %llu errors\n",
         "opus decode", (unsigned long long)rs.decoded, (unsigned long long)rs.fec_recovered,
         (unsigned long long)rs.jitter.concealed, (unsigned long long)rs.jitter.silence,
         (unsigned long long)rs.decode_errors);
  printf("%-26s %llu frames, %llu samples of underrun\n", "playout", (unsigned long long)rs.frames,
         (unsigned long long)rs.underrun_samples);
  printf("%-26s %.0f ms stretched while waiting for late packets, %.0f ms cut and %.0f ms added to steer the delay\n",
         "time-scaling", (double)rs.expand_samples / 48.0, (double)rs.removed_samples / 48.0,
         (double)rs.inserted_samples / 48.0);
  printf("%-26s send chain %.1f us/frame, receive chain %.1f us/frame (budget %.0f us)\n", "cost (this machine)",
         d.frames ? (double)d.send_ns / (double)d.frames / 1000 : 0.0,
         d.frames ? (double)d.recv_ns / (double)d.frames / 1000 : 0.0, frame_ms * 1000);
  printf("%-26s send %.1f ms (resampler, preprocessor, Opus lookahead) + network %.0f ms + jitter buffer\n",
         "algorithmic delay", ss.delay_samples / 48.0, delay);

  parley__send_chain_free(d.send);
  parley__recv_chain_free(d.recv);
  parley__impair_free(d.net);
  free(d.air);
  return rc_code;
}
