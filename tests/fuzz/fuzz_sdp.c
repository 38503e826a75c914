/* fuzz_sdp.c: libFuzzer target for the SDP parser, writer and answer. Whatever parses must be
 * writable; writing is a fixed point after one parse (write(parse(write(x))) == write(x)); an answer
 * to it must be writable too. */
/* The library objects are built without coverage or sanitizer instrumentation under PARLEY_FUZZ, so
 * the code under test is compiled into this translation unit (instrumented). Its symbols then satisfy
 * the link and the archive's copy is never pulled in. */
#include "transport/sdp.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static parley__sdp parsed, reparsed, answer;
static char text1[1 << 18], text2[1 << 18];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__sdp_error err;
  int rc = parley__sdp_parse((const char *)data, size, &parsed, &err);
  if (rc != 0) {
    if (rc != PARLEY_EPARSE || err.line <= 0) abort();
    return 0;
  }
  int n1 = parley__sdp_write(&parsed, text1, sizeof text1);
  if (n1 <= 0) abort();
  if (parley__sdp_parse(text1, (size_t)n1, &reparsed, &err) != 0) abort();
  int n2 = parley__sdp_write(&reparsed, text2, sizeof text2);
  if (n2 != n1 || memcmp(text1, text2, (size_t)n1) != 0) abort();

  parley__sdp_answer_params p = {.sess_id = 1, .sess_version = 1, .addr = "127.0.0.1", .port = 5000,
                                 .ice_ufrag = "ufra", .ice_pwd = "passwordpasswordpasswo",
                                 .dir = PARLEY__SDP_SENDRECV, .ptime_ms = 20};
  rc = parley__sdp_answer(&parsed, &p, &answer);
  if (rc < 0 && rc != PARLEY_ENOTSUP) abort();
  if (parley__sdp_write(&answer, text2, sizeof text2) <= 0) abort();
  return 0;
}
