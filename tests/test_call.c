#define _GNU_SOURCE
/* test_call.c: two engines in one process calling each other over real UDP on 127.0.0.1 through the
 * public API only: offer/answer, ICE, DTLS-SRTP (roles, a refused fingerprint), audio from a WAV file
 * arriving at the far side, events (track-started, bye, closed last, parley_call_off), app dispatch through
 * the event fd, app audio. */
#include <criterion/criterion.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "tests/audio_helpers.h"
#include "tests/call_helpers.h"

#define MAX_EV 512

typedef struct rec {
  pthread_mutex_t mu;
  int n;
  parley_event_kind kinds[MAX_EV];
  int count[PARLEY_EVENT_KIND_COUNT];
  parley_stop_reason last_stop;
  parley_interrupt_code last_code;
  char last_message[128];
  parley_peer_state last_peer;
  char peer_message[128]; /* the last PEER_STATE_CHANGED's message */
  parley_ice_state last_ice;
  parley_signaling_state last_sig;
  parley_ice_state ice_seq[16]; /* the ICE states in the order reported */
  int n_ice;
  bool after_closed; /* an event arrived after CLOSED */
  pthread_t thread;  /* thread the last listener ran on */
} rec;

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
}

static void on_event(const parley_event *ev, void *user) {
  rec *r = user;
  pthread_mutex_lock(&r->mu);
  if (r->count[PARLEY_EVENT_CLOSED]) r->after_closed = true;
  if (r->n < MAX_EV) r->kinds[r->n++] = ev->kind;
  r->count[ev->kind]++;
  if (ev->kind == PARLEY_EVENT_TRACK_STOPPED) r->last_stop = ev->reason;
  if (ev->kind == PARLEY_EVENT_ICE_STATE_CHANGED) {
    r->last_ice = ev->ice_state;
    if (r->n_ice < 16) r->ice_seq[r->n_ice++] = ev->ice_state;
  }
  if (ev->kind == PARLEY_EVENT_INTERRUPTED) {
    r->last_code = ev->code;
    snprintf(r->last_message, sizeof r->last_message, "%s", ev->message);
  }
  if (ev->kind == PARLEY_EVENT_SIGNALING_STATE_CHANGED) r->last_sig = ev->signaling_state;
  if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED) {
    r->last_peer = ev->peer_state;
    snprintf(r->peer_message, sizeof r->peer_message, "%s", ev->message);
  }
  cr_expect_not_null(ev->message);
  r->thread = pthread_self();
  pthread_mutex_unlock(&r->mu);
}

static int count(rec *r, parley_event_kind k) {
  pthread_mutex_lock(&r->mu);
  int n = r->count[k];
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* Registers on_event for every call event kind; ids go to ids[] (PARLEY_EVENT_CALL_KIND_COUNT entries). */
static void listen_all(parley_call *c, rec *r, int *ids) {
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    ids[k] = parley_call_on(c, (parley_event_kind)k, on_event, r);
    cr_assert_gt(ids[k], 0);
  }
}

static void unlisten_all(parley_call *c, const int *ids) {
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) cr_expect_eq(parley_call_off(c, ids[k]), 0);
}

