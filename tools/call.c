/* call.c: parley-call, real calls through the public API (parley/parley.h), with a printed event
 * timeline and the call statistics.
 *
 *   --loopback  two engines in this process call each other over 127.0.0.1 (ICE + SDES-SRTP); with
 *               --cut-at/--restore-at the media path runs through an in-process UDP relay
 *               (sim/relay_udp.h, the one parley-netsim uses) whose impairment timeline blacks
 *               the path out, to show the passive disconnect and the recovery.
 *   listen/dial one engine per process; the SDPs cross a one-shot TCP rendezvous (call_lib.c).
 *   offer/answer one engine per process; the SDPs go through files or stdin/stdout.
 *   whip        one engine; the SDPs cross a WHIP endpoint's HTTP (call_whip.c, libcurl), ICE restarts as PATCH.
 *   serve       a WHIP endpoint and the call page, one engine per call (call_serve.c).
 *   room        one engine in a Janus AudioBridge room through the room API (call_room.c).
 * The command line is one option table (sim/cli.h): what is parsed is what --help lists.
 *
 * Threads: the main thread owns everything. Engines dispatch events on the app's thread
 * (PARLEY_DISPATCH_APP): the main loop polls their event fds, so listeners run here and need no locks.
 * Helper threads: the relay loop (owns the relay; stopped and joined before the relay is freed) and,
 * with --echo, the pump that pulls playout and pushes it back as capture (the PARLEY_AUDIO_APP pair).
 * Every wait is bounded by --duration / --timeout; SIGINT/SIGTERM end the call cleanly (hang-up,
 * output WAV finalised). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"
#include "sim/cli.h"
#include "sim/relay_udp.h"
#include "sim/xcorr.h"
#include "tools/call_lib.h"
#include "tools/call_tool.h"

#define SDP_CAP PARLEY__CALLTOOL_SDP_MAX
#define MAX_SECONDS 3600.0

static const char USAGE[] =
    "parley-call --loopback --in IN.wav --out OUT.wav [--frame-ms 5|10|20] [--low-delay] [--duration S]\n"
    "                   [--cut-at S --restore-at S]\n"
    "       parley-call listen ADDR  [options]     accept one TCP rendezvous at ADDR, answer\n"
    "       parley-call dial ADDR    [options]     connect to ADDR, offer\n"
    "       parley-call offer  [--sdp-out FILE] [--sdp-in FILE] [options]\n"
    "       parley-call answer [--sdp-in FILE] [--sdp-out FILE] [options]\n"
    "       parley-call serve ADDR   [options]     WHIP endpoint at http://ADDR/whip, a call page at /\n"
    "       parley-call whip URL     [options]     call a WHIP endpoint, e.g. http://127.0.0.1:8080/whip\n"
    "       parley-call room --janus URL --room ID --name NAME [--pin PIN] [options]\n"
    "                                              join a Janus AudioBridge room, print its timeline\n"
    "       parley-call --list-devices\n"
    "\n"
    "Loopback: A plays IN (mono/stereo WAV or FLAC, any rate) into the call, B writes what it hears\n"
    "to OUT. --cut-at/--restore-at route the call through an in-process relay that drops everything\n"
    "between the two times (seconds from start), then print the detection times.\n"
    "ADDR: HOST:PORT (numeric; IPv6 as [::1]:PORT) or PORT (127.0.0.1).\n"
    "offer/answer: the local SDP goes to --sdp-out (written atomically) or stdout; the remote SDP is\n"
    "read from --sdp-in (waiting until the file is complete) or stdin (until EOF or a blank line).\n"
    "serve (ADDR numeric IPv4): each POSTed offer is a call on its own engine, ended by DELETE on its\n"
    "Location; the page at / calls from a browser and shows both sides' events. --echo serves\n"
    "--max-calls at once, the other audio modes one.\n"
    "Audio, one backend for both directions: --in/--out files, --device, or --echo; with none the call\n"
    "sends silence and discards what it receives.";

/* ---- options ------------------------------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "parley-call: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(parley-call --help for usage)\n");
  return 2;
}

/* The length of an audio file in seconds, or -1 if it cannot be read (the engine reports why later). */
static double file_seconds(const char *path) {
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return -1;
  sf_close(f);
  return info.samplerate > 0 ? (double)info.frames / info.samplerate : -1;
}

/* --loopback without --duration: the whole input plus a second for the last audio to cross the call
 * (5 s without a readable --in, or looping), and past any restore by 3 s to show the recovery. */
static double loopback_default_s(const calltool_opts *o) {
  double len = o->in && o->in_end != PARLEY_INPUT_END_LOOP ? file_seconds(o->in) : -1;
  double d = len >= 0 ? len + 1.0 : 5.0;
  if (o->cut_s >= 0 && d < o->restore_s + 3.0) d = o->restore_s + 3.0;
  return d > MAX_SECONDS ? MAX_SECONDS : d;
}

static const char *opt_via(void *ctx, const char *v) {
  calltool_opts *o = ctx;
  if (parley__via_split_hostport(v, o->via_ip, sizeof o->via_ip, &o->via_port) != 0 || o->via_port == 0)
    return "wants a numeric HOST:PORT (IPv6 as [::1]:PORT)";
  o->via = v;
  return NULL;
}

/* Returns 0, or an exit code (2 for usage errors, or -1 for --help). */
static const char *opt_ice_server(void *ctx, const char *v) {
  calltool_opts *o = ctx;
  if (o->n_ice == PARLEY_ENGINE_MAX_ICE_SERVERS) return "too many (8 at most)";
  if (strncmp(v, "stun:", 5) != 0 && strncmp(v, "turn:", 5) != 0 && strncmp(v, "turns:", 6) != 0)
    return "wants a stun:, turn: or turns: URL";
  o->ice[o->n_ice++].url = v;
  return NULL;
}

