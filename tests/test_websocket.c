/* test_websocket.c: the RFC 6455 codec (transport/websocket.h) against the RFC's own examples: the
 * frames of section 5.7 byte for byte (encoded, and read back by a client's or a server's reader), the
 * Sec-WebSocket-Accept of section 1.3 and the handshake response of 1.2; the protocol errors of 5.2-5.5
 * a reader must fail on; and round trips of every length class, masked and fragmented, fed in pieces. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "parley/parley.h"
#include "transport/websocket.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d}; /* the masking key of 5.7's examples */

/* RFC 6455 5.7, verbatim. */
static const uint8_t HELLO[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t HELLO_MASKED[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t HEL[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
static const uint8_t LO[] = {0x80, 0x02, 0x6c, 0x6f};
static const uint8_t PING[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t PONG_MASKED[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};

static void expect_bytes(const uint8_t *got, int n, const uint8_t *want, size_t wn, const char *what) {
  cr_assert_eq(n, (int)wn, "%s: %d bytes, want %zu", what, n, wn);
  cr_expect(memcmp(got, want, wn) == 0, "%s: bytes differ", what);
}

Test(websocket, encodes_the_rfc_examples) {
  uint8_t out[70000];
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_TEXT, true, NULL, "Hello", 5), HELLO, sizeof HELLO,
               "unmasked Hello");
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_TEXT, true, MASK, "Hello", 5), HELLO_MASKED,
               sizeof HELLO_MASKED, "masked Hello");
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_TEXT, false, NULL, "Hel", 3), HEL, sizeof HEL, "Hel");
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_CONTINUATION, true, NULL, "lo", 2), LO, sizeof LO,
               "lo");
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_PING, true, NULL, "Hello", 5), PING, sizeof PING,
               "ping");
  expect_bytes(out, parley__ws_encode(out, sizeof out, PARLEY__WS_PONG, true, MASK, "Hello", 5), PONG_MASKED,
               sizeof PONG_MASKED, "masked pong");
  /* 256 bytes: 0x82 0x7E 0x0100; 64 KiB: 0x82 0x7F 0x0000000000010000. */
  static uint8_t payload[65536];
  int n = parley__ws_encode(out, sizeof out, PARLEY__WS_BINARY, true, NULL, payload, 256);
  expect_bytes(out, n > 4 ? 4 : n, (const uint8_t[]){0x82, 0x7E, 0x01, 0x00}, 4, "256-byte header");
  cr_expect_eq(n, 4 + 256);
  n = parley__ws_encode(out, sizeof out, PARLEY__WS_BINARY, true, NULL, payload, sizeof payload);
  expect_bytes(out, n > 10 ? 10 : n, (const uint8_t[]){0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, 10, "64 KiB header");
  cr_expect_eq(n, 10 + 65536);
}

Test(websocket, encoder_refuses_bad_frames) {
  uint8_t out[256], big[126] = {0};
  cr_expect_eq(parley__ws_encode(out, sizeof out, PARLEY__WS_PING, true, NULL, big, 126), PARLEY_EINVAL,
               "control frames carry 125 bytes at most (5.5)");
  cr_expect_eq(parley__ws_encode(out, sizeof out, PARLEY__WS_CLOSE, false, NULL, "", 0), PARLEY_EINVAL,
               "control frames are not fragmented (5.5)");
  cr_expect_eq(parley__ws_encode(out, sizeof out, 16, true, NULL, "", 0), PARLEY_EINVAL);
  cr_expect_eq(parley__ws_encode(out, 6, PARLEY__WS_TEXT, true, NULL, "Hello", 5), PARLEY_ENOSPC);
  cr_expect_eq(parley__ws_encode(out, 7, PARLEY__WS_TEXT, true, NULL, "Hello", 5), 7);
}

/* Feeds frames (concatenated) to a fresh reader one byte at a time, collecting every message. */
typedef struct got {
  int opcode[8];
  char text[8][128];
  size_t len[8];
  int n, last;
} got;

