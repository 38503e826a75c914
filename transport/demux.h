/* demux.h: classify a datagram arriving on the one shared media socket (RFC 7983 first-byte ranges,
 * RFC 5761 rtcp-mux). Stateless; any thread; real-time safe. The buffer is borrowed for the call. */
#ifndef PARLEY_TRANSPORT_DEMUX_H
#define PARLEY_TRANSPORT_DEMUX_H

#include <stddef.h>
#include <stdint.h>

typedef enum parley__demux_kind {
  PARLEY__DEMUX_UNKNOWN = 0, /* empty, or a first byte no protocol here claims: drop */
  PARLEY__DEMUX_STUN,        /* first byte 0..3 */
  PARLEY__DEMUX_ZRTP,        /* 16..19 (listed by RFC 7983; parley does not speak it) */
  PARLEY__DEMUX_DTLS,        /* 20..63 */
  PARLEY__DEMUX_TURN_CHANNEL, /* 64..79 */
  PARLEY__DEMUX_RTP,         /* 128..191 and the second byte's low 7 bits outside 64..95 */
  PARLEY__DEMUX_RTCP,        /* 128..191 and the second byte's low 7 bits in 64..95 (types 192..223) */
} parley__demux_kind;

/* Classifies by the first byte (and, for RTP/RTCP, the second). A 128..191 datagram shorter than 2 bytes
 * is UNKNOWN. Only the class is decided: the matching parser still validates the packet. */
parley__demux_kind parley__demux_classify(const uint8_t *buf, size_t len);

/* A fixed name for logs ("stun", "rtp", ...); never NULL. */
const char *parley__demux_kind_name(parley__demux_kind kind);

#endif
