/* janus.h: a client of Janus's JSON API for one AudioBridge participant: a session, one handle attached
 * to janus.plugin.audiobridge, the join with the caller's SDP offer, mute through configure, and leave.
 * Two transports, chosen by the URL's scheme: Janus's WebSocket API (ws://host:port/, subprotocol
 * "janus-protocol", janus.transport.websockets; transport/janus_ws.c) and its HTTP API
 * (http[s]://host:port/janus, janus.transport.http). Built only with PARLEY_JANUS (libcurl, jansson).
 *
 * What it does: parley__janus_open asks for the server's info (its session timeout), creates a session
 * and attaches the plugin, then one thread of the client's own receives Janus's events and sends a
 * keepalive every third of the session timeout. Over HTTP that thread long-polls the session (GET
 * <url>/<session>?maxev=8, which Janus holds up to 30 s) on one curl multi handle; over ws it reads the
 * connection, answers pings and hands each reply to the request waiting for its transaction. Every
 * event is parsed (janus_event.c) into parley__janus_event values handed to the caller's function on
 * that thread.
 * Vanishing: prefer ws://. Janus destroys a session as soon as the WebSocket it was created on closes
 * (reclaim_session_timeout 0, its default), and the kernel of a killed or crashed process closes its
 * TCP connections at once: the room's others get LEAVING within a round trip. What is left is bounded
 * by Janus's session_timeout (plus up to about 3 s: its 2 s watchdog, the teardown): a process that
 * freezes, a machine that hangs, a network cut keep the connection open (until TCP gives up, much
 * later). Over HTTP, every vanish takes that long.
 * Not here: wss:// (TLS), the admin API, API secrets and tokens, trickled candidates (parley's offers
 * carry theirs and Janus answers with its own: half-trickle), string room ids.
 *
 * Threads: open, join, set_muted and close are called from app threads, never from the audio or network
 * thread or under an engine lock: each makes blocking requests (bounded, PARLEY__JANUS_REQUEST_MS;
 * close's PARLEY__JANUS_CLOSE_MS each).
 * The event function runs on the client's own thread and must not call parley__janus_close, nor over
 * ws:// any other request (that thread reads the answers: PARLEY_ESTATE).
 * Errors: negative PARLEY_E* codes; PARLEY_ENETWORK when Janus cannot be reached or answers with an
 * error (the message is copied to the caller's err buffer where there is one).
 */
#ifndef PARLEY_TRANSPORT_JANUS_H
#define PARLEY_TRANSPORT_JANUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__JANUS_REQUEST_MS 5000 /* one request, connect to last byte */
#define PARLEY__JANUS_CLOSE_MS 1000   /* each of close's three requests (leave, detach, destroy) */
#define PARLEY__JANUS_NAME_MAX 64     /* display names kept, bytes with the NUL (PARLEY_ROOM_ID_MAX) */

typedef struct parley__janus parley__janus;

typedef enum parley__janus_kind {
  PARLEY__JANUS_JOINED = 0,       /* we are in the room as .id; .participants: the others already there */
  PARLEY__JANUS_PARTICIPANTS,     /* .participants joined, or changed their flags */
  PARLEY__JANUS_LEAVING,          /* participant .id left (leave, hang-up, session gone) */
  PARLEY__JANUS_KICKED,           /* participant .id was kicked (our own id: we were) */
  PARLEY__JANUS_TALKING,          /* participant .id started talking (the room's audio_level_event) */
  PARLEY__JANUS_STOPPED_TALKING,  /* and stopped */
  PARLEY__JANUS_ANSWER,           /* .sdp: Janus's answer to our offer */
  PARLEY__JANUS_WEBRTC_UP,        /* our PeerConnection is up (ICE and DTLS done, as Janus sees it) */
  PARLEY__JANUS_MEDIA,            /* .receiving: Janus gets our audio (false after its no_media_timer) */
  PARLEY__JANUS_HANGUP,           /* Janus closed our PeerConnection: .message */
  PARLEY__JANUS_ROOM_GONE,        /* the room was destroyed */
  PARLEY__JANUS_ERROR,            /* the plugin refused a request: .error_code, .message */
  PARLEY__JANUS_SESSION_GONE,     /* the session ended (timed out, or Janus unreachable): .message; last */
} parley__janus_kind;

typedef struct parley__janus_participant {
  uint64_t id;
  char display[PARLEY__JANUS_NAME_MAX]; /* "" when it gave none */
  bool muted;
  bool setup;   /* its PeerConnection is up */
  int talking;  /* 1 / 0, or -1 when the message did not say */
} parley__janus_participant;

typedef struct parley__janus_event {
  parley__janus_kind kind;
  uint64_t id;
  const parley__janus_participant *participants; /* JOINED, PARTICIPANTS: borrowed for the call */
  size_t count;
  const char *sdp;     /* ANSWER; else NULL */
  bool receiving;      /* MEDIA */
  int error_code;      /* ERROR: the AudioBridge's code */
  const char *message; /* never NULL */
} parley__janus_event;

/* Called on the client's thread for each event, in the order Janus sent them. */
typedef void (*parley__janus_fn)(const parley__janus_event *ev, void *user);

/* Connects to Janus at url ("ws://host:port/" or "http://host:port/janus"; copied): info, create,
 * attach. fn/user are kept. On failure *out is NULL and err (when cap > 0) says why. PARLEY_EINVAL (a
 * wss:// or malformed ws:// URL), PARLEY_ENOMEM, PARLEY_ENETWORK. */
int parley__janus_open(const char *url, parley__janus_fn fn, void *user, parley__janus **out, char *err,
                       size_t cap);
/* Joins AudioBridge room `room` as display (pin may be NULL), muted or not, with offer_sdp (the JSEP
 * offer): returns once Janus acknowledged; JOINED and ANSWER follow as events (or ERROR). PARLEY_EINVAL,
 * PARLEY_ENOMEM, PARLEY_ENETWORK. */
int parley__janus_join(parley__janus *j, uint64_t room, const char *display, const char *pin, bool muted,
                       const char *offer_sdp, char *err, size_t cap);
/* Mutes or unmutes us in the room (configure muted): the others see it in a PARTICIPANTS event and
 * Janus mixes nothing of ours meanwhile. PARLEY_EINVAL, PARLEY_ENETWORK. */
int parley__janus_set_muted(parley__janus *j, bool muted);
/* Leaves the room, detaches the handle, destroys the session (each best effort, bounded), stops the
 * thread (no event after this returns) and frees. NULL is ignored. Not from the event function. */
void parley__janus_close(parley__janus *j);
/* Janus's id for us in the room (JOINED's id); 0 before. Any thread. */
uint64_t parley__janus_self(parley__janus *j);

/* Parses one message from Janus (a JSON object, or an array of them as a long poll returns) into events
 * for fn. `handle` is our handle id: messages from other senders are ignored. The number of events
 * delivered, or PARLEY_EPARSE (not JSON; nothing delivered). janus_event.c; any thread, no I/O. */
int parley__janus_parse(const char *text, size_t len, uint64_t handle, parley__janus_fn fn, void *user);

#endif