static got read_bytes(const uint8_t *bytes, size_t len, bool masked, size_t max) {
  parley__ws_reader r;
  parley__ws_reader_init(&r, max, masked);
  got g = {0};
  for (size_t i = 0; i < len && g.last >= 0; i++) {
    cr_assert_eq(parley__ws_reader_feed(&r, bytes + i, 1), 0);
    parley__ws_message m;
    while ((g.last = parley__ws_reader_next(&r, &m)) == 1 && g.n < 8) {
      g.opcode[g.n] = m.opcode;
      g.len[g.n] = m.len;
      memcpy(g.text[g.n], m.data, m.len < 127 ? m.len : 127);
      g.n++;
    }
  }
  parley__ws_reader_free(&r);
  return g;
}

Test(websocket, client_reader_reads_the_rfc_examples) {
  uint8_t all[64];
  size_t n = 0;
  memcpy(all + n, HELLO, sizeof HELLO), n += sizeof HELLO;
  memcpy(all + n, HEL, sizeof HEL), n += sizeof HEL;
  memcpy(all + n, PING, sizeof PING), n += sizeof PING; /* a control frame between fragments (5.4) */
  memcpy(all + n, LO, sizeof LO), n += sizeof LO;
  got g = read_bytes(all, n, false, 1024);
  cr_assert_eq(g.last, 0);
  cr_assert_eq(g.n, 3);
  cr_expect_eq(g.opcode[0], PARLEY__WS_TEXT);
  cr_expect_str_eq(g.text[0], "Hello");
  cr_expect_eq(g.opcode[1], PARLEY__WS_PING, "the ping comes out as it arrives");
  cr_expect_str_eq(g.text[1], "Hello");
  cr_expect_eq(g.opcode[2], PARLEY__WS_TEXT, "the fragments joined, opcode of the first");
  cr_expect_str_eq(g.text[2], "Hello");
}

Test(websocket, server_reader_unmasks_the_rfc_examples) {
  uint8_t all[32];
  memcpy(all, HELLO_MASKED, sizeof HELLO_MASKED);
  memcpy(all + sizeof HELLO_MASKED, PONG_MASKED, sizeof PONG_MASKED);
  got g = read_bytes(all, sizeof all - 10, true, 1024);
  cr_assert_eq(g.n, 2);
  cr_expect(g.opcode[0] == PARLEY__WS_TEXT && !strcmp(g.text[0], "Hello"));
  cr_expect(g.opcode[1] == PARLEY__WS_PONG && !strcmp(g.text[1], "Hello"));
}

