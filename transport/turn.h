/* turn.h: a TURN client (RFC 8656) for one allocation over UDP, sans-IO: it builds the datagrams for
 * the server and reads the server's, and the caller moves them over its socket.
 *
 * What it does: Allocate with long-term credentials (RFC 8489 section 9.2: the first request goes
 * without, the 401 brings REALM and NONCE, the key is MD5(username ":" realm ":" password); a 438
 * Stale Nonce takes the new nonce and retries), refreshes the allocation a minute before it expires,
 * installs and refreshes permissions (CreatePermission, every 4 minutes for the server's 5) or channel
 * bindings (ChannelBind, which installs the permission too) for up to PARLEY__TURN_MAX_PEERS peers,
 * wraps data for a peer as ChannelData once its channel is bound or as a Send indication before, and
 * unwraps Data indications and ChannelData from the server. Closing sends a Refresh with LIFETIME 0.
 * Requests are retransmitted on the caller's clock (rto_ms, doubling), PARLEY__TURN_TRIES sends in
 * all; an Allocate nobody answers fails the allocation.
 * Over TCP (config.stream) the same messages go on the stream, STUN framed by its own length and
 * ChannelData by its length padded to 4 (RFC 8656 12.5): parley__turn_frame_len cuts them apart.
 * Not here: TLS, TCP relays (RFC 6062), SASLprep (credentials are used as given, so keep
 * them ASCII), DONT-FRAGMENT, EVEN-PORT/RESERVATION-TOKEN, IPv6 relays from an IPv4 server.
 *
 * Threads: one owner thread per client (the network thread in a call); nothing is shared. It never
 * blocks or logs; poll() and wrap() draw transaction ids from RAND_bytes; key derivation uses
 * libcrypto's MD5. Time is the caller's now_us (any monotonic clock, e.g. simulated).
 * Errors: negative PARLEY_E* codes; a failed allocation says why in parley__turn_error().
 */
#ifndef PARLEY_TRANSPORT_TURN_H
#define PARLEY_TRANSPORT_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PARLEY__TURN_MAX_PEERS 8
#define PARLEY__TURN_TRIES 7             /* sends of one request before giving up */
#define PARLEY__TURN_CRED_MAX 128        /* username and password, bytes with the NUL */
#define PARLEY__TURN_CHANNEL_HEADER 4    /* ChannelData: channel number and length */

typedef enum parley__turn_state {
  PARLEY__TURN_ALLOCATING = 0, /* asking the server (from creation) */
  PARLEY__TURN_READY,          /* the relayed address is ours */
  PARLEY__TURN_FAILED,         /* the server refused or never answered: parley__turn_error() */
  PARLEY__TURN_CLOSED,         /* released (or given up on after parley__turn_close) */
} parley__turn_state;

typedef struct parley__turn_config {
  struct sockaddr_storage server;               /* the TURN server's UDP address */
  char username[PARLEY__TURN_CRED_MAX];
  char password[PARLEY__TURN_CRED_MAX];
  uint32_t lifetime_s;                           /* asked for [600]; the server may grant less */
  uint32_t rto_ms;                               /* first retransmission after [250]; doubles */
  bool stream;                                   /* TCP to the server [false]: ChannelData padded to 4
                                                    bytes (RFC 8656 12.5); the caller cuts the stream
                                                    into messages with parley__turn_frame_len */
} parley__turn_config;

typedef struct parley__turn parley__turn;

/* Data from a peer through the relay: the peer's address and the payload (borrowed from the datagram
 * given to parley__turn_on_packet). */
typedef struct parley__turn_data {
  struct sockaddr_storage peer;
  const uint8_t *data;
  size_t len;
} parley__turn_data;

/* Fills c with the defaults in brackets and an empty server and credentials. NULL is ignored. */
void parley__turn_config_init(parley__turn_config *c);

/* A client that starts allocating at now_us (the first Allocate is due at once: call poll()).
 * Returns NULL with *err = PARLEY_EINVAL (no server address, empty credentials) or PARLEY_ENOMEM. */
