/* fuzz_calltool.c: libFuzzer target for parley-call's SDP readers: candidate rewriting and the
 * first-candidate reader (sim/sdp_via.c, linked), the SDP stream reader (stdin) and the rendezvous message
 * reader, on inputs up to the tool's largest SDP, PARLEY__CALLTOOL_SDP_MAX (.ci/run passes -max_len).
 * Checks: rewrite output is NUL-terminated at its returned length and within the buffer; once rewritten,
 * the first UDP IPv4 candidate the reader finds is the relay's address and port; the stream reader's
 * result is as long as it says; a framed message comes back byte for byte. */
#define _GNU_SOURCE
#include "tools/call_lib.c" /* the helpers are linked into the tools only: compile them here */

#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SDP_CAP PARLEY__CALLTOOL_SDP_MAX

static char sdp[SDP_CAP], out[SDP_CAP], got[SDP_CAP];

static void rewrite(void) {
  int n = parley__via_sdp_rewrite(sdp, "10.1.2.3", 4000, out, sizeof out);
  if (n >= 0) {
    if ((size_t)n >= sizeof out || strlen(out) != (size_t)n) abort();
    char ip[16];
    int port = 0;
    if (parley__via_first_candidate(out, ip, sizeof ip, &port) == 0 &&
        (strcmp(ip, "10.1.2.3") != 0 || port != 4000))
      abort();
  } else if (n != PARLEY_EPARSE && n != PARLEY_ENOSPC) {
    abort();
  }
  char ip[16];
  int port = 0;
  if (parley__via_first_candidate(sdp, ip, sizeof ip, &port) == 0) {
    struct in_addr a4;
    if (inet_pton(AF_INET, ip, &a4) != 1 || port <= 0 || port > 65535) abort();
  }
}

static void stream(const uint8_t *data, size_t size) {
  FILE *in = fmemopen((void *)data, size, "r");
  if (!in) return;
  int n = parley__calltool_read_stream(in, got, sizeof got, NULL);
  if (n >= 0 && ((size_t)n >= sizeof got || strlen(got) != (size_t)n)) abort();
  fclose(in);
}

static void message(const uint8_t *data, size_t size) {
  int sv[2];
  if (size == 0 || size >= SDP_CAP || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return;
  uint8_t hdr[4] = {(uint8_t)(size >> 24), (uint8_t)(size >> 16), (uint8_t)(size >> 8), (uint8_t)size};
  bool sent = write(sv[0], hdr, 4) == 4 && write(sv[0], data, size) == (ssize_t)size;
  close(sv[0]); /* the peer hangs up after its message */
  if (sent) {
    int n = parley__calltool_msg_recv(sv[1], got, sizeof got, 1000, NULL);
    if (memchr(data, '\0', size)) {
      if (n != PARLEY_EPARSE) abort();
    } else if (n != (int)size || memcmp(got, data, size) != 0 || got[size] != '\0') {
      abort();
    }
  }
  close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n = size < SDP_CAP ? size : SDP_CAP - 1;
  memcpy(sdp, data, n);
  sdp[n] = '\0';
  rewrite();
  stream(data, size);
  message(data, size);
  return 0;
}