Test(websocket, the_long_lengths_of_the_rfc_examples) {
  static uint8_t frame[10 + 65536];
  memcpy(frame, (const uint8_t[]){0x82, 0x7E, 0x01, 0x00}, 4);
  for (int i = 0; i < 256; i++) frame[4 + i] = (uint8_t)i;
  parley__ws_frame f;
  cr_expect_eq(parley__ws_decode(frame, 4 + 255, 1 << 20, &f), 0, "one byte short: more needed");
  cr_assert_eq(parley__ws_decode(frame, 4 + 256, 1 << 20, &f), 4);
  cr_expect(f.fin && f.opcode == PARLEY__WS_BINARY && !f.masked && f.len == 256);
  memcpy(frame, (const uint8_t[]){0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, 10);
  cr_expect_eq(parley__ws_decode(frame, 9, 1 << 20, &f), 0);
  cr_assert_eq(parley__ws_decode(frame, sizeof frame, 1 << 20, &f), 10);
  cr_expect_eq(f.len, 65536);
  cr_expect_eq(parley__ws_decode(frame, sizeof frame, 65535, &f), PARLEY_ERANGE, "over max");
}

/* One malformed input read by a client reader (max 64): the error it must fail with. */
static void expect_error(const uint8_t *bytes, size_t len, int want, const char *why) {
  got g = read_bytes(bytes, len, false, 64);
  cr_expect_eq(g.last, want, "%s: %d", why, g.last);
}

Test(websocket, reader_fails_on_protocol_errors) {
  expect_error(HELLO_MASKED, sizeof HELLO_MASKED, PARLEY_EPARSE, "a masked frame from a server (5.1)");
  expect_error((const uint8_t[]){0xC1, 0x00}, 2, PARLEY_EPARSE, "RSV1 without an extension");
  expect_error((const uint8_t[]){0x83, 0x00}, 2, PARLEY_EPARSE, "reserved opcode 3");
  expect_error((const uint8_t[]){0x8B, 0x00}, 2, PARLEY_EPARSE, "reserved control opcode 0xB");
  expect_error((const uint8_t[]){0x09, 0x00}, 2, PARLEY_EPARSE, "a fragmented ping");
  expect_error((const uint8_t[]){0x89, 0x7E, 0x00, 0x7E}, 4, PARLEY_EPARSE, "a 126-byte ping");
  expect_error((const uint8_t[]){0x81, 0x7E, 0x00, 0x05}, 4, PARLEY_EPARSE, "a length not in minimal form");
  expect_error((const uint8_t[]){0x81, 0x7F, 0x80, 0, 0, 0, 0, 1, 0, 0}, 10, PARLEY_EPARSE, "64-bit length, top bit");
  expect_error(LO, sizeof LO, PARLEY_EPARSE, "a continuation with no message open");
  uint8_t two[16];
  memcpy(two, HEL, sizeof HEL);
  memcpy(two + sizeof HEL, HELLO, sizeof HELLO);
  expect_error(two, sizeof HEL + sizeof HELLO, PARLEY_EPARSE, "a new message inside a fragmented one");
  expect_error((const uint8_t[]){0x81, 65}, 2, PARLEY_ERANGE, "a frame over max, refused by its header");
  uint8_t frags[2 * (2 + 40)] = {0x01, 40};
  frags[42] = 0x80;
  frags[43] = 40;
  expect_error(frags, sizeof frags, PARLEY_ERANGE, "fragments over max together");
  /* The error sticks: a reader that failed reads nothing more, even good frames. */
  parley__ws_reader r;
  parley__ws_reader_init(&r, 64, false);
  cr_assert_eq(parley__ws_reader_feed(&r, LO, sizeof LO), 0);
  parley__ws_message m;
  cr_expect_eq(parley__ws_reader_next(&r, &m), PARLEY_EPARSE);
  cr_expect_eq(parley__ws_reader_feed(&r, HELLO, sizeof HELLO), PARLEY_EPARSE);
  cr_expect_eq(parley__ws_reader_next(&r, &m), PARLEY_EPARSE);
  parley__ws_reader_free(&r);
}

/* Every length class, fragmented into up to three frames with a ping between, masked with random keys,
 * fed in uneven pieces: what the server reader returns is what was sent. */
Test(websocket, masked_fragmented_round_trips) {
  static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
  srand(7);
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
    size_t len = lens[li];
    uint8_t *payload = malloc(len + 1), *wire = malloc(len + 4 * PARLEY__WS_HEADER_MAX + 16);
    cr_assert(payload && wire);
    for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)rand();
    size_t cut1 = len / 3, cut2 = 2 * len / 3, w = 0;
    size_t parts[3][2] = {{0, cut1}, {cut1, cut2 - cut1}, {cut2, len - cut2}};
    for (int k = 0; k < 3; k++) {
      uint8_t mask[4] = {(uint8_t)rand(), (uint8_t)rand(), (uint8_t)rand(), (uint8_t)rand()};
      int n = parley__ws_encode(wire + w, len + 4 * PARLEY__WS_HEADER_MAX + 16 - w,
                                k ? PARLEY__WS_CONTINUATION : PARLEY__WS_BINARY, k == 2, mask,
                                payload + parts[k][0], parts[k][1]);
      cr_assert_gt(n, 0);
      w += (size_t)n;
      if (k == 0) {
        n = parley__ws_encode(wire + w, 16, PARLEY__WS_PING, true, mask, "p", 1);
        cr_assert_eq(n, 7);
        w += 7;
      }
    }
    parley__ws_reader r;
    parley__ws_reader_init(&r, 1 << 20, true);
    int pings = 0, msgs = 0;
    for (size_t off = 0, step = 1; off < w; off += step, step = step * 3 + 1) {
      size_t take = off + step > w ? w - off : step;
      cr_assert_eq(parley__ws_reader_feed(&r, wire + off, take), 0);
      parley__ws_message m;
      int rc;
      while ((rc = parley__ws_reader_next(&r, &m)) == 1) {
        if (m.opcode == PARLEY__WS_PING) {
          pings++;
          cr_expect(m.len == 1 && m.data[0] == 'p');
          continue;
        }
        msgs++;
        cr_expect_eq(m.opcode, PARLEY__WS_BINARY);
        cr_expect_eq(m.len, len);
        cr_expect(m.len == len && (!len || memcmp(m.data, payload, len) == 0), "payload of %zu bytes", len);
      }
      cr_assert_eq(rc, 0, "length %zu: %d", len, rc);
    }
    cr_expect(pings == 1 && msgs == 1, "length %zu: %d pings, %d messages", len, pings, msgs);
    parley__ws_reader_free(&r);
    free(payload);
    free(wire);
  }
}

