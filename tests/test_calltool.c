/* test_calltool.c: the reusable logic of parley-call (tools/call_lib.c): SDP candidate rewriting
 * checked by the real SDP parser, the TCP rendezvous over 127.0.0.1, the SDP file and stream exchange,
 * and the timeline formatting. The tool binary itself is exercised by scripts/test-call-tool.sh. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tools/call_lib.c" /* the helpers are linked into the tools, not the tests: compile them here */
#include "transport/sdp.h"

/* An SDP in the shape the engine writes (LF here; CRLF variants are made from it). */
static const char OFFER[] =
    "v=0\n"
    "o=- 1654050801 1 IN IP4 127.0.0.1\n"
    "s=-\n"
    "t=0 0\n"
    "m=audio 46957 RTP/SAVPF 111\n"
    "c=IN IP4 127.0.0.1\n"
    "a=mid:0\n"
    "a=ice-ufrag:2s/22+Uu\n"
    "a=ice-pwd:Yn7yxZFdBept/I4L3k096kqm\n"
    "a=rtpmap:111 opus/48000/2\n"
    "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\n"
    "a=ptime:20\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZZB3vhqiZQMnP6YkAJrGDIy9ckw1I8nD1n/8fd3q\n"
    "a=candidate:H1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\n"
    "a=candidate:H6 1 udp 2122317822 ::1 40000 typ host\n"
    "a=candidate:H0 1 udp 2122317823 127.0.0.1 46957 typ host generation 0 network-id 1\n"
    "a=end-of-candidates\n"
    "a=rtcp-mux\n"
    "a=sendrecv\n";

static void to_crlf(const char *in, char *out, size_t cap) {
  size_t k = 0;
  for (const char *p = in; *p && k + 3 < cap; p++) {
    if (*p == '\n') out[k++] = '\r';
    out[k++] = *p;
  }
  out[k] = '\0';
}

static int count_char(const char *s, char c) {
  int n = 0;
  for (; *s; s++) n += *s == c;
  return n;
}

Test(calltool, rewrite_moves_every_candidate_and_keeps_the_rest) {
  static char crlf[4096], out[4096];
  static parley__sdp before, after;
  to_crlf(OFFER, crlf, sizeof crlf);
  const char *variants[2] = {OFFER, crlf};
  for (int v = 0; v < 2; v++) {
    int n = parley__via_sdp_rewrite(variants[v], "10.1.2.3", 4000, out, sizeof out);
    cr_assert_gt(n, 0);
    cr_assert_eq((size_t)n, strlen(out));
    cr_assert_eq(count_char(out, '\n'), count_char(variants[v], '\n'), "one line out per line in");
    cr_assert_eq(count_char(out, '\r'), count_char(variants[v], '\r'), "line ends kept");
    cr_assert_eq(parley__sdp_parse(variants[v], strlen(variants[v]), &before, NULL), 0);
    cr_assert_eq(parley__sdp_parse(out, (size_t)n, &after, NULL), 0, "the rewritten SDP still parses");
    const parley__sdp_media *m0 = &before.media[0], *m1 = &after.media[0];
    cr_assert_eq(m1->port, 4000);
    cr_assert_str_eq(m1->conn_addr, "10.1.2.3");
    cr_assert_eq(m1->candidate_count, m0->candidate_count);
    for (size_t i = 0; i < m1->candidate_count; i++) {
      cr_assert_str_eq(m1->candidates[i].addr, "10.1.2.3");
      cr_assert_eq(m1->candidates[i].port, 4000);
      cr_assert_str_eq(m1->candidates[i].foundation, m0->candidates[i].foundation);
      cr_assert_eq(m1->candidates[i].priority, m0->candidates[i].priority);
    }
    cr_assert_str_eq(m1->ice_ufrag, m0->ice_ufrag);
    cr_assert_str_eq(m1->ice_pwd, m0->ice_pwd);
    cr_assert_str_eq(m1->crypto[0].key_params, m0->crypto[0].key_params);
    cr_assert(strstr(out, "typ host generation 0 network-id 1") != NULL, "candidate extensions kept");
  }
}