/* A call on each engine, every event of each recorded (ra, rb; listener ids in ida, idb). */
static void new_listened_calls(parley_engine *ea, parley_engine *eb, parley_call **a, parley_call **b, rec *ra,
                               rec *rb, int *ida, int *idb) {
  cr_assert_eq(parley_call_new(ea, a), 0);
  cr_assert_eq(parley_call_new(eb, b), 0);
  rec_init(ra);
  rec_init(rb);
  listen_all(*a, ra, ida);
  listen_all(*b, rb, idb);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void loopback_cfg(parley_engine_config *cfg) {
  parley_engine_config_init(cfg);
  cfg->loopback_candidates = true;
  cfg->ipv6 = false;
}

/* Engines from ca and cb, and a call on each. */
static void two_calls(const parley_engine_config *ca, const parley_engine_config *cb, parley_engine **ea,
                      parley_engine **eb, parley_call **a, parley_call **b) {
  cr_assert_eq(parley_engine_new(ca, ea), 0);
  cr_assert_eq(parley_engine_new(cb, eb), 0);
  cr_assert_eq(parley_call_new(*ea, a), 0);
  cr_assert_eq(parley_call_new(*eb, b), 0);
}

/* a offers, b answers; both start. */
static void negotiate(parley_call *a, parley_call *b) {
  static char offer[8192], answer[8192];
  th_negotiate(a, b, offer, answer, sizeof offer);
  /* DTLS-SRTP: the offerer leaves the role to the answerer, which takes the client's (RFC 8842). */
  cr_expect(strstr(offer, "m=audio ") && strstr(offer, " UDP/TLS/RTP/SAVPF 111\r\n"), "%s", offer);
  cr_expect(strstr(offer, "a=fingerprint:sha-256 ") && strstr(offer, "a=setup:actpass\r\n"));
  cr_expect(strstr(offer, "a=crypto") == NULL, "no SDES key beside DTLS");
  cr_expect(strstr(answer, "a=fingerprint:sha-256 ") && strstr(answer, "a=setup:active\r\n"));
  cr_expect(strstr(offer, "a=candidate:") != NULL);
  cr_expect(strstr(offer, "127.0.0.1") != NULL);
  cr_expect(strstr(answer, "a=rtcp-mux") != NULL);
  /* The WebRTC lines: both header extensions offered and accepted with the offer's ids, one BUNDLE. */
  static const char *const webrtc[] = {"a=group:BUNDLE 0\r\n", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
                                       "a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid\r\n", "a=rtcp-rsize\r\n",
                                       "a=ice-options:trickle\r\n", "a=msid:parley-"};
  for (size_t i = 0; i < sizeof webrtc / sizeof webrtc[0]; i++) {
    cr_expect(strstr(offer, webrtc[i]) != NULL, "offer lacks %s", webrtc[i]);
    cr_expect(strstr(answer, webrtc[i]) != NULL, "answer lacks %s", webrtc[i]);
  }
}

/* Mean over the 200 ms pieces of x[off, off + len) of each piece's correlation with y at its own best
 * lag in 0..max_lag: time-scaled playout moves the alignment as it goes, so one lag fits only part of
 * a longer window. */
static double piecewise_peak(const float *x, const float *y, size_t off, size_t len, long max_lag) {
  double sum = 0;
  int pieces = 0;
  for (size_t p = off; p + 9600 <= off + len; p += 9600) {
    double peak = 0;
    (void)th_best_lag(x + p, y + p, 9600, max_lag, &peak);
    sum += peak;
    pieces++;
  }
  return pieces ? sum / pieces : 0;
}

/* Creates an empty file from a "...XXXXXX.wav" template (the name is written into path). */
static void make_tmp_wav(char *path) {
  int fd = mkstemps(path, 4);
  cr_assert_geq(fd, 0, "mkstemps %s", path);
  close(fd);
}

Test(call, wav_speech_over_srtp_loopback_with_events, .timeout = 60) {
  char out_path[] = "/tmp/parley_call_XXXXXX.wav";
  make_tmp_wav(out_path);

  /* B (the listener) starts first, so that A's speech lands at a small positive lag in B's file. */
  parley_engine_config cb, ca;
  loopback_cfg(&cb);
  cb.audio = PARLEY_AUDIO_FILE;
  cb.output_file = out_path;
  loopback_cfg(&ca);
  ca.audio = PARLEY_AUDIO_FILE;
  ca.input_file = PARLEY_TEST_DATA "/speech_a_48k.wav";
  parley_engine *eb, *ea;
  cr_assert_eq(parley_engine_new(&cb, &eb), 0);
  cr_assert_eq(parley_engine_new(&ca, &ea), 0);
  cr_expect_eq(parley_engine_rate_hz(ea), 48000);

  parley_call *a, *b;
  cr_assert_eq(parley_call_new(ea, &a), 0);
  cr_assert_eq(parley_call_new(eb, &b), 0);
  rec ra, rb, removed;
  rec_init(&ra);
  rec_init(&rb);
  rec_init(&removed);
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  listen_all(a, &ra, ida);
  listen_all(b, &rb, idb);
  /* A listener removed before anything happens must never fire. */
  int gone = parley_call_on(a, PARLEY_EVENT_ICE_STATE_CHANGED, on_event, &removed);
  cr_assert_gt(gone, 0);
  cr_assert_eq(parley_call_off(a, gone), 0);
  cr_expect_eq(parley_call_off(a, gone), PARLEY_ENOTFOUND);

  negotiate(a, b);
  cr_expect_eq(parley_call_start(a), PARLEY_ESTATE, "double start");

  for (int i = 0; i < 500 && (count(&ra, PARLEY_EVENT_TRACK_STARTED) == 0 || count(&rb, PARLEY_EVENT_TRACK_STARTED) == 0); i++)
    sleep_ms(10);
  cr_assert_eq(count(&ra, PARLEY_EVENT_TRACK_STARTED), 1, "track-started on A");
  cr_assert_eq(count(&rb, PARLEY_EVENT_TRACK_STARTED), 1, "track-started on B");
  cr_expect_geq(count(&ra, PARLEY_EVENT_ICE_STATE_CHANGED), 1);
  cr_expect_geq(count(&ra, PARLEY_EVENT_PEER_STATE_CHANGED), 1);
  cr_expect_eq(count(&ra, PARLEY_EVENT_SIGNALING_STATE_CHANGED), 2, "have-local-offer, stable");
  cr_expect_eq(count(&rb, PARLEY_EVENT_SIGNALING_STATE_CHANGED), 2, "have-remote-offer, stable");
  cr_expect_eq(count(&removed, PARLEY_EVENT_ICE_STATE_CHANGED), 0, "removed listener fired");
  pthread_t self = pthread_self();
  cr_expect(!pthread_equal(ra.thread, self), "listeners run on the dispatch thread");

  /* Let speech flow for ~3 s of B's file. */
  sleep_ms(3000);
  parley_call_stats sa, sb;
  cr_assert_eq(parley_call_get_stats(a, &sa), 0);
  cr_assert_eq(parley_call_get_stats(b, &sb), 0);
  cr_expect_gt(sa.packets_sent, 50);
  cr_expect_gt(sb.packets_received, 50);
  cr_expect_gt(sb.bytes_received, sb.packets_received * 12);
  cr_expect_geq(sa.rtt_ms, 0.0, "RTT measured from RTCP");
  cr_expect_lt(sa.rtt_ms, 200.0);
  cr_expect_geq(sb.jitter_buffer_ms, 0.0);
  cr_expect_geq(sb.concealed_ms, sb.concealed_frames * 20, "concealed time covers the concealed 20 ms frames");
  cr_expect_geq(sa.fraction_lost, 0.0, "B reported on A's stream");
  /* The loop is closed: B's reports of a loss-free path take A's FEC hint down from its 10 %. */
  cr_expect_lt(sa.fec_loss_hint_pct, 10, "FEC hint %d %% after loss-free reports", sa.fec_loss_hint_pct);
  cr_expect_leq(sa.fraction_lost, 0.05, "loopback loses nothing: %.3f", sa.fraction_lost);
  cr_expect_leq(sb.packets_lost, 2);
  /* The whole call's loss, both ways round: what B reported of A's stream, what B counted itself. */
  cr_expect(sa.loss_sent >= 0.0 && sa.loss_sent <= 0.02, "A's loss over the call as B reported it: %.3f", sa.loss_sent);
  cr_expect_geq(sa.packets_lost_sent, 0);
  cr_expect(sb.loss_received >= 0.0 && sb.loss_received <= 0.02, "loss B counted: %.3f", sb.loss_received);
  cr_expect_lt(sb.jitter_ms, 20.0);
  /* A's RFC 6464 level reached B: speech, so well above silence (127) and below full scale. */
  cr_expect(sb.audio_level_received > 5 && sb.audio_level_received < 100, "level -%d dBov",
            sb.audio_level_received);

  /* A hangs up: B sees track-stopped(bye); A's last event is closed. */
  cr_assert_eq(parley_call_hangup(a), 0);
  cr_expect_eq(parley_call_hangup(a), PARLEY_ESTATE);
  for (int i = 0; i < 300 && (count(&rb, PARLEY_EVENT_TRACK_STOPPED) == 0 || count(&ra, PARLEY_EVENT_CLOSED) == 0); i++)
    sleep_ms(10);
  cr_expect_eq(count(&rb, PARLEY_EVENT_TRACK_STOPPED), 1);
  cr_expect_eq(rb.last_stop, PARLEY_STOP_BYE, "reason %s", parley_stop_reason_name(rb.last_stop));
  cr_assert_eq(count(&ra, PARLEY_EVENT_CLOSED), 1);
  cr_expect_eq(ra.kinds[ra.n - 1], PARLEY_EVENT_CLOSED, "closed is the last event");
  cr_expect_eq(ra.last_sig, PARLEY_SIGNALING_CLOSED);
  cr_expect_eq(ra.last_ice, PARLEY_ICE_CLOSED);
  cr_expect_eq(parley_call_on(a, PARLEY_EVENT_RESUMED, on_event, &ra), PARLEY_ESTATE, "no listeners after closed");

  cr_expect_eq(parley_call_free(a), PARLEY_ESTATE, "free with listeners");
  unlisten_all(a, ida);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_hangup(b), 0);
  for (int i = 0; i < 300 && count(&rb, PARLEY_EVENT_CLOSED) == 0; i++) sleep_ms(10);
  cr_expect_eq(count(&rb, PARLEY_EVENT_CLOSED), 1);
  sleep_ms(50);
  cr_expect(!ra.after_closed && !rb.after_closed, "nothing after closed");
  unlisten_all(b, idb);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb); /* finalises B's WAV */

  size_t nx, ny;
  int rate;
  float *x = th_load_wav("speech_a_48k.wav", &nx, &rate);
  float *y = th_read_wav(out_path, &ny, &rate);
  cr_assert_not_null(x);
  cr_assert_not_null(y);
  cr_assert_eq(rate, 48000);
  cr_assert_gt(ny, (size_t)48000 * 5 / 2 + 48000 * 100 / 1000, "B played %zu samples", ny);
  /* Skip the first second (engine start, ICE, jitter-buffer fill), then three half-second pieces, each
   * at its own best lag up to 100 ms (measured ~46 ms: the engines' start offset, the chains' delays
   * and the jitter buffer; on a loaded host time-scaling moves it between pieces). */
  const size_t off = 48000;
  double peak = 0;
  long lag = 0;
  for (int k = 0; k < 3; k++) {
    double p = 0;
    lag = th_best_lag(x + off + (size_t)k * 24000, y + off + (size_t)k * 24000, 24000, 48000 * 100 / 1000, &p);
    peak += p / 3;
  }
  cr_expect_geq(peak, 0.6, "mean correlation %.3f (last lag %ld)", peak, lag);
  cr_log_info("speech correlation %.3f (last lag %ld samples)", peak, lag);
  cr_expect_gt(th_rms(y + off, 48000 * 2), 0.005, "B's playout is not silent");
  free(x);
  free(y);
  unlink(out_path);
}

