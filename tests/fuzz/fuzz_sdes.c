/* fuzz_sdes.c: libFuzzer target for the RFC 4568 a=crypto value parser (untrusted SDP input). A parsed
 * value must carry exactly its suite's key length and format back to a value that parses the same. */
#include "transport/srtp.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__sdes_crypto c;
  if (parley__sdes_crypto_parse((const char *)data, size, &c) != 0) return 0;
  if (c.key_salt_len != parley__srtp_key_salt_len(c.suite)) abort();
  char line[160];
  int n = parley__sdes_crypto_format(&c, line, sizeof line);
  if (n < 0) abort();
  parley__sdes_crypto d;
  if (parley__sdes_crypto_parse(line, (size_t)n, &d) != 0) abort();
  if (d.tag != c.tag || d.suite != c.suite || d.has_lifetime != c.has_lifetime) abort();
  if (c.has_lifetime && d.lifetime != c.lifetime) abort();
  if (memcmp(d.key_salt, c.key_salt, c.key_salt_len) != 0) abort();
  parley__sdes_crypto_wipe(&c);
  parley__sdes_crypto_wipe(&d);
  return 0;
}