Test(websocket, accept_of_the_rfc_example) {
  char out[PARLEY__WS_ACCEPT_LEN + 1];
  cr_assert_eq(parley__ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
  cr_expect_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 1.3");
}

Test(websocket, keys_are_16_random_bytes) {
  char a[PARLEY__WS_KEY_LEN + 1], b[PARLEY__WS_KEY_LEN + 1];
  cr_assert_eq(parley__ws_key(a), 0);
  cr_assert_eq(parley__ws_key(b), 0);
  cr_expect_eq(strlen(a), 24);
  cr_expect_str_neq(a, b);
  unsigned char raw[20];
  cr_expect_eq(EVP_DecodeBlock(raw, (const unsigned char *)a, 24), 18, "24 base64 characters: 18 bytes with padding");
  cr_expect_str_eq(a + 22, "==", "16 bytes: two padding characters");
}

Test(websocket, request_and_response) {
  char req[512];
  int n = parley__ws_request(req, sizeof req, "server.example.com:80", "/chat", "dGhlIHNhbXBsZSBub25jZQ==", "chat");
  cr_assert_gt(n, 0);
  cr_expect(!strncmp(req, "GET /chat HTTP/1.1\r\n", 20));
  cr_expect(strstr(req, "\r\nHost: server.example.com:80\r\n") && strstr(req, "\r\nUpgrade: websocket\r\n") &&
            strstr(req, "\r\nConnection: Upgrade\r\n") && strstr(req, "\r\nSec-WebSocket-Version: 13\r\n") &&
            strstr(req, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") &&
            strstr(req, "\r\nSec-WebSocket-Protocol: chat\r\n"), "%s", req);
  cr_expect_eq(strcmp(req + n - 4, "\r\n\r\n"), 0);
  cr_expect_eq(parley__ws_request(req, 40, "h", "/", "k", NULL), PARLEY_ENOSPC);

  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  /* RFC 6455 1.2's response, with a frame right behind it (not part of the response). */
  const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x05Hello";
  size_t head = sizeof ok - 1 - 7;
  cr_expect_eq(parley__ws_response(ok, sizeof ok - 1, key, "chat"), (int)head);
  cr_expect_eq(parley__ws_response(ok, head - 1, key, "chat"), 0, "its end not there yet");
  cr_expect_eq(parley__ws_response(ok, sizeof ok - 1, key, "janus-protocol"), PARLEY_EAUTH, "another subprotocol");
  cr_expect_eq(parley__ws_response(ok, sizeof ok - 1, "x3JJHMbDL1EzLkh9GBhXDw==", "chat"), PARLEY_EAUTH,
               "the accept of another key");
  const char lower[] = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
                       "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  cr_expect_eq(parley__ws_response(lower, sizeof lower - 1, key, NULL), (int)sizeof lower - 1,
               "header names and tokens in any case");
  const char refused[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  cr_expect_eq(parley__ws_response(refused, sizeof refused - 1, key, NULL), PARLEY_EPARSE);
  const char no_upgrade[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  cr_expect_eq(parley__ws_response(no_upgrade, sizeof no_upgrade - 1, key, NULL), PARLEY_EPARSE);
  static char endless[PARLEY__WS_RESPONSE_MAX + 10];
  memset(endless, 'a', sizeof endless);
  cr_expect_eq(parley__ws_response(endless, sizeof endless, key, NULL), PARLEY_EPARSE, "no end within the bound");
}
