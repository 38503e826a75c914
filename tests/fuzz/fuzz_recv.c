/* fuzz_recv.c: libFuzzer target for a call's receive path, the pieces in the order engine/call.c runs
 * them for an incoming datagram (on_rtp / on_rtcp): demux -> SRTP unprotect (fixed key) -> RTP parse
 * and payload-type check -> receiver statistics -> liveness monitor -> the playout chain
 * (engine/pipeline.h: jitter buffer, Opus decoder, time scaling; its put/process entry points only, so
 * the jitter buffer can change underneath), with RTCP through unprotect -> compound parse -> monitor.
 *
 * Input: byte 0 configures the receive chain (frame 10 or 20 ms); then records of
 * [flags][step ms, 0..63][length, 2 bytes][length bytes]. flags bit 0: the bytes are first protected with the peer's
 * key, so they authenticate and reach the parser, the jitter buffer and Opus (a hostile but keyed
 * peer); otherwise they arrive as they are (an off-path attacker). Bit 1: the bytes go out as RTCP.
 * Between records the audio side plays step ms of frames (1 s per input at most: time scaling is costly under the sanitizers). Checks: nothing crashes or reads out of
 * bounds, every sample played is finite, the monitor never reports an error. */
#include "engine/codec.h"
#include "engine/pipeline.h"
#include "parley/parley.h"
#include "transport/demux.h"
#include "transport/events.h"
#include "transport/liveness.h"
#include "transport/rtcp.h"
#include "transport/rtp.h"
#include "transport/srtp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OPUS_PT 111
#define MAX_DATAGRAM 1500
#define MAX_PLAY_US 1000000 /* audio played per input: beyond it packets still flow, unplayed */

static const uint8_t key_salt[PARLEY__SRTP_MAX_KEY_SALT_LEN] = {
    0x3c, 0x11, 0xa7, 0x52, 0x90, 0x0e, 0x6b, 0xd4, 0x18, 0xf2, 0x5a, 0x67, 0xc3, 0x09, 0x8e, 0x21,
    0x74, 0xbb, 0x40, 0x2d, 0x95, 0xe8, 0x13, 0x6f, 0xa1, 0x3b, 0xd7, 0x5c, 0x02, 0x86};

typedef struct rx {
  parley__srtp *in, *peer_out;
  parley__rtp_rx stats;
  bool stats_valid;
  uint32_t remote_ssrc;
  parley__liveness *mon;
  parley__event_queue q;
  parley__event slots[16];
  parley__recv_chain *chain;
  float *frame;
  size_t frame_len;
} rx;

static void drain(rx *r) {
  parley__event ev;
  while (parley__event_queue_pop(&r->q, &ev) == 0) {
  }
}

static void check(int rc) {
  if (rc < 0 && rc != PARLEY_ESTATE) abort();
}

/* As call.c's on_rtp. */
static void on_rtp(rx *r, uint8_t *buf, size_t len, int64_t now) {
  if (len < PARLEY__RTP_FIXED_HEADER_LEN) return;
  uint32_t ssrc_clear = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
  int n = parley__srtp_unprotect_rtp(r->in, buf, len);
  parley__rtp_view v;
  if (n < 0 || parley__rtp_parse(buf, (size_t)n, &v) != 0 || v.hdr.payload_type != OPUS_PT) {
    check(parley__liveness_on_rtp(r->mon, now, ssrc_clear, false));
    return;
  }
  if (!r->stats_valid || v.hdr.ssrc != r->remote_ssrc) {
    parley__rtp_rx_init(&r->stats, 48000, 2);
    r->stats_valid = true;
    r->remote_ssrc = v.hdr.ssrc;
  }
  (void)parley__rtp_rx_update(&r->stats, v.hdr.seq, v.hdr.timestamp, now);
  check(parley__liveness_on_rtp(r->mon, now, v.hdr.ssrc, true));
  if (v.payload_len == 0 || v.payload_len > PARLEY__OPUS_MAX_PACKET) return;
  (void)parley__recv_chain_put(r->chain, v.hdr.seq, v.hdr.timestamp, v.hdr.ssrc, v.hdr.marker, v.payload,
                               v.payload_len, now);
}

