/* fuzz_janus.c: libFuzzer target for what the Janus client takes from the network: a long poll's JSON
 * (a message or an array of them). Every event it yields is well formed: a message string, a
 * participant array when it counts any, NUL-terminated display names, an SDP with ANSWER. */
#include "transport/janus.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const parley__janus_event *ev, void *user) {
  (void)user;
  if (!ev->message || (ev->count && !ev->participants) || (ev->kind == PARLEY__JANUS_ANSWER && !ev->sdp) ||
      ev->kind > PARLEY__JANUS_SESSION_GONE)
    abort();
  for (size_t i = 0; i < ev->count; i++)
    if (!ev->participants[i].id || !memchr(ev->participants[i].display, 0, PARLEY__JANUS_NAME_MAX)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)parley__janus_parse((const char *)data, size, 0, check, NULL);
  (void)parley__janus_parse((const char *)data, size, 7, check, NULL); /* a handle: other senders skipped */
  return 0;
}