static int parse_args(int argc, char **argv, calltool_opts *o) {
  memset(o, 0, sizeof *o);
  o->duration_s = -1;
  o->timeout_s = 20;
  o->cut_s = o->restore_s = o->restart_s = -1;
  bool loopback = false, list = false;
  int in_end = 0, frame = -1; /* choice indices: silence; frame -1 = not given */
  parley__cli_call via = {opt_via, o}, ice = {opt_ice_server, o};
  const parley__cli_opt table[] = {
      {"loopback", PARLEY__CLI_FLAG, &loopback, NULL, "two engines in this process call each other", 0, 0},
      {"list-devices", PARLEY__CLI_FLAG, &list, NULL, "list the sound devices (names for --device) and exit", 0, 0},
      {"in", PARLEY__CLI_STRING, &o->in, "FILE", "capture from FILE (WAV or FLAC, mono or stereo, any rate)", 0, 0},
      {"out", PARLEY__CLI_STRING, &o->out, "FILE", "play out into FILE (16-bit WAV)", 0, 0},
      {"in-end", PARLEY__CLI_CHOICE, &in_end, "silence|loop|hangup",
       "what follows the end of --in: silence, the file again, or hanging\n"
       "up [silence]. listen/dial/offer/answer start --in when the call's\n"
       "media starts, not when the tool starts", 0, 0},
      {"device", PARLEY__CLI_STRING, &o->device, "NAME",
       "a sound device for both directions (see --list-devices; 'default')", 0, 0},
      {"echo", PARLEY__CLI_FLAG, &o->echo, NULL,
       "echo-test peer: send back what is received (its echo canceller and\n"
       "noise suppressor stay off: they would remove the echo itself)", 0, 0},
      {"sdp-out", PARLEY__CLI_STRING, &o->sdp_out, "FILE",
       "offer/answer: write the local description to FILE [stdout]", 0, 0},
      {"sdp-in", PARLEY__CLI_STRING, &o->sdp_in, "FILE",
       "offer/answer: read the remote description from FILE [stdin]", 0, 0},
      {"frame-ms", PARLEY__CLI_CHOICE, &frame, "5|10|20", "frame size [20; 5 with --low-delay]", 0, 0},
      {"low-delay", PARLEY__CLI_FLAG, &o->low_delay, NULL,
       "the low-delay profile: Opus restricted-lowdelay, 5 ms frames unless\n"
       "--frame-ms says otherwise (no in-band FEC or DTX)", 0, 0},
      {"duration", PARLEY__CLI_DOUBLE, &o->duration_s, "S",
       "end the call after S seconds (0: when the peer hangs up) [loopback:\n"
       "--in's length + 1 (5 without --in), at least restore + 3; else 0]", 0, MAX_SECONDS},
      {"timeout", PARLEY__CLI_DOUBLE, &o->timeout_s, "S", "give up if signaling or connecting takes longer [20]", 0,
       MAX_SECONDS},
      {"cut-at", PARLEY__CLI_DOUBLE, &o->cut_s, "S", "loopback: black the path out from S seconds ...", 0, MAX_SECONDS},
      {"restore-at", PARLEY__CLI_DOUBLE, &o->restore_s, "S", "... until S seconds, then report the detection times", 0,
       MAX_SECONDS},
      {"restart-at", PARLEY__CLI_DOUBLE, &o->restart_s, "S",
       "whip: restart ICE S seconds after the call's audio started (a PATCH,\n"
       "as after a network change)", 0, MAX_SECONDS},
      {"loopback-only", PARLEY__CLI_FLAG, &o->loopback_only, NULL,
       "offer/answer: use only 127.0.0.1 candidates (listen/dial do this\n"
       "when ADDR is a loopback address)", 0, 0},
      {"via", PARLEY__CLI_CALL, &via, "HOST:PORT",
       "send the media through a relay, e.g. parley-netsim --listen HOST:PORT\n"
       "(no --forward): both descriptions' candidates are moved to it, so one\n"
       "side's --via routes both directions (numeric IPv4)", 0, 0},
      {"ice-server", PARLEY__CLI_CALL, &ice, "URL",
       "a STUN or TURN server (repeatable): stun:HOST[:PORT],\n"
       "turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT] (TLS);\n"
       "listen/dial/offer/answer wait for its candidates before sending\n"
       "the description", 0, 0},
      {"turn-user", PARLEY__CLI_STRING, &o->turn_user, "NAME", "the TURN servers' username", 0, 0},
      {"turn-password", PARLEY__CLI_STRING, &o->turn_password, "PASS", "the TURN servers' password", 0, 0},
      {"turn-ca", PARLEY__CLI_STRING, &o->turn_ca, "FILE",
       "turns: servers' certificates must chain to a CA in this PEM file\n"
       "(default: the system's CAs)", 0, 0},
      {"relay-only", PARLEY__CLI_FLAG, &o->relay_only, NULL,
       "ICE uses relayed candidates only (W3C iceTransportPolicy relay):\n"
       "the peer never learns this host's addresses", 0, 0},
      {"no-aec", PARLEY__CLI_FLAG, &o->no_aec, NULL,
       "turn off echo cancellation (e.g. for a device wired back to itself,\n"
       "which the canceller would remove)", 0, 0},
      {"no-ns", PARLEY__CLI_FLAG, &o->no_ns, NULL, "turn off noise suppression", 0, 0},
      {"max-calls", PARLEY__CLI_INT, &o->max_calls, "N", "serve: concurrent calls with --echo or no audio [4]", 1, 64},
      {"report", PARLEY__CLI_STRING, &o->report, "FILE",
       "serve: append what pages POST to /report (one JSON line each) to FILE", 0, 0},
      {"janus", PARLEY__CLI_STRING, &o->janus, "URL", "room: Janus's API, ws://127.0.0.1:8188/ (preferred) or http://127.0.0.1:8088/janus", 0, 0},
      {"room", PARLEY__CLI_STRING, &o->room_id, "ID", "room: the AudioBridge room number", 0, 0},
      {"name", PARLEY__CLI_STRING, &o->name, "NAME", "room: the name the others see", 0, 0},
      {"pin", PARLEY__CLI_STRING, &o->pin, "PIN", "room: the room's pin, if it has one", 0, 0},
      {"quiet", PARLEY__CLI_FLAG, &o->quiet, NULL,
       "timeline only for the main events (no signaling/ice/candidates)", 0, 0},
  };
  int first = argc;
  int rc = parley__cli_parse_any_order(USAGE, table, sizeof table / sizeof table[0], argc, argv, &first);
  if (rc != 0) return rc == 1 ? -1 : 2;
  o->in_end = (parley_input_end)in_end; /* the choices are in the enum's order */
  static const int frame_choices[] = {5, 10, 20};
  o->frame_ms = frame >= 0 ? frame_choices[frame] : o->low_delay ? 5 : 20;
  /* The positionals: a command, and for listen/dial its address. */
  if (first < argc) {
    const char *m = argv[first++];
    if (loopback) return usage_error("--loopback is its own mode, not with '%s'", m);
    if (strcmp(m, "listen") == 0) o->mode = MODE_LISTEN;
    else if (strcmp(m, "dial") == 0) o->mode = MODE_DIAL;
    else if (strcmp(m, "offer") == 0) o->mode = MODE_OFFER;
    else if (strcmp(m, "answer") == 0) o->mode = MODE_ANSWER;
    else if (strcmp(m, "serve") == 0) o->mode = MODE_SERVE;
    else if (strcmp(m, "whip") == 0) o->mode = MODE_WHIP;
    else if (strcmp(m, "room") == 0) o->mode = MODE_ROOM;
    else return usage_error("unknown command '%s'", m);
    if (o->mode == MODE_LISTEN || o->mode == MODE_DIAL || o->mode == MODE_SERVE || o->mode == MODE_WHIP)
      if (first < argc) o->addr = argv[first++];
    if (first < argc) return usage_error("unexpected argument '%s'", argv[first]);
  } else if (loopback) {
    o->mode = MODE_LOOPBACK;
  }
  if (list) o->mode = MODE_LIST;
  if ((o->mode == MODE_LISTEN || o->mode == MODE_DIAL || o->mode == MODE_SERVE) && !o->addr)
    return usage_error("%s", "listen/dial/serve need an address (HOST:PORT)");
  if (o->mode == MODE_WHIP && !o->addr) return usage_error("%s", "whip needs the endpoint's URL");
  if ((o->janus || o->room_id || o->name || o->pin) != (o->mode == MODE_ROOM) ||
      (o->mode == MODE_ROOM && !(o->janus && o->room_id && o->name)))
    return usage_error("%s", "room needs --janus URL --room ID --name NAME (and they are room's alone)");
  if (o->mode == MODE_NONE)
    return usage_error("%s", "say what to do: --loopback, listen, dial, offer, answer, serve, whip, room");
  if ((o->max_calls || o->report) && o->mode != MODE_SERVE)
    return usage_error("%s", "--max-calls and --report are for serve");
  if (o->max_calls == 0) o->max_calls = 4;
  if (o->mode == MODE_LIST) return 0;
  if (o->in_end != PARLEY_INPUT_END_SILENCE && !o->in) return usage_error("%s", "--in-end needs --in");
  if ((o->cut_s >= 0) != (o->restore_s >= 0)) return usage_error("%s", "--cut-at and --restore-at go together");
  if (o->cut_s >= 0 && o->mode != MODE_LOOPBACK) return usage_error("%s", "--cut-at needs --loopback");
  if (o->cut_s >= 0 && !(o->cut_s > 0 && o->restore_s > o->cut_s))
    return usage_error("%s", "need 0 < --cut-at < --restore-at");
  if (o->timeout_s <= 0) return usage_error("%s", "--timeout must be positive");
  if (o->restart_s >= 0 && o->mode != MODE_WHIP) return usage_error("%s", "--restart-at is for whip");
  for (int i = 0; i < o->n_ice; i++) {
    o->ice[i].username = o->turn_user;
    o->ice[i].credential = o->turn_password;
  }
  if (o->relay_only && o->n_ice == 0) return usage_error("%s", "--relay-only needs --ice-server turn:...");
  if (o->turn_ca && o->n_ice == 0) return usage_error("%s", "--turn-ca needs --ice-server turns:...");
  if (o->n_ice && (o->mode == MODE_LOOPBACK || o->mode == MODE_SERVE))
    return usage_error("%s", "--ice-server is for listen/dial/offer/answer/whip");
  if (o->mode == MODE_LOOPBACK) {
    if (o->device || o->echo || o->sdp_in || o->sdp_out || o->via)
      return usage_error("%s", "--loopback takes --in/--out files only");
    if (o->duration_s < 0) o->duration_s = loopback_default_s(o);
    if (o->duration_s <= 0) return usage_error("%s", "--duration must be positive for --loopback");
    if (o->cut_s >= 0 && o->duration_s <= o->restore_s)
      return usage_error("%s", "--duration must end after --restore-at");
  } else {
    if (o->duration_s < 0) o->duration_s = 0;
    if (o->device && (o->in || o->out)) return usage_error("%s", "--device replaces --in/--out");
    if (o->echo && (o->device || o->in || o->out)) return usage_error("%s", "--echo is its own audio source");
    if (o->via && o->mode != MODE_LISTEN && o->mode != MODE_DIAL && o->mode != MODE_OFFER && o->mode != MODE_ANSWER &&
        o->mode != MODE_WHIP)
      return usage_error("%s", "--via is for listen/dial/offer/answer");
    if ((o->sdp_in || o->sdp_out) && o->mode != MODE_OFFER && o->mode != MODE_ANSWER)
      return usage_error("%s", "--sdp-in/--sdp-out are for offer/answer");
  }
  return 0;
}

