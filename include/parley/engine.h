/* parley/engine.h: engines, calls and their events. Included by parley/parley.h; do not include it alone.
 *
 * A tour:
 *
 *   parley_engine_config cfg;
 *   parley_engine_config_init(&cfg);          // defaults: no audio I/O, 48 kHz, 20 ms, AEC+NS on
 *   cfg.audio = PARLEY_AUDIO_FILE;            // or PARLEY_AUDIO_DEVICE (PortAudio), _APP_CALLBACK, _APP,
 *                                             // _NONE
 *   cfg.input_file = "hello.wav";
 *   parley_engine *eng;
 *   int err = parley_engine_new(&cfg, &eng);  // starts the audio, network and dispatch threads
 *
 *   parley_call *call;
 *   parley_call_new(eng, &call);
 *   parley_call_on(call, PARLEY_EVENT_TRACK_STARTED, on_track, app);   // callbacks on the dispatch thread
 *   char sdp[8192];
 *   parley_call_create_offer(call, sdp, sizeof sdp);
 *   parley_call_set_local_description(call, sdp);
 *   ... send sdp to the peer, receive its answer ...
 *   parley_call_set_remote_description(call, PARLEY_SDP_ANSWER, answer, &sdp_err);
 *   parley_call_start(call);                  // audio flows once ICE connects
 *   ...
 *   parley_call_hangup(call);                 // RTCP BYE; events end with PARLEY_EVENT_CLOSED
 *   // after CLOSED was delivered: parley_call_off() every listener, then
 *   parley_call_free(call);
 *   parley_engine_free(eng);
 *
 * Threads: each engine runs
 *  - an audio thread: the device callback (PortAudio's thread; for FILE, NULL and PARLEY_AUDIO_APP the
 *    engine's pacing thread, one period per period of wall time; for PARLEY_AUDIO_APP_CALLBACK the
 *    app's own audio thread inside parley_engine_process). It encodes capture and decodes playout for every
 *    started call and never allocates, locks or makes system calls;
 *  - a network thread: UDP sockets of all calls, ICE, SRTP, RTP/RTCP, liveness monitoring;
 *  - a dispatch thread (unless cfg.dispatch == PARLEY_DISPATCH_APP) that runs event listeners.
 * Every function below may be called from any app thread (they serialise on an engine lock that the
 * audio thread never takes) unless it says otherwise, including from inside an event listener. None is
 * real-time safe unless it says so: do not call them from an audio callback of your own except
 * parley_engine_process and the PARLEY_AUDIO_APP push/pull pair.
 *
 * Errors: each function lists the codes it returns. If a function fails, nothing it was given is kept
 * and no listener it was given will fire.
 */
#ifndef PARLEY_ENGINE_API_H
#define PARLEY_ENGINE_API_H

#ifndef PARLEY_H
#error "include <parley/parley.h>, not <parley/engine.h>"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct parley_engine parley_engine;
typedef struct parley_call parley_call;

/* ------------------------------------------------------------------------------------------------ */
/* Engine */

/* Where the engine's audio comes from and goes to. One backend serves both directions. */
typedef enum parley_audio_backend {
  PARLEY_AUDIO_NONE = 0, /* silence in, playout discarded (paced like a sound card) */
  PARLEY_AUDIO_DEVICE,   /* sound hardware through PortAudio: input_device / output_device */
  PARLEY_AUDIO_FILE,     /* capture from input_file (WAV/FLAC, mono or stereo; NULL = silence), playout
                          * written to output_file (16-bit WAV; NULL = discarded); paced in real time */
  PARLEY_AUDIO_APP,      /* the app pushes capture and pulls playout (parley_engine_push_capture /
                          * parley_engine_pull_playout); the engine ticks once per frame in real time */
  PARLEY_AUDIO_APP_CALLBACK, /* the app's own audio callback runs the engine, one period per call of
                              * parley_engine_process: capture and playout stay sample-locked, as on
                              * a sound card (the echo canceller's path never moves), and nothing waits
                              * in rings between the app and the engine */
} parley_audio_backend;

/* Who runs event listeners. */
typedef enum parley_dispatch_mode {
  PARLEY_DISPATCH_THREAD = 0, /* an internal dispatch thread (default) */
  PARLEY_DISPATCH_APP,        /* the app: poll parley_engine_event_fd(), then parley_engine_dispatch() */
} parley_dispatch_mode;

/* What a FILE engine's capture does when its input file ends. */
typedef enum parley_input_end {
  PARLEY_INPUT_END_SILENCE = 0, /* silence follows; the calls go on */
  PARLEY_INPUT_END_LOOP,        /* the file starts over */
  PARLEY_INPUT_END_HANGUP,      /* every call is hung up (an RTCP BYE to each peer, then CLOSED) */
} parley_input_end;

