/* bench_stages.c: parley-bench stages: the cost of each engine stage per 10 ms frame, and of the full
 * send and receive chains, with the bare library calls each stage wraps beside it, so the cost of our
 * glue shows as a ratio. Each row times FRAMES frames one by one after WARMUP untimed ones and reports
 * the median and the 99th percentile. The input is a synthetic voiced signal (harmonics of a 120 Hz
 * pitch under a 4 Hz syllable envelope, plus noise), so the codec and preprocessor do real work. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <opus/opus.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "engine/codec.h"
#include "engine/echo.h"
#include "engine/jitter.h"
#include "engine/mixer.h"
#include "engine/pipeline.h"
#include "engine/resampler.h"
#include "base/rng.h"
#include "bench/stages_gst.h"
#include "transport/dtls.h"
#include "transport/srtp.h"

#define RATE 48000
#define FRAME 480 /* 10 ms at 48 kHz */
#define WARMUP 200
#define FRAMES 3000
#define SIGNAL_FRAMES 500 /* 5 s of input, cycled */

static float *voice;   /* SIGNAL_FRAMES * FRAME samples at 48 kHz */
static float *voice44; /* the same at 44.1 kHz */
static int64_t samples[FRAMES];


static void make_signals(void) {
  size_t n = (size_t)SIGNAL_FRAMES * FRAME;
  voice = malloc(n * sizeof *voice);
  voice44 = malloc(n * sizeof *voice44);
  parley__rng rng;
  parley__rng_seed(&rng, 1);
  for (size_t i = 0; i < n; i++) {
    double t = (double)i / RATE, env = 0.5 + 0.5 * sin(2 * 3.14159265 * 4 * t), x = 0;
    for (int h = 1; h <= 20; h++) x += sin(2 * 3.14159265 * 120 * h * t + h) / h;
    voice[i] = (float)(0.2 * env * x / 3 + 0.003 * parley__rng_gauss(&rng));
    voice44[i] = voice[i * 44100 / RATE];
  }
}

static const float *frame_at(int k) { return voice + (size_t)(k % SIGNAL_FRAMES) * FRAME; }

typedef struct timing {
  double median_ns, p99_ns;
} timing;

/* Bare-library medians, kept for the chains' baseline (the sum of what each chain wraps). */
static timing bare_echo, bare_encode, bare_decode;

static timing summarise(void) {
  timing t;
  t.median_ns = (double)bench_quantile_ns(samples, FRAMES, 0.5);
  t.p99_ns = (double)bench_quantile_ns(samples, FRAMES, 0.99);
  return t;
}

static void report(bench_report *rep, const char *stage, timing ours, const char *bare_name, timing bare) {
  bench_row_begin(rep);
  bench_field_str(rep, "stage", stage);
  bench_field_num(rep, "median_ns", ours.median_ns, 0);
  bench_field_num(rep, "p99_ns", ours.p99_ns, 0);
  if (bare_name) { /* stages of our own (jitter buffer, mixer) wrap no library: no baseline columns */
    bench_field_str(rep, "wraps", bare_name);
    bench_field_num(rep, "bare_median_ns", bare.median_ns, 0);
    bench_field_num(rep, "glue_ratio", bare.median_ns > 0 ? ours.median_ns / bare.median_ns : 0, 2);
  }
  bench_row_end(rep);
}

/* Times body(k) for WARMUP + FRAMES frames; the macro keeps the timed region free of calls. */
#define TIME_FRAMES(...)                                                                          \
  do {                                                                                             \
    for (int k = 0; k < WARMUP + FRAMES; k++) {                                                    \
      int64_t t0 = bench_now_ns();                                                                 \
      __VA_ARGS__;                                                                                 \
      int64_t dt = bench_now_ns() - t0;                                                            \
      if (k >= WARMUP) samples[k - WARMUP] = dt;                                                   \
    }                                                                                              \
  } while (0)