/* ---- time and signals ----------------------------------------------------------------------------- */

static int64_t g_t0_us;
static volatile sig_atomic_t g_stop;
static bool g_ending; /* hanging up: waits no longer end on a signal, they are short anyway */

int64_t calltool_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* the engine stamps events on this clock too */
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
int64_t calltool_since_ms(int64_t t_us) { return (t_us - g_t0_us) / 1000; }

bool calltool_stopping(void) { return g_stop != 0; }

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

/* ---- one side of a call -------------------------------------------------------------------------- */

/* Timeline lines of one dispatch round, printed sorted by time: the engines are dispatched one after
 * the other, so without this B's earlier events could print after A's later ones. */
#define MAX_PENDING 64
typedef struct timeline_line {
  int64_t ms;
  char text[256];
} timeline_line;
static timeline_line g_lines[MAX_PENDING];
static int g_pending;

void calltool_flush_timeline(void) {
  for (int i = 1; i < g_pending; i++) /* insertion sort: stable, and rounds are short */
    for (int j = i; j > 0 && g_lines[j - 1].ms > g_lines[j].ms; j--) {
      timeline_line t = g_lines[j];
      g_lines[j] = g_lines[j - 1];
      g_lines[j - 1] = t;
    }
  for (int i = 0; i < g_pending; i++) printf("%s\n", g_lines[i].text);
  g_pending = 0;
  fflush(stdout);
}

static void on_event(const parley_event *ev, void *user) {
  calltool_side *s = user;
  int64_t ms = calltool_since_ms(ev->time_us);
  bool minor = ev->kind == PARLEY_EVENT_SIGNALING_STATE_CHANGED || ev->kind == PARLEY_EVENT_LOCAL_CANDIDATE ||
               ev->kind == PARLEY_EVENT_ICE_STATE_CHANGED;
  if (!(s->quiet && minor)) {
    if (g_pending == MAX_PENDING) calltool_flush_timeline();
    g_lines[g_pending].ms = ms;
    parley__calltool_format_event(g_lines[g_pending].text, sizeof g_lines[g_pending].text, ms, s->name, ev);
    g_pending++;
  }
  bool after_cut = s->cut_ms >= 0 && ms >= s->cut_ms;
  bool after_restore = s->restore_ms >= 0 && ms >= s->restore_ms;
  switch (ev->kind) {
  case PARLEY_EVENT_LOCAL_CANDIDATE:
    if (ev->candidate && strcmp(ev->candidate, "end-of-candidates") == 0) s->gathered = true;
    break;
  case PARLEY_EVENT_TRACK_STARTED:
    s->track_started = true;
    if (after_restore && s->t_restarted == NOT_SEEN) s->t_restarted = ms;
    break;
  case PARLEY_EVENT_TRACK_STOPPED:
    if (ev->reason == PARLEY_STOP_BYE) s->bye = true;
    if (after_cut && s->t_stopped == NOT_SEEN) s->t_stopped = ms;
    break;
  case PARLEY_EVENT_PEER_STATE_CHANGED:
    if (ev->peer_state == PARLEY_PEER_CONNECTED) {
      s->connected = true;
      if (after_restore && s->t_reconnected == NOT_SEEN) s->t_reconnected = ms;
    } else if (ev->peer_state == PARLEY_PEER_DISCONNECTED || ev->peer_state == PARLEY_PEER_FAILED) {
      if (after_cut && s->t_disconnected == NOT_SEEN) s->t_disconnected = ms;
    }
    break;
  case PARLEY_EVENT_INTERRUPTED:
    s->interrupted = true;
    if (after_cut && s->t_interrupted == NOT_SEEN) s->t_interrupted = ms;
    break;
  case PARLEY_EVENT_RESUMED:
    s->interrupted = false;
    if (after_restore && s->t_resumed == NOT_SEEN) s->t_resumed = ms;
    break;
  case PARLEY_EVENT_NEGOTIATION_NEEDED: s->negotiate = true; break;
  case PARLEY_EVENT_CLOSED: s->closed = true; break;
  default: break;
  }
  if (s->hook) s->hook(ev, s->hook_ctx);
}

void calltool_side_init(calltool_side *s, const char *name, bool quiet) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->quiet = quiet;
  s->cut_ms = s->restore_ms = -1;
  s->t_stopped = s->t_disconnected = s->t_interrupted = s->t_reconnected = s->t_resumed = s->t_restarted =
      NOT_SEEN;
}

int calltool_fail(const char *what, int err) {
  fprintf(stderr, "parley-call: %s: %s (%s)\n", what, parley_strerror(err), parley_err_name(err));
  return err;
}

static const char *engine_error_hint(int err, const parley_engine_config *cfg) {
  switch (err) {
  case PARLEY_ENOTFOUND:
    if (cfg->audio != PARLEY_AUDIO_DEVICE) return "no such input file";
    return parley_device_list(NULL, 0) == 0 ? "no audio devices on this machine (no sound card, PulseAudio or "
                                               "running JACK server)"
                                             : "no such audio device (see --list-devices)";
  case PARLEY_EFORMAT: return "the input file is not readable audio (mono or stereo WAV/FLAC)";
  case PARLEY_EIO: return "the output file cannot be created";
  case PARLEY_ENOTSUP:
    if (cfg->ice_server_count > 0)
      return "an --ice-server URL asks for what parley does not do (turns: over UDP, DTLS), or the device "
             "cannot do this rate";
    return "the device cannot do this rate";
  case PARLEY_EDEVICE: return "the device failed to open or start";
  case PARLEY_EPARSE:
    if (cfg->turn_ca_file) return "--turn-ca is not a readable PEM file of CA certificates";
    return parley_strerror(err);
  default: return parley_strerror(err);
  }
}