/* One ICE server, as a W3C RTCIceServer with a single URL (give a server with several URLs as several
 * entries). url (RFC 7064 / 7065): "stun:HOST[:PORT]" (a server-reflexive candidate; the first STUN
 * entry is used) or "turn:HOST[:PORT][?transport=udp|tcp]" (a relayed candidate, RFC 8656, with
 * username and credential as long-term credentials; tcp: the call reaches the server over TCP, for
 * networks that block UDP, and the relay still speaks UDP to the peer); PORT defaults to 3478. HOST
 * is an IPv4 or IPv6 address ([::1] in brackets) or a name, resolved once at parley_engine_new.
 * "turns:HOST[:PORT][?transport=tcp]" is TURN over TLS on TCP (port 5349 by default): the server's
 * certificate must chain to the system's CAs (or turn_ca_file's) and name HOST (a DNS name, or the IP
 * address given); a server that fails this gives no relayed candidate, and the call says why in a
 * PARLEY_EVENT_ICE_CANDIDATE_ERROR. "stuns:" (and turns: over DTLS, ?transport=udp) are not
 * supported (PARLEY_ENOTSUP). */
typedef struct parley_ice_server {
  const char *url;
  const char *username;   /* turn: required */
  const char *credential; /* turn: required (the password; used as given: keep it ASCII) */
} parley_ice_server;

#define PARLEY_ENGINE_MAX_ICE_SERVERS 8
#define PARLEY_ENGINE_MAX_TURN_SERVERS 4 /* of those, TURN ones: each call allocates on every one */

/* Which candidates ICE may use (W3C iceTransportPolicy). */
typedef enum parley_ice_transport_policy {
  PARLEY_ICE_POLICY_ALL = 0, /* host, server-reflexive and relayed */
  PARLEY_ICE_POLICY_RELAY,   /* relayed only: the peer never learns our addresses (needs a TURN server) */
} parley_ice_transport_policy;

typedef struct parley_engine_config {
  parley_audio_backend audio;  /* [PARLEY_AUDIO_NONE] */
  const char *input_device;    /* DEVICE: name (exact, then substring, case-insensitive); NULL = default */
  const char *output_device;   /* DEVICE: likewise */
  const char *input_file;      /* FILE: capture file; NULL = silence */
  const char *output_file;     /* FILE: playout file; NULL = discard */
  int device_rate_hz;          /* 8000, 16000, 32000, 44100 or 48000 [48000]. FILE with an input file
                                * at one of these rates runs at the file's rate; a file at any
                                * other rate (11025, 22050, 96000 ...) is converted to this one. The
                                * engine resamples to 48 kHz inside. */
  int frame_ms;                /* 5, 10 or 20 [20]: the Opus frame and the audio period (5 ms needs a
                                * rate that is a whole number of samples in 5 ms: not 44100) */
  bool low_delay;              /* the low-delay profile [false]: Opus RESTRICTED_LOWDELAY (2.5 ms of
                                * lookahead instead of 6.5), for LAN calls, music and monitoring, best
                                * with frame_ms 5. It gives up SILK, so opus_fec and opus_dtx do
                                * nothing (no in-band FEC; packets go out in silence too), and 5 ms
                                * frames send 200 packets a second (~19 kbit/s of headers). */

  bool echo_cancellation;      /* [true] */
  int echo_tail_ms;            /* longest echo path cancelled, bulk delay included: 0 (the default,
                                * 500) or 10..2000. A 300 ms adaptive filter (or one of the tail, if
                                * shorter) is placed inside it where an echo delay estimator finds the
                                * echo */
  int echo_delay_ms;           /* known delay from playout to its echo in the capture, beyond what the
                                * tail covers: 0..1000 [0] */
  bool noise_suppression;      /* [true] */
  bool agc;                    /* automatic gain control [false] */

  int opus_bitrate_bps;        /* 6000..510000 [32000] */
  bool opus_fec;               /* in-band FEC [true] */
  bool opus_dtx;               /* discontinuous transmission [true] */

  /* Liveness thresholds (how fast a broken call is reported; defaults are the liveness monitor's): */
  int suspect_after_ms;        /* silence before fast probing starts [100] */
  int lost_after_ms;           /* silence with probes unanswered before "interrupted" [760] */
  int media_timeout_ms;        /* media silence (path alive) before track-stopped(timeout); 0 = off [5000] */
  int consent_expiry_ms;       /* RFC 7675 consent lifetime [30000] */

  const char *stun_server;     /* "ip:port" (numeric) for a server-reflexive candidate; NULL = none.
                                * Shorthand for an ice_servers entry "stun:ip:port" (used before them) */
  const parley_ice_server *ice_servers; /* STUN and TURN servers, ice_server_count of them [NULL, 0]; read at
                                         * parley_engine_new, not kept */
  int ice_server_count;        /* 0..PARLEY_ENGINE_MAX_ICE_SERVERS */
  parley_ice_transport_policy ice_transport_policy; /* [PARLEY_ICE_POLICY_ALL] */
  bool loopback_candidates;    /* use ONLY loopback addresses (127.0.0.1, and ::1 with ipv6) as host
                                * candidates: tests and calls within one host [false] */
  bool ipv6;                   /* gather IPv6 candidates too [true] */
  bool offer_sdes;             /* offers carry SDES keys (RTP/SAVPF, a=crypto) instead of DTLS-SRTP, for
                                * peers without DTLS (SIP gear, plain SRTP stacks); the key then travels
                                * in the signalling, with no forward secrecy [false]. Answers follow the
                                * offer either way */

  parley_dispatch_mode dispatch; /* [PARLEY_DISPATCH_THREAD] */

  parley_input_end input_file_end; /* FILE: what follows the input file's end [PARLEY_INPUT_END_SILENCE] */
  bool input_file_at_media;        /* FILE: the input file starts when a call's media starts (ICE has a
                                    * pair and parley_call_start ran), not at parley_engine_new;
                                    * capture is silence until then [false] */

  /* DTLS-SRTP identity: a PEM certificate and its PEM private key, both or neither (read at
   * parley_engine_new, not kept). NULL: a self-signed ECDSA P-256 certificate made for the engine. */
  const char *dtls_certificate_pem;
  const char *dtls_private_key_pem;

  /* TURN over TLS ("turns:" servers): a PEM file of the CA certificates the servers' certificates must
   * chain to (read at parley_engine_new, not kept), e.g. a private CA; NULL: the system's store [NULL]. */
  const char *turn_ca_file;
} parley_engine_config;

