/* fuzz_jitter.c: libFuzzer target for the jitter buffer and the Opus TOC and FEC readers it calls on
 * every packet. The input is a script of puts (hostile sequence numbers, timestamps, SSRCs, payloads
 * whose TOC says any duration, arrival times that may go backwards) and gets (any queue depth).
 * Asserts what the buffer promises: every get succeeds and adds at least one sample and at most one
 * packet's worth; a packet handed out is one whose duration the TOC reader accepted; an FEC span
 * covers what it adds; stats add up. */
#include "engine/codec.h"
#include "engine/jitter.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t take(const uint8_t **p, const uint8_t *end, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n && *p < end; i++) v = v << 8 | *(*p)++;
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static parley__jitter *j;
  if (!j) {
    parley__jitter_config c = {.frame_samples = 480, .tick_samples = 480, .capacity_packets = 16,
                               .window_packets = 64, .packet_samples = parley__packet_samples_48k,
                               .has_fec = parley__packet_has_fec};
    j = parley__jitter_new(&c, NULL);
    if (!j) abort();
  }
  parley__jitter_reset(j);
  parley__jitter_stats before;
  parley__jitter_get_stats(j, &before);
  const uint8_t *p = data, *end = data + size;
  int64_t now = 0;
  while (p < end) {
    uint8_t op = (uint8_t)take(&p, end, 1);
    /* Arrival steps of -8..+247 ms: clocks may step back. */
    now += ((int64_t)take(&p, end, 1) - 8) * 1000 + (op >> 4) * 61;
    if (op & 1) {
      uint16_t seq = (uint16_t)take(&p, end, 2);
      uint32_t ts = take(&p, end, 4);
      uint32_t ssrc = take(&p, end, 1) & 3;
      size_t len = take(&p, end, 1) % 64 + 1;
      uint8_t payload[64];
      size_t have = (size_t)(end - p) < len ? (size_t)(end - p) : len;
      memset(payload, 0xa5, sizeof payload);
      memcpy(payload, p, have);
      p += have;
      int dur = parley__packet_samples_48k(payload, len);
      if (dur >= 0 && (dur < 120 || dur > 5760 || dur % 120 != 0)) abort();
      (void)parley__packet_has_fec(payload, len);
      int rc = parley__jitter_put(j, seq, ts, ssrc, op & 2, payload, len, now);
      if (rc < 0 || rc > PARLEY__JITTER_DROP_MALFORMED) abort();
      if (dur < 0 && rc != PARLEY__JITTER_DROP_MALFORMED) abort();
    } else {
      uint32_t queued = take(&p, end, 2) % 960;
      parley__jitter_frame f;
      if (parley__jitter_get(j, now, queued, &f) != 0) abort();
      if (f.out_samples < 1 || f.out_samples > 5760 + 120) abort();
      if (f.kind == PARLEY__JITTER_PACKET) {
        int dur = parley__packet_samples_48k(f.payload, f.payload_bytes);
        if (dur <= 0 || (uint32_t)dur != f.out_samples) abort();
        if (f.timescale_samples < -(int32_t)f.out_samples || f.timescale_samples > (int32_t)f.out_samples) abort();
      } else if (f.kind == PARLEY__JITTER_FEC) {
        if (f.span_samples < f.out_samples || !f.payload || f.payload_bytes == 0) abort();
      } else if (f.timescale_samples != 0) {
        abort();
      }
    }
  }
  parley__jitter_stats st;
  parley__jitter_get_stats(j, &st);
  if (st.packets_out - before.packets_out > st.packets_in - before.packets_in) abort();
  return 0;
}
