/* fuzz_rtp.c: libFuzzer target for the RTP parser, the header-length check, RFC 8285 extension lookup
 * and the receiver statistics.
 * Asserts the invariants a parsed view promises: it lies inside the input and adds up to its length. */
#include "transport/rtp.h"
#include "transport/demux.h"
#include "parley/parley.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)parley__demux_classify(data, size);
  int hl = parley__rtp_header_len(data, size);
  parley__rtp_view v;
  if (parley__rtp_parse(data, size, &v) == 0) {
    if (hl < 0 || (size_t)hl != v.payload_offset) abort();
    if (v.payload_offset + v.payload_len + v.padding_len != size) abort();
    if (v.payload != data + v.payload_offset) abort();
    if (v.hdr.csrc_count > PARLEY__RTP_MAX_CSRC || v.hdr.ext_len % 4 != 0) abort();
    /* Touch every byte the view claims, so ASan checks the bounds. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < v.payload_len; i++) sink ^= v.payload[i];
    for (size_t i = 0; i < v.hdr.ext_len; i++) sink ^= v.hdr.ext_data[i];
    (void)sink;
    /* Every extension element found lies inside the extension block. */
    for (unsigned id = 1; id <= 255; id++) {
      const uint8_t *d;
      int len = parley__rtp_ext_find(&v.hdr, (uint8_t)id, &d);
      if (len >= 0 && (d < v.hdr.ext_data || d + len > v.hdr.ext_data + v.hdr.ext_len)) abort();
      if (len < 0 && len != PARLEY_ENOTFOUND && len != PARLEY_EPARSE) abort();
    }
    /* Rebuild and re-parse: same header fields and payload length. */
    uint8_t out[2048];
    int n = parley__rtp_build(&v.hdr, v.payload, v.payload_len, v.padding_len, out, sizeof out);
    if (n >= 0) {
      parley__rtp_view w;
      if (parley__rtp_parse(out, (size_t)n, &w) != 0) abort();
      if (w.hdr.seq != v.hdr.seq || w.hdr.ssrc != v.hdr.ssrc || w.payload_len != v.payload_len) abort();
    }
  }
  /* Feed the input as a stream of (seq, ts, arrival) triples. */
  parley__rtp_rx rx;
  parley__rtp_rx_init(&rx, 48000, 2);
  for (size_t i = 0; i + 10 <= size; i += 10) {
    uint16_t seq = (uint16_t)((data[i] << 8) | data[i + 1]);
    uint32_t ts = ((uint32_t)data[i + 2] << 24) | ((uint32_t)data[i + 3] << 16) | ((uint32_t)data[i + 4] << 8) |
                  data[i + 5];
    int64_t t = (int64_t)(((uint32_t)data[i + 6] << 24) | ((uint32_t)data[i + 7] << 16) |
                          ((uint32_t)data[i + 8] << 8) | data[i + 9]);
    parley__rtp_rx_update(&rx, seq, ts, t * 100);
  }
  parley__rtp_rx_report r;
  parley__rtp_rx_make_report(&rx, &r);
  if (r.cumulative_lost > 0x7fffff || r.cumulative_lost < -0x800000) abort();
  return 0;
}
