/* engine_internal.h: the structures shared by engine.c (engine, threads, audio callback, device),
 * dispatch.c (event queue, listeners, dispatch), session.c and the call (call*.c, whose own structure
 * is in call_internal.h: nothing here needs ICE, SRTP or SDP). Not installed.
 *
 * Locks: eng->lock guards the call list and every call's network-side state (ICE agent, sockets, SRTP,
 * RTP/RTCP, signaling); the network thread holds it while it services calls, app threads while they
 * run a parley_call_* function. eng->ev_lock guards the event queue, the dispatch registry and every
 * call's listener table. Order: lock before ev_lock. The audio thread takes neither: it meets the
 * others only through the atomic slot table (eng->slots) and SPSC rings. No user code runs while
 * either lock is held.
 */
#ifndef PARLEY_ENGINE_ENGINE_INTERNAL_H
#define PARLEY_ENGINE_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/ranking.h"
#include "base/clock.h"
#include "engine/device.h"
#include "engine/mixer.h"
#include "engine/pipeline.h"
#include "base/ring.h"
#include "base/thread_check.h"
#include "parley/parley.h"
#include "transport/events.h"
#include "transport/netaddr.h"

#define PARLEY__CALL_MAX_SOCKS 8
#define PARLEY__TX_RING_SLOTS 64
#define PARLEY__RX_RING_SLOTS 128
#define PARLEY__CALL_EVQ 64

/* A TURN server from the config's ice_servers (ice_servers.c): where each call allocates. */
typedef struct parley__turn_server {
  parley__netaddr addr;
  bool tcp; /* ?transport=tcp: the call talks to it over a TCP connection */
  bool tls; /* turns: (tcp too): TLS on that connection, verified against eng->turn_tls and host */
  char host[256]; /* as the URL named it (without brackets): for certificates, and in messages */
  char username[128], password[128]; /* PARLEY__TURN_CRED_MAX with the NUL */
} parley__turn_server;

/* audio thread -> network thread: one encoded frame. */
typedef struct parley__tx_item {
  uint32_t timestamp;
  uint16_t len;
  bool marker;
  bool voice;    /* the send chain's VAD, for the RFC 6464 flag */
  uint8_t level; /* -dBov of the capture frame that completed the packet (RFC 6464) */
  uint8_t data[PARLEY__OPUS_MAX_PACKET];
} parley__tx_item;

/* network thread -> audio thread: one authenticated RTP payload. */
typedef struct parley__rx_item {
  int64_t arrival_us;
  uint32_t timestamp;
  uint32_t ssrc;
  uint16_t seq;
  uint16_t len;
  bool marker;
  uint8_t data[PARLEY__OPUS_MAX_PACKET];
} parley__rx_item;

/* What the audio thread uses of one started call; published through eng->slots[]. Allocated by
 * parley_call_start, freed only after the slot was cleared and the audio thread left its period. */
typedef struct parley__call_media {
  parley__send_chain *send;
  parley__recv_chain *recv;
  parley__ring *tx; /* producer: audio thread; consumer: network thread */
  parley__ring *rx; /* producer: network thread; consumer: audio thread */
  /* The call's mute and playout volume (0..200; rooms: a member's volume), copied here by the call under
   * eng->lock: not pointers into the call, which may be freed while a stalled period holds its media. */
  atomic_bool muted;
  atomic_int volume_pct;
  /* Published by the audio thread every few frames for get_stats (relaxed: independent counters). */
  atomic_int_least64_t jb_delay_us;
  atomic_uint_least64_t concealed;
  atomic_uint_least64_t concealed_ms; /* PLC plus time-scaled waiting, in ms */
  atomic_uint_least64_t fec;
  atomic_uint_least64_t tx_dropped; /* tx ring was full */
  atomic_uint_least32_t session_id; /* mixer participant id while in a session, 0 = not a member */
  unsigned frame_count;             /* audio thread only */
} parley__call_media;

typedef struct parley__listener {
  int id; /* 0 = free slot */
  parley_event_kind kind;
  parley_event_fn fn;
  void *user;
} parley__listener;

/* A queued public event: a copy, the message lives here. One of its target's slots (below). */
struct parley__target;
typedef struct parley__queued_event {
  struct parley__queued_event *next;
  struct parley__target *target;
  uint64_t serial;
  uint64_t seq; /* engine-wide posting order (parley_engine_dispatch's bound) */
  bool used;
  parley_event ev;
  char message[PARLEY__EVENT_MESSAGE_MAX];
  union { /* by kind: call events' candidate; room events' member or speaker ids */
    char candidate[256];
    parley_room_member member;
    char speaker_ids[PARLEY_SESSION_MAX_SPEAKERS][PARLEY_ROOM_ID_MAX];
  };
} parley__queued_event;