/* App dispatch: listeners run only inside parley_engine_dispatch, on this thread, woken by the fd.
 * App audio: the app pushes speech and pulls playout. */
Test(call, app_dispatch_through_event_fd_and_app_audio, .timeout = 60) {
  parley_engine_config ca, cb;
  loopback_cfg(&ca);
  ca.audio = PARLEY_AUDIO_APP;
  ca.dispatch = PARLEY_DISPATCH_APP;
  ca.frame_ms = 10;
  loopback_cfg(&cb);
  cb.audio = PARLEY_AUDIO_APP;
  cb.frame_ms = 10;
  parley_engine *ea, *eb;
  cr_assert_eq(parley_engine_new(&ca, &ea), 0);
  cr_assert_eq(parley_engine_new(&cb, &eb), 0);
  int efd = parley_engine_event_fd(ea);
  cr_assert_geq(efd, 0);
  cr_expect_eq(parley_engine_event_fd(eb), PARLEY_ESTATE);
  cr_expect_eq(parley_engine_dispatch(eb), PARLEY_ESTATE);

  parley_call *a, *b;
  rec ra, rb;
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  new_listened_calls(ea, eb, &a, &b, &ra, &rb, ida, idb);
  negotiate(b, a); /* this time the app-dispatch side answers */
  sleep_ms(100);
  cr_expect_eq(count(&ra, PARLEY_EVENT_SIGNALING_STATE_CHANGED), 0, "nothing runs before dispatch");

  size_t nx;
  int rate;
  float *speech = th_load_wav("speech_a_48k.wav", &nx, &rate);
  cr_assert_not_null(speech);
  float play[480];
  double play_energy = 0;
  int dispatched = 0;
  for (int i = 0; i < 400 && (count(&ra, PARLEY_EVENT_TRACK_STARTED) == 0 || count(&rb, PARLEY_EVENT_TRACK_STARTED) == 0 || i < 200); i++) {
    const float *chunk = speech + ((size_t)i * 480) % (nx - 480);
    cr_expect_geq(parley_engine_push_capture(ea, chunk, 480), 0);
    cr_expect_geq(parley_engine_push_capture(eb, chunk, 480), 0);
    (void)parley_engine_pull_playout(ea, play, 480);
    int got = parley_engine_pull_playout(eb, play, 480);
    for (int k = 0; k < got; k++) play_energy += (double)play[k] * play[k];
    struct pollfd p = {.fd = efd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) {
      int n = parley_engine_dispatch(ea);
      cr_expect_geq(n, 0);
      dispatched += n;
    }
  }
  cr_expect_gt(dispatched, 0);
  parley_call_stats sa, sb;
  parley_call_get_stats(a, &sa);
  parley_call_get_stats(b, &sb);
  cr_log_info("a sent %llu recv %llu; b sent %llu recv %llu", (unsigned long long)sa.packets_sent,
              (unsigned long long)sa.packets_received, (unsigned long long)sb.packets_sent,
              (unsigned long long)sb.packets_received);
  cr_expect_eq(count(&ra, PARLEY_EVENT_TRACK_STARTED), 1);
  cr_expect_eq(count(&rb, PARLEY_EVENT_TRACK_STARTED), 1);
  cr_expect(pthread_equal(ra.thread, pthread_self()), "app-dispatch listeners run on the caller's thread");
  cr_expect_gt(play_energy, 1.0, "B pulled A's speech (energy %.3f)", play_energy);
  free(speech);

  cr_assert_eq(parley_call_hangup(b), 0);
  for (int i = 0; i < 300 && count(&ra, PARLEY_EVENT_TRACK_STOPPED) == 0; i++) {
    struct pollfd p = {.fd = efd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) (void)parley_engine_dispatch(ea);
  }
  cr_expect_eq(count(&ra, PARLEY_EVENT_TRACK_STOPPED), 1);
  cr_expect_eq(ra.last_stop, PARLEY_STOP_BYE);
  unlisten_all(a, ida);
  unlisten_all(b, idb);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* The audio device fails (here: the output WAV hits the process's file-size limit, so the FILE
 * backend's write fails) -> every call gets interrupted(device-lost) with a message. */
Test(call, device_failure_interrupts_calls_with_device_lost, .timeout = 30) {
  char out_path[] = "/tmp/parley_lost_XXXXXX.wav";
  make_tmp_wav(out_path);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, small;
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  small = old;
  small.rlim_cur = 48000; /* ~0.5 s of 16-bit mono at 48 kHz */
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);

  parley_engine_config cfg;
  loopback_cfg(&cfg);
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.output_file = out_path;
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_call *c;
  cr_assert_eq(parley_call_new(e, &c), 0);
  rec r;
  rec_init(&r);
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
  listen_all(c, &r, ids);
  for (int i = 0; i < 300 && count(&r, PARLEY_EVENT_INTERRUPTED) == 0; i++) sleep_ms(10);
  cr_expect_eq(count(&r, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(r.last_code, PARLEY_INTERRUPT_DEVICE_LOST, "%s", parley_interrupt_code_name(r.last_code));
  cr_expect(strstr(r.last_message, "device") != NULL, "message: %s", r.last_message);
  unlisten_all(c, ids);
  cr_expect_eq(parley_call_free(c), 0);
  parley_engine_free(e);
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
  unlink(out_path);
}

/* A mesh client M in a session with two peers: P1 talks (speech file), P2 is silent. M hears P1 through
 * the session mixer, gets members-changed for each join/leave, and speakers-changed naming P1's call. */
typedef struct session_rec {
  pthread_mutex_t mu;
  int members_events;
  size_t last_members;
  int speaker_events;
  parley_call *first_speaker;
  bool silent_ranked;
  parley_call *silent;
} session_rec;

static void on_session(const parley_event *ev, void *user) {
  session_rec *r = user;
  pthread_mutex_lock(&r->mu);
  cr_expect_not_null(ev->session);
  if (ev->kind == PARLEY_EVENT_MEMBERS_CHANGED) {
    r->members_events++;
    r->last_members = ev->count;
  } else if (ev->kind == PARLEY_EVENT_SPEAKERS_CHANGED) {
    r->speaker_events++;
    if (ev->count > 0 && !r->first_speaker) r->first_speaker = ev->speakers[0];
    for (size_t i = 0; i < ev->count; i++)
      if (ev->speakers[i] == r->silent) r->silent_ranked = true;
  }
  pthread_mutex_unlock(&r->mu);
}

Test(call, session_mesh_mixes_and_ranks_speakers, .timeout = 60) {
  char out_path[] = "/tmp/parley_mesh_XXXXXX.wav";
  make_tmp_wav(out_path);
  parley_engine_config cm, c1, c2;
  loopback_cfg(&cm);
  cm.audio = PARLEY_AUDIO_FILE;
  cm.output_file = out_path;
  /* M must start first so that P1's speech lands at a positive lag in M's file. */
  loopback_cfg(&c1);
  c1.audio = PARLEY_AUDIO_FILE;
  c1.input_file = PARLEY_TEST_DATA "/speech_a_48k.wav";
  loopback_cfg(&c2);
  parley_engine *em, *e1, *e2;
  cr_assert_eq(parley_engine_new(&cm, &em), 0);
  cr_assert_eq(parley_engine_new(&c1, &e1), 0);
  cr_assert_eq(parley_engine_new(&c2, &e2), 0);
  parley_session *s;
  cr_assert_eq(parley_session_new(em, &s), 0);
  parley_call *m1, *m2, *p1, *p2;
  cr_assert_eq(parley_call_new(em, &m1), 0);
  cr_assert_eq(parley_call_new(em, &m2), 0);
  cr_assert_eq(parley_call_new(e1, &p1), 0);
  cr_assert_eq(parley_call_new(e2, &p2), 0);
  session_rec sr;
  memset(&sr, 0, sizeof sr);
  pthread_mutex_init(&sr.mu, NULL);
  sr.silent = m2;
  int id_mem = parley_session_on(s, PARLEY_EVENT_MEMBERS_CHANGED, on_session, &sr);
  int id_spk = parley_session_on(s, PARLEY_EVENT_SPEAKERS_CHANGED, on_session, &sr);
  cr_assert_gt(id_mem, 0);
  cr_assert_gt(id_spk, 0);
  cr_assert_eq(parley_session_join(s, m1), 0); /* before start: joins the mix once media runs */
  negotiate(m1, p1);
  negotiate(p2, m2);
  cr_assert_eq(parley_session_join(s, m2), 0); /* after start */
  cr_expect_eq(parley_session_count(s), 2);

  for (int i = 0; i < 400; i++) {
    pthread_mutex_lock(&sr.mu);
    bool done = sr.first_speaker != NULL && sr.members_events == 2;
    pthread_mutex_unlock(&sr.mu);
    if (done) break;
    sleep_ms(10);
  }
  sleep_ms(2200);
  pthread_mutex_lock(&sr.mu);
  cr_expect_eq(sr.members_events, 2);
  cr_expect_eq(sr.last_members, 2);
  cr_expect_geq(sr.speaker_events, 1);
  cr_expect_eq(sr.first_speaker, m1, "the talking peer's call ranks first");
  cr_expect(!sr.silent_ranked, "the silent peer is never ranked");
  pthread_mutex_unlock(&sr.mu);

  cr_assert_eq(parley_session_leave(s, m2), 0);
  for (int i = 0; i < 100 && sr.members_events < 3; i++) sleep_ms(10);
  cr_expect_eq(sr.members_events, 3);
  cr_expect_eq(sr.last_members, 1);
  cr_expect_eq(parley_session_off(s, id_mem), 0);
  cr_expect_eq(parley_session_off(s, id_spk), 0);
  cr_expect_eq(parley_call_free(m1), 0); /* leaves the session by itself */
  cr_expect_eq(parley_session_count(s), 0);
  cr_expect_eq(parley_session_free(s), 0);
  parley_call_free(m2);
  parley_call_free(p1);
  parley_call_free(p2);
  parley_engine_free(em);
  parley_engine_free(e1);
  parley_engine_free(e2);

  /* What M played is P1's speech (through the mixer and its limiter). */
  size_t nx, ny;
  int rate;
  float *x = th_load_wav("speech_a_48k.wav", &nx, &rate);
  float *y = th_read_wav(out_path, &ny, &rate);
  cr_assert(x && y);
  cr_assert_gt(ny, (size_t)48000 * 2 + 48000 * 100 / 1000, "M played %zu samples", ny);
  /* Per 200 ms piece: the receive chain time-scales its playout (its default). */
  double peak = piecewise_peak(x, y, 48000, 48000, 48000 * 100 / 1000);
  size_t nz;
  float *z = th_load_wav("speech_b_48k.wav", &nz, &rate);
  cr_assert_not_null(z);
  double control = piecewise_peak(z, y, 48000, 48000, 48000 * 100 / 1000);
  cr_log_info("session mix: piecewise correlation %.3f (other clip: %.3f)", peak, control);
  cr_expect_geq(peak, 0.6, "piecewise correlation %.3f", peak);
  cr_expect_lt(control, peak / 2, "control %.3f vs %.3f", control, peak);
  free(z);
  free(x);
  free(y);
  unlink(out_path);
}

/* Trickle ICE: A's candidates reach B only through LOCAL_CANDIDATE events and
 * parley_call_add_remote_candidate (they are stripped from the offer, and B's from the answer, so
 * nothing connects without the trickled ones); the call connects. */
typedef struct trickle_rec {
  pthread_mutex_t mu;
  char lines[16][256];
  int n;
  bool done;
} trickle_rec;

static void on_candidate(const parley_event *ev, void *user) {
  trickle_rec *t = user;
  pthread_mutex_lock(&t->mu);
  cr_expect_eq(ev->kind, PARLEY_EVENT_LOCAL_CANDIDATE);
  if (strcmp(ev->candidate, "end-of-candidates") == 0) t->done = true;
  else if (t->n < 16) snprintf(t->lines[t->n++], sizeof t->lines[0], "%s", ev->candidate);
  pthread_mutex_unlock(&t->mu);
}

static void strip_candidates(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = in; *p && o + 1 < cap;) {
    const char *eol = strstr(p, "\r\n");
    size_t len = eol ? (size_t)(eol - p) + 2 : strlen(p);
    if (strncmp(p, "a=candidate:", 12) != 0 && strncmp(p, "a=end-of-candidates", 19) != 0 && o + len < cap) {
      memcpy(out + o, p, len);
      o += len;
    }
    p += len;
  }
  out[o] = '\0';
}

Test(call, trickled_candidates_connect, .timeout = 60) {
  parley_engine_config cfg;
  loopback_cfg(&cfg);
  parley_engine *ea, *eb;
  parley_call *a, *b;
  two_calls(&cfg, &cfg, &ea, &eb, &a, &b);
  trickle_rec t;
  memset(&t, 0, sizeof t);
  pthread_mutex_init(&t.mu, NULL);
  int idc = parley_call_on(a, PARLEY_EVENT_LOCAL_CANDIDATE, on_candidate, &t);
  cr_assert_gt(idc, 0);
  rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  int ida = parley_call_on(a, PARLEY_EVENT_TRACK_STARTED, on_event, &ra);
  int idb = parley_call_on(b, PARLEY_EVENT_TRACK_STARTED, on_event, &rb);

  static char offer[8192], bare[8192], answer[8192];
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(a, offer, sizeof offer), 0);
  cr_assert_eq(parley_call_set_local_description(a, offer), 0);
  strip_candidates(offer, bare, sizeof bare);
  cr_assert(strstr(bare, "a=candidate") == NULL);
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, bare, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(b, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(b, answer), 0);
  /* B's candidates are withheld too: A learns B's address only from B's checks (peer-reflexive). */
  strip_candidates(answer, bare, sizeof bare);
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, bare, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a), 0);
  cr_assert_eq(parley_call_start(b), 0);

  for (int i = 0; i < 200 && !t.done; i++) sleep_ms(10);
  pthread_mutex_lock(&t.mu);
  cr_assert(t.done, "end-of-candidates trickled");
  cr_assert_geq(t.n, 1);
  for (int i = 0; i < t.n; i++) {
    cr_expect_eq(strncmp(t.lines[i], "candidate:", 10), 0, "%s", t.lines[i]);
    cr_expect(strstr(t.lines[i], "127.0.0.1") != NULL, "%s", t.lines[i]);
    cr_expect_eq(parley_call_add_remote_candidate(b, t.lines[i]), 0, "%s", t.lines[i]);
    cr_expect_eq(parley_call_add_remote_candidate(b, t.lines[i]), 1, "already known");
  }
  pthread_mutex_unlock(&t.mu);
  /* A browser's mDNS host candidate is skipped, not an error: its checks make it peer-reflexive. */
  cr_expect_eq(parley_call_add_remote_candidate(
                   b, "candidate:3097813261 1 udp 2113937151 e3b0c442-98fc-4c14-9afb-f4c8996fb924.local 50000 "
                      "typ host generation 0"),
               0);
  cr_expect_eq(parley_call_add_remote_candidate(b, "candidate:1 1 udp 2113937151 host.example.org 50000 typ host"),
               PARLEY_ENOTSUP, "other names stay unresolved");
  cr_expect_eq(parley_call_add_remote_candidate(b, "a=end-of-candidates"), 0);

  for (int i = 0; i < 500 && (count(&ra, PARLEY_EVENT_TRACK_STARTED) == 0 || count(&rb, PARLEY_EVENT_TRACK_STARTED) == 0); i++)
    sleep_ms(10);
  cr_expect_eq(count(&ra, PARLEY_EVENT_TRACK_STARTED), 1);
  cr_expect_eq(count(&rb, PARLEY_EVENT_TRACK_STARTED), 1);
  parley_call_off(a, idc);
  parley_call_off(a, ida);
  parley_call_off(b, idb);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* The peer's process dies (SIGKILL: no BYE). Its sockets close, the kernel answers our next packet with
 * ICMP port unreachable, our probes bounce too, and the call reports interrupted(peer-gone) and
 * track-stopped(peer-gone). The peer runs in
 * a forked child (created before any engine thread exists in this process); SDP travels over pipes. */
