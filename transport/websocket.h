/* websocket.h: the WebSocket protocol (RFC 6455) without I/O, for a client: the opening handshake (a
 * random Sec-WebSocket-Key, the request, the server's 101 response checked against the expected
 * Sec-WebSocket-Accept), the frame encoder and a reader that splits received bytes into frames, joins
 * fragmented messages and passes control frames (ping, pong, close) through, in between if need be.
 * transport/janus_ws.c does the socket I/O around it.
 *
 * Scope: no extensions (a frame with an RSV bit set is a protocol error), no UTF-8 check of text
 * messages (our peer's JSON parser checks its input), one subprotocol. SHA-1, base64 and randomness
 * come from OpenSSL.
 *
 * Threads: no global state; a reader is used by one thread at a time. Nothing here is real-time safe
 * (the reader allocates, parley__ws_key and the masking keys call RAND_bytes).
 * Errors: negative PARLEY_E* codes, per function below.
 */
#ifndef PARLEY_TRANSPORT_WEBSOCKET_H
#define PARLEY_TRANSPORT_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__WS_KEY_LEN 24        /* base64 of the key's 16 random bytes */
#define PARLEY__WS_ACCEPT_LEN 28     /* base64 of a SHA-1 */
#define PARLEY__WS_HEADER_MAX 14     /* a frame's header at most: 2 + 8 (length) + 4 (mask) */
#define PARLEY__WS_CONTROL_MAX 125   /* a control frame's payload at most (RFC 6455 5.5) */
#define PARLEY__WS_RESPONSE_MAX 8192 /* bytes of handshake response accepted before its end */

enum parley__ws_opcode {
  PARLEY__WS_CONTINUATION = 0x0,
  PARLEY__WS_TEXT = 0x1,
  PARLEY__WS_BINARY = 0x2,
  PARLEY__WS_CLOSE = 0x8,
  PARLEY__WS_PING = 0x9,
  PARLEY__WS_PONG = 0xA,
};

/* ---- opening handshake (RFC 6455 4.1, 4.2.2) ---- */

/* A fresh Sec-WebSocket-Key: base64 of 16 bytes from RAND_bytes, NUL-terminated. 0 or PARLEY_ECRYPTO. */
int parley__ws_key(char out[PARLEY__WS_KEY_LEN + 1]);
/* The Sec-WebSocket-Accept a server answers key with: base64(SHA-1(key || the RFC's GUID)).
 * 0, PARLEY_EINVAL (key NULL), PARLEY_ECRYPTO. */
int parley__ws_accept(const char *key, char out[PARLEY__WS_ACCEPT_LEN + 1]);
/* The client's GET request for path on host (the Host header: "name:port"), with key and the
 * subprotocol (NULL: none). The length written (NUL-terminated), PARLEY_EINVAL, PARLEY_ENOSPC. */
int parley__ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                       const char *protocol);
/* Checks the server's response in buf[0..len): status 101, Upgrade websocket, Connection upgrade,
 * Sec-WebSocket-Accept for key and, when protocol is not NULL, that subprotocol. Returns the bytes the
 * response takes (frames may follow), 0 when its end (an empty line) is not in buf yet, PARLEY_EPARSE
 * (not a 101 upgrade, or longer than PARLEY__WS_RESPONSE_MAX) or PARLEY_EAUTH (wrong accept or
 * subprotocol). */
int parley__ws_response(const char *buf, size_t len, const char *key, const char *protocol);

/* ---- frames (RFC 6455 5.2) ---- */

/* Encodes one frame of opcode with payload[0..len) into out: FIN as given, masked with mask when mask
 * is not NULL (a client's frames must be; RFC 6455 5.3). The bytes written, PARLEY_EINVAL (an opcode
 * outside 0-15, a control frame longer than 125 bytes or not FIN), PARLEY_ENOSPC (cap <
 * len + header: PARLEY__WS_HEADER_MAX more than len always suffices). */
int parley__ws_encode(uint8_t *out, size_t cap, int opcode, bool fin, const uint8_t mask[4], const void *payload,
                      size_t len);

/* One decoded frame header. */
typedef struct parley__ws_frame {
  bool fin;
  int opcode;
  bool masked;
  uint8_t mask[4];
  size_t header;  /* bytes of header; the payload follows */
  uint64_t len;   /* bytes of payload */
} parley__ws_frame;

/* Decodes the header of the frame at buf[0..len). Returns the header's bytes when the whole frame
 * (header and payload) is in buf, 0 when more bytes are needed, PARLEY_EPARSE when the header breaks
 * RFC 6455 5.2 (RSV bits without an extension, a reserved opcode, a control frame not FIN or over 125
 * bytes, a length not in its minimal form or with the top bit set), PARLEY_ERANGE when the payload is
 * longer than max. The payload is left as it is (masked or not). */
int parley__ws_decode(const uint8_t *buf, size_t len, uint64_t max, parley__ws_frame *f);

/* ---- reader: bytes in, messages out ---- */

typedef struct parley__ws_message {
  int opcode;          /* TEXT, BINARY, CLOSE, PING or PONG */
  const uint8_t *data; /* unmasked; valid until the reader's next call */
  size_t len;
} parley__ws_message;

typedef struct parley__ws_reader {
  uint8_t *in;        /* bytes received; in[pos..in_len) not yet read */
  size_t in_len, in_cap, pos;
  uint8_t *msg;       /* a fragmented message being joined */
  size_t msg_len, msg_cap;
  int msg_opcode;     /* its opcode; 0 when none is open */
  size_t max;         /* a message's bytes at most */
  bool masked;        /* frames must be masked (a server's reader) or must not be (a client's) */
  int error;          /* the first error; sticky */
} parley__ws_reader;

/* A reader for messages up to max bytes; masked: whether the peer must mask (true when reading a
 * client's frames, false when reading a server's). Allocates nothing until fed. */
void parley__ws_reader_init(parley__ws_reader *r, size_t max, bool masked);
void parley__ws_reader_free(parley__ws_reader *r);
/* Appends received bytes. 0, PARLEY_ENOMEM, or the reader's sticky error. */
int parley__ws_reader_feed(parley__ws_reader *r, const void *data, size_t len);
/* The next complete message (a control frame is one, even in the middle of a fragmented message):
 * 1 and *m, 0 when more bytes are needed, or an error that sticks (the connection must be failed):
 * PARLEY_EPARSE (a bad header, a masked frame where none may be or the reverse, a continuation with no
 * message open, a new message before the open one ended), PARLEY_ERANGE (a message over max),
 * PARLEY_ENOMEM. */
int parley__ws_reader_next(parley__ws_reader *r, parley__ws_message *m);

#endif
