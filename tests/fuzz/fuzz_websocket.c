/* fuzz_websocket.c: libFuzzer target for what the WebSocket client takes from the network: the frame
 * decoder and the message reader (a client's: unmasked frames, 4 KiB messages), fed the input in two
 * pieces, and the handshake response check. Every message it yields is in bounds and of a known opcode;
 * every decoded header fits the input. */
#include "transport/websocket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__ws_frame f;
  int h = parley__ws_decode(data, size, 4096, &f);
  if (h > 0 && ((size_t)h > size || f.len > size - (size_t)h)) abort();
  for (int masked = 0; masked < 2; masked++) {
    parley__ws_reader r;
    parley__ws_reader_init(&r, 4096, masked);
    size_t cut = size ? data[0] % (size + 1) : 0;
    const uint8_t *piece[2] = {data, data + cut};
    size_t len[2] = {cut, size - cut};
    for (int k = 0; k < 2; k++) {
      if (parley__ws_reader_feed(&r, piece[k], len[k]) < 0) break;
      parley__ws_message m;
      int rc;
      while ((rc = parley__ws_reader_next(&r, &m)) == 1) {
        if (m.len > 4096 || (m.len && !m.data)) abort();
        if (m.opcode != 1 && m.opcode != 2 && m.opcode != 8 && m.opcode != 9 && m.opcode != 10) abort();
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < m.len; i++) sum += m.data[i]; /* ASan checks the bounds */
        (void)sum;
      }
      if (rc < 0) break;
    }
    parley__ws_reader_free(&r);
  }
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  int n = parley__ws_response(text, size, "dGhlIHNhbXBsZSBub25jZQ==", "janus-protocol");
  if (n > 0 && (size_t)n > size) abort();
  free(text);
  return 0;
}
