/* test_interop_aiortc.c: parley against an independent WebRTC stack, aiortc (Debian python3-aiortc: its
 * own ICE, DTLS-SRTP, RTP and Opus), driven by tests/interop/aiortc_peer.py. Both offer/answer
 * directions: speech goes both ways and each side's recording is correlated with what the other sent
 * (the other fixture is the control); aiortc closing its connection (DTLS close_notify, RTCP BYE) is
 * parley's track-stopped(bye) and, after parley's hang-up, closed; so is its close_notify alone (its
 * DTLS transport stopped, no RTCP BYE); aiortc killed (SIGKILL) is parley's interrupted.
 *
 * aiortc does not use loopback addresses: each test runs in a network namespace of its own (unshare;
 * the Criterion test process is alone in it, and it vanishes with that process) with a veth pair whose
 * two ends are both here (accept_local lets each end take packets from the other's local address). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <sndfile.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "interop_helpers.h"
#include "parley/parley.h"

#define AIORTC_PEER PARLEY_TEST_DATA "/../interop/aiortc_peer.py"
#define WEBRTCBIN_PEER PARLEY_TEST_DATA "/../interop/webrtcbin_peer.py"

/* The peer program of this test (both speak the same stdio protocol) and its name in messages. */
static const char *g_peer = AIORTC_PEER, *g_name = "aiortc";
static bool g_sends_bye = true; /* the peer's close is a BYE parley sees */

static void private_network(void) {
  cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): run as root");
  int r = system("ip link set lo up && ip link add pa0 type veth peer name pa1 && "
                 "ip addr add 10.77.0.1/24 dev pa0 && ip addr add 10.77.0.2/24 dev pa1 && "
                 "ip link set pa0 up && ip link set pa1 up && "
                 "sysctl -q -w net.ipv4.conf.pa0.accept_local=1 net.ipv4.conf.pa1.accept_local=1");
  cr_assert_eq(r, 0, "veth set-up failed");
}

typedef struct rec {
  pthread_mutex_t mu;
  int count[PARLEY_EVENT_KIND_COUNT];
  parley_stop_reason last_stop;
  parley_peer_state last_peer;
  int64_t interrupted_us, stopped_us; /* the events' time_us */
} rec;

static void on_event(const parley_event *ev, void *user) {
  rec *r = user;
  pthread_mutex_lock(&r->mu);
  r->count[ev->kind]++;
  if (ev->kind == PARLEY_EVENT_TRACK_STOPPED) {
    r->last_stop = ev->reason;
    r->stopped_us = ev->time_us;
  }
  if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED) r->last_peer = ev->peer_state;
  if (ev->kind == PARLEY_EVENT_INTERRUPTED && !r->interrupted_us) r->interrupted_us = ev->time_us;
  pthread_mutex_unlock(&r->mu);
}

static int count(rec *r, parley_event_kind k) {
  pthread_mutex_lock(&r->mu);
  int n = r->count[k];
  pthread_mutex_unlock(&r->mu);
  return n;
}

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void tmp_wav(char *path) {
  int fd = mkstemps(path, 4);
  cr_assert_geq(fd, 0);
  close(fd);
}

typedef struct rig {
  parley_engine *e;
  parley_call *c;
  rec r;
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
  th_peer p;
  char parley_out[64], aiortc_out[64];
} rig;