/* Fills cfg with the defaults in brackets above. NULL is ignored. Any thread, real-time safe. */
PARLEY_API void parley_engine_config_init(parley_engine_config *cfg);

/* Creates an engine and starts its threads and its audio device. cfg and its strings are copied. On
 * success *out holds the engine and 0 is returned; on failure *out is NULL and one of: PARLEY_EINVAL
 * (NULL argument, a field out of range, unparsable stun_server or ice_servers URL, a TURN server without
 * username or credential, more than PARLEY_ENGINE_MAX_TURN_SERVERS of them, the relay policy without
 * one, one DTLS PEM without the other), PARLEY_ENOTSUP (stuns:, or turns: over udp), PARLEY_ENOTFOUND (an
 * ICE server's name does not resolve: the lookup blocks here),
 * PARLEY_EPARSE (unreadable DTLS PEM, or a key that does not match the certificate; a turn_ca_file that
 * cannot be read or holds no PEM certificate), PARLEY_ENOMEM, PARLEY_ENOTFOUND (no such
 * device or input file), PARLEY_EFORMAT (input file unreadable as audio), PARLEY_EIO (output file cannot
 * be created), PARLEY_ENOTSUP (the device cannot do the rate), PARLEY_EDEVICE (the device failed to
 * open or start), PARLEY_ECODEC / PARLEY_EDSP (codec or DSP set-up), PARLEY_ENETWORK (threads or event
 * fd could not be created). */
PARLEY_API int parley_engine_new(const parley_engine_config *cfg, parley_engine **out);

/* Stops the threads and the device, frees every call still alive (as parley_call_free would, without
 * delivering their remaining events; listeners are dropped) and the engine. NULL is ignored. Must not
 * be called from a listener (the dispatch thread cannot join itself): that returns without freeing.
 * Any app thread. */
PARLEY_API void parley_engine_free(parley_engine *eng);

/* PARLEY_DISPATCH_APP: an eventfd that is readable while events are pending (level-triggered until
 * parley_engine_dispatch runs). Owned by the engine: do not close it. Returns the fd (>= 0), or
 * PARLEY_EINVAL (NULL) / PARLEY_ESTATE (the engine dispatches on its own thread). Any thread. */
PARLEY_API int parley_engine_event_fd(const parley_engine *eng);

/* PARLEY_DISPATCH_APP: runs the listeners of every pending event on the calling thread, in order, and
 * returns how many events were dispatched (>= 0). PARLEY_EINVAL (NULL), PARLEY_ESTATE (thread
 * dispatch mode, or called from inside a listener). Call it from one thread at a time. */
PARLEY_API int parley_engine_dispatch(parley_engine *eng);

/* PARLEY_AUDIO_APP capture: copies up to `frames` mono samples at the device rate (borrowed) into the
 * engine's capture ring. Returns how many fit (the rest is dropped), or PARLEY_EINVAL / PARLEY_ESTATE
 * (another backend). The app's one capture thread; real-time safe. */
PARLEY_API int parley_engine_push_capture(parley_engine *eng, const float *samples, size_t frames);
/* PARLEY_AUDIO_APP playout: copies up to `frames` mono samples out (borrowed buffer); returns how many
 * were available (the rest of `samples` is zeroed), or PARLEY_EINVAL / PARLEY_ESTATE. The app's one
 * playout thread; real-time safe. */
PARLEY_API int parley_engine_pull_playout(parley_engine *eng, float *samples, size_t frames);
/* Both rings drop a standing backlog: when frames are left over after every read for 50 reads in a
 * row, the surplus is skipped, so an app that starts pushing or pulling late does not add that delay
 * to the whole call. Short surges (a late period followed by a double one) are kept.
 * The rings sit in the echo path (playout -> loudspeaker -> microphone -> capture): a late push or
 * pull, or a trimmed backlog, moves it by whole periods, and the echo canceller then re-converges
 * (about a second, echo audible meanwhile). Apps that play through a loudspeaker should prefer
 * PARLEY_AUDIO_APP_CALLBACK, which keeps the path fixed. */