int calltool_side_open(calltool_side *s, const parley_engine_config *cfg) {
  int err = parley_engine_new(cfg, &s->eng);
  s->opened_us = calltool_now_us();
  if (err < 0) {
    const char *what = cfg->audio == PARLEY_AUDIO_DEVICE ? (cfg->input_device ? cfg->input_device : "default")
                       : cfg->input_file                 ? cfg->input_file
                                                         : (cfg->output_file ? cfg->output_file : "");
    if (err == PARLEY_EIO && cfg->output_file) what = cfg->output_file;
    if (err == PARLEY_EPARSE && cfg->turn_ca_file) what = cfg->turn_ca_file;
    fprintf(stderr, "parley-call: engine %s: %s%s%s (%s)\n", s->name, engine_error_hint(err, cfg), *what ? ": " : "",
            what, parley_err_name(err));
    return err;
  }
  if ((err = parley_call_new(s->eng, &s->call)) < 0) return calltool_fail("call", err);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
    s->ids[k] = parley_call_on(s->call, (parley_event_kind)k, on_event, s);
    if (s->ids[k] < 0) return calltool_fail("listener", s->ids[k]);
  }
  return 0;
}

/* Polls the engines' event fds and dispatches until done(ctx) or until_us (absolute; <0 = no limit)
 * or a signal. Returns true if done() became true. */
static bool run_until(calltool_side **sides, int n, int64_t until_us, bool (*done)(void *), void *ctx) {
  for (;;) {
    if (done && done(ctx)) return true;
    if (g_stop && !g_ending) return false;
    int64_t left_ms = until_us < 0 ? 200 : (until_us - calltool_now_us() + 999) / 1000;
    if (left_ms <= 0) return false;
    struct pollfd pfd[4];
    for (int i = 0; i < n; i++) pfd[i] = (struct pollfd){.fd = parley_engine_event_fd(sides[i]->eng), .events = POLLIN};
    int r = poll(pfd, (nfds_t)n, (int)(left_ms < 200 ? left_ms : 200));
    if (r < 0 && errno != EINTR) return false;
    for (int i = 0; i < n; i++)
      if (r > 0 && (pfd[i].revents & POLLIN)) parley_engine_dispatch(sides[i]->eng);
    calltool_flush_timeline();
  }
}

static bool all_closed(void *ctx) {
  calltool_side **s = ctx;
  for (int i = 0; s[i]; i++)
    if (!s[i]->closed) return false;
  return true;
}

void calltool_side_hangup(calltool_side *s) {
  g_ending = true;
  if (s->call && !s->closed) (void)parley_call_hangup(s->call);
}

void calltool_side_close(calltool_side *s) {
  if (s->call) {
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      if (s->ids[k] > 0) parley_call_off(s->call, s->ids[k]);
    parley_call_free(s->call);
    s->call = NULL;
  }
  parley_engine_free(s->eng); /* stops the device: the output WAV header is finalised here */
  s->eng = NULL;
}

/* v * scale formatted with fmt, or "n/a" when v < 0 (not measured yet). */
static const char *fmt_or_na(char *buf, size_t cap, const char *fmt, double v, double scale) {
  if (v < 0) snprintf(buf, cap, "n/a");
  else snprintf(buf, cap, fmt, v * scale);
  return buf;
}

void calltool_print_stats(const calltool_side *s) {
  parley_call_stats st;
  if (!s->call || parley_call_get_stats(s->call, &st) != 0) return;
  char rtt[32], sent[32], recent[32], recv[32], recv_recent[32];
  printf("  %s: rtt %s, loss sent %s over the call (%lld packets, peer-reported; %s in the last report), "
         "received %s (%lld packets; %s in the last report)\n",
         s->name, fmt_or_na(rtt, sizeof rtt, "%.1f ms", st.rtt_ms, 1),
         fmt_or_na(sent, sizeof sent, "%.1f %%", st.loss_sent, 100), (long long)(st.packets_lost_sent > 0 ? st.packets_lost_sent : 0),
         fmt_or_na(recent, sizeof recent, "%.1f %%", st.fraction_lost, 100),
         fmt_or_na(recv, sizeof recv, "%.1f %%", st.loss_received, 100), (long long)st.packets_lost,
         fmt_or_na(recv_recent, sizeof recv_recent, "%.1f %%", st.fraction_lost_received, 100));
  printf("     jitter %.1f ms, jitter buffer %.0f ms, concealed %llu frames / %llu ms, fec %llu\n", st.jitter_ms,
         st.jitter_buffer_ms, (unsigned long long)st.concealed_frames, (unsigned long long)st.concealed_ms,
         (unsigned long long)st.fec_frames);
  printf("     sent %llu packets / %llu bytes, received %llu packets / %llu bytes, ICE pairs selected %u\n",
         (unsigned long long)st.packets_sent, (unsigned long long)st.bytes_sent,
         (unsigned long long)st.packets_received, (unsigned long long)st.bytes_received,
         (unsigned)st.ice_pairs_selected);
}

static void print_delta(const char *label, int64_t from_ms, int64_t at_ms) {
  if (at_ms == NOT_SEEN) printf("    %-26s not seen\n", label);
  else printf("    %-26s %lld ms\n", label, (long long)(at_ms - from_ms));
}

static void print_detection(const calltool_side *s) {
  printf("  %s:\n", s->name);
  print_delta("cut -> track-stopped", s->cut_ms, s->t_stopped);
  print_delta("cut -> disconnected", s->cut_ms, s->t_disconnected);
  print_delta("cut -> interrupted", s->cut_ms, s->t_interrupted);
  print_delta("restore -> connected", s->restore_ms, s->t_reconnected);
  print_delta("restore -> resumed", s->restore_ms, s->t_resumed);
  print_delta("restore -> track-started", s->restore_ms, s->t_restarted);
}

/* ---- the relay (loopback with a blackout) ------------------------------------------------------- */

typedef struct relay_run {
  parley__relay_udp *u;
  atomic_bool stop;
  pthread_t thread;
  bool running;
} relay_run;

static void *relay_main(void *p) {
  relay_run *r = p;
  while (!atomic_load(&r->stop))
    if (parley__relay_udp_step(r->u, 20000) < 0) break;
  return NULL;
}

/* Starts a relay forwarding to peer ip:port (side "forward"), blacked out both ways over
 * [cut, restore) seconds since g_t0_us. */
static int relay_start(relay_run *r, const char *ip, int port, double cut_s, double restore_s) {
  parley__relay_udp_config rc;
  memset(&rc, 0, sizeof rc);
  char fwd[96];
  snprintf(fwd, sizeof fwd, "%s:%d", ip, port);
  if (parley__relay_udp_parse_addr("127.0.0.1:0", &rc.listen) != 0 ||
      parley__relay_udp_parse_addr(fwd, &rc.forward) != 0)
    return PARLEY_EINVAL;
  rc.relay.seed = 1;
  rc.relay.max_queued = 4096;
  rc.relay.max_datagram = 2048;
  int64_t start_offset_us = calltool_now_us() - g_t0_us; /* the relay's timeline starts now, not at g_t0 */
  for (int d = 0; d < 2; d++) {
    rc.relay.impair[d].n_blackouts = 1;
    rc.relay.impair[d].blackouts[0].start_us = (int64_t)(cut_s * 1e6) - start_offset_us;
    rc.relay.impair[d].blackouts[0].length_us = (int64_t)((restore_s - cut_s) * 1e6);
  }
  int err = 0;
  r->u = parley__relay_udp_new_realtime(&rc, &err);
  if (!r->u) return err ? err : PARLEY_ENETWORK;
  atomic_store(&r->stop, false);
  if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
    parley__relay_udp_free(r->u);
    r->u = NULL;
    return PARLEY_ENOMEM;
  }
  r->running = true;
  return 0;
}

