/* fuzz_dtls.c: libFuzzer target for what DTLS-SRTP takes from the network: an a=fingerprint value (a
 * parsed one has its algorithm's digest length) and datagrams into a server session (the input split by
 * length bytes, each datagram followed by a tick 100 ms later): the session never crashes, never sends
 * an empty datagram, and ends in a W3C state. */
#include "transport/dtls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, const uint8_t *buf, size_t len) {
  (void)ctx;
  if (!buf || len == 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__dtls_fingerprint f;
  if (parley__dtls_fingerprint_parse((const char *)data, size, &f) == 0) {
    static const size_t lens[] = {20, 28, 32, 48, 64};
    bool ok = false;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) ok = ok || f.digest_len == lens[i];
    if (!ok) abort();
  }
  static parley__dtls_cert *cert;
  if (!cert && !(cert = parley__dtls_cert_new(NULL, NULL, NULL))) abort();
  parley__dtls_config c = {.role = PARLEY__DTLS_SERVER, .cert = cert, .send = sink};
  strcpy(c.peer.alg, "sha-256");
  c.peer.digest_len = 32;
  parley__dtls *d = parley__dtls_new(&c, NULL);
  if (!d || parley__dtls_start(d, 0) != 0) abort();
  int64_t t = 0;
  for (size_t off = 0; off < size;) {
    size_t n = data[off++];
    if (n > size - off) n = size - off;
    (void)parley__dtls_receive(d, data + off, n, t);
    off += n;
    t += 100000;
    (void)parley__dtls_tick(d, t);
  }
  if ((unsigned)parley__dtls_get_state(d) > PARLEY__DTLS_FAILED) abort();
  parley__dtls_free(d);
  return 0;
}