/* PARLEY_AUDIO_APP_CALLBACK: one audio period. capture: `frames` mono samples at the device rate
 * (borrowed; NULL = silence); playout: receives `frames` samples to play (the mix of every call).
 * frames must be exactly the period, frame_ms at the device rate (480 or 960 at 48 kHz). Returns 0,
 * PARLEY_EINVAL (NULL playout, wrong frames) or PARLEY_ESTATE (another backend). Call it from the
 * app's audio thread, one thread at a time, once per period of the app's audio clock: real-time safe
 * (no allocation, lock or system call). The engine's own timers (ICE, liveness, RTCP) run on its
 * network thread, so an app that stops calling stops only the audio: the far end then sees silence,
 * and after lost_after a passive disconnect. */
PARLEY_API int parley_engine_process(parley_engine *eng, const float *capture, float *playout, size_t frames);
/* The device rate in use (e.g. an input file's own rate), or PARLEY_EINVAL. Any thread. */
PARLEY_API int parley_engine_rate_hz(const parley_engine *eng);
/* The host's network changed (the app heard first: a platform's connectivity callback, a VPN going up).
 * On Linux the engine also watches its addresses itself (rtnetlink), so this is only a hint there.
 * Every call gathers again: sockets on addresses that went away close, new addresses get sockets
 * whose candidates are trickled (LOCAL_CANDIDATE) and checked against the peer's, and media moves to
 * a new pair without an offer when the peer keeps checking (parley does). If the peer does not follow
 * within 600 ms plus four round trips (at most a second), the call restarts ICE and asks for an offer
 * (NEGOTIATION_NEEDED). A gap in the peer's audio long enough for the liveness monitor shows as
 * INTERRUPTED then RESUMED ("...after a local address change"); a fast switch shows nothing. Any
 * thread except audio, not real-time safe (system calls). 0, PARLEY_EINVAL. */
PARLEY_API int parley_engine_network_changed(parley_engine *eng);

/* One sound device as PARLEY_AUDIO_DEVICE sees it (through PortAudio). */
typedef struct parley_device_info {
  char name[128];      /* what input_device / output_device take (NUL-terminated, maybe truncated) */
  char host_api[64];   /* the sound system behind it: "ALSA", "JACK Audio Connection Kit", ... */
  int input_channels;  /* most capture channels; 0: output only */
  int output_channels; /* most playout channels; 0: input only */
  int default_rate_hz; /* the rate the device prefers, e.g. 44100 or 48000 */
  bool default_input;  /* the system's default input (what input_device NULL opens) */
  bool default_output; /* the system's default output */
} parley_device_info;

/* Lists the sound devices: fills out[0..min(count, cap)) (out is the caller's, may be NULL when cap is
 * 0 to ask only for the count) and returns the number of devices, which may exceed cap. Errors:
 * PARLEY_EINVAL (out NULL with cap > 0), PARLEY_ENOMEM, PARLEY_EDEVICE (PortAudio failed to
 * initialise). No engine is needed. A JACK server shows up only if it runs when the sound system is
 * first opened: while any engine with PARLEY_AUDIO_DEVICE exists, the list is the one seen when it
 * opened. Any app thread; not real-time safe (it may open the sound system, which can take a while). */
PARLEY_API int parley_device_list(parley_device_info *out, size_t cap);

/* ------------------------------------------------------------------------------------------------ */
/* Calls */

/* Creates a call context in signaling state stable. PARLEY_EINVAL (NULL), PARLEY_ENOMEM, PARLEY_EFULL
 * (the engine holds PARLEY_ENGINE_MAX_CALLS calls). */
#define PARLEY_ENGINE_MAX_CALLS 16
PARLEY_API int parley_call_new(parley_engine *eng, parley_call **out);

/* Frees a call. If it was not hung up, it is torn down first (an RTCP BYE is sent) without events.
 * Pending events of the call are dropped. Returns 0, PARLEY_EINVAL (NULL) or PARLEY_ESTATE: listeners
 * are still registered (remove them with parley_call_off first, so that no listener can run on freed
 * memory). To free a call from its own listener, do it in the CLOSED listener after parley_call_off. */
PARLEY_API int parley_call_free(parley_call *call);

/* Writes an SDP offer (NUL-terminated) into the caller's buffer sdp[0..cap) and returns its length. The
 * first offer opens the call's UDP sockets and starts ICE (this side controlling). The offer carries
 * every host candidate, DTLS-SRTP (UDP/TLS/RTP/SAVPF, a=fingerprint:sha-256 of the engine's certificate,
 * a=setup:actpass; in a call an SDES offer set up, SDES a=crypto instead), Opus, rtcp-mux, and
 * a=end-of-candidates once gathering is done: at once without STUN and TURN servers; with them the
 * server-reflexive and relayed candidates follow as LOCAL_CANDIDATE events, then "end-of-candidates"
 * (PARLEY_ICE_POLICY_RELAY: relayed ones only, and no host address in the SDP). Calling it again
 * re-offers (same ICE credentials and key, new credentials after parley_call_restart_ice), with every
 * candidate gathered so far.
 * PARLEY_EINVAL (NULL), PARLEY_ENOSPC (cap too small; 8192 is always enough), PARLEY_ESTATE (a remote
 * offer is pending, or the call is closed), PARLEY_ENETWORK (no usable local address or socket),
 * PARLEY_ECRYPTO. */