static void bench_resampler(bench_report *rep) {
  float out[1024];
  parley__resampler *r = parley__resampler_new(44100, RATE, PARLEY__RESAMPLER_QUALITY_DEFAULT, NULL);
  TIME_FRAMES(parley__resampler_process(r, voice44 + (size_t)(k % SIGNAL_FRAMES) * 441, 441, out, 1024));
  timing ours = summarise();
  parley__resampler_free(r);
  int err = 0;
  SpeexResamplerState *s = speex_resampler_init(1, 44100, RATE, PARLEY__RESAMPLER_QUALITY_DEFAULT, &err);
  TIME_FRAMES({
    spx_uint32_t in_len = 441, out_len = 1024;
    speex_resampler_process_float(s, 0, voice44 + (size_t)(k % SIGNAL_FRAMES) * 441, &in_len, out, &out_len);
  });
  speex_resampler_destroy(s);
  bench_use(out);
  report(rep, "resample 44.1k->48k", ours, "speex_resampler_process_float", summarise());
}

static void bench_echo(bench_report *rep) {
  parley__echo_config cfg;
  parley__echo_config_init(&cfg);
  cfg.frame_samples = FRAME;
  parley__echo *e = parley__echo_new(&cfg, NULL);
  float out[FRAME];
  bool voice_flag;
  TIME_FRAMES({
    parley__echo_playback(e, frame_at(k + 37), FRAME);
    parley__echo_capture(e, frame_at(k), out, &voice_flag);
  });
  timing ours = summarise();
  parley__echo_free(e);

  /* The same speexdsp work on int16 buffers: echo cancellation, then the preprocessor with the stage's
   * default settings (denoise -15 dB, residual echo suppression -40/-15 dB, AGC off) and its VAD input:
   * the speech probability (the stage derives VAD from it rather than switching speexdsp's VAD on). */
  SpeexEchoState *aec = speex_echo_state_init(FRAME, cfg.tail_ms * RATE / 1000);
  int rate = RATE, on = 1, off = 0, v;
  speex_echo_ctl(aec, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
  SpeexPreprocessState *pp = speex_preprocess_state_init(FRAME, RATE);
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_DENOISE, &on);
  v = cfg.noise_suppress_db;
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &v);
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_AGC, &off);
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, aec);
  v = cfg.echo_suppress_db;
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &v);
  v = cfg.echo_suppress_active_db;
  speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, &v);
  static spx_int16_t near16[SIGNAL_FRAMES * FRAME], out16[FRAME];
  for (size_t i = 0; i < (size_t)SIGNAL_FRAMES * FRAME; i++) near16[i] = (spx_int16_t)(voice[i] * 32767);
  TIME_FRAMES({
    speex_echo_cancellation(aec, near16 + (size_t)(k % SIGNAL_FRAMES) * FRAME,
                            near16 + (size_t)((k + 37) % SIGNAL_FRAMES) * FRAME, out16);
    speex_preprocess_run(pp, out16);
    spx_int32_t prob;
    speex_preprocess_ctl(pp, SPEEX_PREPROCESS_GET_PROB, &prob);
    bench_use(&prob);
  });
  speex_preprocess_state_destroy(pp);
  speex_echo_state_destroy(aec);
  bench_use(out);
  bare_echo = summarise();
  report(rep, "echo cancel + preprocess", ours, "speex_echo_cancellation+speex_preprocess_run", bare_echo);
}

