/* room_internal.h: the interface between the room core (room.c: the public parley_room_* functions,
 * the member list, events, the vanish timer, mute config) and a room backend (room_mesh.c: a call per
 * member over the engine's session; room_janus.c: one call to a Janus AudioBridge). Not installed.
 *
 * The core owns the member list and everything the app sees; a backend owns its signalling and its
 * calls, and reports what happens through the parley__room_* functions below. The core calls a backend
 * only through its ops.
 *
 * Threads and locks:
 *  - ops are called by the core with no lock of its own held: start, receive, leave, set_mute_microphone
 *    and set_member_volume on the app thread of the public function (maybe inside a listener, on the
 *    dispatch thread); drop_member on the dispatch thread (before the listeners of the VANISHED
 *    MEMBERS_CHANGED event run); free on the app thread of parley_room_free or parley_engine_free (the
 *    dispatch thread is then stopped). A backend serialises its own state (its own mutex) and may call
 *    any public parley_ function from its ops and its listeners, but must not call a public function
 *    while holding a lock that a report below can wait on (reports take only the room's lock and
 *    eng->ev_lock, never eng->lock, so a backend mutex held across them is fine).
 *  - the report functions below may be called from any thread except the audio thread, with no engine
 *    lock held (eng->lock, ev_lock). They take room->lock, then ev_lock to queue the event.
 *  - parley__room_send calls the app's cfg.send: call it with no lock held (the app may pass the
 *    message straight to another room's parley_room_receive).
 *  - the network thread runs parley__room_poll (under eng->lock): the vanish timers and the local
 *    speaking flag, on the engine's clock.
 * Lock order: eng->lock, then room->lock, then eng->ev_lock; a backend's own lock before any of them.
 *
 * Janus: built with PARLEY_HAVE_JANUS defined (CMake), engine/room_janus.c then provides
 * parley__room_janus_ops; without it parley_room_join(JANUS) is PARLEY_ENOTSUP.
 */
#ifndef PARLEY_ENGINE_ROOM_INTERNAL_H
#define PARLEY_ENGINE_ROOM_INTERNAL_H

#include <stdbool.h>

#include "parley/parley.h"

typedef struct parley__room_backend_ops {
  /* Joins: makes the backend's state (*state) and starts signalling (mesh: the hello; Janus: create a
   * session, join the room, offer). The room is fully set up (parley__room_config works, reports are
   * accepted and queued). 0 or a parley_room_join error; on error nothing is kept and free is not
   * called. */
  int (*start)(parley_room *room, void **state);
  /* Mesh: one message from member `from` (both non-NULL, checked). 0, PARLEY_EPARSE (not a room
   * message: nothing changed), PARLEY_ESTATE. NULL for backends without app signalling (the core then
   * returns PARLEY_ESTATE). */
  int (*receive)(void *state, const char *from, const char *message);
  /* Leaves: tell the others, hang up; report parley__room_closed(LEFT) once done (maybe before
   * returning). Called once. 0 or an error (the core then reports CLOSED itself). */
  int (*leave)(void *state);
  /* The microphone mute changed (the core keeps the config; the backend mutes its calls and tells the
   * others). The earphone mute is the core's alone (the engine's playout mute). 0 or an error. */
  int (*set_mute_microphone)(void *state, bool mute);
  /* A member's playout volume (0..200, checked; the member exists in the core's list). 0,
   * PARLEY_ENOTSUP (the backend cannot: a server mix), PARLEY_ENOTFOUND. May be NULL (ENOTSUP). */
  int (*set_member_volume)(void *state, const char *member_id, int volume_pct);
  /* The core removed a member (VANISHED after the grace period): release what the backend holds for
   * it (mesh: hang its call up). Later reports about that id are ignored until it joins again. May be
   * NULL. */
  void (*drop_member)(void *state, const char *member_id);
  /* Frees the state: after CLOSED, or at engine free (abrupt: hang up without telling anyone). Must
   * leave no listener or thread of its own behind. */
  void (*free)(void *state);
} parley__room_backend_ops;