/* As call.c's on_rtcp. */
static void on_rtcp(rx *r, uint8_t *buf, size_t len, int64_t now) {
  int n = parley__srtp_unprotect_rtcp(r->in, buf, len);
  if (n < 0) return;
  parley__rtcp_info info;
  if (parley__rtcp_parse_compound(buf, (size_t)n, &info) != 0) return;
  check(parley__liveness_on_rtcp(r->mon, now));
  for (size_t i = 0; i < info.n_bye; i++) check(parley__liveness_on_rtcp_bye(r->mon, now, info.bye_ssrc[i]));
}

static void play(rx *r, int64_t from, int64_t to, int frame_ms) {
  for (int64_t t = from; t < to; t += frame_ms * 1000) {
    if (parley__recv_chain_process(r->chain, t, r->frame) != 0) abort();
    for (size_t i = 0; i < r->frame_len; i++)
      if (!isfinite(r->frame[i])) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static rx r;
  memset(&r, 0, sizeof r);
  int err = 0;
  parley__recv_config rc;
  parley__recv_config_init(&rc);
  rc.frame_ms = (data[0] & 1) ? 10 : 20;
  r.chain = parley__recv_chain_new(&rc, &err);
  if (!r.chain) abort();
  r.frame_len = parley__recv_chain_device_frame(r.chain);
  r.frame = calloc(r.frame_len, sizeof(float));
  r.in = parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_INBOUND, key_salt, 30, &err);
  r.peer_out = parley__srtp_new(PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80, PARLEY__SRTP_OUTBOUND, key_salt, 30, &err);
  parley__event_queue_init(&r.q, r.slots, 16);
  r.mon = parley__liveness_new(NULL, &r.q, &err);
  if (!r.frame || !r.in || !r.peer_out || !r.mon) abort();
  check(parley__liveness_on_ice_connected(r.mon, 0));

  int64_t now = 0;
  uint8_t buf[MAX_DATAGRAM + PARLEY__SRTP_RTCP_TRAILER_ROOM];
  for (size_t i = 1; i + 4 <= size;) {
    uint8_t flags = data[i];
    int64_t step = (int64_t)(data[i + 1] % 64) * 1000;
    size_t len = ((size_t)data[i + 2] << 8 | data[i + 3]) % (MAX_DATAGRAM + 1);
    i += 4;
    if (len > size - i) len = size - i;
    memcpy(buf, data + i, len);
    i += len;
    if (now + step <= MAX_PLAY_US) play(&r, now, now + step, rc.frame_ms);
    now += step;
    if (flags & 1) {
      int n = (flags & 2) ? parley__srtp_protect_rtcp(r.peer_out, buf, len, sizeof buf)
                          : parley__srtp_protect_rtp(r.peer_out, buf, len, sizeof buf);
      if (n < 0) continue;
      len = (size_t)n;
    }
    /* The exact datagram on the heap, as recvmsg would have left it in a buffer of its size. */
    uint8_t *dg = malloc(len ? len : 1);
    if (!dg) abort();
    memcpy(dg, buf, len);
    switch (parley__demux_classify(dg, len)) {
    case PARLEY__DEMUX_RTP: on_rtp(&r, dg, len, now); break;
    case PARLEY__DEMUX_RTCP: on_rtcp(&r, dg, len, now); break;
    default: break; /* STUN: fuzz_stun / fuzz_ice */
    }
    free(dg);
    int act = parley__liveness_tick(r.mon, now);
    if (act < 0) abort();
    drain(&r);
  }
  play(&r, now, now + 100000, rc.frame_ms);
  parley__liveness_free(r.mon);
  parley__srtp_free(r.in);
  parley__srtp_free(r.peer_out);
  parley__recv_chain_free(r.chain);
  free(r.frame);
  return 0;
}