static bool read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (int i = 0; i < 1000 && n + 1 < cap; i++) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (buf[n - 1] == '\0') return true; /* messages end with their NUL */
  }
  return false;
}

static void peer_child(int in_fd, int out_fd) {
  static char offer[8192], answer[8192];
  parley_engine_config cfg;
  loopback_cfg(&cfg);
  parley_engine *e;
  parley_call *c;
  if (parley_engine_new(&cfg, &e) != 0 || parley_call_new(e, &c) != 0) _exit(2);
  if (!read_all(in_fd, offer, sizeof offer)) _exit(3);
  if (parley_call_set_remote_description(c, PARLEY_SDP_OFFER, offer, NULL) != 0) _exit(4);
  int n = parley_call_create_answer(c, answer, sizeof answer);
  if (n <= 0 || parley_call_set_local_description(c, answer) != 0 || parley_call_start(c) != 0) _exit(5);
  if (write(out_fd, answer, (size_t)n + 1) != n + 1) _exit(6);
  for (int i = 0; i < 3000; i++) sleep_ms(10); /* until killed (bounded: 30 s) */
  _exit(0);
}

Test(call, peer_process_death_is_reported_as_peer_gone, .timeout = 60) {
  int to_child[2], from_child[2];
  cr_assert_eq(pipe(to_child), 0);
  cr_assert_eq(pipe(from_child), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    peer_child(to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);

  parley_engine_config cfg;
  loopback_cfg(&cfg);
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_call *a;
  cr_assert_eq(parley_call_new(e, &a), 0);
  rec ra;
  rec_init(&ra);
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
  listen_all(a, &ra, ids);
  static char offer[8192], answer[8192];
  int n = parley_call_create_offer(a, offer, sizeof offer);
  cr_assert_gt(n, 0);
  cr_assert_eq(parley_call_set_local_description(a, offer), 0);
  cr_assert_eq(write(to_child[1], offer, (size_t)n + 1), n + 1);
  cr_assert(read_all(from_child[0], answer, sizeof answer), "answer from the child");
  parley_sdp_error se;
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a), 0);
  for (int i = 0; i < 500 && count(&ra, PARLEY_EVENT_TRACK_STARTED) == 0; i++) sleep_ms(10);
  cr_assert_eq(count(&ra, PARLEY_EVENT_TRACK_STARTED), 1);

  kill(pid, SIGKILL);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  for (int i = 0; i < 300 && count(&ra, PARLEY_EVENT_INTERRUPTED) == 0; i++) sleep_ms(10);
  cr_assert_eq(count(&ra, PARLEY_EVENT_INTERRUPTED), 1);
  cr_expect_eq(ra.last_code, PARLEY_INTERRUPT_PEER_GONE, "%s: %s", parley_interrupt_code_name(ra.last_code),
               ra.last_message);
  cr_expect_gt(strlen(ra.last_message), 0);
  cr_expect_eq(count(&ra, PARLEY_EVENT_TRACK_STOPPED), 1);
  cr_expect_eq(ra.last_stop, PARLEY_STOP_PEER_GONE, "%s", parley_stop_reason_name(ra.last_stop));
  unlisten_all(a, ids);
  cr_expect_eq(parley_call_free(a), 0);
  parley_engine_free(e);
  close(to_child[1]);
  close(from_child[0]);
}