Test(calltool, rewrite_rejects_bad_input) {
  char out[4096], small[64];
  cr_assert_eq(parley__via_sdp_rewrite(OFFER, "not-an-ip", 4000, out, sizeof out), PARLEY_EINVAL);
  cr_assert_eq(parley__via_sdp_rewrite(OFFER, "10.0.0.1", 0, out, sizeof out), PARLEY_EINVAL);
  cr_assert_eq(parley__via_sdp_rewrite(OFFER, "10.0.0.1", 70000, out, sizeof out), PARLEY_EINVAL);
  cr_assert_eq(parley__via_sdp_rewrite(NULL, "10.0.0.1", 4000, out, sizeof out), PARLEY_EINVAL);
  cr_assert_eq(parley__via_sdp_rewrite(OFFER, "10.0.0.1", 4000, small, sizeof small), PARLEY_ENOSPC);
  cr_assert_eq(parley__via_sdp_rewrite("v=0\ns=-\n", "10.0.0.1", 4000, out, sizeof out), PARLEY_EPARSE);
}

Test(calltool, split_hostport_takes_ipv4_and_bracketed_ipv6) {
  char ip[PARLEY__VIA_IP_MAX];
  int port = -1;
  cr_assert_eq(parley__via_split_hostport("127.0.0.1:9000", ip, sizeof ip, &port), 0);
  cr_expect_str_eq(ip, "127.0.0.1");
  cr_expect_eq(port, 9000);
  cr_assert_eq(parley__via_split_hostport("192.0.2.255:0", ip, sizeof ip, &port), 0);
  cr_expect_eq(port, 0);
  cr_assert_eq(parley__via_split_hostport("[::1]:5004", ip, sizeof ip, &port), 0);
  cr_expect_str_eq(ip, "::1");
  cr_expect_eq(port, 5004);
  const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"; /* 45 characters inside */
  cr_assert_eq(parley__via_split_hostport(longest, ip, sizeof ip, &port), 0);
  cr_expect_str_eq(ip, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
  cr_expect_eq(port, 65535);
  const char *bad[] = {"9000", ":9000", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9x", "host:1", "::1:5004",
                       "1.2.3.4.5:1", "127.0.0.1:-1", "127.0.0.1:+1", "[::1]", "[::1]5004", "[::1]:", "[127.0.0.1]:1",
                       "[::1:1", "[]:1", "[fe80::1%lo]:1", "[::1]:99999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(parley__via_split_hostport(bad[i], ip, sizeof ip, &port), PARLEY_EINVAL, "%s", bad[i]);
  cr_expect_eq(parley__via_split_hostport("127.0.0.1:1", ip, 16, &port), PARLEY_EINVAL, "ip buffer too small");
}

Test(calltool, first_candidate_is_the_first_udp_ipv4_one_else_ipv6) {
  char ip[PARLEY__VIA_IP_MAX];
  int port = 0;
  cr_assert_eq(parley__via_first_candidate(OFFER, ip, sizeof ip, &port), 0);
  cr_assert_str_eq(ip, "127.0.0.1");
  cr_assert_eq(port, 46957, "tcp candidates are skipped, IPv4 comes before IPv6");
  cr_assert_eq(parley__via_first_candidate("a=candidate:H6 1 udp 2122317822 2001:db8::7 40000 typ host\n"
                                                    "a=candidate:H1 1 tcp 1518280447 10.0.0.1 9 typ host\n",
                                                    ip, sizeof ip, &port),
               0);
  cr_assert_str_eq(ip, "2001:db8::7");
  cr_assert_eq(port, 40000);
  cr_assert_eq(parley__via_first_candidate("v=0\n", ip, sizeof ip, &port), PARLEY_ENOTFOUND);
  cr_assert_eq(parley__via_first_candidate(OFFER, ip, 16, &port), PARLEY_EINVAL);
}

Test(calltool, rewrite_to_an_ipv6_relay) {
  static char out[4096];
  static parley__sdp after;
  int n = parley__via_sdp_rewrite(OFFER, "2001:db8::9", 4000, out, sizeof out);
  cr_assert_gt(n, 0);
  cr_assert_not_null(strstr(out, "c=IN IP6 2001:db8::9\n"), "%s", out);
  cr_assert_not_null(strstr(out, "a=candidate:H0 1 udp 2122317823 2001:db8::9 4000 typ host generation 0"), "%s", out);
  cr_assert_not_null(strstr(out, "m=audio 4000 "), "%s", out);
  cr_assert_eq(parley__sdp_parse(out, (size_t)n, &after, NULL), 0, "the rewritten SDP still parses");
  cr_assert_str_eq(after.media[0].candidates[0].addr, "2001:db8::9");
  cr_assert_eq(after.media[0].candidates[0].port, 4000);
}

typedef struct dialer {
  char addr[64];
  char got[256];
  int rc;
} dialer;

static void *dial_main(void *p) {
  dialer *d = p;
  int fd = parley__calltool_rv_dial(d->addr, 5000);
  if (fd < 0) {
    d->rc = fd;
    return NULL;
  }
  d->rc = parley__calltool_msg_send(fd, "offer from the dialer\r\n");
  if (d->rc == 0) d->rc = parley__calltool_msg_recv(fd, d->got, sizeof d->got, 5000, NULL);
  close(fd);
  return NULL;
}

/* host: "127.0.0.1" or "[::1]". */
static void exchange(const char *host) {
  int lfd = -1, port = 0;
  char addr[64];
  snprintf(addr, sizeof addr, "%s:0", host);
  cr_assert_eq(parley__calltool_rv_listen(addr, &port, &lfd), 0, "%s", addr);
  cr_assert_gt(port, 0);
  dialer d = {.rc = 1};
  snprintf(d.addr, sizeof d.addr, "%s:%d", host, port);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, dial_main, &d), 0);
  int fd = parley__calltool_rv_accept(lfd, 5000);
  cr_assert_geq(fd, 0);
  char buf[256];
  int n = parley__calltool_msg_recv(fd, buf, sizeof buf, 5000, NULL);
  cr_assert_eq(n, (int)strlen("offer from the dialer\r\n"));
  cr_assert_str_eq(buf, "offer from the dialer\r\n");
  cr_assert_eq(parley__calltool_msg_send(fd, "answer"), 0);
  pthread_join(th, NULL);
  cr_assert_eq(d.rc, 6);
  cr_assert_str_eq(d.got, "answer");
  close(fd);
  close(lfd);
}

