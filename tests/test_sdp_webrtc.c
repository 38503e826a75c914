#define _POSIX_C_SOURCE 200809L
/* test_sdp_webrtc.c: browser SDP as parley meets it (tests/data/sdp/: Chrome and Firefox offers with
 * BUNDLE, audio+video+data, many codecs, extmaps, mDNS candidates; a Chrome answer): parsed, answered line
 * by line, written back; parley's own answer and offer read by an independent parser (aiortc). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/parley.h"
#include "transport/sdp.h"

#define SDP_DIR PARLEY_TEST_DATA "/sdp/"
#define AIORTC_CHECK PARLEY_TEST_DATA "/../interop/sdp_aiortc.py"

static size_t read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "open %s", path);
  size_t n = fread(buf, 1, cap - 1, f);
  cr_assert(feof(f), "%s fits in %zu bytes", path, cap);
  fclose(f);
  buf[n] = '\0';
  return n;
}

static parley__sdp *parse_fixture(const char *name) {
  static char text[16384];
  char path[512];
  snprintf(path, sizeof path, "%s%s", SDP_DIR, name);
  size_t n = read_file(path, text, sizeof text);
  parley__sdp *s = malloc(sizeof *s);
  cr_assert_not_null(s);
  parley__sdp_error err;
  int rc = parley__sdp_parse(text, n, s, &err);
  cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
  return s;
}

/* Compares text with the expected lines (each without its CRLF), line by line, naming the first
 * difference; every line of text must end in CRLF. */
static void expect_lines(const char *text, const char *const *lines, size_t n) {
  const char *p = text;
  for (size_t i = 0; i < n; i++) {
    const char *eol = strstr(p, "\r\n");
    cr_assert_not_null(eol, "line %zu missing: want \"%s\"", i + 1, lines[i]);
    cr_assert(strlen(lines[i]) == (size_t)(eol - p) && memcmp(p, lines[i], (size_t)(eol - p)) == 0,
              "line %zu: got \"%.*s\", want \"%s\"", i + 1, (int)(eol - p), p, lines[i]);
    p = eol + 2;
  }
  cr_assert_eq(*p, '\0', "extra text after line %zu: \"%s\"", n, p);
}

/* Runs aiortc's SDP parser on text; its summary (see sdp_aiortc.py) into out. */
static void aiortc_summary(const char *text, char *out, size_t cap) {
  char path[] = "/tmp/parley-sdp-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  size_t len = strlen(text);
  cr_assert_eq(write(fd, text, len), (ssize_t)len);
  close(fd);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", AIORTC_CHECK, path);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  unlink(path);
  cr_assert_eq(status, 0, "aiortc refused the SDP:\n%s", text);
}

static const parley__sdp_candidate host_cand = {
    .foundation = "1", .component = 1, .transport = "udp", .priority = 2130706431,
    .addr = "192.0.2.10", .port = 40000, .type = PARLEY__SDP_CAND_HOST};

static parley__sdp_answer_params answer_params(void) {
  return (parley__sdp_answer_params){
      .sess_id = 42, .sess_version = 1, .addr = "192.0.2.10", .port = 40000,
      .ice_ufrag = "pUfr", .ice_pwd = "parleyIcePassword0123456", .dir = PARLEY__SDP_SENDRECV,
      .ptime_ms = 20, .maxptime_ms = 120, .useinbandfec = true, .usedtx = false,
      .candidates = &host_cand, .candidate_count = 1, .end_of_candidates = true,
      .msid = "parley-42 audio-7", .ice_trickle = true};
}

/* parley's answer to offer, written into text. */
static void answer_text(const parley__sdp *offer, const parley__sdp_answer_params *p, char *text, size_t cap) {
  parley__sdp *ans = malloc(sizeof *ans);
  cr_assert_not_null(ans);
  cr_assert_eq(parley__sdp_answer(offer, p, ans), 0);
  cr_assert_gt(parley__sdp_write(ans, text, cap), 0);
  free(ans);
}