/* Mute: A's speech stops reaching B while muted and comes back after. */
static double pull_energy(parley_engine *e, int ms) {
  float buf[480];
  double acc = 0;
  for (int i = 0; i < ms / 10; i++) {
    sleep_ms(10);
    int got = parley_engine_pull_playout(e, buf, 480);
    for (int k = 0; k < got; k++) acc += (double)buf[k] * buf[k];
  }
  return acc;
}

/* A talks the speech clip from a file; B's app pulls what it hears (pull_energy). Calls not negotiated. */
static void talker_listener_sdes(parley_engine **ea, parley_engine **eb, parley_call **a, parley_call **b,
                                 bool a_offers_sdes) {
  parley_engine_config ca, cb;
  loopback_cfg(&ca);
  ca.offer_sdes = a_offers_sdes;
  ca.audio = PARLEY_AUDIO_FILE;
  ca.input_file = PARLEY_TEST_DATA "/speech_a_48k.wav";
  loopback_cfg(&cb);
  cb.audio = PARLEY_AUDIO_APP;
  cr_assert_eq(parley_engine_new(&ca, ea), 0);
  cr_assert_eq(parley_engine_new(&cb, eb), 0);
  cr_assert_eq(parley_call_new(*ea, a), 0);
  cr_assert_eq(parley_call_new(*eb, b), 0);
}

static void talker_listener(parley_engine **ea, parley_engine **eb, parley_call **a, parley_call **b) {
  talker_listener_sdes(ea, eb, a, b, false);
}

/* An engine set to offer SDES (offer_sdes): RTP/SAVPF with one a=crypto and no DTLS lines; the answer
 * follows with its own key, and speech flows. */
