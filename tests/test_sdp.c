/* test_sdp.c: the SDP parser and writer (round trips, a browser-style offer, an SRTP offer, malformed
 * input with line numbers, truncation) and the RFC 3264 answer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/sdp.h"

/* Written in the style of a Chrome offer: BUNDLE, extmap, msid, ssrc, fingerprint, trickle ICE
 * candidates with generation/network-id extensions, IPv6 and TCP candidates, a video m-line. CRLF. */
static const char browser_offer[] =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS b1e2c3d4\r\n"
    "m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 203.0.113.7\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1467250027 1 udp 2122260223 192.168.1.10 54321 typ host generation 0 network-id 1 "
    "network-cost 10\r\n"
    "a=candidate:1467250028 1 udp 2122262783 2001:db8::10 54322 typ host generation 0 network-id 2\r\n"
    "a=candidate:435653019 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.1.10 rport 54321 "
    "generation 0 network-id 1\r\n"
    "a=candidate:3176502539 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 "
    "network-id 1\r\n"
    "a=candidate:2890326433 1 udp 41885439 198.51.100.20 3478 typ relay raddr 203.0.113.7 rport 54321 "
    "generation 0\r\n"
    "a=ice-ufrag:Xq7b\r\n"
    "a=ice-pwd:4fK1c9vQyL2m8ZtR0pWx3sNe\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 "
    "3C:4A:8F:21:9B:0D:77:E5:12:6A:C4:0F:93:5E:B8:27:D1:66:0A:F3:48:9C:2E:75:B0:1D:E9:84:5F:3A:C2:60\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=sendrecv\r\n"
    "a=msid:b1e2c3d4 7f6e5d4c\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:1001 cname:abcdEFGHijkl0123\r\n"
    "a=ssrc:1001 msid:b1e2c3d4 7f6e5d4c\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Xq7b\r\n"
    "a=ice-pwd:4fK1c9vQyL2m8ZtR0pWx3sNe\r\n"
    "a=mid:1\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n";

/* A minimal SDES-keyed offer with LF line ends. */
static const char savp_offer[] =
    "v=0\n"
    "o=alice 2890844526 2890844527 IN IP4 198.51.100.1\n"
    "s=call\n"
    "c=IN IP4 198.51.100.1\n"
    "t=0 0\n"
    "m=audio 49170 RTP/SAVP 96\n"
    "a=rtpmap:96 opus/48000/2\n"
    "a=fmtp:96 usedtx=1; useinbandfec=0\n"
    "a=ptime:20\n"
    "a=maxptime:40\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Zm9vYmFyYmF6cXV4cXV1eHh5enp5MDEyMzQ1Njc4OQ|2^20|1:4 "
    "FEC_ORDER=FEC_SRTP\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:cXdlcnR5dWlvcGFzZGZnaGprbHp4Y3Zibm0xMjM0NQ|2^20\n"
    "a=sendonly\n";

static parley__sdp *new_sdp(void) {
  parley__sdp *s = calloc(1, sizeof *s);
  cr_assert_not_null(s);
  return s;
}

static parley__sdp *parse_ok(const char *text) {
  parley__sdp *s = new_sdp();
  parley__sdp_error err;
  int rc = parley__sdp_parse(text, strlen(text), s, &err);
  cr_assert_eq(rc, 0, "parse failed: %s", err.msg);
  return s;
}

static void expect_crlf_only(const char *text) {
  for (const char *p = text; *p; p++)
    if (*p == '\n') cr_assert(p > text && p[-1] == '\r', "bare LF at offset %td", p - text);
  size_t n = strlen(text);
  cr_assert(n >= 2 && text[n - 2] == '\r' && text[n - 1] == '\n');
}

