/* fuzz_srtp.c: libFuzzer target for the SRTP wrapper (transport/srtp.h) with fixed keys, both suites.
 * The input's first byte picks the suite and the path; the rest is one packet.
 *  - hostile: the bytes go straight to unprotect (RTP and RTCP): it must reject them without touching
 *    memory past the packet, and never return more than it was given;
 *  - round trip: the bytes are protected by an outbound session and unprotected by the inbound one with
 *    the same key: whatever protect accepts must come back byte for byte, and a second unprotect of
 *    the same packet must be refused as a replay. (The a=crypto parser has fuzz_sdes.) */
#include "parley/parley.h"
#include "transport/srtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKET 1500

static const uint8_t key_salt[PARLEY__SRTP_MAX_KEY_SALT_LEN] = {
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};

static parley__srtp *session(parley__srtp_suite suite, parley__srtp_direction dir) {
  int err = 0;
  parley__srtp *s = parley__srtp_new(suite, dir, key_salt, parley__srtp_key_salt_len(suite), &err);
  if (!s) abort();
  return s;
}

/* Unprotect of len bytes of buf: a result is an error or a length no longer than the input. */
static int unprotect(parley__srtp *in, bool rtcp, uint8_t *buf, size_t len) {
  int n = rtcp ? parley__srtp_unprotect_rtcp(in, buf, len) : parley__srtp_unprotect_rtp(in, buf, len);
  if (n > (int)len) abort();
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size - 1 > MAX_PACKET) return 0;
  parley__srtp_suite suite = (data[0] & 1) ? PARLEY__SRTP_AEAD_AES_128_GCM : PARLEY__SRTP_AES_CM_128_HMAC_SHA1_80;
  bool rtcp = data[0] & 2, round_trip = data[0] & 4;
  const uint8_t *pkt = data + 1;
  size_t len = size - 1;

  /* An exact-size heap copy so ASan sees any read past the packet. */
  uint8_t *buf = malloc(len + PARLEY__SRTP_RTCP_TRAILER_ROOM);
  if (!buf) return 0;
  memcpy(buf, pkt, len);
  parley__srtp *in = session(suite, PARLEY__SRTP_INBOUND);
  if (!round_trip) {
    uint8_t *exact = malloc(len ? len : 1);
    if (exact) {
      memcpy(exact, pkt, len);
      (void)unprotect(in, rtcp, exact, len);
      free(exact);
    }
  } else {
    parley__srtp *out = session(suite, PARLEY__SRTP_OUTBOUND);
    size_t cap = len + (rtcp ? PARLEY__SRTP_RTCP_TRAILER_ROOM : PARLEY__SRTP_RTP_TRAILER_ROOM);
    int n = rtcp ? parley__srtp_protect_rtcp(out, buf, len, cap) : parley__srtp_protect_rtp(out, buf, len, cap);
    if (n >= 0) {
      if ((size_t)n < len || (size_t)n > cap) abort();
      uint8_t *copy = malloc((size_t)n);
      if (!copy) abort();
      memcpy(copy, buf, (size_t)n);
      int m = unprotect(in, rtcp, buf, (size_t)n);
      if (m != (int)len || memcmp(buf, pkt, len) != 0) abort(); /* the round trip restores the packet */
      if (unprotect(in, rtcp, copy, (size_t)n) != PARLEY_EREPLAY) abort();
      free(copy);
    }
    parley__srtp_free(out);
  }
  parley__srtp_free(in);
  free(buf);
  return 0;
}