Test(call, sdes_offer_when_the_engine_asks_for_it, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener_sdes(&ea, &eb, &a, &b, true);
  static char offer[8192], answer[8192];
  th_negotiate(a, b, offer, answer, sizeof offer);
  cr_expect(strstr(offer, " RTP/SAVPF ") && strstr(offer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "%s", offer);
  cr_expect(!strstr(offer, "a=fingerprint") && !strstr(offer, "a=setup"), "%s", offer);
  cr_expect(strstr(answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") && !strstr(answer, "a=fingerprint"), "%s",
            answer);
  (void)pull_energy(eb, 500);
  double on = pull_energy(eb, 700);
  cr_expect_gt(on, 1.0, "speech over SDES-SRTP (energy %.3f)", on);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

Test(call, mute_silences_the_sender, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener(&ea, &eb, &a, &b);
  negotiate(a, b);
  (void)pull_energy(eb, 500); /* connect, fill the jitter buffer */
  double on = pull_energy(eb, 700);
  cr_assert_eq(parley_call_set_mute(a, true), 0);
  (void)pull_energy(eb, 300); /* what was in flight */
  double off = pull_energy(eb, 700);
  cr_assert_eq(parley_call_set_mute(a, false), 0);
  (void)pull_energy(eb, 300);
  double again = pull_energy(eb, 700);
  cr_expect_gt(on, 1.0, "speech before mute (energy %.3f)", on);
  cr_expect_lt(off, on / 100, "muted: %.4f vs %.3f", off, on);
  cr_expect_gt(again, 1.0, "speech after unmute (energy %.3f)", again);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* The ICE ufrag of an SDP (the a=ice-ufrag line's value), into out. */
static void sdp_ufrag(const char *sdp, char *out, size_t cap) {
  const char *p = strstr(sdp, "a=ice-ufrag:");
  cr_assert_not_null(p, "no a=ice-ufrag");
  p += strlen("a=ice-ufrag:");
  size_t n = strcspn(p, "\r\n");
  cr_assert_lt(n, cap);
  memcpy(out, p, n);
  out[n] = '\0';
}

/* ICE restart in the middle of a call: A restarts and re-offers; both sides take new credentials, run
 * fresh checks and reconnect, while A's speech keeps reaching B without a track or connection loss. */
Test(call, ice_restart_keeps_the_call, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener(&ea, &eb, &a, &b);
  cr_expect_eq(parley_call_restart_ice(a), PARLEY_ESTATE, "nothing negotiated yet");
  cr_expect_eq(parley_call_restart_ice(NULL), PARLEY_EINVAL);
  static char offer1[8192], answer1[8192], offer2[8192], answer2[8192];
  th_negotiate(a, b, offer1, answer1, sizeof offer1);
  rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  listen_all(a, &ra, ida);
  listen_all(b, &rb, idb);
  /* Connect (ICE, then DTLS; with DTX on a quiet start the first packet may follow up to 400 ms
   * later), then fill the jitter buffer. */
  /* Up to 10 s: a loaded host (CI runs two suites at once) slows the handshake; done at the first track. */
  for (int i = 0; i < 1000 && count(&rb, PARLEY_EVENT_TRACK_STARTED) == 0; i++) (void)pull_energy(eb, 10);
  (void)pull_energy(eb, 300);
  cr_assert_eq(count(&rb, PARLEY_EVENT_TRACK_STARTED), 1, "B hears A");
  parley_call_stats before;
  cr_assert_eq(parley_call_get_stats(b, &before), 0);

  cr_assert_eq(parley_call_restart_ice(a), 0);
  int ice_events = count(&ra, PARLEY_EVENT_ICE_STATE_CHANGED);
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(a, offer2, sizeof offer2), 0);
  cr_assert_eq(parley_call_set_local_description(a, offer2), 0);
  cr_expect_eq(parley_call_restart_ice(a), PARLEY_ESTATE, "an offer is pending");
  double during = pull_energy(eb, 300); /* signaling takes a while: media stays on the old pair */
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer2, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(b, answer2, sizeof answer2), 0);
  cr_assert_eq(parley_call_set_local_description(b, answer2), 0);
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer2, &se), 0, "%s", se.message);
  char u1[64], u2[64];
  sdp_ufrag(offer1, u1, sizeof u1);
  sdp_ufrag(offer2, u2, sizeof u2);
  cr_expect_str_neq(u1, u2, "A's re-offer after the restart has new credentials");
  sdp_ufrag(answer1, u1, sizeof u1);
  sdp_ufrag(answer2, u2, sizeof u2);
  cr_expect_str_neq(u1, u2, "B answered the restart with new credentials");

  /* Fresh checks run and select a new pair on both sides; the connection state stays connected (W3C:
   * a restart while connected does not go back to checking). */
  cr_expect_eq(before.ice_pairs_selected, 1);
  parley_call_stats sa, sb;
  for (int i = 0; i < 300; i++) {
    cr_assert_eq(parley_call_get_stats(a, &sa), 0);
    cr_assert_eq(parley_call_get_stats(b, &sb), 0);
    if (sa.ice_pairs_selected >= 2 && sb.ice_pairs_selected >= 2) break;
    (void)pull_energy(eb, 10);
  }
  cr_expect_eq(sa.ice_pairs_selected, 2, "A selected a pair after the restart");
  cr_expect_eq(sb.ice_pairs_selected, 2, "B selected a pair after the restart");
  cr_expect_eq(count(&ra, PARLEY_EVENT_ICE_STATE_CHANGED), ice_events, "no ICE state change through the restart");
  double after = pull_energy(eb, 700);
  parley_call_stats later;
  cr_assert_eq(parley_call_get_stats(b, &later), 0);
  cr_expect_gt(during, 0.1, "speech during the restart (energy %.3f)", during);
  cr_expect_gt(after, 1.0, "speech after the restart (energy %.3f)", after);
  cr_expect_gt(later.packets_received, before.packets_received + 40, "packets kept arriving");
  cr_expect_eq(count(&rb, PARLEY_EVENT_TRACK_STOPPED), 0, "no track loss");
  cr_expect_eq(count(&ra, PARLEY_EVENT_INTERRUPTED) + count(&rb, PARLEY_EVENT_INTERRUPTED), 0, "no interruption");
  unlisten_all(a, ida);
  unlisten_all(b, idb);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* W3C RTCIceConnectionState: checking -> connected -> completed on both sides (both SDPs carry
 * a=end-of-candidates, so checking ends once the one loopback pair succeeded), then closed at hang-up
 * (a side that sees the other's BYE first may pass through disconnected); completed does not change
 * the peer-connection state. */
Test(call, ice_states_run_checking_connected_completed, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener(&ea, &eb, &a, &b);
  rec r[2];
  int ids[2][PARLEY_EVENT_CALL_KIND_COUNT];
  parley_call *c[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    rec_init(&r[i]);
    listen_all(c[i], &r[i], ids[i]);
  }
  negotiate(a, b);
  for (int i = 0; i < 300 && !(r[0].last_ice == PARLEY_ICE_COMPLETED && r[1].last_ice == PARLEY_ICE_COMPLETED); i++)
    (void)pull_energy(eb, 10);
  for (int i = 0; i < 2; i++) cr_expect_eq(parley_call_hangup(c[i]), 0);
  for (int i = 0; i < 2; i++) {
    for (int k = 0; k < 200 && count(&r[i], PARLEY_EVENT_CLOSED) == 0; k++) sleep_ms(10);
    pthread_mutex_lock(&r[i].mu);
    const parley_ice_state want[] = {PARLEY_ICE_CHECKING, PARLEY_ICE_CONNECTED, PARLEY_ICE_COMPLETED};
    cr_expect_geq(r[i].n_ice, 4, "side %d: %d ICE states", i, r[i].n_ice);
    for (int k = 0; k < 3 && k < r[i].n_ice; k++)
      cr_expect_eq(r[i].ice_seq[k], want[k], "side %d, state %d: %s, want %s", i, k,
                   parley_ice_state_name(r[i].ice_seq[k]), parley_ice_state_name(want[k]));
    if (r[i].n_ice > 0) cr_expect_eq(r[i].ice_seq[r[i].n_ice - 1], PARLEY_ICE_CLOSED, "side %d ends closed", i);
    pthread_mutex_unlock(&r[i].mu);
    /* connecting, connected, (disconnected,) closed: completed adds none. */
    int peer = count(&r[i], PARLEY_EVENT_PEER_STATE_CHANGED);
    cr_expect(peer == r[i].n_ice - 1, "side %d: %d peer states for %d ICE states", i, peer, r[i].n_ice);
    unlisten_all(c[i], ids[i]);
    cr_expect_eq(parley_call_free(c[i]), 0);
  }
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* input_file_at_media: A's 1 s tone starts when the call's media does, though the call is set up 1.5 s
 * after the engine (the tone would be over by then if it started with the engine); with
 * PARLEY_INPUT_END_HANGUP A hangs up by itself when it ends, after a tail that lets the last of it
 * play. B's output file holds the whole second of tone. */
Test(call, input_file_waits_for_media_and_hangs_up_at_its_end, .timeout = 60) {
  char in_path[] = "/tmp/parley_tone_XXXXXX.wav", out_path[] = "/tmp/parley_heard_XXXXXX.wav";
  make_tmp_wav(in_path);
  make_tmp_wav(out_path);
  static short tone[48000];
  for (int i = 0; i < 48000; i++) tone[i] = (short)(8000.0 * sin(2 * M_PI * 500.0 * i / 48000.0));
  SF_INFO wi = {.samplerate = 48000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *wf = sf_open(in_path, SFM_WRITE, &wi);
  cr_assert_not_null(wf);
  cr_assert_eq(sf_writef_short(wf, tone, 48000), 48000);
  sf_close(wf);

  parley_engine_config ca, cb;
  loopback_cfg(&ca);
  ca.audio = PARLEY_AUDIO_FILE;
  ca.input_file = in_path;
  ca.input_file_at_media = true;
  ca.noise_suppression = false; /* a steady tone is what a suppressor removes */
  loopback_cfg(&cb);
  cb.audio = PARLEY_AUDIO_FILE;
  cb.output_file = out_path;
  parley_engine *ea, *eb;
  parley_call *a, *b;
  ca.input_file_end = (parley_input_end)7;
  cr_expect_eq(parley_engine_new(&ca, &ea), PARLEY_EINVAL, "input_file_end out of range");
  ca.input_file_end = PARLEY_INPUT_END_HANGUP;
  cr_assert_eq(parley_engine_new(&ca, &ea), 0);
  cr_assert_eq(parley_engine_new(&cb, &eb), 0);
  rec ra, rb;
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  new_listened_calls(ea, eb, &a, &b, &ra, &rb, ida, idb);
  sleep_ms(1500); /* signaling that takes a while */
  negotiate(a, b);
  /* Each side's listeners run on its own dispatch thread: wait for both. */
  for (int i = 0; i < 400 && (count(&rb, PARLEY_EVENT_TRACK_STOPPED) == 0 || count(&ra, PARLEY_EVENT_CLOSED) == 0); i++)
    sleep_ms(10);
  cr_expect_eq(count(&ra, PARLEY_EVENT_CLOSED), 1, "A hung up when its file ended");
  cr_expect_eq(rb.last_stop, PARLEY_STOP_BYE, "B saw A's BYE");
  unlisten_all(a, ida);
  unlisten_all(b, idb);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb); /* B's file is complete */
  size_t n = 0;
  int rate = 0;
  float *y = th_read_wav(out_path, &n, &rate);
  cr_assert_not_null(y);
  int voiced_ms = 0;
  for (size_t p = 0; p + 480 <= n; p += 480) {
    double acc = 0;
    for (size_t k = p; k < p + 480; k++) acc += (double)y[k] * y[k];
    if (sqrt(acc / 480) > 0.05) voiced_ms += 10;
  }
  /* Windows straddle the tone's edges, and time-scaled playout may stretch it by a few frames while the
   * jitter buffer settles: a few tens of ms either way. Started with the engine, it would be 0. */
  cr_expect(voiced_ms >= 950 && voiced_ms <= 1060, "B heard %d ms of A's 1 s tone", voiced_ms);
  free(y);
  unlink(in_path);
  unlink(out_path);
}

/* Engines of different frame sizes call each other: B (20 ms frames) talks speech_a to A (10 ms frames),
 * A talks speech_b to B. Each sends at the other's a=ptime (A 20 ms packets, B 10 ms: DTX off, so B
 * sends twice as many) and plays the other's packets through the time-scaled receive chain, whatever
 * their duration: no a=ptime is refused or needs editing. */
Test(call, ten_and_twenty_ms_engines_hear_each_other, .timeout = 60) {
  char out_a[] = "/tmp/parley_ts_XXXXXX.wav", out_b[] = "/tmp/parley_ts_XXXXXX.wav";
  make_tmp_wav(out_a);
  make_tmp_wav(out_b);
  parley_engine_config ca, cb;
  loopback_cfg(&ca);
  ca.audio = PARLEY_AUDIO_FILE;
  ca.input_file = PARLEY_TEST_DATA "/speech_b_48k.wav";
  ca.output_file = out_a;
  ca.frame_ms = 10;
  ca.opus_dtx = false;
  loopback_cfg(&cb);
  cb.audio = PARLEY_AUDIO_FILE;
  cb.input_file = PARLEY_TEST_DATA "/speech_a_48k.wav";
  cb.output_file = out_b;
  cb.opus_dtx = false;
  parley_engine *ea, *eb;
  parley_call *a, *b;
  two_calls(&ca, &cb, &ea, &eb, &a, &b);
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(b, offer, sizeof offer), 0);
  cr_assert(strstr(offer, "a=ptime:20") != NULL);
  cr_assert_eq(parley_call_set_local_description(b, offer), 0);
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(a, answer, sizeof answer), 0);
  cr_assert(strstr(answer, "a=ptime:10") != NULL);
  cr_assert_eq(parley_call_set_local_description(a, answer), 0);
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a), 0);
  cr_assert_eq(parley_call_start(b), 0);
  sleep_ms(2600);
  parley_call_stats sa, sb;
  cr_assert_eq(parley_call_get_stats(a, &sa), 0);
  cr_assert_eq(parley_call_get_stats(b, &sb), 0);
  cr_expect_gt(sa.packets_received, 80);
  cr_expect_gt(sb.packets_received, 40);
  cr_log_info("A (10 ms engine) sent %llu packets, B (20 ms engine) %llu", (unsigned long long)sa.packets_sent,
              (unsigned long long)sb.packets_sent);
  cr_expect(sa.packets_sent * 10 > sb.packets_sent * 4 && sa.packets_sent * 10 < sb.packets_sent * 6,
            "A sent %llu packets, B %llu: not 20 and 10 ms", (unsigned long long)sa.packets_sent,
            (unsigned long long)sb.packets_sent);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);

  const char *heard[2][3] = {{out_a, "speech_a_48k.wav", "speech_b_48k.wav"},
                             {out_b, "speech_b_48k.wav", "speech_a_48k.wav"}};
  for (int side = 0; side < 2; side++) {
    size_t nx, ny, nz;
    int rate;
    float *x = th_load_wav(heard[side][1], &nx, &rate);
    float *z = th_load_wav(heard[side][2], &nz, &rate);
    float *y = th_read_wav(heard[side][0], &ny, &rate);
    cr_assert(x && y && z);
    cr_assert_gt(ny, (size_t)48000 * 2 + 48000 * 100 / 1000, "%s: played %zu samples", side ? "B" : "A", ny);
    /* Per 200 ms piece: time-scaling moves the alignment as it goes, and a loaded host (sanitizers) can
     * push the delay past 100 ms, so lags up to 250 ms are searched; the clip not sent is the control. */
    double peak = piecewise_peak(x, y, 48000, 48000, 48000 / 4);
    double control = piecewise_peak(z, y, 48000, 48000, 48000 / 4);
    cr_log_info("%s hears: piecewise correlation %.3f (other clip: %.3f)", side ? "B" : "A", peak, control);
    cr_expect_geq(peak, 0.5, "%s: piecewise correlation %.3f", side ? "B" : "A", peak);
    cr_expect_lt(control, peak / 2, "%s: control %.3f vs %.3f", side ? "B" : "A", control, peak);
    free(z);
    free(x);
    free(y);
  }
  unlink(out_a);
  unlink(out_b);
}

