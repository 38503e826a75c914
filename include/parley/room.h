/* parley/room.h: rooms, multi-party voice as mini-program platforms offer it. Included by
 * parley/parley.h; do not include it alone.
 *
 * A room is joined by id and display name through a backend:
 *  - PARLEY_ROOM_MESH: a call to every other member (the engine's session: one capture, encoded once
 *    per member; one mix), up to PARLEY_ROOM_MESH_MAX_MEMBERS. The app carries the room's signalling:
 *    parley hands it short text messages to deliver (cfg.send) and the app passes what arrives to
 *    parley_room_receive(). parley does the offers, answers and candidates itself, one exchange per
 *    pair of members.
 *  - PARLEY_ROOM_JANUS: one WebRTC call to a Janus AudioBridge room, which mixes on the server (mix-minus
 *    per participant). parley speaks Janus's API itself (cfg.janus_url); built when
 *    PARLEY_JANUS is on (the default; parley_room_join returns PARLEY_ENOTSUP otherwise).
 *    Prefer Janus's WebSocket transport (ws://): Janus drops a member whose WebSocket closes, which a
 *    killed process's kernel does at once, so the others see it leave within a round trip. Over HTTP,
 *    and for a member that freezes or loses its network (its TCP connection stays open), that takes
 *    Janus's session_timeout (plus up to about 3 s: its 2 s watchdog, then the teardown).
 *
 *   parley_room_config rc;
 *   parley_room_config_init(&rc);
 *   rc.backend = PARLEY_ROOM_MESH;  rc.room_id = "standup";  rc.member_id = "alice";
 *   rc.display_name = "Alice";  rc.send = deliver_to_others;  rc.user = app;
 *   parley_room *room;
 *   parley_room_join(eng, &rc, &room);
 *   parley_room_on(room, PARLEY_EVENT_MEMBERS_CHANGED, on_members, app);
 *   ... for each message from the app's channel: parley_room_receive(room, from, text); ...
 *   parley_room_leave(room);     // the others see members-changed, reason left; then CLOSED here
 *   // after CLOSED: parley_room_off() every listener, then
 *   parley_room_free(room);
 *
 * Events come through the same listener type as calls (parley_event_fn), on the dispatch thread, with
 * ev->room set and ev->call NULL unless a member's mesh call is meant:
 *  - MEMBERS_CHANGED: ev->member joined (ev->leave_reason NONE) or left (the reason); ev->count members
 *    now, the local user included. Also when a member's mute or interrupted flag changes (reason NONE,
 *    ev->member shows the new flags).
 *  - SPEAKERS_CHANGED: ev->speaker_ids[0..count) loudest first, the local user's id included while it
 *    speaks (first: its capture level is not on the mix's scale, so it is not ranked against the
 *    others).
 *  A member event's ev->call is that member's mesh call: read it (parley_call_get_stats), but add no
 *    listener to it and do not free it (the room does).
 *  - INTERRUPTED / RESUMED: with ev->member NULL, the room as a whole (the local user's own
 *    connectivity, or the audio device; mesh: every member's call is interrupted); with ev->member set,
 *    that member only (mesh: its call). ev->code, ev->message.
 *  - CLOSED: the last event of the room; ev->leave_reason says why (LEFT after parley_room_leave; KICKED;
 *    FAILED with ev->message).
 * Every function may be called from any app thread, including inside a listener; none is real-time safe.
 */
#ifndef PARLEY_ROOM_API_H
#define PARLEY_ROOM_API_H

#ifndef PARLEY_H
#error "include <parley/parley.h>, not <parley/room.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum parley_room_backend { PARLEY_ROOM_MESH = 0, PARLEY_ROOM_JANUS } parley_room_backend;

#define PARLEY_ROOM_MESH_MAX_MEMBERS 10 /* the local user included */
#define PARLEY_ROOM_ID_MAX 64           /* ids and display names, bytes including the NUL */

/* Mesh signalling: deliver `message` (NUL-terminated text, at most a few KB) to member `to`, or to every
 * other member of the room when `to` is NULL. Called on the dispatch thread (or inside
 * parley_room_join / parley_room_receive / parley_room_leave); must not block for long. Return 0, or a
 * negative value when it cannot be delivered (parley retries nothing; the member then times out). */
typedef int (*parley_room_send_fn)(const char *to, const char *message, void *user);

typedef struct parley_room_config {
  parley_room_backend backend;
  const char *room_id;      /* required; Janus: the AudioBridge room number, in decimal */
  const char *member_id;    /* mesh: required, unique in the room; Janus: NULL (the server assigns it) */
  const char *display_name; /* required, shown to the others */
  bool mute_microphone;     /* start muted: nothing sent; the others see it in the member list */
  bool mute_earphone;       /* start with nothing played */
  int vanish_grace_ms;      /* a member interrupted this long is removed (reason VANISHED) unless it
                             * comes back; > 0, default 5000 (checked about every 100 ms) */
  /* mesh */
  parley_room_send_fn send;
  void *user;               /* passed back to send */
  /* janus */
  const char *janus_url;    /* "ws://127.0.0.1:8188/" (preferred) or "http://127.0.0.1:8088/janus" */
  const char *janus_pin;    /* the room's pin, or NULL */
} parley_room_config;