static void relay_stop(relay_run *r) {
  if (r->running) {
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    r->running = false;
  }
  parley__relay_udp_free(r->u);
  r->u = NULL;
}

static int relay_addr(const relay_run *r, bool listen_side, char *ip, int *port) {
  struct sockaddr_storage ss;
  int err = listen_side ? parley__relay_udp_listen_addr(r->u, &ss) : parley__relay_udp_forward_local_addr(r->u, &ss);
  if (err) return err;
  char text[64];
  if ((err = parley__relay_udp_format_addr((struct sockaddr *)&ss, text, sizeof text)) != 0) return err;
  char *colon = strrchr(text, ':');
  if (!colon) return PARLEY_EINVAL;
  *colon = '\0';
  snprintf(ip, 64, "%s", text);
  *port = atoi(colon + 1);
  return 0;
}

/* ---- modes ------------------------------------------------------------------------------------------ */

static bool both_started(void *ctx) {
  calltool_side **s = ctx;
  return s[0]->track_started && s[1]->track_started;
}

static bool bye_seen(void *ctx) {
  calltool_side **s = ctx;
  return s[0]->closed && s[1]->bye;
}

int calltool_apply_remote(calltool_side *s, parley_sdp_type type, const char *sdp) {
  parley_sdp_error se;
  memset(&se, 0, sizeof se);
  int err = parley_call_set_remote_description(s->call, type, sdp, &se);
  if (err < 0) {
    fprintf(stderr, "parley-call: %s: remote description rejected: %s (%s)", s->name, parley_strerror(err),
            parley_err_name(err));
    if (se.message[0]) fprintf(stderr, ": %s", se.message);
    fprintf(stderr, "\n");
  }
  return err;
}

/* A whole file as mono floats (channels averaged); NULL if unreadable. */
static float *read_mono(const char *path, size_t *n, int *rate) {
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return NULL;
  size_t frames = (size_t)info.frames, ch = (size_t)info.channels;
  float *raw = malloc((frames ? frames : 1) * ch * sizeof *raw), *x = malloc((frames ? frames : 1) * sizeof *x);
  sf_count_t got = raw && x ? sf_readf_float(f, raw, info.frames) : 0;
  sf_close(f);
  if (!raw || !x || got <= 0) {
    free(raw);
    free(x);
    return NULL;
  }
  for (size_t i = 0; i < (size_t)got; i++) {
    double v = 0;
    for (size_t c = 0; c < ch; c++) v += raw[i * ch + c];
    x[i] = (float)(v / (double)ch);
  }
  free(raw);
  *n = (size_t)got;
  *rate = info.samplerate;
  return x;
}

/* Mouth-to-ear latency of the loopback call, measured on the files: where a stretch of A's input
 * (from 0.5 s, before any blackout) turns up in B's output. Both file devices run in real time from
 * when their engine started, B's a_later_us before A's; a file device hands a period to the engine
 * once it is "recorded", so a sample was spoken one frame before A sees it. */
static void print_latency(const calltool_opts *o, int64_t a_later_us) {
  size_t nx = 0, ny = 0;
  int rx = 0, ry = 0;
  float *x = read_mono(o->in, &nx, &rx), *y = read_mono(o->out, &ny, &ry);
  const double until_s = o->cut_s >= 0 ? o->cut_s : o->duration_s;
  const long offset = (long)(a_later_us * 48 / 1000); /* samples B's file is ahead of A's */
  const size_t from = 24000, len = (size_t)(48000 * (until_s - 1.0 < 1.5 ? until_s - 1.0 : 1.5));
  const long max_lag = offset + 24000; /* 500 ms beyond the start offset */
  if (!x || !y || rx != 48000 || ry != 48000 || until_s < 1.5 || offset < 0 || nx < from + len ||
      ny < from + len + (size_t)max_lag) {
    printf("latency: not measured (needs a 48 kHz input with at least %.1f s of sound before any blackout)\n",
           1.5);
  } else {
    /* The best of half-second pieces: while the jitter buffer settles (or a loaded host delays the
     * file devices' ticks) time-scaling moves the lag a little, which blurs one long window. */
    double peak = -1;
    long lag = -1;
    for (size_t at = from; at + 24000 <= from + len; at += 12000) {
      double p = 0;
      long l = parley__xcorr_best_lag(x + at, 24000, y + at, ny - at, max_lag, &p);
      if (l >= 0 && p > peak) peak = p, lag = l;
    }
    if (lag < 0 || peak < 0.5)
      printf("latency: not measured (A's speech not found in B's output, correlation %.2f)\n", peak);
    else
      printf("latency: %.1f ms mouth-to-ear (A's input -> B's output: correlation %.2f at %.1f ms, engines "
             "started %.1f ms apart, + one %d ms frame of capture)\n",
             (double)(lag - offset) / 48.0 + o->frame_ms, peak, (double)lag / 48.0, (double)a_later_us / 1000.0,
             o->frame_ms);
  }
  free(x);
  free(y);
}

