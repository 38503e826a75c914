/* fuzz_turn.c: libFuzzer target for the TURN client's input side (transport/turn.h). The input is a
 * series of datagrams "from the server" (2-byte big-endian length, then the bytes). Each one that
 * looks like STUN gets the transaction id of the client's last request spliced in, so responses reach
 * the transaction code (401/438 handling, allocation, refresh, permission and channel answers) and
 * not only the "not ours" check; the client's requests are drained with poll() after each, on a
 * clock that moves a second per datagram. Data handed back must lie inside the datagram, and the TCP
 * framing (parley__turn_frame_len) never claims more bytes than it was given. */
#include "transport/turn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sockaddr_storage v4(uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ss;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parley__turn_config cfg;
  parley__turn_config_init(&cfg);
  cfg.server = v4(3478);
  memcpy(cfg.username, "user", 5);
  memcpy(cfg.password, "pass", 5);
  parley__turn *t = parley__turn_new(&cfg, 0, NULL);
  if (!t) return 0;
  struct sockaddr_storage peer = v4(9);
  parley__turn_add_peer(t, &peer, true, 0);
  uint8_t out[2048], pkt[2048];
  uint8_t txid[PARLEY__STUN_TXID_BYTES] = {0};
  int64_t now = 0;
  for (int n; (n = parley__turn_poll(t, now, out, sizeof out)) > 0;) memcpy(txid, out + 8, sizeof txid);
  size_t off = 0;
  while (off + 2 <= size) {
    size_t len = (size_t)data[off] << 8 | data[off + 1];
    off += 2;
    if (len > size - off) len = size - off;
    if (len > sizeof pkt) len = sizeof pkt;
    memcpy(pkt, data + off, len);
    off += len;
    if (len >= 20 && (pkt[0] & 0xC0) == 0) memcpy(pkt + 8, txid, sizeof txid);
    int f = parley__turn_frame_len(pkt, len); /* as if pkt were the head of a TCP stream */
    if (f > (int)len) abort();
    parley__turn_data d;
    int rc = parley__turn_on_packet(t, pkt, len, now, &d);
    if (rc == 1 && (d.data < pkt || d.data + d.len > pkt + len)) abort();
    now += 1000000;
    for (int n; (n = parley__turn_poll(t, now, out, sizeof out)) > 0;) memcpy(txid, out + 8, sizeof txid);
    if (off % 7 == 0) {
      int w = parley__turn_wrap(t, &peer, pkt, len < 64 ? len : 64, out, sizeof out);
      if (w > (int)sizeof out) abort();
    }
  }
  parley__turn_close(t, now);
  for (int i = 0; i < 20 && parley__turn_poll(t, now, out, sizeof out) >= 0; i++) now += 1000000;
  parley__turn_free(t);
  return 0;
}