PARLEY_API int parley_call_create_offer(parley_call *call, char *sdp, size_t cap);
/* Writes the SDP answer to the pending remote offer into the caller's buffer sdp[0..cap). Returns its
 * length, or
 * PARLEY_EINVAL, PARLEY_ENOSPC, PARLEY_ESTATE (no remote offer pending), PARLEY_ENOTSUP (the offer has
 * no acceptable Opus audio with DTLS-SRTP or SDES-SRTP), PARLEY_ENETWORK, PARLEY_ECRYPTO. */
PARLEY_API int parley_call_create_answer(parley_call *call, char *sdp, size_t cap);

/* Where set_remote_description failed: 1-based line (0 when not about a line) and a readable message
 * naming it. Filled by the caller-supplied struct; there is no stored "last error". */
typedef struct parley_sdp_error {
  int line;
  char message[128];
} parley_sdp_error;

/* Applies an offer or answer made by create_offer/create_answer of this call (sdp borrowed; it must be
 * the text those produced, unmodified in substance). Offer in stable -> have-local-offer; answer in
 * have-remote-offer -> stable. Emits SIGNALING_STATE_CHANGED. PARLEY_EINVAL, PARLEY_EPARSE, PARLEY_ESTATE
 * (no offer/answer was created for this state, or glare). */
PARLEY_API int parley_call_set_local_description(parley_call *call, const char *sdp);
/* What a remote description is (W3C RTCSdpType, without pranswer/rollback). */
typedef enum parley_sdp_type {
  PARLEY_SDP_OFFER = 0,
  PARLEY_SDP_ANSWER,
} parley_sdp_type;

/* Applies the peer's offer (in stable) or answer (in have-local-offer); sdp borrowed. Sets the ICE
 * credentials and candidates, the SRTP keying (a=fingerprint and a=setup: DTLS-SRTP, the answerer taking
 * the client role unless the offer imposes one; else the a=crypto key of the inbound direction), the
 * Opus payload type and the peer's direction. With DTLS, media flows once the handshake on the selected
 * ICE pair is done; a peer whose certificate does not match its a=fingerprint fails the call
 * (PEER_STATE_CHANGED failed, .message says why). PARLEY_EINVAL (NULL call/sdp, unknown type), PARLEY_EPARSE (malformed: *err, if
 * non-NULL, names
 * the line), PARLEY_ENOTSUP (no usable audio m-line, no supported a=crypto, no a=rtcp-mux (parley
 * sends and receives RTCP on the RTP port) or no ICE credentials; any
 * a=ptime is fine: packets of every Opus duration play on any engine),
 * PARLEY_ESTATE (an answer without our offer, an offer while ours is pending (glare), an offer while
 * the peer's previous offer is unanswered, closed call), PARLEY_ENETWORK, PARLEY_ECRYPTO. err may be
 * NULL; it is zeroed on success and filled on every failure. */
PARLEY_API int parley_call_set_remote_description(parley_call *call, parley_sdp_type type, const char *sdp,
                                                  parley_sdp_error *err);
/* A trickled remote ICE candidate: "candidate:..." or "a=candidate:...", or "a=end-of-candidates"
 * (line borrowed). PARLEY_EINVAL, PARLEY_EPARSE, PARLEY_ENOTSUP (not UDP, or an unresolved name),
 * PARLEY_ESTATE (no remote description yet), PARLEY_EFULL (too many candidates). 1 if already known.
 * A browser's mDNS host candidate ("<uuid>.local") gives 0 and is skipped: its checks reach us and
 * make the address known as peer-reflexive (the same holds for such candidates inside an SDP). */
PARLEY_API int parley_call_add_remote_candidate(parley_call *call, const char *candidate_line);

/* Starts media: once both descriptions are applied (signaling stable), creates the call's audio chains
 * and attaches them to the audio thread. Audio flows when ICE connects; TRACK_STARTED fires when the
 * peer's first authenticated packet arrives. PARLEY_EINVAL, PARLEY_ESTATE (negotiation incomplete,
 * already started, closed), PARLEY_ENOMEM, PARLEY_ECODEC, PARLEY_EDSP, PARLEY_EFULL (no audio slot). */
PARLEY_API int parley_call_start(parley_call *call);
/* ICE restart (RFC 8445 9; W3C restartIce), e.g. after the network changed or a passive disconnect that
 * does not heal: new local ICE credentials, the peer's candidates forgotten. Follow it with a new offer
 * (create_offer, set_local_description, send it; the peer answers with new credentials of its own) to
 * run fresh connectivity checks. Media and consent checks stay on the old pair until a new one is
 * selected, so a working call keeps playing through the restart. Local candidates are gathered again:
 * sockets on addresses that went away are closed, new addresses get sockets, server-reflexive
 * candidates are asked for again (the offer carries the host ones, LOCAL_CANDIDATE trickles the
 * rest). Returns 0, PARLEY_EINVAL, PARLEY_ESTATE (not negotiated yet, an offer/answer exchange
 * in progress, or closed), PARLEY_ECRYPTO. */
PARLEY_API int parley_call_restart_ice(parley_call *call);
/* Ends the call: sends a DTLS close_notify and an RTCP BYE (the peer sees TRACK_STOPPED with reason
 * bye), detaches the audio,
 * closes ICE. Emits ICE/peer state closed, signaling state closed, and last CLOSED. PARLEY_EINVAL,
 * PARLEY_ESTATE (already hung up). */