/* Fills *cfg with the defaults above (MESH, grace 5000 ms, nothing muted, everything else NULL). */
PARLEY_API void parley_room_config_init(parley_room_config *cfg);

/* parley_room, parley_room_member and parley_leave_reason are declared in parley/engine.h (events
 * carry them). */
struct parley_room_member {
  char id[PARLEY_ROOM_ID_MAX];
  char name[PARLEY_ROOM_ID_MAX];
  bool local;       /* the local user */
  bool muted;       /* its microphone is muted (as it announced) */
  bool interrupted; /* its connection is interrupted now */
  int volume_pct;   /* its playout volume here, 0..200 (default 100) */
};

/* Joins a room and returns it in *out; members and events follow asynchronously. PARLEY_EINVAL (NULL,
 * missing id/name/send/janus_url, an id too long), PARLEY_ENOMEM, PARLEY_ENOTSUP (the backend is not
 * built in; an engine rate other than 48000 Hz), PARLEY_EFULL (the engine already has a room or a
 * session), PARLEY_ENETWORK (Janus unreachable; the message is in no event, the room is not created). */
PARLEY_API int parley_room_join(parley_engine *eng, const parley_room_config *cfg, parley_room **out);
/* Mesh: a message from member `from` on the app's channel (both borrowed). Messages are text whose
 * first line starts "parley-room/1 " (parley's own format, versioned: the app need not read them); the
 * app carries them as they are. 0, PARLEY_EINVAL (NULL; `from` is the local id or no valid id),
 * PARLEY_EPARSE (not a room message, or its SDP is malformed; nothing changes), PARLEY_ENOTFOUND (from
 * a member that has not said hello, or has left), PARLEY_EFULL (a new member beyond
 * PARLEY_ROOM_MESH_MAX_MEMBERS: not listed), PARLEY_ESTATE (left, not a mesh room, or out of turn: an
 * offer from the member that should answer), PARLEY_ENOMEM. */
PARLEY_API int parley_room_receive(parley_room *room, const char *from, const char *message);
/* Leaves: the others are told (mesh: a message; Janus: leave), calls hang up, then CLOSED with reason
 * LEFT. PARLEY_EINVAL, PARLEY_ESTATE (already left or closed). */
PARLEY_API int parley_room_leave(parley_room *room);
/* Frees a room that is closed (CLOSED queued; from its CLOSED listener too, after parley_room_off) and
 * has no listeners. PARLEY_EINVAL, PARLEY_ESTATE. parley_engine_free frees a room still joined (its
 * calls hang up with a BYE; no events), leaving the app's handle dangling, as for calls. */
PARLEY_API int parley_room_free(parley_room *room);

/* The members now, the local user first: up to cap entries copied to out; returns the number of members
 * (which may exceed cap) or PARLEY_EINVAL. */
PARLEY_API int parley_room_members(parley_room *room, parley_room_member *out, size_t cap);

/* Mute config, kept for members who join later. 0, PARLEY_EINVAL, PARLEY_ESTATE (closed),
 * PARLEY_ENOTFOUND (no such member; the local user has no volume), PARLEY_ERANGE (volume outside
 * 0..200), PARLEY_ENOTSUP (volume: the backend mixes on a server). A member's volume is kept for its id:
 * it applies again when the member leaves and rejoins. Earphone mute: nothing is played (the engine's
 * playout is silence, calls outside the room included). */
PARLEY_API int parley_room_set_mute_microphone(parley_room *room, bool mute);
PARLEY_API int parley_room_set_mute_earphone(parley_room *room, bool mute);
PARLEY_API int parley_room_set_member_volume(parley_room *room, const char *member_id, int volume_pct);

/* Listeners for MEMBERS_CHANGED, SPEAKERS_CHANGED, INTERRUPTED, RESUMED and CLOSED; the rules of
 * parley_call_on / parley_call_off. PARLEY_EINVAL for other kinds. */
PARLEY_API int parley_room_on(parley_room *room, parley_event_kind kind, parley_event_fn fn, void *user);
PARLEY_API int parley_room_off(parley_room *room, int listener_id);

typedef struct parley_room_stats {
  uint64_t events_dropped;      /* as in parley_call_stats */
  uint64_t messages_sent;       /* mesh signalling messages handed to cfg.send */
  uint64_t messages_received;   /* and accepted by parley_room_receive */
  int64_t join_ms;              /* from parley_room_join to the first member heard; -1 until then */
} parley_room_stats;
PARLEY_API int parley_room_get_stats(parley_room *room, parley_room_stats *out);

/* "none", "left", "kicked", "vanished", "failed"; "unknown" out of range. Any thread, real-time safe. */
PARLEY_API const char *parley_leave_reason_name(parley_leave_reason r);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_ROOM_API_H */
