/* wire.h: network byte order loads and stores for the packet parsers and builders (RTP, RTCP, STUN).
 * Callers check lengths before calling; these only move bytes. Pure, real-time safe. */
#ifndef PARLEY_TRANSPORT_WIRE_H
#define PARLEY_TRANSPORT_WIRE_H

#include <stdint.h>

static inline uint16_t parley__get_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t parley__get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t parley__get_be64(const uint8_t *p) {
  return ((uint64_t)parley__get_be32(p) << 32) | parley__get_be32(p + 4);
}
static inline void parley__put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void parley__put_be32(uint8_t *p, uint32_t v) {
  parley__put_be16(p, (uint16_t)(v >> 16));
  parley__put_be16(p + 2, (uint16_t)v);
}

#endif