PARLEY_API int parley_call_hangup(parley_call *call);
/* Mute: the call sends silence (Opus DTX then sends almost nothing). 0, PARLEY_EINVAL. Real-time safe. */
PARLEY_API int parley_call_set_mute(parley_call *call, bool mute);

/* ICE candidate types (RFC 8445 5.1.1). */
typedef enum parley_candidate_type {
  PARLEY_CANDIDATE_NONE = 0, PARLEY_CANDIDATE_HOST, PARLEY_CANDIDATE_SRFLX, PARLEY_CANDIDATE_PRFLX,
  PARLEY_CANDIDATE_RELAY
} parley_candidate_type;

typedef struct parley_call_stats {
  double rtt_ms;               /* from RTCP reports; -1 until measured */
  double fraction_lost;        /* the peer's latest report of our stream, 0..1; -1 until reported: the
                                * last RTCP interval only (loss_sent is the whole call's) */
  int64_t packets_lost;        /* cumulative loss of the peer's stream as we count it */
  double jitter_ms;            /* interarrival jitter of the peer's stream (RFC 3550) */
  double jitter_buffer_ms;     /* current jitter-buffer delay */
  uint64_t concealed_frames;   /* packets lost or too late, filled by loss concealment (Opus PLC) */
  uint64_t concealed_ms;       /* all audio not decoded from its own packet: those frames plus the time
                                * the time-scaled playout spent stretching audio while waiting for a late
                                * packet (the receive chain's default playout) */
  uint64_t fec_frames;         /* frames rebuilt from in-band FEC */
  uint64_t packets_sent, bytes_sent;         /* RTP, after SRTP */
  uint64_t packets_received, bytes_received; /* authenticated RTP */
  uint32_t ice_pairs_selected; /* candidate pairs ICE selected: 1 once connected, one more for every
                                * ICE restart (or path switch) that completes */
  /* Loss over the whole call, beside fraction_lost (the last RTCP interval, about a second): */
  double loss_sent;            /* our stream: the peer's RTCP cumulative lost / the packets it expected,
                                * 0..1; -1 until reported */
  int64_t packets_lost_sent;   /* that cumulative lost; -1 until reported */
  double loss_received;        /* the peer's stream: packets_lost / packets expected, 0..1; -1 until
                                * it arrives */
  double fraction_lost_received; /* the peer's stream over the last RTCP interval (0.5-1.5 s): the
                                * fraction lost in our latest report to the peer (RFC 3550 6.4.1), 0..1;
                                * -1 until we reported */
  int fec_loss_hint_pct;       /* the loss our encoder plans in-band FEC for, percent: follows the
                                * peer's reports of our stream (up at once, down slowly), from 10 */
  uint64_t events_dropped;     /* events of this call never delivered: its event queue was full (the
                                * app did not dispatch), so the oldest state change went (CLOSED never) */
  int audio_level_received;    /* the peer's audio level in its latest packet (RFC 6464 header extension,
                                * negotiated by a=extmap): -dBov, 0 loudest .. 127; -1 when none came */
  bool voice_received;         /* that packet's voice-activity flag */
  parley_candidate_type local_candidate_type; /* the selected pair's local candidate (RELAY: through a
                                * TURN server); NONE while no pair is selected */
} parley_call_stats;

/* Copies a snapshot of the call's statistics into *out. PARLEY_EINVAL. */
PARLEY_API int parley_call_get_stats(parley_call *call, parley_call_stats *out);

/* ------------------------------------------------------------------------------------------------ */
/* Events */

typedef enum parley_event_kind {
  PARLEY_EVENT_TRACK_STARTED = 0,       /* the peer's audio started flowing (.ssrc) */
  PARLEY_EVENT_TRACK_STOPPED,           /* it stopped: .reason */
  PARLEY_EVENT_ICE_STATE_CHANGED,       /* .ice_state */
  PARLEY_EVENT_PEER_STATE_CHANGED,      /* .peer_state (ICE and DTLS combined, W3C); failed: .message */
  PARLEY_EVENT_SIGNALING_STATE_CHANGED, /* .signaling_state */
  PARLEY_EVENT_INTERRUPTED,             /* the call broke without a hang-up: .code, .message */
  PARLEY_EVENT_RESUMED,                 /* the interruption is over: .code repeats its cause */
  PARLEY_EVENT_LOCAL_CANDIDATE,         /* a local ICE candidate to trickle: .candidate */
  PARLEY_EVENT_NEGOTIATION_NEEDED,      /* W3C negotiationneeded: the call restarted ICE itself (its
                                         * network changed and the peer did not follow): send a new
                                         * offer (create_offer, set_local_description); .message why */
  PARLEY_EVENT_ICE_CANDIDATE_ERROR,     /* W3C icecandidateerror: a TURN server gave no relayed candidate
                                         * (refused, unreachable, its TLS certificate not trusted):
                                         * .message "URL: why" */
  PARLEY_EVENT_CLOSED,                  /* the last event of the call */
  PARLEY_EVENT_MEMBERS_CHANGED,         /* session: .call joined or left; .count members now */
  PARLEY_EVENT_SPEAKERS_CHANGED,        /* session: .speakers[0..count) loudest first */
  PARLEY_EVENT_KIND_COUNT
} parley_event_kind;