/* Events a call or session can have queued and not yet dispatched: its slots, allocated with it so
 * that posting never allocates. A call's burst between two dispatches is at most one gathering's
 * candidates (PARLEY__CALL_MAX_SOCKS host + as many server-reflexive + end-of-candidates = 17) plus
 * its state changes (signaling, ICE, peer, track: about a dozen); 48 leaves room for an ICE restart's
 * second gathering. When all are queued, the target's oldest state change is dropped (dispatch.c).
 * Slot 0 is CLOSED's alone: reserved at creation, CLOSED is never lost. */
#define PARLEY__TARGET_EVENTS 48

/* Something listeners attach to: a call, a session or a room. Fields under eng->ev_lock except serial
 * and hook. */
typedef struct parley__target {
  uint64_t serial; /* unique per engine, never reused */
  bool is_session;
  /* Rooms: runs on the dispatch thread before the listeners of each event, no lock held. */
  void (*hook)(struct parley__target *t, const parley_event *ev);
  parley__listener listeners[PARLEY_CALL_MAX_LISTENERS];
  int next_listener_id;
  bool closed_delivered;
  uint64_t events_dropped; /* events dropped because all slots were queued */
  parley__queued_event slots[PARLEY__TARGET_EVENTS];
} parley__target;

struct parley_session {
  parley__target tgt; /* first member */
  parley_engine *eng;
  /* under eng->lock */
  parley_call *members[PARLEY_ENGINE_MAX_CALLS];
  size_t count;
  uint64_t speakers_seen; /* the last ranking reported (parley__ranking_read) */
};

/* An object unpublished from the audio thread while it was inside a period (parley__engine_retire). */
#define PARLEY__RETIRED_MAX 64
typedef struct parley__retired {
  void *p;
  void (*free_fn)(void *);
  uint64_t cycle; /* audio_cycles when it was parked: freed once the count moves on */
} parley__retired;

/* Debug builds: aborts unless the calling thread holds e->lock. */
#define PARLEY__ENGINE_LOCKED(e) PARLEY__GUARD_CHECK(&(e)->locked, __func__)
/* Debug builds: aborts unless called on e's network thread. */
#define PARLEY__ENGINE_NET_THREAD(e) PARLEY__OWNER_CHECK(&(e)->net_owner, __func__)

struct parley_engine {
  parley_engine_config cfg;
  char *str_input_device, *str_output_device, *str_input_file, *str_output_file;
  parley__clock clock;
  bool has_stun;
  parley__netaddr stun;
  parley__turn_server turn[PARLEY_ENGINE_MAX_TURN_SERVERS]; /* ice_servers.c */
  int n_turn;
  bool relay_only; /* PARLEY_ICE_POLICY_RELAY */
  struct parley__tls_ctx *turn_tls; /* turns: servers' trust anchors (ice_servers.c); immutable, or NULL */

  /* audio */
  parley__device *dev;
  int rate_hz;
  size_t frame_samples; /* one device period = one chain frame */
  bool echo_from_output; /* AEC reference = the device output (48 kHz devices) */
  _Atomic(parley__call_media *) slots[PARLEY_ENGINE_MAX_CALLS];
  atomic_int audio_busy;
  atomic_uint_least64_t audio_cycles;
  /* Unpublished objects the audio thread may still hold (it was inside a period when they were
   * unpublished): freed by the network thread once that period has ended. Under lock. */
  parley__retired retired[PARLEY__RETIRED_MAX];
  int n_retired;
  uint64_t retire_leaks; /* parked objects given up on (the list was full): leaked, never freed early */
  /* When the next audio period should end (clock time), for the tx drain: the earliest recent end
   * phase on the period grid + one period (engine.c, audio_process). 0 until the first period. */
  atomic_int_least64_t audio_next_end_us;
  int64_t phase_min_cur_us, phase_min_prev_us; /* audio thread: end offsets' minimum, this and last block */
  unsigned phase_block_n;                      /* audio thread: periods in the current block */
  float *play, *silence; /* audio thread scratch, a period each: a call's playout; muted capture */
  /* Session mixer: published by the session (seq_cst, like slots); owned by the audio thread while
   * published. mixer_gen changes with every new mixer. */
  _Atomic(parley__mixer *) mixer;
  atomic_uint mixer_gen;
  unsigned mixer_gen_seen;                  /* audio thread */
  uint32_t slot_pid[PARLEY_ENGINE_MAX_CALLS]; /* audio thread: participant added for each slot */
  parley__ranking speakers; /* published by the audio thread, read by the network thread */
  parley_session *session; /* under lock */
  parley_room *room;       /* under lock (room.c) */
  atomic_bool playout_muted;              /* rooms' earphone mute: the audio thread plays silence */
  atomic_int_least64_t capture_voice_us;  /* audio thread: when a call last sent a voiced frame */