Test(calltool, rendezvous_exchanges_one_message_each_way) { exchange("127.0.0.1"); }

Test(calltool, rendezvous_over_ipv6) { exchange("[::1]"); }

/* A network error keeps its reason in errno: a port already listened on, an address not on this host. */
Test(calltool, rendezvous_network_errors_keep_errno) {
  int lfd = -1, lfd2 = -1, port = 0;
  cr_assert_eq(parley__calltool_rv_listen("127.0.0.1:0", &port, &lfd), 0);
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  errno = 0;
  cr_assert_eq(parley__calltool_rv_listen(addr, NULL, &lfd2), PARLEY_ENETWORK);
  cr_expect_eq(errno, EADDRINUSE, "errno %d (%s)", errno, strerror(errno));
  close(lfd);
  errno = 0;
  cr_assert_eq(parley__calltool_rv_listen("192.0.2.1:0", NULL, &lfd2), PARLEY_ENETWORK); /* TEST-NET-1 */
  cr_expect_eq(errno, EADDRNOTAVAIL, "errno %d (%s)", errno, strerror(errno));
}

/* A browser-sized description (about 9 KB: audio, video with many formats, data, a dozen candidates)
 * fits the tool's limit. */
Test(calltool, browser_sized_sdp_fits) {
  static char big[PARLEY__CALLTOOL_SDP_MAX], got[PARLEY__CALLTOOL_SDP_MAX];
  size_t n = 0;
  while (n < 9000) n += (size_t)snprintf(big + n, sizeof big - n, "a=rtcp-fb:%zu goog-remb transport-cc ccm fir nack pli\n", n % 128);
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  cr_assert_eq(parley__calltool_msg_send(sv[0], big), 0);
  cr_assert_eq(parley__calltool_msg_recv(sv[1], got, sizeof got, 1000, NULL), (int)n);
  cr_assert_str_eq(got, big);
  close(sv[0]);
  close(sv[1]);
}