/* parley talks speech A and records; aiortc talks speech B and records. */
static void rig_start(rig *g, bool parley_offers, const char *end, const char *seconds) {
  private_network();
  snprintf(g->parley_out, sizeof g->parley_out, "/tmp/parley_aio_XXXXXX.wav");
  snprintf(g->aiortc_out, sizeof g->aiortc_out, "/tmp/parley_aio_peer_XXXXXX.wav");
  tmp_wav(g->parley_out);
  tmp_wav(g->aiortc_out);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ipv6 = false;
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = PARLEY_TEST_DATA "/speech_a_48k.wav";
  cfg.output_file = g->parley_out;
  cfg.input_file_at_media = true; /* the speech starts when the call's media does */
  cfg.echo_cancellation = cfg.noise_suppression = false; /* what was sent is the fixture itself */
  cfg.opus_dtx = false; /* aiortc records only the frames it receives: keep its recording in real time */
  cr_assert_eq(parley_engine_new(&cfg, &g->e), 0);
  cr_assert_eq(parley_call_new(g->e, &g->c), 0);
  memset(&g->r, 0, sizeof g->r);
  pthread_mutex_init(&g->r.mu, NULL);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
    cr_assert_gt(g->ids[k] = parley_call_on(g->c, (parley_event_kind)k, on_event, &g->r), 0);

  char *argv[] = {"python3", (char *)g_peer, "--role", parley_offers ? "answer" : "offer", "--wav",
                  PARLEY_TEST_DATA "/speech_b_48k.wav", "--out", g->aiortc_out, "--seconds", (char *)seconds,
                  "--end", (char *)end, NULL};
  th_peer_start(&g->p, argv);
  static char offer[16384], answer[16384];
  parley_sdp_error se;
  if (parley_offers) {
    cr_assert_gt(parley_call_create_offer(g->c, offer, sizeof offer), 0);
    cr_assert_eq(parley_call_set_local_description(g->c, offer), 0);
    fprintf(g->p.to, "%sEND\n", offer);
    fflush(g->p.to);
    cr_assert(th_read_until_end(g->p.from, answer, sizeof answer), "aiortc wrote no answer");
    cr_assert_eq(parley_call_set_remote_description(g->c, PARLEY_SDP_ANSWER, answer, &se), 0, "%s\n%s", se.message,
                 answer);
  } else {
    cr_assert(th_read_until_end(g->p.from, offer, sizeof offer), "aiortc wrote no offer");
    cr_assert_eq(parley_call_set_remote_description(g->c, PARLEY_SDP_OFFER, offer, &se), 0, "%s\n%s", se.message,
                 offer);
    cr_assert_gt(parley_call_create_answer(g->c, answer, sizeof answer), 0);
    cr_assert_eq(parley_call_set_local_description(g->c, answer), 0);
    fprintf(g->p.to, "%sEND\n", answer);
    fflush(g->p.to);
  }
  cr_assert_eq(parley_call_start(g->c), 0);
  char line[256] = "";
  if (!fgets(line, sizeof line, g->p.from)) line[0] = '\0';
  cr_assert(strncmp(line, "connected", 9) == 0, "aiortc: %s", line);
}

static void rig_free(rig *g) {
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) cr_expect_eq(parley_call_off(g->c, g->ids[k]), 0);
  cr_expect_eq(parley_call_free(g->c), 0);
  parley_engine_free(g->e);
  unlink(g->parley_out);
  unlink(g->aiortc_out);
}

/* A WAV file of any channel count, mixed down to mono (aiortc records what it decodes: stereo). */
static float *read_mono(const char *path, size_t *n, int *rate_hz) {
  SF_INFO info = {0};
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return NULL;
  float *all = calloc((size_t)info.frames * (size_t)info.channels + 1, sizeof *all);
  float *x = calloc((size_t)info.frames + 1, sizeof *x);
  sf_count_t got = all && x ? sf_readf_float(f, all, info.frames) : 0;
  for (sf_count_t i = 0; i < got; i++) {
    for (int ch = 0; ch < info.channels; ch++) x[i] += all[i * info.channels + ch];
    x[i] /= (float)info.channels;
  }
  *n = (size_t)got;
  *rate_hz = info.samplerate;
  sf_close(f);
  free(all);
  return x;
}