parley__turn *parley__turn_new(const parley__turn_config *c, int64_t now_us, int *err);
void parley__turn_free(parley__turn *t); /* NULL is ignored */

/* The next datagram due for the server at now_us (a request, a retransmission or a refresh), written
 * to out. Returns its length, 0 when nothing is due, PARLEY_ENOSPC (cap too small; 2048 is always
 * enough) or PARLEY_EINVAL. Call it until it returns 0 after every other call into the client and
 * whenever parley__turn_next_timeout() has passed. */
int parley__turn_poll(parley__turn *t, int64_t now_us, uint8_t *out, size_t cap);

/* When poll() next has something to send (absolute, on the caller's clock); INT64_MAX for never. */
int64_t parley__turn_next_timeout(const parley__turn *t);

/* A datagram that came from the server's address. Returns 1 with *data filled for data from a peer
 * (a Data indication from any port of a permitted peer's IP address, as the server's permissions go,
 * or ChannelData on a bound channel), 0 for a response it consumed (the state may
 * have changed: call poll()), PARLEY_ENOTFOUND when it is nothing of this client's (an unknown
 * transaction or channel, a response whose integrity does not check), PARLEY_EPARSE when malformed,
 * PARLEY_EINVAL for NULL arguments. */
int parley__turn_on_packet(parley__turn *t, const uint8_t *pkt, size_t len, int64_t now_us,
                           parley__turn_data *data);

/* Lets peer send to us through the relay and us to it: a permission, or with channel a channel
 * binding (so data goes as ChannelData, 4 bytes of overhead instead of 36). Asked for at once when the
 * allocation is ready, else as soon as it is, and refreshed while the client lives. Adding a peer
 * again may turn its channel on. Returns 0, PARLEY_ENOSPC (PARLEY__TURN_MAX_PEERS already),
 * PARLEY_ESTATE (failed or closed), PARLEY_EINVAL. */
int parley__turn_add_peer(parley__turn *t, const struct sockaddr_storage *peer, bool channel, int64_t now_us);

/* On a TCP stream: the length of the message that starts buf (STUN: 20 + its length; ChannelData: 4 +
 * its length padded to 4) when avail bytes hold it whole, 0 when more bytes are needed, PARLEY_EPARSE
 * when buf starts neither (the stream is out of step: close it), PARLEY_EINVAL for NULL. */
int parley__turn_frame_len(const uint8_t *buf, size_t avail);

/* Whether the server confirmed peer's permission (and its channel, if one was asked for). */
bool parley__turn_peer_ready(const parley__turn *t, const struct sockaddr_storage *peer);

/* Wraps payload for peer into out, for sending to the server: ChannelData once the peer's channel is
 * bound, else a Send indication. Returns the length, PARLEY_ENOTFOUND (peer never added),
 * PARLEY_ESTATE (not ready), PARLEY_ENOSPC, PARLEY_EINVAL. */
int parley__turn_wrap(parley__turn *t, const struct sockaddr_storage *peer, const uint8_t *payload, size_t len,
                      uint8_t *out, size_t cap);

/* Releases the allocation: a Refresh with LIFETIME 0 (poll() sends it), CLOSED when the server
 * answers or after the retries; at once when nothing was allocated yet. Returns 0 or PARLEY_EINVAL. */
int parley__turn_close(parley__turn *t, int64_t now_us);

parley__turn_state parley__turn_get_state(const parley__turn *t);
/* The relayed address (the server's, for peers) and the mapped one (ours as the server saw it):
 * 0 when READY, else PARLEY_ESTATE. Either pointer may be NULL. */
int parley__turn_addresses(const parley__turn *t, struct sockaddr_storage *relayed, struct sockaddr_storage *mapped);
/* Why the allocation failed (e.g. "401 Unauthorized: the server refused the credentials"), "" else. */
const char *parley__turn_error(const parley__turn *t);

#endif