Test(calltool, rendezvous_errors) {
  int lfd = -1, port = 0;
  cr_assert_eq(parley__calltool_rv_listen("127.0.0.1:99999", NULL, &lfd), PARLEY_EINVAL);
  cr_assert_eq(parley__calltool_rv_listen("nohost:1", NULL, &lfd), PARLEY_EINVAL);
  cr_assert_eq(parley__calltool_rv_dial("[::1", 10), PARLEY_EINVAL);
  /* Nobody dials: accept gives up. */
  cr_assert_eq(parley__calltool_rv_listen("127.0.0.1:0", &port, &lfd), 0);
  cr_assert_eq(parley__calltool_rv_accept(lfd, 100), PARLEY_ETIMEDOUT);
  close(lfd);
  /* The port is closed now: the dialer retries until its deadline. */
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  cr_assert_eq(parley__calltool_rv_dial(addr, 150), PARLEY_ETIMEDOUT);
}

Test(calltool, message_framing_errors) {
  int sv[2];
  char buf[16];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  /* Length larger than the buffer. */
  cr_assert_eq(parley__calltool_msg_send(sv[0], "0123456789abcdefXYZ"), 0);
  size_t size = 0;
  cr_assert_eq(parley__calltool_msg_recv(sv[1], buf, sizeof buf, 1000, &size), PARLEY_ENOSPC);
  cr_assert_eq(size, 19, "the size of what did not fit");
  close(sv[0]);
  close(sv[1]);
  /* A zero length is not a description; a truncated message is a network error; silence times out. */
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  cr_assert_eq(parley__calltool_msg_recv(sv[1], buf, sizeof buf, 50, NULL), PARLEY_ETIMEDOUT);
  const unsigned char zero[4] = {0, 0, 0, 0};
  cr_assert_eq(write(sv[0], zero, 4), 4);
  cr_assert_eq(parley__calltool_msg_recv(sv[1], buf, sizeof buf, 1000, NULL), PARLEY_EPARSE);
  const unsigned char partial[6] = {0, 0, 0, 9, 'a', 'b'};
  cr_assert_eq(write(sv[0], partial, 6), 6);
  close(sv[0]);
  cr_assert_eq(parley__calltool_msg_recv(sv[1], buf, sizeof buf, 1000, NULL), PARLEY_ENETWORK);
  close(sv[1]);
}

static char g_dir[] = "/tmp/parley_calltool_XXXXXX";

typedef struct late_writer {
  char path[256];
} late_writer;

static void *late_main(void *p) {
  late_writer *w = p;
  /* First half a description without its final newline (a writer caught mid-way), then the rest. */
  FILE *f = fopen(w->path, "w");
  if (!f) return NULL;
  fputs("v=0\ns=-", f);
  fflush(f);
  struct timespec ts = {0, 200 * 1000000L};
  nanosleep(&ts, NULL);
  fputs("\nm=audio 9 RTP/SAVP 111\n", f);
  fclose(f);
  return NULL;
}

