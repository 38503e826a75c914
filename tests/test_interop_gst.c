/* test_interop_gst.c: parley receives from an independent sender. GStreamer encodes the speech fixture
 * (opusenc at 10, 20, 40 and 60 ms frames, on its own timestamps: its first frame is short by the
 * encoder's lookahead, so every later packet is off our grid), payloads it (rtpopuspay) and protects
 * it with the SDES key of its offer (srtpenc); tests/interop/gst_opus_sender.py does that peer's ICE
 * and sends from the checked address. parley answers, plays what it receives into a WAV file, and
 * the test correlates that with the fixture (the other fixture is the control). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio_helpers.h"
#include "interop_helpers.h"
#include "parley/parley.h"

#define SENDER PARLEY_TEST_DATA "/../interop/gst_opus_sender.py"

static void peer_start(th_peer *p, int frame_ms) {
  char ms[8];
  snprintf(ms, sizeof ms, "%d", frame_ms);
  char *argv[] = {"python3", SENDER, "--wav", PARLEY_TEST_DATA "/speech_a_48k.wav", "--frame-ms", ms, NULL};
  th_peer_start(p, argv);
}

static void gst_sender_into_call(int frame_ms) {
  char out_path[] = "/tmp/parley_gst_XXXXXX.wav";
  int fd = mkstemps(out_path, 4);
  cr_assert_geq(fd, 0);
  close(fd);
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.output_file = out_path;
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_call *c;
  cr_assert_eq(parley_call_new(e, &c), 0);

  th_peer p;
  peer_start(&p, frame_ms);
  static char offer[8192], answer[8192];
  cr_assert(th_read_until_end(p.from, offer, sizeof offer), "the GStreamer peer wrote no offer");
  parley_sdp_error se;
  cr_assert_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, offer, &se), 0, "%s", se.message);
  cr_assert_gt(parley_call_create_answer(c, answer, sizeof answer), 0);
  cr_assert_eq(parley_call_set_local_description(c, answer), 0);
  cr_assert_eq(parley_call_start(c), 0);
  fprintf(p.to, "%sEND\n", answer);
  fflush(p.to);
  char done[128] = "";
  if (!fgets(done, sizeof done, p.from)) done[0] = '\0';
  done[strcspn(done, "\n")] = '\0';
  int status = th_peer_wait(&p, 40);
  cr_assert_eq(status, 0, "%d ms: the GStreamer peer failed (%s)", frame_ms, done);
  struct timespec ts = {0, 400000000L}; /* the jitter buffer's tail */
  nanosleep(&ts, NULL);
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(c, &st), 0);
  cr_assert_eq(parley_call_free(c), 0);
  parley_engine_free(e);

  size_t nx, ny, nz;
  int rate;
  float *x = th_load_wav("speech_a_48k.wav", &nx, &rate);
  float *z = th_load_wav("speech_b_48k.wav", &nz, &rate);
  float *y = th_read_wav(out_path, &ny, &rate);
  cr_assert(x && y && z);
  double peak = th_piecewise_speech(x, nx, y, ny), control = th_piecewise_speech(z, nz, y, ny);
  cr_log_info("%d ms GStreamer packets (%s): %lld received, %llu concealed frames; piecewise correlation %.3f"
              " (other clip %.3f)", frame_ms, done, (long long)st.packets_received,
              (unsigned long long)st.concealed_frames, peak, control);
  /* 6 s of speech in frame_ms packets, all of them delivered over loopback. */
  cr_expect_geq(st.packets_received, (uint64_t)(5000 / frame_ms), "%d ms: received %lld", frame_ms,
                (long long)st.packets_received);
  cr_expect_geq(peak, 0.6, "%d ms: piecewise correlation %.3f", frame_ms, peak);
  cr_expect_lt(control, peak * 0.6, "%d ms: control %.3f vs %.3f", frame_ms, control, peak);
  free(x);
  free(y);
  free(z);
  unlink(out_path);
}

Test(interop_gst, opus_10ms_packets, .timeout = 90) { gst_sender_into_call(10); }
Test(interop_gst, opus_20ms_packets, .timeout = 90) { gst_sender_into_call(20); }
Test(interop_gst, opus_40ms_packets, .timeout = 90) { gst_sender_into_call(40); }
Test(interop_gst, opus_60ms_packets, .timeout = 90) { gst_sender_into_call(60); }