/* The recording at path holds speech `said` (piecewise correlation) and not `other`. */
static void heard(const char *who, const char *path, const char *said, const char *other) {
  size_t nx, ny, nz;
  int rate;
  float *x = th_load_wav(said, &nx, &rate);
  float *z = th_load_wav(other, &nz, &rate);
  float *y = read_mono(path, &ny, &rate);
  cr_assert(x && z && y, "%s: cannot read %s", who, path);
  cr_assert_eq(rate, 48000, "%s", who);
  double peak = th_piecewise_speech(x, nx, y, ny), control = th_piecewise_speech(z, nz, y, ny);
  cr_log_info("%s heard %s: piecewise correlation %.3f (other clip %.3f), %.1f s recorded", who, said, peak,
              control, (double)ny / 48000);
  cr_expect_geq(peak, 0.6, "%s: correlation %.3f", who, peak);
  cr_expect_lt(control, peak * 0.6, "%s: control %.3f vs %.3f", who, control, peak);
  free(x);
  free(y);
  free(z);
}

static void answer_or_offer_then_close(bool parley_offers) {
  rig g;
  rig_start(&g, parley_offers, "close", "8");
  char line[256] = "";
  if (!fgets(line, sizeof line, g.p.from)) line[0] = '\0';
  cr_expect_eq(count(&g.r, PARLEY_EVENT_TRACK_STARTED), 1, "parley hears aiortc");
  int64_t closed_at = mono_us();
  cr_expect(strncmp(line, "closed", 6) == 0, "aiortc: %s", line);
  cr_expect_eq(th_peer_wait(&g.p, 20), 0, "aiortc exit status");
  for (int i = 0; i < 300 && count(&g.r, PARLEY_EVENT_TRACK_STOPPED) == 0; i++)
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  cr_expect_eq(count(&g.r, PARLEY_EVENT_TRACK_STOPPED), 1);
  if (g_sends_bye) { /* aiortc closes with DTLS close_notify and RTCP BYE */
    cr_expect_eq(g.r.last_stop, PARLEY_STOP_BYE, "%s", parley_stop_reason_name(g.r.last_stop));
    cr_expect_eq(count(&g.r, PARLEY_EVENT_INTERRUPTED), 0);
  }
  /* webrtcbin (GStreamer 1.22) ends its stream and stops without a BYE or close_notify that parley sees:
   * to parley that is a peer gone quiet or away, whatever reason it gives. */
  cr_log_info("%s closed -> parley track-stopped (%s) %.1f ms after it said so", g_name,
              parley_stop_reason_name(g.r.last_stop), (double)(g.r.stopped_us - closed_at) / 1000);
  cr_assert_eq(parley_call_hangup(g.c), 0);
  for (int i = 0; i < 300 && count(&g.r, PARLEY_EVENT_CLOSED) == 0; i++)
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  cr_expect_eq(count(&g.r, PARLEY_EVENT_CLOSED), 1);
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(g.c, &st), 0);
  cr_log_info("parley received %llu packets (%lld lost), concealed %llu ms, jitter %.1f ms, buffer %.1f ms",
              (unsigned long long)st.packets_received, (long long)st.packets_lost,
              (unsigned long long)st.concealed_ms, st.jitter_ms, st.jitter_buffer_ms);
  parley_engine_free(g.e); /* finalises parley's WAV */
  g.e = NULL;
  heard("parley", g.parley_out, "speech_b_48k.wav", "speech_a_48k.wav");
  heard(g_name, g.aiortc_out, "speech_a_48k.wav", "speech_b_48k.wav");
  unlink(g.parley_out);
  unlink(g.aiortc_out);
}

Test(interop_aiortc, parley_answers_speech_both_ways_then_aiortc_closes, .timeout = 120) {
  answer_or_offer_then_close(false);
}

Test(interop_aiortc, parley_offers_speech_both_ways_then_aiortc_closes, .timeout = 120) {
  answer_or_offer_then_close(true);
}