static int run_loopback(const calltool_opts *o) {
  static char offer[SDP_CAP], answer[SDP_CAP], rewritten[SDP_CAP];
  calltool_side a, b;
  calltool_side_init(&a, "A", o->quiet);
  calltool_side_init(&b, "B", o->quiet);
  relay_run relay;
  memset(&relay, 0, sizeof relay);
  bool cut = o->cut_s >= 0;
  if (cut) {
    a.cut_ms = b.cut_ms = (int64_t)(o->cut_s * 1000);
    a.restore_ms = b.restore_ms = (int64_t)(o->restore_s * 1000);
  }
  parley_engine_config ca, cb;
  parley_engine_config_init(&ca);
  ca.loopback_candidates = true;
  ca.ipv6 = false;
  ca.frame_ms = o->frame_ms;
  ca.dispatch = PARLEY_DISPATCH_APP;
  ca.echo_cancellation = !o->no_aec;
  ca.noise_suppression = !o->no_ns;
  ca.low_delay = o->low_delay;
  cb = ca;
  if (o->in) {
    ca.audio = PARLEY_AUDIO_FILE;
    ca.input_file = o->in;
    ca.input_file_end = o->in_end;
  }
  if (o->out) {
    cb.audio = PARLEY_AUDIO_FILE;
    cb.output_file = o->out;
  }
  int rc = 1, err;
  /* B first: it owns the output file, which then exists (and is a valid WAV) whatever fails later. */
  if (calltool_side_open(&b, &cb) < 0 || calltool_side_open(&a, &ca) < 0) goto out;
  printf("loopback call: A %s -> B %s, %d ms frames%s\n", o->in ? o->in : "(silence)", o->out ? o->out : "(discarded)",
         o->frame_ms, cut ? ", through a relay" : "");
  if ((err = parley_call_create_offer(a.call, offer, sizeof offer)) < 0) {
    calltool_fail("offer", err);
    goto out;
  }
  if ((err = parley_call_set_local_description(a.call, offer)) < 0) {
    calltool_fail("A local description", err);
    goto out;
  }
  const char *offer_for_b = offer;
  if (cut) {
    /* A stays where it is; the relay forwards to it, B is told the relay's listen address is A, and
     * A is told the relay's forward socket is B. */
    char ip[64];
    int port;
    if ((err = parley__via_first_candidate(offer, ip, sizeof ip, &port)) < 0) {
      calltool_fail("A's candidate", err);
      goto out;
    }
    if ((err = relay_start(&relay, ip, port, o->cut_s, o->restore_s)) < 0) {
      calltool_fail("relay", err);
      goto out;
    }
    if ((err = relay_addr(&relay, true, ip, &port)) < 0 ||
        (err = parley__via_sdp_rewrite(offer, ip, port, rewritten, sizeof rewritten)) < 0) {
      calltool_fail("routing the offer through the relay", err);
      goto out;
    }
    printf("relay: B -> %s:%d -> A, blackout %.3f s .. %.3f s\n", ip, port, o->cut_s, o->restore_s);
    offer_for_b = rewritten;
  }
  if (calltool_apply_remote(&b, PARLEY_SDP_OFFER, offer_for_b) < 0) goto out;
  if ((err = parley_call_create_answer(b.call, answer, sizeof answer)) < 0) {
    calltool_fail("answer", err);
    goto out;
  }
  if ((err = parley_call_set_local_description(b.call, answer)) < 0) {
    calltool_fail("B local description", err);
    goto out;
  }
  const char *answer_for_a = answer;
  if (cut) {
    char ip[64];
    int port;
    if ((err = relay_addr(&relay, false, ip, &port)) < 0 ||
        (err = parley__via_sdp_rewrite(answer, ip, port, rewritten, sizeof rewritten)) < 0) {
      calltool_fail("routing the answer through the relay", err);
      goto out;
    }
    answer_for_a = rewritten;
  }
  if (calltool_apply_remote(&a, PARLEY_SDP_ANSWER, answer_for_a) < 0) goto out;
  if ((err = parley_call_start(a.call)) < 0 || (err = parley_call_start(b.call)) < 0) {
    calltool_fail("start", err);
    goto out;
  }
  calltool_side *both[3] = {&a, &b, NULL};
  int64_t end_us = g_t0_us + (int64_t)(o->duration_s * 1e6);
  int64_t connect_by = calltool_now_us() + (int64_t)(o->timeout_s * 1e6);
  if (!run_until(both, 2, connect_by < end_us ? connect_by : end_us, both_started, both))
    fprintf(stderr, "parley-call: the call did not start (A track %s, B track %s)\n",
            a.track_started ? "started" : "not started", b.track_started ? "started" : "not started");
  else
    run_until(both, 2, end_us, NULL, NULL);

  printf("stats at %lld ms:\n", (long long)calltool_since_ms(calltool_now_us()));
  calltool_print_stats(&a);
  calltool_print_stats(&b);
  /* A hangs up; B sees the BYE; both calls end with closed. */
  calltool_side_hangup(&a);
  run_until(both, 2, calltool_now_us() + 2000000, bye_seen, both);
  calltool_side_hangup(&b);
  run_until(both, 2, calltool_now_us() + 2000000, all_closed, both);
  if (cut) {
    printf("detection (cut at %.3f s, restore at %.3f s):\n", o->cut_s, o->restore_s);
    print_detection(&a);
    print_detection(&b);
  }
  bool ok = a.track_started && b.track_started;
  if (cut) ok = ok && a.t_reconnected != NOT_SEEN && b.t_reconnected != NOT_SEEN;
  int64_t a_later_us = a.opened_us - b.opened_us;
  calltool_side_close(&a);
  calltool_side_close(&b); /* B's WAV is complete now */
  if (ok && o->in && o->out) print_latency(o, a_later_us);
  printf("%s\n", ok ? "ok" : "FAILED");
  rc = ok ? 0 : 1;
out:
  calltool_side_close(&a);
  calltool_side_close(&b);
  relay_stop(&relay);
  return rc;
}

/* --echo: pull what the call plays out and push it back as capture. */
static void *echo_main(void *p) {
  calltool_echo *e = p;
  float buf[4800];
  size_t n = e->period < 4800 ? e->period : 4800;
  struct timespec nap = {0, (long)e->frame_ms * 250000L}; /* a quarter frame between empty pulls */
  while (!atomic_load(&e->stop)) {
    int got = parley_engine_pull_playout(e->eng, buf, n);
    if (got > 0) (void)parley_engine_push_capture(e->eng, buf, (size_t)got);
    if (got < (int)n) nanosleep(&nap, NULL);
  }
  return NULL;
}

int calltool_echo_start(calltool_echo *e, parley_engine *eng, int frame_ms) {
  memset(e, 0, sizeof *e);
  e->eng = eng;
  e->frame_ms = frame_ms;
  int rate = parley_engine_rate_hz(eng);
  e->period = (size_t)(rate > 0 ? rate : 48000) * (size_t)frame_ms / 1000;
  atomic_store(&e->stop, false);
  e->running = pthread_create(&e->thread, NULL, echo_main, e) == 0;
  return e->running ? 0 : PARLEY_ENOMEM;
}

void calltool_echo_stop(calltool_echo *e) {
  if (!e->running) return;
  atomic_store(&e->stop, true);
  pthread_join(e->thread, NULL);
  e->running = false;
}

static bool is_loopback_addr(const char *addr) {
  return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "[::1]", 5) == 0 || strchr(addr, ':') == NULL;
}

static bool peer_gone(void *ctx) {
  calltool_side *s = ctx;
  return s->bye || s->closed;
}

static bool started(void *ctx) { return ((calltool_side *)ctx)->track_started; }

static int write_local(const calltool_opts *o, const char *sdp) {
  if (o->sdp_out) {
    int err = parley__calltool_write_file(o->sdp_out, sdp);
    if (err < 0) fprintf(stderr, "parley-call: cannot write %s\n", o->sdp_out);
    return err;
  }
  printf("%s\n", sdp); /* a blank line ends it for a reader of our stdout */
  fflush(stdout);
  return 0;
}

/* Why signaling step `what` failed: a description too large says how large, a network error says what
 * the system said (errno, set by the call that failed just before), a bad address what one looks like. */
static void signaling_error(const char *what, int err, size_t size) {
  if (err == PARLEY_ENOSPC)
    fprintf(stderr, "parley-call: %s: the SDP is %zu bytes, the limit is %d\n", what, size, SDP_CAP - 1);
  else if (err == PARLEY_ENETWORK)
    fprintf(stderr, "parley-call: %s: %s\n", what, strerror(errno));
  else if (err == PARLEY_EINVAL)
    fprintf(stderr, "parley-call: %s: bad address (want HOST:PORT, numeric)\n", what);
  else
    fprintf(stderr, "parley-call: %s: %s\n", what, parley_strerror(err));
}

/* --via: sdp with every candidate (and c=, m=) moved to the relay, into buf (SDP_CAP); both our
 * description and the peer's go through it, so each side sends its media to the relay. Without --via,
 * sdp itself. NULL (after a message) if it cannot be rewritten. */
static const char *routed(const calltool_opts *o, const char *sdp, char *buf) {
  if (!o->via) return sdp;
  int err = parley__via_sdp_rewrite(sdp, o->via_ip, o->via_port, buf, SDP_CAP);
  if (err >= 0) return buf;
  if (err == PARLEY_ENOSPC) signaling_error("routing through the relay", err, strlen(sdp));
  else fprintf(stderr, "parley-call: routing through the relay: %s\n",
               err == PARLEY_EPARSE ? "the description has no candidate to move" : parley_strerror(err));
  return NULL;
}

/* offer mode: an --sdp-in file that exists before our offer is an old answer, never ours. */
static struct stat g_stale_sdp_in;
static bool g_have_stale;

