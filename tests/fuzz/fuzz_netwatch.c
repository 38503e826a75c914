/* fuzz_netwatch.c: libFuzzer target for the rtnetlink address-message parser (transport/netwatch.c).
 * Every input is parsed with room for a few changes; the count must not depend on the room, and every
 * stored change must be a well-formed IPv4/IPv6 address change. */
#include "transport/netwatch.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__netwatch_change ch[4];
  int n = parley__netwatch_parse(data, size, ch, 4);
  if (n != parley__netwatch_parse(data, size, NULL, 0)) abort();
  for (int i = 0; i < n && i < 4; i++) {
    if (ch[i].kind != PARLEY__NETWATCH_ADDED && ch[i].kind != PARLEY__NETWATCH_REMOVED) abort();
    if (ch[i].addr.family != PARLEY__NETADDR_V4 && ch[i].addr.family != PARLEY__NETADDR_V6) abort();
    if (ch[i].addr.port != 0) abort();
  }
  return 0;
}