/* Kinds below this are call events (parley_call_on); the others are session events (parley_session_on). */
#define PARLEY_EVENT_CALL_KIND_COUNT (PARLEY_EVENT_CLOSED + 1)
#define PARLEY_SESSION_MAX_SPEAKERS 4

typedef struct parley_session parley_session;
typedef struct parley_room parley_room;               /* parley/room.h */
typedef struct parley_room_member parley_room_member; /* parley/room.h */

/* Why a room member left (room MEMBERS_CHANGED, CLOSED). */
typedef enum parley_leave_reason {
  PARLEY_LEAVE_NONE = 0, /* joined, or only its flags changed */
  PARLEY_LEAVE_LEFT,     /* left on purpose */
  PARLEY_LEAVE_KICKED,   /* removed by the server or a moderator */
  PARLEY_LEAVE_VANISHED, /* interrupted for longer than the grace period */
  PARLEY_LEAVE_FAILED,   /* its call failed or could not be set up */
} parley_leave_reason;

typedef enum parley_stop_reason {
  PARLEY_STOP_NONE = 0,
  PARLEY_STOP_BYE,          /* the peer hung up (RTCP BYE) */
  PARLEY_STOP_TIMEOUT,      /* no media and no evidence the peer is reachable */
  PARLEY_STOP_INACTIVE,     /* the peer's description says it will not send */
  PARLEY_STOP_SSRC_CHANGED, /* a new stream replaced this one */
  PARLEY_STOP_PEER_GONE,    /* the peer's port is closed (ICMP port unreachable, probes unanswered) */
} parley_stop_reason;

typedef enum parley_ice_state {
  PARLEY_ICE_NEW = 0, PARLEY_ICE_CHECKING, PARLEY_ICE_CONNECTED, PARLEY_ICE_COMPLETED,
  PARLEY_ICE_DISCONNECTED, PARLEY_ICE_FAILED, PARLEY_ICE_CLOSED
} parley_ice_state;

typedef enum parley_peer_state {
  PARLEY_PEER_NEW = 0, PARLEY_PEER_CONNECTING, PARLEY_PEER_CONNECTED, PARLEY_PEER_DISCONNECTED,
  PARLEY_PEER_FAILED, PARLEY_PEER_CLOSED
} parley_peer_state;

typedef enum parley_signaling_state {
  PARLEY_SIGNALING_STABLE = 0, PARLEY_SIGNALING_HAVE_LOCAL_OFFER, PARLEY_SIGNALING_HAVE_REMOTE_OFFER,
  PARLEY_SIGNALING_CLOSED
} parley_signaling_state;

typedef enum parley_interrupt_code {
  PARLEY_INTERRUPT_NONE = 0,
  PARLEY_INTERRUPT_NETWORK_LOST,    /* nothing from the peer and probes unanswered */
  PARLEY_INTERRUPT_PEER_GONE,       /* the peer's port is closed (ICMP port unreachable, probes unanswered) */
  PARLEY_INTERRUPT_CONSENT_EXPIRED, /* RFC 7675 consent lapsed */
  PARLEY_INTERRUPT_DEVICE_LOST,     /* the audio device failed or disappeared */
  PARLEY_INTERRUPT_DEVICE_BUSY,     /* the audio device is held by someone else */
} parley_interrupt_code;

/* One event, borrowed by the listener for the duration of the call. Fields that do not concern the
 * kind are zero. */
typedef struct parley_event {
  parley_event_kind kind;
  parley_call *call;           /* the call it concerns (MEMBERS_CHANGED: the call that joined/left) */
  parley_session *session;     /* session events: the session; else NULL */
  int64_t time_us;             /* monotonic time at which the engine saw it */
  uint32_t ssrc;               /* track events: the peer's stream */
  parley_stop_reason reason;   /* TRACK_STOPPED */
  parley_ice_state ice_state;  /* ICE_STATE_CHANGED */
  parley_peer_state peer_state; /* PEER_STATE_CHANGED */
  parley_signaling_state signaling_state; /* SIGNALING_STATE_CHANGED */
  parley_interrupt_code code;  /* INTERRUPTED, RESUMED */
  const char *message;         /* readable, never NULL, may be "" */
  /* LOCAL_CANDIDATE: "candidate:..." for parley_call_add_remote_candidate on the peer, or
   * "end-of-candidates" once gathering is done. Host candidates are in the SDP already (trickling them
   * again is harmless); server-reflexive (a STUN server) and relayed ones (a TURN server: "typ relay
   * raddr ... rport ...") come only this way. Else "". */
  const char *candidate;
  size_t count;                /* MEMBERS_CHANGED: members; SPEAKERS_CHANGED: entries in speakers */
  parley_call *speakers[PARLEY_SESSION_MAX_SPEAKERS]; /* SPEAKERS_CHANGED: loudest first */
  /* Room events (parley/room.h); else NULL / NONE. */
  parley_room *room;
  const parley_room_member *member;      /* MEMBERS_CHANGED, member INTERRUPTED/RESUMED */
  parley_leave_reason leave_reason;      /* MEMBERS_CHANGED, CLOSED */
  const char *speaker_ids[PARLEY_SESSION_MAX_SPEAKERS]; /* SPEAKERS_CHANGED: member ids, loudest first */
} parley_event;