static int read_remote(const calltool_opts *o, char *buf, size_t cap) {
  int n;
  size_t size = 0;
  if (o->sdp_in) {
    n = parley__calltool_read_file_wait(o->sdp_in, g_have_stale ? &g_stale_sdp_in : NULL, buf, cap,
                                        (int)(o->timeout_s * 1000), &size);
    if (n < 0) signaling_error(o->sdp_in, n, size);
  } else {
    fprintf(stderr, "parley-call: paste the remote description, then a blank line or EOF\n");
    n = parley__calltool_read_stream(stdin, buf, cap, &size);
    if (n == PARLEY_ENOSPC) signaling_error("stdin", n, size);
    else if (n < 0) fprintf(stderr, "parley-call: no description on stdin\n");
  }
  return n;
}

void calltool_peer_config(const calltool_opts *o, parley_engine_config *cfg) {
  /* listen/dial on a loopback address call within this host; serve's and whip's addresses are HTTP's,
   * not the media's (a browser on this host reaches us on a LAN address). */
  bool rendezvous = o->mode == MODE_LISTEN || o->mode == MODE_DIAL;
  parley_engine_config_init(cfg);
  cfg->frame_ms = o->frame_ms;
  cfg->dispatch = PARLEY_DISPATCH_APP;
  cfg->echo_cancellation = !o->no_aec;
  cfg->noise_suppression = !o->no_ns;
  cfg->low_delay = o->low_delay;
  cfg->ice_servers = o->ice;
  cfg->ice_server_count = o->n_ice;
  cfg->ice_transport_policy = o->relay_only ? PARLEY_ICE_POLICY_RELAY : PARLEY_ICE_POLICY_ALL;
  cfg->turn_ca_file = o->turn_ca;
  /* A relay on this host: only loopback candidates, so each side sends to it from one address. */
  bool via_loopback = o->via && (strncmp(o->via_ip, "127.", 4) == 0 || strcmp(o->via_ip, "::1") == 0);
  if (o->loopback_only || (rendezvous && is_loopback_addr(o->addr)) || via_loopback) {
    cfg->loopback_candidates = true;
    cfg->ipv6 = (rendezvous && strncmp(o->addr, "[::1]", 5) == 0) || (o->via && strchr(o->via_ip, ':'));
  }
  if (o->in || o->out) {
    cfg->audio = PARLEY_AUDIO_FILE;
    cfg->input_file = o->in;
    cfg->output_file = o->out;
    cfg->input_file_end = o->in_end;
    cfg->input_file_at_media = true; /* signaling may take seconds: the clip waits for the call */
  } else if (o->device) {
    cfg->audio = PARLEY_AUDIO_DEVICE;
    bool dflt = strcmp(o->device, "default") == 0;
    cfg->input_device = dflt ? NULL : o->device;
    cfg->output_device = dflt ? NULL : o->device;
  } else if (o->echo) {
    /* The echo path is playout -> capture inside this process: a canceller here would learn it and
     * remove exactly what we mean to send back (the dialer hears itself for a second, then nothing). */
    cfg->audio = PARLEY_AUDIO_APP;
    cfg->echo_cancellation = false;
    cfg->noise_suppression = false;
  }
}

static bool side_gathered(void *ctx) { return ((calltool_side *)ctx)->gathered; }

/* With ICE servers, the relayed and server-reflexive candidates come after the first description: this
 * waits for them (the tool sends one description, no trickle). True when they all came. */
static bool wait_gathered(calltool_side *s, int timeout_ms) {
  calltool_side *sides[1] = {s};
  return run_until(sides, 1, calltool_now_us() + timeout_ms * 1000LL, side_gathered, s);
}

static bool gone_or_negotiate(void *ctx) {
  calltool_side *s = ctx;
  return peer_gone(s) || s->negotiate;
}

/* WHIP's ICE restart (RFC 9725 4.4.2): the re-offer's credentials and candidates go to the server as a
 * PATCH, and its reply's credentials and candidates on the previous answer (remote, updated here) make
 * the new answer. ours: restart ICE first (--restart-at; after NEGOTIATION_NEEDED the call has). A
 * failure is printed and the call goes on on its old pair (it stays in have-local-offer after a failed
 * PATCH: no rollback, so no further restart). */
static void whip_restart(const calltool_opts *o, calltool_side *s, bool ours, const char *location, char *remote) {
  static char local[SDP_CAP], out_sdp[SDP_CAP], frag[SDP_CAP], reply[SDP_CAP], answer[SDP_CAP], in_sdp[SDP_CAP];
  int timeout_ms = (int)(o->timeout_s * 1000), err, n;
  char etag[128];
  const char *sent, *got;
  printf("whip: ICE restart (%s)\n", ours ? "--restart-at" : "negotiation needed");
  if (ours && (err = parley_call_restart_ice(s->call)) < 0) {
    calltool_fail("ICE restart", err);
    return;
  }
  if (o->n_ice) s->gathered = false; /* the restart gathers the servers' candidates again */
  if ((err = parley_call_create_offer(s->call, local, sizeof local)) < 0 ||
      (o->n_ice && wait_gathered(s, timeout_ms) && (err = parley_call_create_offer(s->call, local, sizeof local)) < 0) ||
      (err = parley_call_set_local_description(s->call, local)) < 0) {
    calltool_fail("ICE restart offer", err);
    return;
  }
  if (!(sent = routed(o, local, out_sdp))) return;
  if ((n = parley__calltool_ice_frag(sent, frag, sizeof frag)) < 0) {
    calltool_fail("ICE restart fragment", n);
    return;
  }
  if (calltool_whip_restart(location, frag, timeout_ms, reply, sizeof reply, etag, sizeof etag) < 0) return;
  if ((n = parley__calltool_sdp_restart(remote, reply, answer, sizeof answer)) < 0) {
    fprintf(stderr, "parley-call: whip ICE restart: the 200's body is not a fragment with a=ice-ufrag and a=ice-pwd: %.200s\n",
            reply);
    return;
  }
  if (!(got = routed(o, answer, in_sdp)) || calltool_apply_remote(s, PARLEY_SDP_ANSWER, got) < 0) return;
  memcpy(remote, answer, (size_t)n + 1);
  char ufrag[257] = "?";
  (void)parley__calltool_sdp_attr(reply, "ice-ufrag", ufrag, sizeof ufrag);
  parley_engine_dispatch(s->eng); /* the signaling events first, in time order */
  calltool_flush_timeline();
  printf("%7lld ms  %-2s whip: ICE restart answered (PATCH 200, ufrag %s, ETag %s)\n",
         (long long)calltool_since_ms(calltool_now_us()), s->name, ufrag, etag[0] ? etag : "none");
}

/* The call until --duration or the peer's hang-up; WHIP restarts ICE at --restart-at and after
 * NEGOTIATION_NEEDED. */
static void run_call(const calltool_opts *o, calltool_side *s, const char *location, char *remote) {
  calltool_side *one[1] = {s};
  int64_t now = calltool_now_us();
  int64_t end_us = o->duration_s > 0 ? now + (int64_t)(o->duration_s * 1e6) : -1;
  int64_t restart_us = location[0] && o->restart_s >= 0 ? now + (int64_t)(o->restart_s * 1e6) : -1;
  for (;;) {
    int64_t until = restart_us >= 0 && (end_us < 0 || restart_us < end_us) ? restart_us : end_us;
    bool done = run_until(one, 1, until, location[0] ? gone_or_negotiate : peer_gone, s);
    if (peer_gone(s) || calltool_stopping()) return;
    if (done) { /* NEGOTIATION_NEEDED */
      s->negotiate = false;
      whip_restart(o, s, false, location, remote);
    } else if (restart_us >= 0 && calltool_now_us() >= restart_us) {
      restart_us = -1;
      whip_restart(o, s, true, location, remote);
    } else {
      return; /* --duration */
    }
  }
}

