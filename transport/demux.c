/* demux.c: first-byte demultiplexing of the shared media socket (see demux.h). Owns nothing; stateless;
 * any thread; real-time safe.
 *
 * RFC 7983 section 7 splits the first byte: 0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN channel,
 * 128-191 RTP/RTCP; everything else is dropped. RFC 5761 section 4 then tells RTCP from RTP: RTCP
 * packet types 192-223 occupy the RTP M+PT byte where PT (low 7 bits) is 64-95, payload types that
 * rtcp-mux forbids for RTP. Masking the marker bit keeps the test to the PT range, as 5761 describes.
 */
#include "transport/demux.h"

parley__demux_kind parley__demux_classify(const uint8_t *buf, size_t len) {
  if (!buf || len == 0) return PARLEY__DEMUX_UNKNOWN;
  uint8_t b = buf[0];
  if (b <= 3) return PARLEY__DEMUX_STUN;
  if (b >= 16 && b <= 19) return PARLEY__DEMUX_ZRTP;
  if (b >= 20 && b <= 63) return PARLEY__DEMUX_DTLS;
  if (b >= 64 && b <= 79) return PARLEY__DEMUX_TURN_CHANNEL;
  if (b >= 128 && b <= 191) {
    if (len < 2) return PARLEY__DEMUX_UNKNOWN;
    uint8_t pt = buf[1] & 0x7f;
    return (pt >= 64 && pt <= 95) ? PARLEY__DEMUX_RTCP : PARLEY__DEMUX_RTP;
  }
  return PARLEY__DEMUX_UNKNOWN;
}

const char *parley__demux_kind_name(parley__demux_kind kind) {
  switch (kind) {
  case PARLEY__DEMUX_STUN: return "stun";
  case PARLEY__DEMUX_ZRTP: return "zrtp";
  case PARLEY__DEMUX_DTLS: return "dtls";
  case PARLEY__DEMUX_TURN_CHANNEL: return "turn-channel";
  case PARLEY__DEMUX_RTP: return "rtp";
  case PARLEY__DEMUX_RTCP: return "rtcp";
  case PARLEY__DEMUX_UNKNOWN: break;
  }
  return "unknown";
}
