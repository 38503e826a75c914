/* call_tool.h: what the files of parley-call share. tools/call.c owns the options, the one-call modes
 * (loopback, listen/dial, offer/answer, whip) and the timeline; tools/call_serve.c the WHIP server and
 * its page; tools/call_whip.c the WHIP client's HTTP exchange (libcurl); tools/call_room.c the room mode. call_lib.h is different: pure
 * helpers that tests compile; this header is the tool's own glue.
 *
 * Threads: the tool's main thread, for everything here, except the echo pump's own thread. Errors are
 * negative PARLEY_E* codes; the functions that print say so. */
#ifndef PARLEY_TOOLS_CALL_TOOL_H
#define PARLEY_TOOLS_CALL_TOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/parley.h"
#include "tools/call_lib.h"

typedef enum calltool_mode {
  MODE_NONE,
  MODE_LOOPBACK,
  MODE_LISTEN,
  MODE_DIAL,
  MODE_OFFER,
  MODE_ANSWER,
  MODE_SERVE,
  MODE_WHIP,
  MODE_ROOM,
  MODE_LIST
} calltool_mode;

typedef struct calltool_opts {
  calltool_mode mode;
  const char *addr; /* listen/dial/serve: HOST:PORT; whip: the endpoint's URL */
  const char *in, *out, *device, *sdp_in, *sdp_out;
  const char *via; /* --via HOST:PORT: media through this relay (via_ip, via_port) */
  const char *report; /* serve: append the page's /report bodies to this file */
  const char *janus, *room_id, *name, *pin; /* room: the Janus API URL, the room, our display name, its pin */
  char via_ip[PARLEY__VIA_IP_MAX];
  int via_port;
  int max_calls; /* serve: concurrent calls */
  bool echo, loopback_only, quiet, no_aec, no_ns, low_delay;
  parley_input_end in_end;
  int frame_ms;
  double duration_s, timeout_s, cut_s, restore_s, restart_s; /* restart_s: whip --restart-at */
  parley_ice_server ice[PARLEY_ENGINE_MAX_ICE_SERVERS]; /* --ice-server, with --turn-user/--turn-password */
  int n_ice;
  const char *turn_user, *turn_password, *turn_ca;
  bool relay_only;
} calltool_opts;

/* Monotonic microseconds (the clock parley stamps events on), and milliseconds since the tool started. */
int64_t calltool_now_us(void);
int64_t calltool_since_ms(int64_t t_us);
/* True once SIGINT/SIGTERM arrived. */
bool calltool_stopping(void);

/* One call of the tool: its engine, its call, what it has seen. hook, if set, sees every event after
 * the timeline (call_serve.c forwards them to the page). */
#define NOT_SEEN INT64_MIN
typedef struct calltool_side {
  const char *name;
  parley_engine *eng;
  parley_call *call;
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
  bool quiet;
  bool connected, track_started, bye, closed, interrupted;
  bool gathered; /* end-of-candidates trickled: every local candidate is in a new description */
  bool negotiate; /* NEGOTIATION_NEEDED came: the call restarted ICE and wants a new offer */
  /* detection marks (ms since start), set by the listener relative to the cut/restore times */
  int64_t cut_ms, restore_ms;
  int64_t t_stopped, t_disconnected, t_interrupted, t_reconnected, t_resumed, t_restarted;
  int64_t opened_us; /* when parley_engine_new returned: its audio device had just started */
  void (*hook)(const parley_event *ev, void *ctx);
  void *hook_ctx;
} calltool_side;

void calltool_side_init(calltool_side *s, const char *name, bool quiet);
/* Opens the engine and one call with every listener; prints why on failure. */
int calltool_side_open(calltool_side *s, const parley_engine_config *cfg);
/* Hangs up (once) unless closed already. */
void calltool_side_hangup(calltool_side *s);
/* Removes the listeners, frees the call and the engine (an output WAV is finalised here). Idempotent. */
void calltool_side_close(calltool_side *s);
/* Applies the peer's description; prints why on failure. */
int calltool_apply_remote(calltool_side *s, parley_sdp_type type, const char *sdp);
/* Prints "parley-call: what: reason (NAME)" and returns err. */
int calltool_fail(const char *what, int err);
void calltool_print_stats(const calltool_side *s);
/* Prints the timeline lines gathered since the last flush, in time order. */
void calltool_flush_timeline(void);

/* The engine configuration of a one-engine mode: frame size, app dispatch, and the audio of --in/--out,
 * --device or --echo (echo turns the canceller off: it would remove the echo itself). */
void calltool_peer_config(const calltool_opts *o, parley_engine_config *cfg);

/* --echo: a thread that pulls what the call plays out and pushes it back as capture. */
typedef struct calltool_echo {
  parley_engine *eng;
  size_t period;
  int frame_ms;
  atomic_bool stop;
  pthread_t thread;
  bool running;
} calltool_echo;
/* 0 or PARLEY_ENOMEM (no thread). */
int calltool_echo_start(calltool_echo *e, parley_engine *eng, int frame_ms);
void calltool_echo_stop(calltool_echo *e);

/* `serve ADDR`: the WHIP endpoint and the page until a signal; the exit code. (call_serve.c) */
int calltool_serve(const calltool_opts *o);

/* The page's files (web/), embedded at build time by cmake/embed_web.cmake: path ("/index.html"),
 * Content-Type, bytes (NUL after them) and size. */
typedef struct calltool_web_file {
  const char *path, *type;
  const unsigned char *data;
  size_t size;
} calltool_web_file;
extern const calltool_web_file calltool_web_files[];
extern const size_t calltool_web_file_count;

/* WHIP client (call_whip.c). offer: POSTs sdp to url as application/sdp; on 201 copies the answer into
 * answer (cap bytes, NUL-terminated) and the resource's absolute URL into location. Prints what went
 * wrong (HTTP status and the server's reason, or the transport error) and returns PARLEY_ENETWORK (no
 * HTTP exchange), PARLEY_EPARSE (not 201, or no Location / SDP body) or PARLEY_ENOSPC. delete: DELETEs
 * location; 0 on a 2xx, else PARLEY_ENETWORK / PARLEY_EPARSE after a message. */
int calltool_whip_offer(const char *url, const char *sdp, int timeout_ms, char *answer, size_t cap, char *location,
                        size_t location_cap);
int calltool_whip_delete(const char *location, int timeout_ms);
/* An ICE restart (RFC 9725 4.4.2): PATCHes frag (application/trickle-ice-sdpfrag, If-Match "*") to
 * location; on 200 copies the server's fragment into reply (cap bytes) and its ETag, if any and if it
 * fits, into etag (else ""). Errors as offer's, after a message. */
int calltool_whip_restart(const char *location, const char *frag, int timeout_ms, char *reply, size_t cap, char *etag,
                          size_t etag_cap);

/* `room --janus URL --room ID --name NAME`: joins a Janus AudioBridge room and prints its timeline until
 * --duration, a signal or the room's end; the exit code. (call_room.c) */
int calltool_room(const calltool_opts *o);

#endif