static int run_peer(const calltool_opts *o) {
  static char local[SDP_CAP], remote[SDP_CAP], out_sdp[SDP_CAP], in_sdp[SDP_CAP];
  const char *sent, *got; /* the descriptions as they cross: through the relay with --via */
  calltool_side s;
  calltool_side_init(&s, o->mode == MODE_LISTEN || o->mode == MODE_ANSWER ? "B" : "A", o->quiet);
  bool offerer = o->mode == MODE_DIAL || o->mode == MODE_OFFER || o->mode == MODE_WHIP;
  parley_engine_config cfg;
  calltool_peer_config(o, &cfg);
  int rc = 1, err, fd = -1, lfd = -1;
  calltool_echo pump;
  memset(&pump, 0, sizeof pump);
  static char location[2048]; /* whip: our resource on the server, DELETEd on hang-up */
  location[0] = '\0';
  int timeout_ms = (int)(o->timeout_s * 1000);
  char what[128];
  size_t size = 0;
  if (calltool_side_open(&s, &cfg) < 0) goto out;

  /* Signaling. */
  if (o->mode == MODE_LISTEN) {
    if ((err = parley__calltool_rv_listen(o->addr, NULL, &lfd)) < 0) {
      snprintf(what, sizeof what, "cannot listen at %s", o->addr);
      signaling_error(what, err, 0);
      goto out;
    }
    printf("listening at %s\n", o->addr);
    fflush(stdout);
    if ((fd = parley__calltool_rv_accept(lfd, timeout_ms)) < 0) {
      fprintf(stderr, "parley-call: nobody dialled %s: %s\n", o->addr, parley_strerror(fd));
      goto out;
    }
    if ((err = parley__calltool_msg_recv(fd, remote, sizeof remote, timeout_ms, &size)) < 0) {
      signaling_error("receiving the offer", err, size);
      goto out;
    }
  } else if (o->mode == MODE_DIAL) {
    if ((fd = parley__calltool_rv_dial(o->addr, timeout_ms)) < 0) {
      snprintf(what, sizeof what, "cannot reach %s", o->addr);
      signaling_error(what, fd, 0);
      goto out;
    }
  } else if (o->mode == MODE_ANSWER) {
    if (read_remote(o, remote, sizeof remote) < 0) goto out;
  }
  if (offerer) {
    if (o->mode == MODE_OFFER && o->sdp_in && stat(o->sdp_in, &g_stale_sdp_in) == 0) {
      g_have_stale = true;
      fprintf(stderr, "parley-call: %s exists already; waiting for a new answer there\n", o->sdp_in);
    }
    if ((err = parley_call_create_offer(s.call, local, sizeof local)) < 0 ||
        (o->n_ice && wait_gathered(&s, timeout_ms) && (err = parley_call_create_offer(s.call, local, sizeof local)) < 0)) {
      calltool_fail("offer", err);
      goto out;
    }
    if ((err = parley_call_set_local_description(s.call, local)) < 0) {
      calltool_fail("local description", err);
      goto out;
    }
    if (!(sent = routed(o, local, out_sdp))) goto out;
    if (o->mode == MODE_WHIP) {
      if (calltool_whip_offer(o->addr, sent, timeout_ms, remote, sizeof remote, location, sizeof location) < 0)
        goto out;
      printf("whip: %s\n", location);
    } else if (o->mode == MODE_DIAL) {
      if ((err = parley__calltool_msg_send(fd, sent)) < 0 ||
          (err = parley__calltool_msg_recv(fd, remote, sizeof remote, timeout_ms, &size)) < 0) {
        signaling_error("exchanging descriptions", err, size);
        goto out;
      }
    } else {
      if (write_local(o, sent) < 0 || read_remote(o, remote, sizeof remote) < 0) goto out;
    }
    if (!(got = routed(o, remote, in_sdp)) || calltool_apply_remote(&s, PARLEY_SDP_ANSWER, got) < 0) goto out;
  } else {
    if (!(got = routed(o, remote, in_sdp)) || calltool_apply_remote(&s, PARLEY_SDP_OFFER, got) < 0) goto out;
    if (o->n_ice) (void)wait_gathered(&s, timeout_ms);
    if ((err = parley_call_create_answer(s.call, local, sizeof local)) < 0) {
      calltool_fail("answer", err);
      goto out;
    }
    if ((err = parley_call_set_local_description(s.call, local)) < 0) {
      calltool_fail("local description", err);
      goto out;
    }
    if (!(sent = routed(o, local, out_sdp))) goto out;
    if (o->mode == MODE_LISTEN) {
      if ((err = parley__calltool_msg_send(fd, sent)) < 0) {
        signaling_error("sending the answer", err, 0);
        goto out;
      }
    } else if (write_local(o, sent) < 0) {
      goto out;
    }
  }
  if ((err = parley_call_start(s.call)) < 0) {
    calltool_fail("start", err);
    goto out;
  }
  if (o->echo && (err = calltool_echo_start(&pump, s.eng, o->frame_ms)) < 0) {
    calltool_fail("echo", err);
    goto out;
  }
  calltool_side *one[2] = {&s, NULL};
  if (!run_until(one, 1, calltool_now_us() + (int64_t)(o->timeout_s * 1e6), started, &s)) {
    fprintf(stderr, "parley-call: the peer's audio did not start within %.0f s\n", o->timeout_s);
  } else {
    run_call(o, &s, location, remote);
    rc = 0;
  }
  printf("stats at %lld ms:\n", (long long)calltool_since_ms(calltool_now_us()));
  calltool_print_stats(&s);
  if (location[0]) { /* WHIP's hang-up: the server ends its side (our BYE follows) */
    (void)calltool_whip_delete(location, timeout_ms);
    location[0] = '\0';
  }
  calltool_side_hangup(&s);
  run_until(one, 1, calltool_now_us() + 2000000, all_closed, one);
out:
  calltool_echo_stop(&pump);
  if (location[0]) (void)calltool_whip_delete(location, timeout_ms);
  if (fd >= 0) close(fd);
  if (lfd >= 0) close(lfd);
  calltool_side_close(&s);
  return rc;
}

static int list_devices(void) {
  parley_device_info info[64];
  int n = parley_device_list(info, 64);
  if (n < 0) return calltool_fail("listing devices", n);
  if (n == 0) {
    printf("no audio devices: PortAudio found no sound card (ALSA), PulseAudio or running JACK server\n");
    return 0;
  }
  printf("%d device(s):\n", n);
  for (int i = 0; i < n && i < 64; i++)
    printf("  %-40s %-10s in %d out %d, %d Hz%s%s\n", info[i].name, info[i].host_api, info[i].input_channels,
           info[i].output_channels, info[i].default_rate_hz, info[i].default_input ? " [default in]" : "",
           info[i].default_output ? " [default out]" : "");
  return 0;
}

int main(int argc, char **argv) {
  g_t0_us = calltool_now_us();
  setvbuf(stdout, NULL, _IOLBF, 0);
  calltool_opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc == -1) return 0;
  if (rc != 0) return rc;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR and the loop sees g_stop */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  switch (o.mode) {
  case MODE_LIST: return list_devices() < 0 ? 1 : 0;
  case MODE_LOOPBACK: return run_loopback(&o);
  case MODE_SERVE: return calltool_serve(&o);
  case MODE_ROOM: return calltool_room(&o);
  default: return run_peer(&o);
  }
}
