/* fuzz_stun.c: libFuzzer target for the STUN decoder. Every input is decoded; whatever decodes is
 * integrity-checked with a fixed key and re-encoded from its decoded fields, which must decode again. */
/* The library objects are built without coverage or sanitizer instrumentation under PARLEY_FUZZ, so
 * the code under test is compiled into this translation unit (instrumented). Its symbols then satisfy
 * the link and the archive's copy is never pulled in. */
#include "transport/stun.c"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "VOkJxbRl1RmTxUk/WvJxBt";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__stun_is_message(data, size);
  parley__stun_msg m;
  if (parley__stun_decode(&m, data, size) != 0) return 0;
  parley__stun_check_integrity(&m, data, size, key, sizeof key - 1);

  /* Re-encode what we understood (only the attributes the encoder writes). */
  m.present &= ~(uint32_t)(PARLEY__STUN_HAS_REALM | PARLEY__STUN_HAS_NONCE |
                           PARLEY__STUN_HAS_MAPPED_ADDRESS);
  if (m.unknown_attr_count > PARLEY__STUN_MAX_UNKNOWN) abort();
  uint8_t out[PARLEY__STUN_MAX_MSG_BYTES + 64];
  int n = parley__stun_encode(&m, key, sizeof key - 1, true, out, sizeof out);
  if (n > 0) {
    parley__stun_msg again;
    if (parley__stun_decode(&again, out, (size_t)n) != 0) {
      /* Too long for decode is the only acceptable failure. */
      if ((size_t)n <= PARLEY__STUN_MAX_MSG_BYTES) abort();
    } else if (parley__stun_check_integrity(&again, out, (size_t)n, key, sizeof key - 1) != 0) {
      abort();
    }
  }
  return 0;
}