/* A listener. Runs on the dispatch thread (or in parley_engine_dispatch), never on the audio or network
 * thread, and never while the engine holds a lock: it may call any parley_ function except
 * parley_engine_free and parley_engine_dispatch. */
typedef void (*parley_event_fn)(const parley_event *ev, void *user);

/* Registers fn (user borrowed, passed back) for events of `kind` on call. Returns a listener id > 0, or
 * PARLEY_EINVAL (NULL call/fn, a kind that is not a call event), PARLEY_EFULL (PARLEY_CALL_MAX_LISTENERS per call),
 * PARLEY_ESTATE (CLOSED was already delivered). Listeners of one kind run in registration order. */
#define PARLEY_CALL_MAX_LISTENERS 32
PARLEY_API int parley_call_on(parley_call *call, parley_event_kind kind, parley_event_fn fn, void *user);
/* Removes a listener. Once parley_call_off returns, fn is not called again (except an invocation already
 * running on another thread). 0, PARLEY_EINVAL, PARLEY_ENOTFOUND. */
PARLEY_API int parley_call_off(parley_call *call, int listener_id);

/* ------------------------------------------------------------------------------------------------ */
/* Sessions: a mesh of calls (one per remote participant) sharing the engine's capture (encoded once per
 * call) and one N-way playout mix. The playout of member calls goes through the engine's mixer (sum,
 * block limiter, active-speaker ranking); calls that are not members are still summed into the playout
 * directly. One session per engine; the engine's device rate must be 48000 Hz.
 *
 *   parley_session *s;  parley_session_new(eng, &s);
 *   parley_session_on(s, PARLEY_EVENT_SPEAKERS_CHANGED, on_speakers, app);
 *   parley_session_join(s, call_with_bob);  parley_session_join(s, call_with_carol);
 *   ...  parley_session_leave(s, call_with_bob);  ...  parley_session_free(s);
 *
 * Speaker ranking uses each member's received audio with an energy voice flag (RMS above -40 dBFS):
 * the loudest PARLEY_SESSION_MAX_SPEAKERS members that spoke in the last 300 ms, loudest first. A member
 * that falls silent leaves at once; a newcomer replaces a ranked member, and two members swap places,
 * only after being 3 dB louder for 150 ms in a row, so the ranking does not flicker. */

/* PARLEY_EINVAL (NULL), PARLEY_ENOMEM, PARLEY_EFULL (the engine already has a session), PARLEY_ENOTSUP
 * (device rate is not 48000 Hz). */
PARLEY_API int parley_session_new(parley_engine *eng, parley_session **out);
/* Frees an empty session. PARLEY_EINVAL, PARLEY_ESTATE (members or listeners remain: leave / off
 * first). Pending session events are dropped. */
PARLEY_API int parley_session_free(parley_session *s);
/* Adds a call of the same engine (started or not; its playout joins the mix once it runs). Emits
 * MEMBERS_CHANGED. PARLEY_EINVAL (NULL, another engine's call), PARLEY_ESTATE (already a member of a
 * session, or hung up). A member call that is freed leaves by itself. */
PARLEY_API int parley_session_join(parley_session *s, parley_call *call);
/* Removes a member. Emits MEMBERS_CHANGED. PARLEY_EINVAL, PARLEY_ENOTFOUND (not a member). */
PARLEY_API int parley_session_leave(parley_session *s, parley_call *call);
/* Members now (>= 0) or PARLEY_EINVAL. */
PARLEY_API int parley_session_count(parley_session *s);
typedef struct parley_session_stats {
  uint64_t events_dropped; /* session events never delivered, as in parley_call_stats */
} parley_session_stats;
/* Copies a snapshot of the session's statistics into *out. PARLEY_EINVAL. */
PARLEY_API int parley_session_get_stats(parley_session *s, parley_session_stats *out);
/* Listeners for MEMBERS_CHANGED and SPEAKERS_CHANGED; same rules as parley_call_on / parley_call_off.
 * PARLEY_EINVAL for a call event kind. */
PARLEY_API int parley_session_on(parley_session *s, parley_event_kind kind, parley_event_fn fn, void *user);
PARLEY_API int parley_session_off(parley_session *s, int listener_id);

/* Stable lowercase names ("track-started", "members-changed", "bye", "connected", "have-local-offer",
 * "device-lost"); "unknown" out of range; never NULL. Any thread, real-time safe. */
PARLEY_API const char *parley_event_kind_name(parley_event_kind k);
PARLEY_API const char *parley_stop_reason_name(parley_stop_reason r);
PARLEY_API const char *parley_ice_state_name(parley_ice_state s);
PARLEY_API const char *parley_peer_state_name(parley_peer_state s);
PARLEY_API const char *parley_signaling_state_name(parley_signaling_state s);
PARLEY_API const char *parley_interrupt_code_name(parley_interrupt_code c);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_ENGINE_API_H */