  /* network */
  pthread_mutex_t lock;
  /* Debug builds (base/thread_check.h): the thread contracts of engine.c, dispatch.c, session.c and
   * call*.c. audio_owner: the device's period thread (not with APP_CALLBACK, whose app may switch
   * threads); net_owner: the network thread; disp_owner: the dispatch thread (PARLEY_DISPATCH_THREAD);
   * locked: eng->lock held (PARLEY__ENGINE_LOCKED). */
  parley__owner audio_owner, net_owner, disp_owner;
  parley__guard locked;
  pthread_t net;
  bool net_running;
  atomic_bool net_stop;
  int wake_fd;
  int netwatch_fd; /* rtnetlink address notifications (network_change.c); -1 without */
  parley_call *calls[PARLEY_ENGINE_MAX_CALLS];
  struct parley__dtls_cert *dtls_cert; /* every call's DTLS identity (call_dtls.c); immutable */
  uint64_t next_serial;
  int64_t next_dev_poll_us;
  int64_t input_end_hangup_us; /* PARLEY_INPUT_END_HANGUP: when to hang up every call; 0 = not due */

  /* events */
  pthread_mutex_t ev_lock;
  pthread_cond_t ev_cond;
  parley__queued_event *q_head, *q_tail; /* FIFO through the targets' slots */
  uint64_t q_seq;
#define PARLEY__LIVE_MAX (PARLEY_ENGINE_MAX_CALLS + 2)
  parley__target *live[PARLEY__LIVE_MAX]; /* dispatch registry: calls, the session and the room */
  uint64_t live_serial[PARLEY__LIVE_MAX];
  int event_fd;
  pthread_t disp;
  bool disp_running;
  bool disp_stop;
  atomic_bool app_dispatching;
  pthread_t app_dispatcher;
};

/* ---- engine.c ---- */
/* strdup(s), or NULL for a NULL s; sets *oom when the copy fails. */
char *parley__dup_or_null(const char *s, bool *oom);
/* Wakes the network thread (it recomputes its poll set and deadlines). Any thread except audio. */
void parley__engine_wake(parley_engine *e);
/* Unpublishes a call's media slot (the audio thread loads NULL from its next period on). Not the audio
 * thread. Free what was there with parley__engine_retire. */
void parley__engine_detach_media(parley_engine *e, int slot);
/* Frees p (with free_fn) once no audio period can still hold it: at once when the audio thread is
 * outside a period or leaves the one in progress within a couple of ms; otherwise p is parked and the
 * network thread frees it after that period ends (parley__engine_reap). A stalled audio thread never
 * has memory freed under it. Call after unpublishing p, under lock. */
void parley__engine_retire(parley_engine *e, void *p, void (*free_fn)(void *));
/* Frees the parked objects whose period has ended (all of them when the audio thread is stopped).
 * Network thread or teardown, under lock. */
void parley__engine_reap(parley_engine *e, bool audio_stopped);
/* Publishes media in a free slot; returns the slot or PARLEY_EFULL. */
int parley__engine_attach_media(parley_engine *e, parley__call_media *m);

/* ---- network_change.c ---- */
/* The rtnetlink socket for address changes (non-blocking), or -1 where there is none (the app's hint,
 * parley_engine_network_changed, still works). Engine creation. */
int parley__netwatch_open(void);
/* Network thread, under lock, when netwatch_fd is readable: reads what the kernel said and, when an
 * address came or went, tells every call (parley__call_network_changed). */
void parley__netwatch_service(parley_engine *e, int64_t now_us);

/* ---- dispatch.c ---- */
/* Queues an internal event (from the liveness monitor, signaling, the device) for call. Copies it.
 * Any thread except audio; takes ev_lock. */