Test(calltool, sdp_files) {
  cr_assert_not_null(mkdtemp(g_dir));
  char path[256], buf[4096];
  snprintf(path, sizeof path, "%s/offer.sdp", g_dir);
  /* Round trip; the writer adds the missing final newline. */
  cr_assert_eq(parley__calltool_write_file(path, "v=0\r\ns=-"), 0);
  int n = parley__calltool_read_file_wait(path, NULL, buf, sizeof buf, 2000, NULL);
  cr_assert_eq(n, 9);
  cr_assert_str_eq(buf, "v=0\r\ns=-\n");
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_neq(access(tmp, F_OK), 0, "no temporary left behind");
  /* Too large for the buffer. */
  size_t size = 0;
  cr_assert_eq(parley__calltool_read_file_wait(path, NULL, buf, 4, 500, &size), PARLEY_ENOSPC);
  cr_assert_eq(size, 9);
  /* Missing: bounded wait. */
  snprintf(path, sizeof path, "%s/none.sdp", g_dir);
  cr_assert_eq(parley__calltool_read_file_wait(path, NULL, buf, sizeof buf, 100, NULL), PARLEY_ETIMEDOUT);
  /* Appears while we wait, first incomplete: only the complete text is returned. */
  late_writer w;
  snprintf(w.path, sizeof w.path, "%s/late.sdp", g_dir);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, late_main, &w), 0);
  n = parley__calltool_read_file_wait(w.path, NULL, buf, sizeof buf, 5000, NULL);
  pthread_join(th, NULL);
  cr_assert_str_eq(buf, "v=0\ns=-\nm=audio 9 RTP/SAVP 111\n");
  cr_assert_eq(n, (int)strlen(buf));
  /* A stale file is waited past; a replacement (new inode through the atomic rename) is taken. */
  snprintf(path, sizeof path, "%s/offer.sdp", g_dir);
  struct stat old;
  cr_assert_eq(stat(path, &old), 0);
  cr_assert_eq(parley__calltool_read_file_wait(path, &old, buf, sizeof buf, 150, NULL), PARLEY_ETIMEDOUT);
  cr_assert_eq(parley__calltool_write_file(path, "v=0\ns=new\n"), 0);
  cr_assert_eq(parley__calltool_read_file_wait(path, &old, buf, sizeof buf, 2000, NULL), 10);
  cr_assert_str_eq(buf, "v=0\ns=new\n");
  /* Unwritable. */
  cr_assert_eq(parley__calltool_write_file("/nonexistent-dir/x.sdp", "v=0\n"), PARLEY_EIO);
  unlink(w.path);
  snprintf(path, sizeof path, "%s/offer.sdp", g_dir);
  unlink(path);
  rmdir(g_dir);
}

Test(calltool, stream_reads_up_to_a_blank_line) {
  char text[] = "\r\nv=0\r\ns=-\r\n\r\nafter the blank line\n";
  FILE *f = fmemopen(text, strlen(text), "r");
  cr_assert_not_null(f);
  char buf[256];
  int n = parley__calltool_read_stream(f, buf, sizeof buf, NULL);
  cr_assert_str_eq(buf, "v=0\r\ns=-\r\n", "leading blank lines skipped, CRLF kept");
  cr_assert_eq(n, 10);
  n = parley__calltool_read_stream(f, buf, sizeof buf, NULL);
  cr_assert_str_eq(buf, "after the blank line\n", "EOF also ends a description");
  cr_assert_eq(parley__calltool_read_stream(f, buf, sizeof buf, NULL), PARLEY_EIO, "nothing left");
  fclose(f);
  char big[] = "v=0\ns=a long session name\n";
  f = fmemopen(big, strlen(big), "r");
  size_t size = 0;
  cr_assert_eq(parley__calltool_read_stream(f, buf, 8, &size), PARLEY_ENOSPC);
  cr_assert_eq(size, strlen(big), "the whole description's length");
  fclose(f);
}

Test(calltool, timeline_lines) {
  char line[256];
  parley_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = PARLEY_EVENT_TRACK_STOPPED;
  ev.reason = PARLEY_STOP_TIMEOUT;
  ev.message = "";
  int n = parley__calltool_format_event(line, sizeof line, 3757, "B", &ev);
  cr_assert_eq(n, (int)strlen(line));
  cr_assert_str_eq(line, "   3757 ms  B  track-stopped (timeout)");
  ev.kind = PARLEY_EVENT_INTERRUPTED;
  ev.code = PARLEY_INTERRUPT_NETWORK_LOST;
  ev.message = "no probe answered";
  parley__calltool_format_event(line, sizeof line, 12, "A", &ev);
  cr_assert_str_eq(line, "     12 ms  A  interrupted(network-lost): no probe answered");
  ev.kind = PARLEY_EVENT_PEER_STATE_CHANGED;
  ev.peer_state = PARLEY_PEER_DISCONNECTED;
  parley__calltool_format_event(line, sizeof line, 0, "A", &ev);
  cr_assert_str_eq(line, "      0 ms  A  peer disconnected");
  /* Truncation keeps the NUL and reports what fits. */
  n = parley__calltool_format_event(line, 10, 0, "A", &ev);
  cr_assert_eq(n, 9);
  cr_assert_eq(strlen(line), 9);
}