Test(sdp_webrtc, chrome_offer_parses) {
  parley__sdp *s = parse_fixture("chrome_offer.sdp");
  cr_assert_eq(s->media_count, 3);
  cr_assert_eq(s->bundle_count, 3);
  cr_expect_str_eq(s->bundle[0], "0");
  cr_expect_str_eq(s->bundle[2], "2");
  const parley__sdp_media *a = &s->media[0];
  cr_expect_str_eq(a->type, "audio");
  cr_expect_eq(a->proto, PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF);
  cr_expect_eq(a->format_count, 8);
  cr_expect_eq(a->opus_pt, 111);
  cr_expect_eq(a->opus_useinbandfec, 1);
  cr_expect_eq(a->ext_audio_level, 1);
  cr_expect_eq(a->ext_mid, 4);
  cr_expect(a->rtcp_mux);
  cr_expect(a->rtcp_rsize);
  cr_expect(a->ice_trickle);
  cr_expect_str_eq(a->mid, "0");
  cr_expect_str_eq(a->msid, "5a1c9e4b-2f3d-4e6a-8b7c-0d1e2f3a4b5c 0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f");
  cr_assert_eq(a->candidate_count, 2);
  cr_expect_str_eq(a->candidates[0].addr, "e3b0c442-98fc-4c14-9afb-f4c8996fb924.local");
  cr_expect_eq(a->candidates[1].type, PARLEY__SDP_CAND_SRFLX);
  cr_expect_not(a->end_of_candidates);
  cr_expect_str_eq(s->media[1].type, "video");
  cr_expect_eq(s->media[1].opus_pt, -1);
  cr_expect_eq(s->media[1].ext_mid, 4); /* ids 13, 14: beyond nothing parley speaks, ignored */
  cr_expect_eq(s->media[1].ext_audio_level, 0);
  cr_expect_str_eq(s->media[2].proto_text, "UDP/DTLS/SCTP");
  cr_expect_eq(s->media[2].proto, PARLEY__SDP_PROTO_OTHER);
  cr_expect_str_eq(s->media[2].mid, "2");
  free(s);
}

static const char *const chrome_answer_lines[] = {
    "v=0",
    "o=- 42 1 IN IP4 192.0.2.10",
    "s=-",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=audio 40000 UDP/TLS/RTP/SAVPF 111",
    "a=mid:0",
    "a=ice-ufrag:pUfr",
    "a=ice-pwd:parleyIcePassword0123456",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=3;useinbandfec=1;usedtx=0;stereo=0;sprop-stereo=0",
    "a=ptime:20",
    "a=maxptime:120",
    "a=candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host",
    "a=end-of-candidates",
    "a=rtcp-mux",
    "a=msid:parley-42 audio-7",
    "a=ice-options:trickle",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=rtcp-rsize",
    "a=sendrecv",
    "m=video 0 UDP/TLS/RTP/SAVPF 96",
    "a=mid:1",
    "a=inactive",
    "m=application 0 UDP/DTLS/SCTP webrtc-datachannel",
    "a=mid:2",
    "a=inactive",
};

Test(sdp_webrtc, chrome_offer_answered_line_by_line) {
  parley__sdp *offer = parse_fixture("chrome_offer.sdp");
  parley__sdp_answer_params p = answer_params();
  static char text[8192];
  answer_text(offer, &p, text, sizeof text);
  expect_lines(text, chrome_answer_lines, sizeof chrome_answer_lines / sizeof chrome_answer_lines[0]);
  free(offer);
}

Test(sdp_webrtc, firefox_offer_parsed_and_answered) {
  parley__sdp *s = parse_fixture("firefox_offer.sdp");
  cr_assert_eq(s->media_count, 2);
  cr_assert_eq(s->bundle_count, 2);
  const parley__sdp_media *a = &s->media[0];
  cr_expect_eq(a->opus_pt, 109);
  cr_expect_eq(a->ext_audio_level, 1);
  cr_expect_eq(a->ext_mid, 3); /* csrc-audio-level (2/recvonly) is not ours */
  cr_expect_not(a->rtcp_rsize);
  cr_expect(a->ice_trickle, "session-level ice-options reach the m-line");
  cr_expect(a->end_of_candidates);
  cr_expect_str_eq(a->ice_ufrag, "3c9a41f2");
  cr_expect_str_eq(a->msid, "{8d2f4c1a-7e3b-4a59-b06d-1c9e8f7a2b3d} {e4a7c2b9-0f1d-4e68-93a5-7b2c6d1e8f04}");
  cr_assert_eq(a->candidate_count, 3);
  cr_expect_str_eq(a->candidates[1].transport, "TCP");
  cr_expect_str_eq(s->media[1].mid, "1");

  parley__sdp_answer_params p = answer_params();
  p.useinbandfec = false;
  p.msid = NULL;
  static char text[8192];
  answer_text(s, &p, text, sizeof text);
  cr_expect_not_null(strstr(text, "\r\na=group:BUNDLE 0\r\nm=audio 40000 UDP/TLS/RTP/SAVPF 109\r\n"), "%s", text);
  cr_expect_not_null(strstr(text, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
                                  "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n"), "%s", text);
  cr_expect_null(strstr(text, "rtcp-rsize"), "not offered, not answered");
  cr_expect_null(strstr(text, "a=msid"));
  cr_expect_null(strstr(text, "G722"));
  cr_expect_null(strstr(text, "telephone-event"));
  cr_expect_not_null(strstr(text, "\r\nm=video 0 UDP/TLS/RTP/SAVPF 120\r\na=mid:1\r\na=inactive\r\n"), "%s", text);
  free(s);
}