void parley__engine_post(parley_engine *e, parley_call *call, const parley__event *iev);
/* Queues LOCAL_CANDIDATE for call (line copied). */
void parley__engine_post_candidate(parley_engine *e, parley_call *call, const char *line, int64_t now_us);
/* Queues CLOSED for call. */
void parley__engine_post_closed(parley_engine *e, parley_call *call, int64_t now_us);
/* Queues a session event (ev copied; message empty). */
void parley__engine_post_session(parley_engine *e, parley_session *s, const parley_event *ev);
/* Queues a room event for target t (ev copied with its message, *ev->member and speaker_ids[0..count)
 * for SPEAKERS_CHANGED; ev->room must be set). */
void parley__engine_post_room(parley_engine *e, parley__target *t, const parley_event *ev);
/* Dispatch registry and queue housekeeping (ev_lock taken inside). */
void parley__dispatch_register(parley_engine *e, parley__target *t);
void parley__dispatch_unregister(parley_engine *e, parley__target *t);
bool parley__target_has_listeners(parley_engine *e, parley__target *t);
/* Events of t dropped because its slots were all queued (ev_lock taken inside). */
uint64_t parley__target_events_dropped(parley_engine *e, parley__target *t);
int parley__target_on(parley_engine *e, parley__target *t, parley_event_kind kind, parley_event_fn fn, void *user);
int parley__target_off(parley_engine *e, parley__target *t, int listener_id);
int parley__dispatch_start(parley_engine *e);
void parley__dispatch_stop(parley_engine *e);
bool parley__dispatch_on_dispatch_thread(parley_engine *e);

/* ---- session.c ---- */
/* Network thread, under lock: posts SPEAKERS_CHANGED when the audio thread published a new ranking. */
void parley__session_poll(parley_engine *e);
/* A member call goes away (free / engine free), under lock. */
void parley__session_drop_call(parley_call *c);
/* Engine free: frees the session whatever it holds, under lock. */
void parley__session_destroy(parley_engine *e);

/* ---- ice_servers.c ---- */
/* cfg's stun_server, ice_servers, ice_transport_policy and turn_ca_file into e->stun, e->turn,
 * e->relay_only and e->turn_tls. 0, PARLEY_EINVAL, PARLEY_ENOTSUP, PARLEY_ENOTFOUND, PARLEY_EPARSE,
 * PARLEY_ECRYPTO or PARLEY_ENOMEM (parley_engine_new's meanings). May block (DNS). */
int parley__engine_ice_servers(parley_engine *e, const parley_engine_config *cfg);
/* Frees what it made (engine free; NULL-safe fields). */
void parley__engine_ice_servers_free(parley_engine *e);

/* ---- call.c (struct parley_call is private to call*.c: engine_internal.h users go through these) ---- */
/* Network thread, under eng->lock. */
int64_t parley__call_net_deadline(parley_call *c, int64_t now_us);
void parley__call_net_service(parley_call *c, int64_t now_us);
int parley__call_fds(parley_call *c, int *fds, int cap);
/* Engine free, under eng->lock: tears the call down without events (a BYE to a started peer),
 * unregisters it from dispatch and frees it. */
void parley__call_destroy(parley_call *c);
/* The engine's DTLS certificate (from cfg's PEM, or self-signed): made at engine creation and freed with
 * it, the PEM pointers in eng->cfg cleared (call_dtls.c). 0 or parley__dtls_cert_new's error. */
int parley__call_cert_init(parley_engine *e);
void parley__call_cert_free(parley_engine *e);
/* The host's addresses changed: the call gathers again (call_handover.c). Under eng->lock. */
void parley__call_network_changed(parley_call *c, int64_t now_us);
/* parley_call_hangup with eng->lock already held (the network thread). 0 or PARLEY_ESTATE. */
int parley__call_hangup_locked(parley_call *c);
/* What the engine, dispatch and sessions read or set of a call (under eng->lock, except target and
 * serial, fixed at creation). */
parley__target *parley__call_target(parley_call *c);
uint64_t parley__call_serial(const parley_call *c);
parley_engine *parley__call_engine(const parley_call *c);
bool parley__call_is_hungup(const parley_call *c);
parley_session *parley__call_session(const parley_call *c);
/* Sets the call's session (NULL: none) and tells its media's mixer membership. */
void parley__call_set_session(parley_call *c, parley_session *s);
/* The call's playout volume, 0..200 percent (rooms' member volume): any thread, real-time safe. */
void parley__call_set_volume(parley_call *c, int volume_pct);

#endif