/* An ICE restart over WHIP: the offer's fragment, applied to a description with a video section after
 * the audio one, gives that description the offer's credentials and candidates in its audio section,
 * as parley's own SDP parser reads them; the rest stays. */
Test(calltool, ice_restart_fragment_round_trip) {
  static char frag[4096], base[4096], out[4096];
  static parley__sdp offer, before, after;
  int n = parley__calltool_ice_frag(OFFER, frag, sizeof frag);
  cr_assert_gt(n, 0);
  cr_assert_eq((size_t)n, strlen(frag));
  cr_assert(strstr(frag, "a=mid:0\r\n") && strstr(frag, "a=end-of-candidates\r\n"));
  cr_assert_null(strstr(frag, "a=rtpmap"), "only ICE lines in a fragment");
  snprintf(base, sizeof base, "%s",
           "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/SAVPF 111\r\nc=IN IP4 10.0.0.1\r\n"
           "a=mid:a\r\na=ice-ufrag:oldu\r\na=ice-pwd:oldpasswordoldpassword12\r\na=rtpmap:111 opus/48000/2\r\n"
           "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZZB3vhqiZQMnP6YkAJrGDIy9ckw1I8nD1n/8fd3q\r\n"
           "a=candidate:X 1 udp 100 10.0.0.1 5000 typ host\r\na=rtcp-mux\r\n"
           "m=video 0 RTP/SAVPF 96\r\na=mid:v\r\n");
  n = parley__calltool_sdp_restart(base, frag, out, sizeof out);
  cr_assert_gt(n, 0);
  cr_assert_eq((size_t)n, strlen(out));
  cr_assert_eq(parley__sdp_parse(OFFER, strlen(OFFER), &offer, NULL), 0);
  cr_assert_eq(parley__sdp_parse(base, strlen(base), &before, NULL), 0);
  cr_assert_eq(parley__sdp_parse(out, (size_t)n, &after, NULL), 0, "the rebuilt description parses: %s", out);
  cr_assert_eq(after.media_count, 2);
  const parley__sdp_media *a = &after.media[0];
  cr_assert_str_eq(a->ice_ufrag, offer.media[0].ice_ufrag);
  cr_assert_str_eq(a->ice_pwd, offer.media[0].ice_pwd);
  cr_assert_eq(a->candidate_count, offer.media[0].candidate_count, "the old candidate gone, the new ones in");
  for (size_t i = 0; i < a->candidate_count; i++)
    cr_assert_str_eq(a->candidates[i].foundation, offer.media[0].candidates[i].foundation);
  cr_assert_eq(after.media[1].candidate_count, 0, "nothing moved into the video section");
  cr_assert_eq(a->port, before.media[0].port);
  cr_assert_str_eq(a->crypto[0].key_params, before.media[0].crypto[0].key_params);
}

Test(calltool, ice_restart_fragment_errors) {
  char out[64];
  static char big[4096];
  cr_assert_eq(parley__calltool_ice_frag("v=0\r\nm=audio 9 RTP/AVP 0\r\n", big, sizeof big), PARLEY_EPARSE);
  cr_assert_eq(parley__calltool_sdp_restart(OFFER, "a=ice-ufrag:x\r\n", big, sizeof big), PARLEY_EPARSE,
               "a fragment without a=ice-pwd is no restart");
  cr_assert_eq(parley__calltool_sdp_restart(OFFER, "<html>502</html>", big, sizeof big), PARLEY_EPARSE);
  cr_assert_eq(parley__calltool_sdp_restart(OFFER, "a=ice-ufrag:x\na=ice-pwd:y\n", out, sizeof out), PARLEY_ENOSPC);
  cr_assert_eq(parley__calltool_ice_frag(OFFER, out, sizeof out), PARLEY_ENOSPC);
  cr_assert_eq(parley__calltool_ice_frag(NULL, out, sizeof out), PARLEY_EINVAL);
  cr_assert_eq(parley__calltool_sdp_restart(OFFER, NULL, out, sizeof out), PARLEY_EINVAL);
}