/* The port of sdp's first 127.0.0.1 candidate. */
static int loopback_port(const char *sdp) {
  const char *p = strstr(sdp, " 127.0.0.1 ");
  cr_assert_not_null(p, "no 127.0.0.1 candidate: %s", sdp);
  return atoi(p + strlen(" 127.0.0.1 "));
}

/* The recent receive-side loss is the last RTCP interval's: in a network namespace of the test's own
 * (gone with its process), nft drops a quarter of what A sends (and nothing of B's). B's recent figure
 * shows that quarter while the path loses, and A's stays near 0; once the path is clean again, B's
 * recent figure falls back while its whole-call figure keeps the loss. */
Test(call, recent_receive_loss_follows_the_path, .timeout = 60) {
  if (unshare(CLONE_NEWNET) != 0) cr_skip_test("no network namespace (not root?)");
  cr_assert_eq(system("ip link set lo up"), 0);
  parley_engine_config cfg;
  loopback_cfg(&cfg);
  cfg.opus_dtx = false; /* silence is sent too: 50 packets a second */
  parley_engine *ea, *eb;
  parley_call *a, *b;
  two_calls(&cfg, &cfg, &ea, &eb, &a, &b);
  static char offer[8192], answer[8192];
  th_negotiate(a, b, offer, answer, sizeof offer);
  sleep_ms(1500);
  parley_call_stats sa, sb;
  cr_assert_eq(parley_call_get_stats(b, &sb), 0);
  cr_assert_gt(sb.packets_received, 20, "media flows");
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "nft add table inet lossy && nft add chain inet lossy out '{ type filter hook output priority 0; }' && "
           "nft add rule inet lossy out udp sport %d numgen random mod 100 '<' 25 drop",
           loopback_port(offer));
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  sleep_ms(3500); /* at least two RTCP intervals wholly inside the loss */
  cr_assert_eq(parley_call_get_stats(a, &sa), 0);
  cr_assert_eq(parley_call_get_stats(b, &sb), 0);
  cr_log_info("lossy path: B's recent receive loss %.3f (whole call %.3f), A's %.3f; A's sent stream as B "
              "reported it %.3f", sb.fraction_lost_received, sb.loss_received, sa.fraction_lost_received,
              sa.fraction_lost);
  cr_expect(sb.fraction_lost_received >= 0.08 && sb.fraction_lost_received <= 0.45,
            "B's recent receive loss %.3f with a quarter dropped", sb.fraction_lost_received);
  cr_expect(sa.fraction_lost_received >= 0 && sa.fraction_lost_received <= 0.03,
            "A's recent receive loss %.3f on a clean direction", sa.fraction_lost_received);
  cr_assert_eq(system("nft delete table inet lossy"), 0);
  sleep_ms(3500);
  cr_assert_eq(parley_call_get_stats(b, &sb), 0);
  cr_log_info("clean again: B's recent receive loss %.3f, whole call %.3f", sb.fraction_lost_received,
              sb.loss_received);
  cr_expect(sb.fraction_lost_received >= 0 && sb.fraction_lost_received <= 0.03, "B's recent receive loss %.3f",
            sb.fraction_lost_received);
  cr_expect_gt(sb.loss_received, 0.03, "the whole call's loss keeps what was lost");
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* Replaces the first `from` in sdp (in place; same length or shorter). */
static void sdp_replace(char *sdp, const char *from, const char *to) {
  char *p = strstr(sdp, from);
  cr_assert_not_null(p, "no %s", from);
  size_t fl = strlen(from), tl = strlen(to);
  cr_assert_leq(tl, fl);
  memcpy(p, to, tl);
  memmove(p + tl, p + fl, strlen(p + fl) + 1);
}