Test(sdp_parse, browser_offer) {
  parley__sdp *s = parse_ok(browser_offer);
  cr_expect_eq(s->sess_id, 4611731400430051336ull);
  cr_expect_eq(s->sess_version, 2);
  cr_expect_str_eq(s->origin_user, "-");
  cr_expect_str_eq(s->origin_addr, "127.0.0.1");
  cr_assert_eq(s->media_count, 2);

  const parley__sdp_media *a = &s->media[0];
  cr_expect_str_eq(a->type, "audio");
  cr_expect_eq(a->port, 54321);
  cr_expect_eq(a->proto, PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF);
  cr_expect_eq(a->format_count, 8);
  cr_expect_str_eq(a->formats[7].id, "126");
  cr_expect_str_eq(a->formats[7].encoding, "telephone-event");
  cr_expect_eq(a->formats[7].clock_hz, 8000);
  cr_expect_str_eq(a->formats[1].fmtp, "111/111");
  cr_expect_eq(a->opus_pt, 111);
  cr_expect_eq(a->opus_useinbandfec, 1);
  cr_expect_eq(a->opus_usedtx, -1);
  cr_expect_str_eq(a->formats[0].fmtp, "minptime=10;useinbandfec=1");
  cr_expect_str_eq(a->conn_addr, "203.0.113.7");
  cr_expect_str_eq(a->mid, "0");
  cr_expect_str_eq(a->ice_ufrag, "Xq7b");
  cr_expect_str_eq(a->ice_pwd, "4fK1c9vQyL2m8ZtR0pWx3sNe");
  cr_expect(a->rtcp_mux);
  cr_expect_eq(a->dir, PARLEY__SDP_SENDRECV);
  cr_expect_eq(a->ptime_ms, 0);
  cr_expect_not(a->end_of_candidates);

  cr_assert_eq(a->candidate_count, 5);
  const parley__sdp_candidate *c = a->candidates;
  cr_expect_str_eq(c[0].foundation, "1467250027");
  cr_expect_eq(c[0].component, 1);
  cr_expect_str_eq(c[0].transport, "udp");
  cr_expect_eq(c[0].priority, 2122260223u);
  cr_expect_str_eq(c[0].addr, "192.168.1.10");
  cr_expect_eq(c[0].port, 54321);
  cr_expect_eq(c[0].type, PARLEY__SDP_CAND_HOST);
  cr_expect_not(c[0].has_raddr);
  cr_expect_str_eq(c[1].addr, "2001:db8::10");
  cr_expect_eq(c[1].port, 54322);
  cr_expect_eq(c[2].type, PARLEY__SDP_CAND_SRFLX);
  cr_expect(c[2].has_raddr);
  cr_expect_str_eq(c[2].raddr, "192.168.1.10");
  cr_expect_eq(c[2].rport, 54321);
  cr_expect_str_eq(c[3].transport, "tcp");
  cr_expect_eq(c[4].type, PARLEY__SDP_CAND_RELAY);
  cr_expect_eq(c[4].priority, 41885439u);
  cr_expect_str_eq(c[4].raddr, "203.0.113.7");

  const parley__sdp_media *v = &s->media[1];
  cr_expect_str_eq(v->type, "video");
  cr_expect_eq(v->port, 9);
  cr_expect_eq(v->format_count, 2);
  cr_expect_eq(v->opus_pt, -1);
  cr_expect_str_eq(v->mid, "1");
  free(s);
}