Test(sdp_webrtc, chrome_answer_parses) {
  parley__sdp *s = parse_fixture("chrome_answer.sdp");
  cr_assert_eq(s->media_count, 1);
  cr_assert_eq(s->bundle_count, 1);
  cr_expect_str_eq(s->bundle[0], "0");
  cr_expect_eq(s->media[0].opus_pt, 111);
  cr_expect_eq(s->media[0].ext_audio_level, 1);
  cr_expect_eq(s->media[0].ext_mid, 4);
  cr_expect(s->media[0].rtcp_rsize);
  free(s);
}

/* Unbundled offers are answered unbundled; a rejected audio m-line is not in the bundle. */
Test(sdp_webrtc, bundle_holds_only_the_accepted_mid) {
  static const char offer_text[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
                                   "a=group:BUNDLE a b\r\n"
                                   "m=audio 1000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=mid:a\r\n"
                                   "m=audio 1002 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=mid:b\r\n";
  parley__sdp *o = malloc(sizeof *o), *a = malloc(sizeof *a);
  cr_assert_eq(parley__sdp_parse(offer_text, sizeof offer_text - 1, o, NULL), 0);
  parley__sdp_answer_params p = answer_params();
  cr_assert_eq(parley__sdp_answer(o, &p, a), 1);
  cr_assert_eq(a->bundle_count, 1);
  cr_expect_str_eq(a->bundle[0], "b");
  o->bundle_count = 0;
  cr_assert_eq(parley__sdp_answer(o, &p, a), 1);
  cr_expect_eq(a->bundle_count, 0);
  free(o);
  free(a);
}

static int parse_text(const char *text, parley__sdp *s, parley__sdp_error *err) {
  return parley__sdp_parse(text, strlen(text), s, err);
}

Test(sdp_webrtc, malformed_and_ignored_attributes) {
  parley__sdp *s = malloc(sizeof *s);
  parley__sdp_error err;
  const char *head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 96\r\n";
  char text[1024];
  const struct {
    const char *line;
    int rc;
  } cases[] = {
      {"a=extmap:x urn:ietf:params:rtp-hdrext:sdes:mid", PARLEY_EPARSE},
      {"a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid", PARLEY_EPARSE},
      {"a=extmap:3", PARLEY_EPARSE},
      {"a=extmap:15 urn:ietf:params:rtp-hdrext:sdes:mid", 0},           /* two-byte only: ignored */
      {"a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:sdes:mid", 0},   /* one way: ignored */
      {"a=extmap:3 urn:example:unknown", 0},
      {"a=msid:a b c", 0},                                              /* not msid syntax: ignored */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(text, sizeof text, "%s%s\r\n", head, cases[i].line);
    cr_assert_eq(parse_text(text, s, &err), cases[i].rc, "%s", cases[i].line);
    if (cases[i].rc) cr_expect_eq(err.line, 6, "%s: %s", cases[i].line, err.msg);
    else cr_expect(s->media[0].ext_mid == 0 && s->media[0].msid[0] == '\0', "%s", cases[i].line);
  }
  snprintf(text, sizeof text, "%sa=extmap:3 " PARLEY__SDP_EXT_MID "\r\na=extmap:3 " PARLEY__SDP_EXT_AUDIO_LEVEL "\r\n",
           head);
  cr_expect_eq(parse_text(text, s, &err), PARLEY_EPARSE, "one id, two extensions");
  cr_expect_eq(err.line, 7);
  snprintf(text, sizeof text, "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\na=group:BUNDLE 0 1 2 3 4 5 6 7 8\r\n");
  cr_expect_eq(parse_text(text, s, &err), PARLEY_EPARSE);
  cr_expect_eq(err.line, 4);
  free(s);
}

/* An engine without audio I/O, on loopback, and a call on it. */
static void loopback_call(parley_engine **e, parley_call **c) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.loopback_candidates = true;
  cfg.ipv6 = false;
  cr_assert_eq(parley_engine_new(&cfg, e), 0);
  cr_assert_eq(parley_call_new(*e, c), 0);
}

/* An offer from a parley call: written by call_sdp.c, parsed back to the same fields and the same text,
 * and read by aiortc with its BUNDLE, mid, extmaps, trickle and only Opus. */