extern const parley__room_backend_ops parley__room_mesh_ops;
#ifdef PARLEY_HAVE_JANUS
extern const parley__room_backend_ops parley__room_janus_ops;
#endif

/* ---- what a backend reads (any thread) ---- */

/* The room's config: a copy made at join (strings owned by the room, valid until parley_room_free). */
const parley_room_config *parley__room_config(const parley_room *room);
parley_engine *parley__room_engine(const parley_room *room);
/* The microphone mute now (members that join later get it). */
bool parley__room_mute_microphone(parley_room *room);
/* Hands message to the app's cfg.send (to NULL = every other member); counts it. No lock held.
 * Returns what send returned, or PARLEY_ESTATE when the config has no send. */
int parley__room_send(parley_room *room, const char *to, const char *message);

/* ---- reports (any thread but audio; no engine lock held) ---- */

/* A member joined (or, for an id already listed, came back: its name, muted flag and call are updated
 * and a flags MEMBERS_CHANGED follows). call: its mesh call or NULL (borrowed; events for the member
 * carry it in ev->call). *volume_pct (may be NULL) gets the volume the app set for this id earlier
 * (100 if none): apply it. 0, PARLEY_EFULL (PARLEY_ROOM_MESH_MAX_MEMBERS), PARLEY_EINVAL (bad id or
 * name: empty, too long, control characters, or the local id), PARLEY_ESTATE (the room is closed). */
int parley__room_member_joined(parley_room *room, const char *id, const char *name, bool muted, parley_call *call,
                               int *volume_pct);
/* Sets the member's call (mesh: the call is made after the member is known). Ignored for an unknown id. */
void parley__room_member_call(parley_room *room, const char *id, parley_call *call);
/* A member left with reason (not NONE). Ignored for an unknown id. */
void parley__room_member_left(parley_room *room, const char *id, parley_leave_reason reason);
/* A member's announced microphone mute. Ignored for an unknown id or no change. */
void parley__room_member_muted(parley_room *room, const char *id, bool muted);
/* A member's connection broke (interrupted true: its vanish timer starts) or came back; code and
 * message as in call events. Posts MEMBERS_CHANGED (flags) and the member's INTERRUPTED / RESUMED.
 * Ignored for an unknown id or no change. */
void parley__room_member_interrupted(parley_room *room, const char *id, bool interrupted, parley_interrupt_code code,
                                     const char *message);
/* The room as a whole (the local user's connectivity, the device): INTERRUPTED / RESUMED with no
 * member. Ignored when nothing changed. */
void parley__room_interrupted(parley_room *room, bool interrupted, parley_interrupt_code code, const char *message);
/* The remote speakers now, loudest first (ids of listed members; others are skipped). The core adds
 * the local user while it speaks and posts SPEAKERS_CHANGED when the list changed. */
void parley__room_speakers(parley_room *room, const char *const *ids, size_t n);
/* The local user's id as a server assigned it (Janus: the config's member_id is NULL, and the local
 * entry's id is "" until this). Ignored for an invalid id. */
void parley__room_set_local_id(parley_room *room, const char *id);
/* The room ended (reason LEFT, KICKED or FAILED; message may be NULL): CLOSED is posted, once; later
 * reports are ignored. */
void parley__room_closed(parley_room *room, parley_leave_reason reason, const char *message);

/* ---- engine.c ---- */

/* Network thread, under eng->lock, every loop: vanish timers, the local speaking flag. */
void parley__room_poll(parley_engine *e, int64_t now_us);
/* Engine free (dispatch stopped, no lock held): frees the room and its backend (abrupt) whatever
 * state it is in; the app's handle is dangling afterwards, as a call's is. */
void parley__room_destroy(parley_engine *e);

#endif