Test(sdp_parse, savp_offer_with_crypto_lf) {
  parley__sdp *s = parse_ok(savp_offer);
  cr_expect_str_eq(s->origin_user, "alice");
  cr_expect_eq(s->sess_id, 2890844526ull);
  cr_expect_eq(s->sess_version, 2890844527ull);
  cr_expect_str_eq(s->session_name, "call");
  cr_expect_str_eq(s->conn_addr, "198.51.100.1");
  cr_assert_eq(s->media_count, 1);
  const parley__sdp_media *a = &s->media[0];
  cr_expect_eq(a->proto, PARLEY__SDP_PROTO_RTP_SAVP);
  cr_expect_eq(a->opus_pt, 96);
  cr_expect_eq(a->opus_usedtx, 1);
  cr_expect_eq(a->opus_useinbandfec, 0);
  cr_expect_eq(a->ptime_ms, 20);
  cr_expect_eq(a->maxptime_ms, 40);
  cr_expect_eq(a->dir, PARLEY__SDP_SENDONLY);
  cr_expect_not(a->rtcp_mux);
  cr_assert_eq(a->crypto_count, 2);
  cr_expect_eq(a->crypto[0].tag, 1);
  cr_expect_str_eq(a->crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
  cr_expect_str_eq(a->crypto[0].key_params, "inline:Zm9vYmFyYmF6cXV4cXV1eHh5enp5MDEyMzQ1Njc4OQ|2^20|1:4");
  cr_expect_str_eq(a->crypto[0].session_params, "FEC_ORDER=FEC_SRTP");
  cr_expect_eq(a->crypto[1].tag, 2);
  cr_expect_str_eq(a->crypto[1].suite, "AES_CM_128_HMAC_SHA1_32");
  cr_expect_str_eq(a->crypto[1].session_params, "");
  free(s);
}

static void fill_model(parley__sdp *s) {
  parley__sdp_init(s);
  strcpy(s->origin_user, "parley");
  s->sess_id = 18446744073709551615ull; /* the largest 64-bit id must survive */
  s->sess_version = 7;
  strcpy(s->origin_addr, "2001:db8::1");
  strcpy(s->session_name, "parley call");
  strcpy(s->conn_addr, "2001:db8::1");
  s->media_count = 1;
  parley__sdp_media *m = &s->media[0];
  parley__sdp_media_init(m);
  strcpy(m->type, "audio");
  m->port = 40000;
  strcpy(m->proto_text, "RTP/SAVPF");
  m->proto = PARLEY__SDP_PROTO_RTP_SAVPF;
  m->format_count = 2;
  strcpy(m->formats[0].id, "109");
  m->formats[0].pt = 109;
  strcpy(m->formats[0].encoding, "opus");
  m->formats[0].clock_hz = 48000;
  m->formats[0].channels = 2;
  strcpy(m->formats[0].fmtp, "maxplaybackrate=48000;stereo=0;useinbandfec=1;usedtx=1");
  strcpy(m->formats[1].id, "101");
  m->formats[1].pt = 101;
  strcpy(m->formats[1].encoding, "telephone-event");
  m->formats[1].clock_hz = 8000;
  strcpy(m->formats[1].fmtp, "0-15");
  strcpy(m->mid, "audio0");
  m->ptime_ms = 10;
  strcpy(m->ice_ufrag, "ufrg");
  strcpy(m->ice_pwd, "passwordpasswordpassword");
  m->candidate_count = 2;
  parley__sdp_candidate *c = m->candidates;
  strcpy(c[0].foundation, "a+b/1");
  c[0].component = 1;
  strcpy(c[0].transport, "UDP");
  c[0].priority = 4294967295u;
  strcpy(c[0].addr, "::1");
  c[0].port = 40000;
  c[0].type = PARLEY__SDP_CAND_HOST;
  strcpy(c[1].foundation, "2");
  c[1].component = 1;
  strcpy(c[1].transport, "UDP");
  c[1].priority = 1694498815u;
  strcpy(c[1].addr, "192.0.2.1");
  c[1].port = 32853;
  c[1].type = PARLEY__SDP_CAND_SRFLX;
  c[1].has_raddr = true;
  strcpy(c[1].raddr, "127.0.0.1");
  c[1].rport = 40000;
  m->end_of_candidates = true;
  m->crypto_count = 1;
  m->crypto[0].tag = 1;
  strcpy(m->crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
  strcpy(m->crypto[0].key_params, "inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk");
  m->rtcp_mux = true;
  m->dir = PARLEY__SDP_RECVONLY;
}

Test(sdp_write, round_trip) {
  parley__sdp *s = new_sdp();
  fill_model(s);
  char text[4096];
  int n = parley__sdp_write(s, text, sizeof text);
  cr_assert_gt(n, 0);
  cr_expect_eq((size_t)n, strlen(text));
  expect_crlf_only(text);
  cr_expect(strstr(text, "o=parley 18446744073709551615 7 IN IP6 2001:db8::1\r\n"));
  cr_expect(strstr(text, "a=candidate:2 1 UDP 1694498815 192.0.2.1 32853 typ srflx raddr 127.0.0.1 "
                         "rport 40000\r\n"));

  parley__sdp *p = parse_ok(text);
  cr_expect_eq(p->sess_id, s->sess_id);
  cr_expect_str_eq(p->session_name, "parley call");
  const parley__sdp_media *a = &p->media[0], *b = &s->media[0];
  cr_assert_eq(p->media_count, 1);
  cr_expect_eq(a->port, b->port);
  cr_expect_eq(a->opus_pt, 109);
  cr_expect_eq(a->opus_useinbandfec, 1);
  cr_expect_eq(a->opus_usedtx, 1);
  cr_expect_eq(a->format_count, 2);
  for (size_t i = 0; i < 2; i++) {
    cr_expect_str_eq(a->formats[i].id, b->formats[i].id);
    cr_expect_str_eq(a->formats[i].encoding, b->formats[i].encoding);
    cr_expect_eq(a->formats[i].clock_hz, b->formats[i].clock_hz);
    cr_expect_eq(a->formats[i].channels, b->formats[i].channels);
    cr_expect_str_eq(a->formats[i].fmtp, b->formats[i].fmtp);
  }
  cr_expect_eq(a->candidate_count, 2);
  cr_expect_eq(memcmp(a->candidates, b->candidates, 2 * sizeof b->candidates[0]), 0);
  cr_expect_eq(memcmp(&a->crypto[0], &b->crypto[0], sizeof b->crypto[0]), 0);
  cr_expect_str_eq(a->mid, "audio0");
  cr_expect_eq(a->ptime_ms, 10);
  cr_expect(a->end_of_candidates);
  cr_expect(a->rtcp_mux);
  cr_expect_eq(a->dir, PARLEY__SDP_RECVONLY);

  /* Writing the parsed model gives the same text. */
  char again[4096];
  cr_assert_eq(parley__sdp_write(p, again, sizeof again), n);
  cr_expect_str_eq(again, text);
  free(s);
  free(p);
}

Test(sdp_write, capacity_checked) {
  parley__sdp *s = new_sdp();
  fill_model(s);
  char text[4096];
  int n = parley__sdp_write(s, text, sizeof text);
  cr_assert_gt(n, 0);
  for (size_t cap = 0; cap <= (size_t)n; cap++)
    cr_expect_eq(parley__sdp_write(s, text, cap), PARLEY_ENOSPC, "cap %zu", cap);
  cr_expect_eq(parley__sdp_write(s, text, (size_t)n + 1), n);
  strcpy(s->media[0].candidates[0].addr, "1.2.3.4\r\na=evil");
  cr_expect_eq(parley__sdp_write(s, text, sizeof text), PARLEY_EINVAL);
  free(s);
}

typedef struct bad_case {
  const char *text;
  int line;
} bad_case;

Test(sdp_parse, malformed_lines_report_line_numbers) {
  static const char head[] = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";
  static const bad_case cases[] = {
      {"o=- 1 1 IN IP4 192.0.2.1\ns=-\n", 1},                                    /* missing v= */
      {"v=1\n", 1},                                                              /* bad version */
      {"v=0\no=- x 1 IN IP4 192.0.2.1\n", 2},                                     /* bad o= */
      {"v=0\ns=-\nm=audio 1 RTP/AVP 0\n", 3},                                     /* m= before o= */
      {"v=0\no=- 1 1 IN IP4 192.0.2.1\n", 3},                                     /* missing s= */
      {"HEAD m=audio\n", 5},                                                      /* short m= */
      {"HEAD m=audio 70000 RTP/AVP 0\n", 5},                                      /* port too big */
      {"HEAD m=audio 5x RTP/AVP 0\n", 5},                                         /* port not a number */
      {"HEAD m=audio 5000 RTP/AVP\n", 5},                                         /* no formats */
      {"HEAD m=audio 5000 RTP/AVP 128\n", 5},                                     /* payload type > 127 */
      {"HEAD m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 6},                  /* no clock rate */
      {"HEAD m=audio 5000 RTP/AVP 0\na=ptime:x\n", 6},                            /* bad ptime */
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 1 udp 10 192.0.2.1 5000 host\n", 6}, /* no typ */
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 1 udp 10 192.0.2.1 99999 typ host\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 0 udp 10 192.0.2.1 5000 typ host\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 1 udp 4294967296 ::1 5000 typ host\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 1 udp 1 ::1 5000 typ bogus\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:f*o 1 udp 1 ::1 5000 typ host\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=candidate:1 1 udp 1 ::1 5000 typ srflx raddr\n", 6},
      {"HEAD m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80\n", 6},
      {"HEAD m=audio 5000 RTP/AVP 0\na=ice-ufrag:\n", 6},
      {"HEAD c=IN IP4\n", 5},
      {"HEAD m=audio 5000 RTP/AVP 0\nnot a line\n", 6},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    const char *t = cases[i].text;
    if (strncmp(t, "HEAD ", 5) == 0)
      snprintf(text, sizeof text, "%s%s", head, t + 5);
    else
      snprintf(text, sizeof text, "%s", t);
    parley__sdp *s = new_sdp();
    parley__sdp_error err;
    cr_expect_eq(parley__sdp_parse(text, strlen(text), s, &err), PARLEY_EPARSE, "case %zu", i);
    cr_expect_eq(err.line, cases[i].line, "case %zu: line %d (%s)", i, err.line, err.msg);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "line %d: ", cases[i].line);
    cr_expect_eq(strncmp(err.msg, prefix, strlen(prefix)), 0, "case %zu: %s", i, err.msg);
    free(s);
  }
}

Test(sdp_parse, candidate_limit_is_an_error) {
  char *text = malloc(8192);
  cr_assert_not_null(text);
  int n = snprintf(text, 8192, "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 9 RTP/AVP 0\n");
  for (int i = 0; i <= PARLEY__SDP_MAX_CANDIDATES; i++)
    n += snprintf(text + n, 8192 - (size_t)n, "a=candidate:%d 1 udp %d 192.0.2.1 %d typ host\n", i,
                  1000 + i, 5000 + i);
  parley__sdp *s = new_sdp();
  parley__sdp_error err;
  cr_expect_eq(parley__sdp_parse(text, (size_t)n, s, &err), PARLEY_EPARSE);
  /* Header lines 1-5, candidate k (0-based) on line 6 + k: the 33rd is index 32. */
  cr_expect_eq(err.line, 6 + PARLEY__SDP_MAX_CANDIDATES);
  free(s);
  free(text);
}

/* A browser-sized offer (about 9 KB, in the shape a browser writes: BUNDLE, audio with eight formats,
 * video with twenty-four and their feedback lines, header extensions, SSRC lines, a data channel, a
 * dozen candidates per m-line) parses whole: the text size has no fixed limit, only the per-line
 * counts of sdp.h do, and this stays within them. */
Test(sdp_parse, browser_sized_offer) {
  enum { CAP = 32768 };
  char *text = malloc(CAP);
  cr_assert_not_null(text);
  size_t n = 0;
#define ADD(...) n += (size_t)snprintf(text + n, CAP - n, __VA_ARGS__)
  ADD("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
      "a=extmap-allow-mixed\r\na=msid-semantic: WMS 1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\n");
  static const char *const kinds[3] = {"audio", "video", "application"};
  static const int nfmt[3] = {8, 24, 0};
  for (int m = 0; m < 3; m++) {
    if (m == 2) {
      ADD("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    } else {
      ADD("m=%s 9 UDP/TLS/RTP/SAVPF", kinds[m]);
      for (int f = 0; f < nfmt[m]; f++) ADD(" %d", m == 0 ? (f == 0 ? 111 : 100 + f) : 96 + f);
      ADD("\r\n");
    }
    ADD("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    for (int k = 0; k < 12; k++)
      ADD("a=candidate:%u %d udp %u 192.0.2.%d %d typ host generation 0 network-id %d\r\n", 1000000000u + (unsigned)k,
          1, 2122260223u - (unsigned)k, 10 + k, 50000 + k, k + 1);
    ADD("a=ice-ufrag:Wq2e\r\na=ice-pwd:f3aJ9dkeP0wq8Xz1bN4mY7sT\r\na=ice-options:trickle\r\n"
        "a=fingerprint:sha-256 4A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:"
        "C6:D7:E8:F9\r\na=setup:actpass\r\na=mid:%d\r\n", m);
    if (m == 2) {
      ADD("a=sctp-port:5000\r\na=max-message-size:262144\r\n");
      continue;
    }
    for (int e = 1; e <= 8; e++) ADD("a=extmap:%d urn:ietf:params:rtp-hdrext:example-extension-%d\r\n", e, e);
    ADD("a=sendrecv\r\na=msid:1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4\r\n"
        "a=rtcp-mux\r\na=rtcp-rsize\r\n");
    for (int f = 0; f < nfmt[m]; f++) {
      int pt = m == 0 ? (f == 0 ? 111 : 100 + f) : 96 + f;
      if (m == 0 && f == 0) {
        ADD("a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n");
        continue;
      }
      ADD("a=rtpmap:%d %s/%d\r\n", pt, m == 0 ? "telephone-event" : (f % 2 ? "rtx" : "VP9"), m == 0 ? 8000 : 90000);
      if (m == 1)
        ADD("a=rtcp-fb:%d goog-remb\r\na=rtcp-fb:%d transport-cc\r\na=rtcp-fb:%d ccm fir\r\na=rtcp-fb:%d nack\r\n"
            "a=rtcp-fb:%d nack pli\r\na=fmtp:%d profile-id=%d\r\n", pt, pt, pt, pt, pt, pt, f);
    }
    ADD("a=ssrc-group:FID 2231627014 632943048\r\n");
    for (int k = 0; k < 2; k++)
      ADD("a=ssrc:%u cname:4TOk42mSjXCkVIa6\r\na=ssrc:%u msid:1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 "
          "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4\r\n", 2231627014u + (unsigned)k, 2231627014u + (unsigned)k);
  }
#undef ADD
  cr_assert_lt(n, (size_t)CAP - 1, "the generator outgrew its buffer");
  cr_assert_gt(n, 8000, "the offer is browser-sized: %zu bytes", n);
  parley__sdp *s = new_sdp();
  parley__sdp_error err;
  cr_assert_eq(parley__sdp_parse(text, n, s, &err), 0, "%s", err.msg);
  cr_expect_eq(s->media_count, 3);
  cr_expect_eq(s->media[0].opus_pt, 111);
  cr_expect_eq(s->media[0].candidate_count, 12);
  cr_expect_eq(s->media[1].format_count, 24);
  free(s);
  free(text);
}

Test(sdp_parse, session_level_defaults_inherited) {
  static const char text[] = "v=0\r\no=- 5 5 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\na=ice-ufrag:sess\r\n"
                             "a=ice-pwd:sessionpasswordsessionpw\r\na=inactive\r\n"
                             "m=audio 9 RTP/AVP 111\r\na=rtpmap:111 OPUS/48000/2\r\n"
                             "m=audio 9 RTP/AVP 111\r\na=ice-ufrag:own1\r\na=sendonly\r\n";
  parley__sdp *s = parse_ok(text);
  cr_assert_eq(s->media_count, 2);
  cr_expect_str_eq(s->media[0].ice_ufrag, "sess");
  cr_expect_str_eq(s->media[0].ice_pwd, "sessionpasswordsessionpw");
  cr_expect_eq(s->media[0].dir, PARLEY__SDP_INACTIVE);
  cr_expect_eq(s->media[0].opus_pt, 111); /* encoding names are case-insensitive */
  cr_expect_str_eq(s->media[1].ice_ufrag, "own1");
  cr_expect_eq(s->media[1].dir, PARLEY__SDP_SENDONLY);
  cr_expect_eq(s->media[1].opus_pt, -1); /* no rtpmap: PT 111 is dynamic, so not opus */
  free(s);
}

Test(sdp_answer, direction_mapping) {
  const parley__sdp_dir S = PARLEY__SDP_SENDRECV, SO = PARLEY__SDP_SENDONLY, RO = PARLEY__SDP_RECVONLY,
                        I = PARLEY__SDP_INACTIVE;
  /* RFC 3264 section 6.1, with a local sendrecv wish. */
  cr_expect_eq(parley__sdp_answer_dir(S, S), S);
  cr_expect_eq(parley__sdp_answer_dir(SO, S), RO);
  cr_expect_eq(parley__sdp_answer_dir(RO, S), SO);
  cr_expect_eq(parley__sdp_answer_dir(I, S), I);
  /* The local wish narrows it. */
  cr_expect_eq(parley__sdp_answer_dir(S, RO), RO);
  cr_expect_eq(parley__sdp_answer_dir(S, SO), SO);
  cr_expect_eq(parley__sdp_answer_dir(SO, SO), I);
  cr_expect_eq(parley__sdp_answer_dir(RO, RO), I);
  cr_expect_eq(parley__sdp_answer_dir(S, I), I);
}

static parley__sdp_answer_params local_params(void) {
  static const parley__sdp_candidate cand = {
      .foundation = "1", .component = 1, .transport = "UDP", .priority = 2130706431u,
      .addr = "127.0.0.1", .port = 41000, .type = PARLEY__SDP_CAND_HOST};
  parley__sdp_answer_params p = {
      .sess_id = 42, .sess_version = 1, .addr = "127.0.0.1", .port = 41000, .ice_ufrag = "loca",
      .ice_pwd = "localpasswordlocalpassw", .dir = PARLEY__SDP_SENDRECV, .ptime_ms = 20,
      .useinbandfec = true, .usedtx = false, .candidates = &cand, .candidate_count = 1,
      .end_of_candidates = true};
  return p;
}

Test(sdp_answer, browser_offer_accepts_audio_rejects_video) {
  parley__sdp *offer = parse_ok(browser_offer);
  parley__sdp *ans = new_sdp();
  parley__sdp_answer_params p = local_params();
  cr_assert_eq(parley__sdp_answer(offer, &p, ans), 0);
  cr_assert_eq(ans->media_count, 2);
  const parley__sdp_media *a = &ans->media[0], *v = &ans->media[1];
  cr_expect_eq(a->port, 41000);
  cr_expect_str_eq(a->proto_text, "UDP/TLS/RTP/SAVPF");
  cr_expect_eq(a->format_count, 1);
  cr_expect_eq(a->opus_pt, 111);
  cr_expect_eq(a->opus_useinbandfec, 1);
  cr_expect_eq(a->opus_usedtx, 0);
  cr_expect_str_eq(a->mid, "0");
  cr_expect(a->rtcp_mux);
  cr_expect_eq(a->dir, PARLEY__SDP_SENDRECV);
  cr_expect_eq(v->port, 0);
  cr_expect_str_eq(v->type, "video");
  cr_expect_str_eq(v->formats[0].id, "96");
  cr_expect_str_eq(v->mid, "1");

  /* The answer is valid SDP that parses back to the same decisions. */
  char text[4096];
  int n = parley__sdp_write(ans, text, sizeof text);
  cr_assert_gt(n, 0);
  expect_crlf_only(text);
  parley__sdp *back = parse_ok(text);
  cr_expect_eq(back->media_count, 2);
  cr_expect_eq(back->media[0].opus_pt, 111);
  cr_expect_eq(back->media[0].candidate_count, 1);
  cr_expect_eq(back->media[0].ptime_ms, 20);
  cr_expect_str_eq(back->media[0].ice_ufrag, "loca");
  cr_expect_eq(back->media[1].port, 0);
  free(offer);
  free(ans);
  free(back);
}

Test(sdp_answer, sendonly_offer_gets_recvonly) {
  parley__sdp *offer = parse_ok(savp_offer);
  parley__sdp *ans = new_sdp();
  parley__sdp_answer_params p = local_params();
  parley__sdp_crypto crypto = {.tag = 1, .suite = "AES_CM_128_HMAC_SHA1_80",
                               .key_params = "inline:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0"};
  p.crypto = &crypto;
  cr_assert_eq(parley__sdp_answer(offer, &p, ans), 0);
  cr_expect_eq(ans->media[0].dir, PARLEY__SDP_RECVONLY);
  cr_expect_eq(ans->media[0].opus_pt, 96);
  cr_expect_eq(ans->media[0].proto, PARLEY__SDP_PROTO_RTP_SAVP);
  cr_assert_eq(ans->media[0].crypto_count, 1);
  cr_expect_str_eq(ans->media[0].crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
  free(offer);
  free(ans);
}

/* webrtcbin writes "OPUS/48000" when its caps carry no channel count: still Opus; "opus/48000/1" is not. */
Test(sdp_parse, opus_without_channel_count_is_opus) {
  static const char without[] = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                                "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
                                "a=rtpmap:111 OPUS/48000\r\n";
  parley__sdp *sdp = parse_ok(without);
  cr_expect_eq(sdp->media[0].opus_pt, 111);
  free(sdp);
  char mono[sizeof without + 2];
  snprintf(mono, sizeof mono, "%s", without);
  strcpy(strstr(mono, "OPUS/48000") + strlen("OPUS/48000"), "/1\r\n");
  sdp = parse_ok(mono);
  cr_expect_eq(sdp->media[0].opus_pt, -1);
  free(sdp);
}

Test(sdp_answer, rejected_and_unsupported_lines) {
  /* Audio with port 0, audio without opus, audio over an unsupported proto: nothing to accept. */
  static const char text[] = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
                             "m=audio 0 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n"
                             "m=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
                             "m=audio 5002 TCP/MRCPv2 111\n"
                             "m=application 5004 UDP/DTLS/SCTP webrtc-datachannel\n";
  parley__sdp *offer = parse_ok(text);
  cr_assert_eq(offer->media_count, 4);
  cr_expect_str_eq(offer->media[3].formats[0].id, "webrtc-datachannel");
  parley__sdp *ans = new_sdp();
  parley__sdp_answer_params p = local_params();
  cr_expect_eq(parley__sdp_answer(offer, &p, ans), PARLEY_ENOTSUP);
  cr_assert_eq(ans->media_count, 4);
  for (size_t i = 0; i < 4; i++) {
    cr_expect_eq(ans->media[i].port, 0, "m-line %zu", i);
    cr_expect_str_eq(ans->media[i].proto_text, offer->media[i].proto_text);
    cr_expect_str_eq(ans->media[i].formats[0].id, offer->media[i].formats[0].id);
  }
  /* Only the first acceptable audio line is taken. */
  static const char two[] = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
                            "m=audio 0 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n"
                            "m=audio 6000 RTP/AVP 100\na=rtpmap:100 opus/48000/2\n"
                            "m=audio 6002 RTP/AVP 101\na=rtpmap:101 opus/48000/2\n";
  parley__sdp *offer2 = parse_ok(two);
  cr_expect_eq(parley__sdp_answer(offer2, &p, ans), 1);
  cr_expect_eq(ans->media[0].port, 0);
  cr_expect_eq(ans->media[1].port, 41000);
  cr_expect_eq(ans->media[1].opus_pt, 100);
  cr_expect_eq(ans->media[2].port, 0);
  free(offer);
  free(offer2);
  free(ans);
}

static void truncate_everywhere(const char *text) {
  size_t len = strlen(text);
  parley__sdp *s = new_sdp();
  for (size_t n = 0; n <= len; n++) {
    /* An exact-size heap copy, not NUL-terminated, so ASan sees any over-read. */
    char *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, text, n);
    parley__sdp_error err;
    int rc = parley__sdp_parse(copy, n, s, &err);
    cr_expect(rc == 0 || rc == PARLEY_EPARSE, "len %zu rc %d", n, rc);
    if (rc == PARLEY_EPARSE) cr_expect_gt(err.line, 0);
    free(copy);
  }
  free(s);
}

Test(sdp_parse, truncated_at_every_length) {
  truncate_everywhere(browser_offer);
  truncate_everywhere(savp_offer);
}

Test(sdp_parse, rejects_null) {
  parley__sdp *s = new_sdp();
  cr_expect_eq(parley__sdp_parse(NULL, 5, s, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__sdp_parse("v=0\n", 4, NULL, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley__sdp_parse("", 0, s, NULL), PARLEY_EPARSE);
  free(s);
}

Test(sdp, what_we_receive_is_advertised_and_maxptime_round_trips) {
  char fmtp[PARLEY__SDP_FMTP_MAX];
  parley__sdp_opus_fmtp(fmtp, sizeof fmtp, true, false);
  cr_expect_str_eq(fmtp, "minptime=3;useinbandfec=1;usedtx=0;stereo=0;sprop-stereo=0");
  parley__sdp *s = calloc(1, sizeof *s);
  cr_assert_not_null(s);
  cr_assert_eq(parley__sdp_parse(savp_offer, strlen(savp_offer), s, NULL), 0);
  static char out[8192];
  cr_assert_gt(parley__sdp_write(s, out, sizeof out), 0);
  cr_expect(strstr(out, "a=maxptime:40\r\n") != NULL, "%s", out);
  free(s);
}

Test(sdp, a_trickled_candidate_parses_and_formats_like_one_in_an_sdp) {
  parley__sdp_candidate c;
  const char *line = "a=candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport "
                     "46154 generation 0 network-cost 999\r\n";
  cr_assert_eq(parley__sdp_candidate_parse(line, strlen(line), &c), 0);
  cr_expect_str_eq(c.foundation, "842163049");
  cr_expect_eq(c.priority, 1677729535u);
  cr_expect_eq(c.type, PARLEY__SDP_CAND_SRFLX);
  cr_expect(c.has_raddr);
  cr_expect_eq(c.rport, 46154);
  char out[PARLEY__SDP_CANDIDATE_LINE_MAX];
  int n = parley__sdp_candidate_format(&c, out, sizeof out);
  cr_assert_gt(n, 0);
  cr_expect_str_eq(out, "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154");
  parley__sdp_candidate again;
  cr_assert_eq(parley__sdp_candidate_parse(out, (size_t)n, &again), 0);
  cr_expect_eq(memcmp(&again, &c, sizeof c), 0, "format then parse is the identity");
  cr_expect_eq(parley__sdp_candidate_format(&c, out, 20), PARLEY_ENOSPC);
  const char *bad[] = {"candidate:1 1 udp 1 1.2.3.4 5 host", "candidate:1 1 udp 1 1.2.3.4 99999 typ host",
                       "end-of-candidates", "candidate:1 1 udp 1 1.2.3.4 5 typ host rport 9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(parley__sdp_candidate_parse(bad[i], strlen(bad[i]), &c), PARLEY_EPARSE, "%s", bad[i]);
}

Test(sdp, dtls_fingerprint_and_setup) {
  parley__sdp *s = parse_ok(browser_offer);
  cr_expect_str_eq(s->media[0].fingerprint, "sha-256 3C:4A:8F:21:9B:0D:77:E5:12:6A:C4:0F:93:5E:B8:27:D1:66:0A:F3:48:"
                                            "9C:2E:75:B0:1D:E9:84:5F:3A:C2:60");
  cr_expect_eq(s->media[0].setup, PARLEY__SDP_SETUP_ACTPASS);
  cr_expect_str_eq(s->media[1].fingerprint, "");
  cr_expect_eq(s->media[1].setup, PARLEY__SDP_SETUP_NONE);
  free(s);
  /* Session level (as Firefox writes it) applies to every m-line without its own; a second is ignored. */
  s = parse_ok("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-1 AA:BB\r\n"
               "a=setup:passive\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256  CC:DD \r\n"
               "a=fingerprint:sha-512 EE\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\n");
  cr_expect_str_eq(s->media[0].fingerprint, "sha-256 CC:DD");
  cr_expect_eq(s->media[0].setup, PARLEY__SDP_SETUP_PASSIVE);
  cr_expect_str_eq(s->media[1].fingerprint, "sha-1 AA:BB");
  cr_expect_eq(s->media[1].setup, PARLEY__SDP_SETUP_ACTIVE);
  free(s);
  const char *bad[] = {"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\na=setup:both\r\n",
                       "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\na=fingerprint:sha-256\r\n",
                       "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\na=fingerprint:a b c\r\n"};
  parley__sdp *t = new_sdp();
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    parley__sdp_error err;
    cr_expect_eq(parley__sdp_parse(bad[i], strlen(bad[i]), t, &err), PARLEY_EPARSE, "%s", bad[i]);
    cr_expect_eq(err.line, 5);
  }
  /* The answer carries the answerer's fingerprint and role, and they parse back. */
  parley__sdp *offer = parse_ok(browser_offer);
  parley__sdp_answer_params p = local_params();
  p.fingerprint = "sha-256 01:02";
  p.setup = PARLEY__SDP_SETUP_ACTIVE;
  cr_assert_eq(parley__sdp_answer(offer, &p, t), 0);
  char text[4096];
  cr_assert_gt(parley__sdp_write(t, text, sizeof text), 0);
  cr_expect(strstr(text, "a=fingerprint:sha-256 01:02\r\na=setup:active\r\n"), "%s", text);
  parley__sdp *back = parse_ok(text);
  cr_expect_str_eq(back->media[0].fingerprint, "sha-256 01:02");
  cr_expect_eq(back->media[0].setup, PARLEY__SDP_SETUP_ACTIVE);
  cr_expect_str_eq(back->media[1].fingerprint, "", "a rejected m-line carries none");
  free(offer);
  free(back);
  free(t);
}