/* An offer that imposes a role is honoured: setup:active makes the answerer passive (the DTLS server),
 * and speech flows the same. */
Test(call, dtls_offer_with_setup_active_is_honoured, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener(&ea, &eb, &a, &b);
  static char offer[8192], answer[8192];
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(a, offer, sizeof offer), 0);
  cr_assert_eq(parley_call_set_local_description(a, offer), 0);
  sdp_replace(offer, "a=setup:actpass", "a=setup:active");
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(b, answer, sizeof answer), 0);
  cr_expect(strstr(answer, "a=setup:passive\r\n"), "%s", answer);
  cr_assert_eq(parley_call_set_local_description(b, answer), 0);
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a), 0);
  cr_assert_eq(parley_call_start(b), 0);
  (void)pull_energy(eb, 500);
  double on = pull_energy(eb, 700);
  cr_expect_gt(on, 1.0, "speech over DTLS-SRTP with A as the client (energy %.3f)", on);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}

/* A fingerprint that is not the offerer's certificate's: ICE connects, the handshake is refused, and
 * both sides' peer state fails with the reason; no audio flows. An answer without a fingerprint and
 * an offer with an unknown hash function are refused at set_remote_description. */
Test(call, dtls_fingerprint_mismatch_fails_the_call, .timeout = 60) {
  parley_engine *ea, *eb;
  parley_call *a, *b;
  talker_listener(&ea, &eb, &a, &b);
  rec ra, rb;
  int ida[PARLEY_EVENT_CALL_KIND_COUNT], idb[PARLEY_EVENT_CALL_KIND_COUNT];
  rec_init(&ra);
  rec_init(&rb);
  listen_all(a, &ra, ida);
  listen_all(b, &rb, idb);
  static char offer[8192], answer[8192], bad[8192];
  parley_sdp_error se;
  cr_assert_gt(parley_call_create_offer(a, offer, sizeof offer), 0);
  cr_assert_eq(parley_call_set_local_description(a, offer), 0);
  snprintf(bad, sizeof bad, "%s", offer);
  sdp_replace(bad, "a=fingerprint:sha-256 ", "a=fingerprint:md5 ");
  cr_expect_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, bad, &se), PARLEY_ENOTSUP);
  cr_expect(strstr(se.message, "hash function"), "%s", se.message);
  /* Flip one hex digit of the fingerprint. */
  char *fp = strstr(offer, "a=fingerprint:sha-256 ") + strlen("a=fingerprint:sha-256 ");
  fp[0] = fp[0] == '0' ? '1' : '0';
  cr_assert_eq(parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(b, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(b, answer), 0);
  snprintf(bad, sizeof bad, "%s", answer);
  sdp_replace(bad, "a=fingerprint:", "a=x-fingerpri:");
  cr_expect_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, bad, &se), PARLEY_ENOTSUP);
  cr_expect(strstr(se.message, "fingerprint"), "%s", se.message);
  cr_assert_eq(parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se), 0, "%s", se.message);
  cr_assert_eq(parley_call_start(a), 0);
  cr_assert_eq(parley_call_start(b), 0);
  for (int i = 0; i < 300 && !(ra.last_peer == PARLEY_PEER_FAILED && rb.last_peer == PARLEY_PEER_FAILED); i++)
    (void)pull_energy(eb, 10);
  pthread_mutex_lock(&rb.mu);
  cr_expect_eq(rb.last_peer, PARLEY_PEER_FAILED, "%s", parley_peer_state_name(rb.last_peer));
  cr_expect(strstr(rb.peer_message, "does not match the fingerprint"), "B: %s", rb.peer_message);
  pthread_mutex_unlock(&rb.mu);
  pthread_mutex_lock(&ra.mu);
  cr_expect_eq(ra.last_peer, PARLEY_PEER_FAILED, "%s", parley_peer_state_name(ra.last_peer));
  cr_expect(strstr(ra.peer_message, "bad certificate"), "A: %s", ra.peer_message);
  pthread_mutex_unlock(&ra.mu);
  cr_expect_eq(count(&ra, PARLEY_EVENT_TRACK_STARTED) + count(&rb, PARLEY_EVENT_TRACK_STARTED), 0);
  cr_expect_lt(pull_energy(eb, 300), 1e-6, "nothing heard");
  unlisten_all(a, ida);
  unlisten_all(b, idb);
  cr_expect_eq(parley_call_free(a), 0);
  cr_expect_eq(parley_call_free(b), 0);
  parley_engine_free(ea);
  parley_engine_free(eb);
}