static void bench_opus(bench_report *rep) {
  parley__encoder_config cfg;
  parley__encoder_config_init(&cfg);
  cfg.frame_ms = 10;
  parley__encoder *enc = parley__encoder_new(&cfg, NULL);
  static uint8_t pkts[SIGNAL_FRAMES][PARLEY__OPUS_MAX_PACKET];
  static int lens[SIGNAL_FRAMES];
  TIME_FRAMES({
    int n = parley__encoder_encode(enc, frame_at(k), pkts[k % SIGNAL_FRAMES], PARLEY__OPUS_MAX_PACKET);
    lens[k % SIGNAL_FRAMES] = n;
  });
  timing ours_enc = summarise();
  parley__encoder_free(enc);

  int err = 0;
  OpusEncoder *oe = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  opus_encoder_ctl(oe, OPUS_SET_BITRATE(cfg.bitrate_bps));
  opus_encoder_ctl(oe, OPUS_SET_COMPLEXITY(cfg.complexity));
  opus_encoder_ctl(oe, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(oe, OPUS_SET_PACKET_LOSS_PERC(cfg.expected_loss_pct));
  opus_encoder_ctl(oe, OPUS_SET_DTX(1));
  opus_encoder_ctl(oe, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  static uint8_t scratch[PARLEY__OPUS_MAX_PACKET];
  static int sink;
  TIME_FRAMES(sink += opus_encode_float(oe, frame_at(k), FRAME, scratch, sizeof scratch));
  bench_use(&sink);
  opus_encoder_destroy(oe);
  bare_encode = summarise();
  report(rep, "opus encode 10 ms", ours_enc, "opus_encode_float", bare_encode);

  static float pcm[RATE / 1000 * PARLEY__OPUS_MAX_FRAME_MS];
  parley__decoder *dec = parley__decoder_new(RATE, 1, NULL);
  TIME_FRAMES({
    int i = k % SIGNAL_FRAMES;
    if (lens[i] > 0) parley__decoder_decode(dec, pkts[i], (size_t)lens[i], pcm);
    else parley__decoder_conceal(dec, FRAME, pcm);
  });
  timing ours_dec = summarise();
  parley__decoder_free(dec);
  OpusDecoder *od = opus_decoder_create(RATE, 1, &err);
  TIME_FRAMES({
    int i = k % SIGNAL_FRAMES;
    sink += opus_decode_float(od, lens[i] > 0 ? pkts[i] : NULL, lens[i] > 0 ? lens[i] : 0, pcm, FRAME, 0);
  });
  opus_decoder_destroy(od);
  bench_use(pcm);
  bare_decode = summarise();
  report(rep, "opus decode 10 ms", ours_dec, "opus_decode_float", bare_decode);
}

static void bench_jitter(bench_report *rep) {
  parley__jitter_config cfg = {.frame_samples = FRAME, .tick_samples = FRAME};
  parley__jitter *j = parley__jitter_new(&cfg, NULL);
  uint8_t payload[80] = {0};
  parley__jitter_frame f;
  parley__rng rng;
  parley__rng_seed(&rng, 2);
  TIME_FRAMES({
    int64_t now = (int64_t)k * 10000;
    parley__jitter_put(j, (uint16_t)k, (uint32_t)k * FRAME, 1, false, payload, sizeof payload,
                       now + (int64_t)(parley__rng_uniform(&rng) * 5000));
    parley__jitter_get(j, now, 0, &f);
  });
  parley__jitter_free(j);
  report(rep, "jitter put+get", summarise(), NULL, (timing){0, 0});
}

static void bench_mixer(bench_report *rep) {
  parley__mixer *m = parley__mixer_new(8, FRAME, 3);
  for (uint32_t id = 1; id <= 4; id++) parley__mixer_add(m, id);
  TIME_FRAMES({
    for (uint32_t id = 1; id <= 4; id++) parley__mixer_put(m, id, frame_at(k + (int)id * 50), true);
    parley__mixer_run(m);
  });
  parley__mixer_free(m);
  report(rep, "mixer 4 talkers", summarise(), NULL, (timing){0, 0});
}

/* The chains at a 48 kHz device with 10 ms frames: send = echo + preprocess + encode; receive =
 * jitter + decode, fed the send chain's packets as if the network were clean. */
static void bench_chains(bench_report *rep) {
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.frame_ms = 10;
  parley__send_chain *s = parley__send_chain_new(&sc, NULL);
  static parley__send_packet out[SIGNAL_FRAMES][PARLEY__SEND_MAX_PACKETS];
  static int counts[SIGNAL_FRAMES];
  TIME_FRAMES(counts[k % SIGNAL_FRAMES] =
                  parley__send_chain_process(s, frame_at(k), out[k % SIGNAL_FRAMES], PARLEY__SEND_MAX_PACKETS));
  timing bare_send = {bare_echo.median_ns + bare_encode.median_ns, 0};
  report(rep, "send chain (48k, 10 ms)", summarise(), "echo+preprocess+encode (sum)", bare_send);

  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.frame_ms = 10;
  parley__recv_chain *r = parley__recv_chain_new(&rc, NULL);
  parley__recv_chain_link_echo(r, parley__send_chain_echo(s));
  float pcm[FRAME];
  uint16_t seq = 0;
  TIME_FRAMES({
    int i = k % SIGNAL_FRAMES;
    int64_t now = (int64_t)k * 10000;
    for (int p = 0; p < counts[i]; p++)
      parley__recv_chain_put(r, seq++, out[i][p].timestamp + (uint32_t)(k / SIGNAL_FRAMES) * SIGNAL_FRAMES * FRAME,
                             7, out[i][p].marker, out[i][p].data, out[i][p].len, now);
    parley__recv_chain_process(r, now, pcm);
  });
  bench_use(pcm);
  report(rep, "receive chain (48k, 10 ms)", summarise(), "opus_decode_float", bare_decode);
  parley__recv_chain_free(r);
  parley__send_chain_free(s);
}

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The send chain beside GStreamer's doing the same work (stages_gst.c) on the same 30 s signal, both as
 * CPU time (a loaded machine's waiting counts for neither): parley's is this thread's CPU time for the
 * send chain plus an RTP header and SRTP on each packet (the GStreamer chain ends in rtpopuspay and
 * srtpenc); GStreamer's comes from its process's CPU time. */
static void bench_vs_gstreamer(bench_report *rep) {
  enum { GST_FRAMES = 3000 }; /* 30 s: the signal cycled */
  uint8_t key[64];
  memset(key, 7, sizeof key);
  parley__srtp *tx = parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_OUTBOUND, key,
                                      parley__srtp_key_salt_len(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80), NULL);
  parley__send_config sc;
  parley__send_config_init(&sc);
  sc.frame_ms = 10;
  parley__send_chain *s = parley__send_chain_new(&sc, NULL);
  float *signal = malloc((size_t)GST_FRAMES * FRAME * sizeof *signal);
  if (!tx || !s || !signal) {
    bench_note(rep, "send chain vs gstreamer: out of memory");
    goto out;
  }
  for (int k = 0; k < GST_FRAMES; k++) memcpy(signal + (size_t)k * FRAME, frame_at(k), FRAME * sizeof *signal);
  static parley__send_packet pkts[PARLEY__SEND_MAX_PACKETS];
  uint8_t buf[1500];
  uint16_t seq = 0;
  int64_t t0 = thread_cpu_ns();
  for (int k = 0; k < GST_FRAMES; k++) {
    int n = parley__send_chain_process(s, signal + (size_t)k * FRAME, pkts, PARLEY__SEND_MAX_PACKETS);
    for (int p = 0; p < n; p++, seq++) {
      buf[0] = 0x80, buf[1] = 111, buf[2] = (uint8_t)(seq >> 8), buf[3] = (uint8_t)seq;
      memcpy(buf + 4, &pkts[p].timestamp, 4);
      memset(buf + 8, 0x5a, 4);
      memcpy(buf + 12, pkts[p].data, pkts[p].len);
      parley__srtp_protect_rtp(tx, buf, 12 + pkts[p].len, sizeof buf);
    }
  }
  double ours = (double)(thread_cpu_ns() - t0) / GST_FRAMES;
  double gst_ns = 0;
  char why[200] = "";
  if (bench_gst_send_chain(signal, GST_FRAMES, FRAME, &gst_ns, why, sizeof why) < 0) {
    bench_note(rep, "send chain vs gstreamer: skipped: %s", why);
    goto out;
  }
  bench_row_begin(rep);
  bench_field_str(rep, "stage", "send chain vs gstreamer");
  bench_field_num(rep, "parley_ns_per_frame", ours, 0);
  bench_field_num(rep, "gstreamer_ns_per_frame", gst_ns, 0);
  bench_field_num(rep, "ratio", gst_ns > 0 ? ours / gst_ns : 0, 2);
  bench_row_end(rep);
  bench_note(rep, "send chain vs gstreamer: CPU time per 10 ms frame over the same 30 s signal; parley = send chain "
                  "(echo 200 ms tail + preprocess + Opus 32 kbit/s, FEC, DTX) + RTP + SRTP; GStreamer = webrtcdsp (AEC, NS) + "
                  "opusenc + rtpopuspay + srtpenc, its process's CPU time less the same pipeline without them, best of 3");
out:
  free(signal);
  parley__send_chain_free(s);
  parley__srtp_free(tx);
}

/* A call's DTLS-SRTP handshake, both sides in one thread through memory (no network wait): what the
 * network thread spends per call setting up its keys (ECDHE and ECDSA P-256 each way, the fingerprint
 * check, the key export), not per frame. */
#define HANDSHAKES 200
typedef struct dtls_end {
  parley__dtls *d;
  uint8_t q[8][1500]; /* datagrams for this end, in order */
  size_t len[8];
  int n;
} dtls_end;

static void dtls_to(void *ctx, const uint8_t *buf, size_t len) {
  dtls_end *to = ctx;
  if (to->n < 8 && len <= sizeof to->q[0]) {
    memcpy(to->q[to->n], buf, len);
    to->len[to->n++] = len;
  }
}

static int64_t one_handshake(parley__dtls_cert *const certs[2]) {
  dtls_end e[2];
  memset(e, 0, sizeof e);
  int64_t t0 = bench_now_ns();
  for (int i = 0; i < 2; i++) {
    char fp[PARLEY__DTLS_FINGERPRINT_MAX];
    snprintf(fp, sizeof fp, "sha-256 %s", parley__dtls_cert_fingerprint(certs[1 - i]));
    parley__dtls_config c = {.role = i ? PARLEY__DTLS_SERVER : PARLEY__DTLS_CLIENT, .cert = certs[i],
                             .send = dtls_to, .ctx = &e[1 - i]};
    (void)parley__dtls_fingerprint_parse(fp, strlen(fp), &c.peer);
    e[i].d = parley__dtls_new(&c, NULL);
  }
  (void)parley__dtls_start(e[1].d, 0);
  (void)parley__dtls_start(e[0].d, 0);
  for (int round = 0; round < 16; round++) {
    for (int i = 0; i < 2; i++) {
      int n = e[i].n;
      e[i].n = 0;
      uint8_t buf[1500];
      for (int k = 0; k < n; k++) {
        memcpy(buf, e[i].q[k], e[i].len[k]);
        (void)parley__dtls_receive(e[i].d, buf, e[i].len[k], 0);
      }
    }
    if (parley__dtls_get_state(e[0].d) == PARLEY__DTLS_CONNECTED &&
        parley__dtls_get_state(e[1].d) == PARLEY__DTLS_CONNECTED)
      break;
  }
  bool ok = parley__dtls_get_state(e[0].d) == PARLEY__DTLS_CONNECTED;
  parley__srtp_suite suite;
  uint8_t a[PARLEY__SRTP_MAX_KEY_SALT_LEN], b[PARLEY__SRTP_MAX_KEY_SALT_LEN];
  size_t n;
  ok = ok && parley__dtls_srtp_keys(e[0].d, &suite, a, b, &n) == 0;
  int64_t dt = bench_now_ns() - t0;
  for (int i = 0; i < 2; i++) parley__dtls_free(e[i].d);
  return ok ? dt : -1;
}

static void bench_dtls(bench_report *rep) {
  parley__dtls_cert *certs[2] = {parley__dtls_cert_new(NULL, NULL, NULL), parley__dtls_cert_new(NULL, NULL, NULL)};
  if (!certs[0] || !certs[1]) return;
  int n = 0;
  for (int k = 0; k < 20 + HANDSHAKES; k++) {
    int64_t dt = one_handshake(certs);
    if (dt < 0) break;
    if (k >= 20) samples[n++] = dt;
  }
  if (n == HANDSHAKES) {
    timing t = {(double)bench_quantile_ns(samples, (size_t)n, 0.5), (double)bench_quantile_ns(samples, (size_t)n, 0.99)};
    report(rep, "dtls handshake (per call, both ends)", t, NULL, (timing){0, 0});
  }
  parley__dtls_cert_free(certs[0]);
  parley__dtls_cert_free(certs[1]);
}

static int run_stages(bench_report *rep, int argc, char **argv) {
  (void)argc;
  (void)argv;
  make_signals();
  bench_resampler(rep);
  bench_echo(rep);
  bench_opus(rep);
  bench_jitter(rep);
  bench_mixer(rep);
  bench_chains(rep);
  bench_vs_gstreamer(rep);
  bench_dtls(rep);
  bench_note(rep, "per 10 ms frame (480 samples at 48 kHz); %d frames timed after %d warm-up; budget 10,000,000 ns",
             FRAMES, WARMUP);
  bench_note(rep, "glue_ratio = our stage / the bare library calls it wraps, same settings and input");
  bench_note(rep, "dtls handshake: once per call, not per frame: both ends' whole DTLS-SRTP handshake in memory, "
                  "%d timed after 20 warm-up", HANDSHAKES);
  free(voice);
  free(voice44);
  return 0;
}

BENCH_SUITE(stages, "stages", "cost per 10 ms frame of each stage and of the send/receive chains", run_stages)