Test(sdp_webrtc, own_offer_round_trip_and_aiortc) {
  parley_engine *e;
  parley_call *c;
  loopback_call(&e, &c);
  static char t1[8192], t2[8192], got[8192];
  int n = parley_call_create_offer(c, t1, sizeof t1);
  cr_assert_gt(n, 0);
  parley__sdp *s = malloc(sizeof *s);
  cr_assert_eq(parley__sdp_parse(t1, (size_t)n, s, NULL), 0);
  cr_assert_eq(s->bundle_count, 1);
  cr_expect_str_eq(s->bundle[0], "0");
  const parley__sdp_media *m = &s->media[0];
  cr_expect_str_eq(m->mid, "0");
  cr_expect_eq(m->ext_audio_level, 1);
  cr_expect_eq(m->ext_mid, 2);
  cr_expect(m->rtcp_mux && m->rtcp_rsize && m->ice_trickle);
  cr_expect_eq(strncmp(m->msid, "parley-", 7), 0, "%s", m->msid);
  cr_expect_eq(m->format_count, 1);
  cr_assert_eq(parley__sdp_write(s, t2, sizeof t2), n);
  cr_expect_str_eq(t2, t1);
  s->media[0].ext_mid = 1; /* one id for two extensions cannot be written */
  cr_expect_eq(parley__sdp_write(s, t2, sizeof t2), PARLEY_EINVAL);

  aiortc_summary(t1, got, sizeof got);
  char want[512];
  snprintf(want, sizeof want,
           "group BUNDLE 0\n"
           "m audio %u UDP/TLS/RTP/SAVPF mid=0 mux=1 dir=sendrecv\n"
           " msid %s\n"
           " codec 111 audio/opus 48000 2\n"
           " ext 1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
           " ext 2 urn:ietf:params:rtp-hdrext:sdes:mid\n",
           (unsigned)m->port, m->msid);
  cr_expect_eq(strncmp(got, want, strlen(want)), 0, "aiortc read:\n%s\nwant first:\n%s", got, want);
  cr_expect_not_null(strstr(got, " cand host 127.0.0.1 "), "%s", got);
  cr_expect_not_null(strstr(got, " ice-options trickle\n"), "%s", got);
  free(s);
  cr_expect_eq(parley_call_free(c), 0);
  parley_engine_free(e);
}

/* aiortc reads parley's answer to the Chrome offer: the m-lines, mid, BUNDLE, extmaps, only Opus. */
Test(sdp_webrtc, aiortc_reads_our_answer) {
  parley__sdp *offer = parse_fixture("chrome_offer.sdp");
  parley__sdp_answer_params p = answer_params();
  static char text[8192], got[8192];
  answer_text(offer, &p, text, sizeof text);
  aiortc_summary(text, got, sizeof got);
  cr_expect_str_eq(got, "group BUNDLE 0\n"
                        "m audio 40000 UDP/TLS/RTP/SAVPF mid=0 mux=1 dir=sendrecv\n"
                        " msid parley-42 audio-7\n"
                        " codec 111 audio/opus 48000 2\n"
                        " ext 1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
                        " ext 4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
                        " cand host 192.0.2.10 40000\n"
                        " end-of-candidates\n"
                        " ice-options trickle\n"
                        "m video 0 UDP/TLS/RTP/SAVPF mid=1 mux=0 dir=inactive\n"
                        "m application 0 UDP/DTLS/SCTP mid=2 mux=0 dir=inactive\n");
  free(offer);
}

/* parley multiplexes RTCP with RTP on one ICE component: an offer without a=rtcp-mux is refused with a
 * reason (the same offer with it is taken, its mDNS host candidate skipped without harm). The key is RFC
 * 4568's example. */
Test(sdp_webrtc, offer_without_rtcp_mux_is_refused) {
  parley_engine *e;
  parley_call *c;
  loopback_call(&e, &c);
  static const char head[] = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                             "m=audio 5000 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
                             "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
                             "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
  char text[1024];
  parley_sdp_error se;
  snprintf(text, sizeof text, "%s", head);
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, text, &se), PARLEY_ENOTSUP);
  cr_expect_not_null(strstr(se.message, "rtcp-mux"), "%s", se.message);
  snprintf(text, sizeof text,
           "%sa=rtcp-mux\r\na=candidate:1 1 udp 2113937151 e3b0c442-98fc-4c14-9afb-f4c8996fb924.local 5000 typ host\r\n",
           head);
  cr_expect_eq(parley_call_set_remote_description(c, PARLEY_SDP_OFFER, text, &se), 0, "%s", se.message);
  cr_expect_eq(parley_call_free(c), 0);
  parley_engine_free(e);
}
