/* janus_ws.h: the WebSocket transport of the Janus client (internal to transport/janus*.c; janus.h is
 * the interface): one TCP connection to Janus's WebSocket API (subprotocol "janus-protocol"), its
 * reader thread, requests matched to their replies by transaction, keepalives. Built with PARLEY_JANUS.
 *
 * Threads: open, request and close on app threads (blocking, each bounded by its ms); the reader
 * thread calls the message function. Requests may come from several threads at once (writes are
 * serialised). The message function must not call close.
 */
#ifndef PARLEY_TRANSPORT_JANUS_WS_H
#define PARLEY_TRANSPORT_JANUS_WS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct parley__janus_ws parley__janus_ws;

/* A message from Janus that answers no request of ours (an event, a keepalive's ack or error), as
 * text; or, text NULL, the end of the connection with why (the last call). */
typedef void (*parley__janus_ws_fn)(const char *text, size_t len, const char *why, void *user);

/* Connects to url ("ws://host[:port][/path]"; port 80 by default) and completes the opening handshake
 * within ms, then starts the reader thread. PARLEY_EINVAL (not a ws:// URL; wss:// is not supported),
 * PARLEY_ENOMEM, PARLEY_ENETWORK (err says why). */
int parley__janus_ws_open(const char *url, long ms, parley__janus_ws **out, char *err, size_t cap);
/* From now on: messages that answer no request go to fn, and a keepalive for session goes every
 * keepalive_ms; nothing received for three keepalive periods ends the connection ("Janus
 * unreachable"). Call once. */
void parley__janus_ws_start(parley__janus_ws *ws, uint64_t session, int keepalive_ms, parley__janus_ws_fn fn,
                            void *user);
/* No message reaches fn after this returns (close's requests then run quietly). */
void parley__janus_ws_quiet(parley__janus_ws *ws);
/* Sends msg (borrowed; it must carry the "transaction" tx) and waits up to ms for the message that
 * answers it (same transaction, any "janus" but "event": ack, success, error, server_info): *reply,
 * the caller's to json_decref. PARLEY_ENOMEM, PARLEY_ENETWORK (the connection failed or closed, or no
 * answer in time; err says which). */
int parley__janus_ws_request(parley__janus_ws *ws, json_t *msg, const char *tx, long ms, json_t **reply, char *err,
                             size_t cap);
/* Sends a close frame, stops the thread (no call to fn after this returns), closes the socket, frees.
 * NULL is ignored. */
void parley__janus_ws_close(parley__janus_ws *ws);

#endif