static void killed_is_interrupted(void) {
  rig g;
  rig_start(&g, true, "hang", "2");
  char line[256] = "";
  if (!fgets(line, sizeof line, g.p.from)) line[0] = '\0';
  cr_assert(strncmp(line, "hanging", 7) == 0, "aiortc: %s", line);
  cr_expect_eq(count(&g.r, PARLEY_EVENT_TRACK_STARTED), 1, "parley hears aiortc");
  int64_t killed_at = mono_us();
  kill(g.p.pid, SIGKILL);
  cr_expect_eq(th_peer_wait(&g.p, 10), -1);
  for (int i = 0; i < 500 && count(&g.r, PARLEY_EVENT_INTERRUPTED) == 0; i++)
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  cr_assert_eq(count(&g.r, PARLEY_EVENT_INTERRUPTED), 1);
  cr_log_info("%s killed -> parley interrupted after %.0f ms", g_name, (double)(g.r.interrupted_us - killed_at) / 1000);
  cr_expect_eq(count(&g.r, PARLEY_EVENT_TRACK_STOPPED) > 0 ? g.r.last_stop : PARLEY_STOP_PEER_GONE,
               PARLEY_STOP_PEER_GONE, "no bye from a killed peer");
  rig_free(&g);
}

Test(interop_aiortc, aiortc_killed_is_interrupted, .timeout = 120) { killed_is_interrupted(); }

/* With GStreamer's webrtcbin (libnice ICE, its own DTLS-SRTP) answering parley's offer and offering to
 * parley: run by .ci/run (PARLEY_INTEROP_WEBRTCBIN=1), skipped in make test, which has the aiortc ones. */
static void use_webrtcbin(void) {
  if (!getenv("PARLEY_INTEROP_WEBRTCBIN")) cr_skip_test("webrtcbin interop runs in .ci/run (PARLEY_INTEROP_WEBRTCBIN=1)");
  g_peer = WEBRTCBIN_PEER;
  g_name = "webrtcbin";
  g_sends_bye = false;
}

Test(interop_webrtcbin, parley_offers_speech_both_ways_then_webrtcbin_closes, .timeout = 120) {
  use_webrtcbin();
  answer_or_offer_then_close(true);
}

Test(interop_webrtcbin, parley_answers_speech_both_ways_then_webrtcbin_closes, .timeout = 120) {
  use_webrtcbin();
  answer_or_offer_then_close(false);
}

Test(interop_webrtcbin, webrtcbin_killed_is_interrupted, .timeout = 120) {
  use_webrtcbin();
  killed_is_interrupted();
}

/* aiortc closes only its DTLS transport: its close_notify, with no RTCP BYE beside it, is parley's
 * track-stopped(bye), and no interruption follows though nothing more arrives. */
Test(interop_aiortc, dtls_close_notify_alone_is_bye, .timeout = 120) {
  rig g;
  rig_start(&g, false, "dtls-close", "2");
  char line[256] = "";
  if (!fgets(line, sizeof line, g.p.from)) line[0] = '\0';
  cr_assert(strncmp(line, "dtls-closed", 11) == 0, "aiortc: %s", line);
  int64_t closed_at = mono_us();
  for (int i = 0; i < 300 && count(&g.r, PARLEY_EVENT_TRACK_STOPPED) == 0; i++)
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  cr_assert_eq(count(&g.r, PARLEY_EVENT_TRACK_STOPPED), 1);
  cr_expect_eq(g.r.last_stop, PARLEY_STOP_BYE, "%s", parley_stop_reason_name(g.r.last_stop));
  cr_log_info("aiortc's close_notify -> parley bye %.1f ms after aiortc said so",
              (double)(g.r.stopped_us - closed_at) / 1000);
  nanosleep(&(struct timespec){1, 500000000L}, NULL); /* longer than the liveness monitor's lost_after */
  cr_expect_eq(count(&g.r, PARLEY_EVENT_INTERRUPTED), 0, "a peer that hung up is not an interruption");
  kill(g.p.pid, SIGKILL);
  (void)th_peer_wait(&g.p, 10);
  cr_assert_eq(parley_call_hangup(g.c), 0);
  for (int i = 0; i < 300 && count(&g.r, PARLEY_EVENT_CLOSED) == 0; i++)
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  cr_expect_eq(count(&g.r, PARLEY_EVENT_CLOSED), 1);
  rig_free(&g);
}
