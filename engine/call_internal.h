/* call_internal.h: struct parley_call and what call.c (life and state), call_sdp.c (descriptions),
 * call_dtls.c (DTLS-SRTP), call_media.c (media over the network), call_turn.c (TURN relays) and
 * call_handover.c (network changes) share. Private to those files. Locks as in engine_internal.h:
 * everything below "under eng->lock" is touched only with eng->lock held. */
#ifndef PARLEY_ENGINE_CALL_INTERNAL_H
#define PARLEY_ENGINE_CALL_INTERNAL_H

#include <openssl/rand.h>

#include "engine/engine_internal.h"
#include "engine/signaling.h"
#include "transport/dtls.h"
#include "transport/ice.h"
#include "transport/ice_liveness.h"
#include "transport/liveness.h"
#include "transport/rtp.h"
#include "transport/sdp.h"
#include "transport/srtp.h"
#include "transport/tls_stream.h"
#include "transport/turn.h"
#include "transport/udp.h"

#define PARLEY__CALL_OPUS_PT 111
#define PARLEY__CALL_EXT_AUDIO_LEVEL 1 /* the a=extmap ids parley offers (RFC 8285 one-byte ids) */
#define PARLEY__CALL_EXT_MID 2
#define PARLEY__CALL_RTCP_INTERVAL_US 1000000 /* reports every 0.5..1.5 s: a voice call's RTT stays fresh */
#define PARLEY__CALL_MEDIA_POLL_US 500        /* tx ring drain retry while an audio period is overdue */
#define PARLEY__CALL_TX_AFTER_TICK_US 200     /* drain this long after a period is due to have ended */
#define PARLEY__CALL_DTLS_EARLY_MAX 1500      /* one early DTLS datagram (a ClientHello) kept */

/* One TURN allocation of a call (call_turn.c). */
#define PARLEY__CALL_TCP_RBUF 4096 /* a TURN-over-TCP stream: bytes of an incomplete message */
#define PARLEY__CALL_TCP_WBUF 8192 /* and bytes the kernel did not take yet */
typedef struct parley__call_relay {
  parley__turn *turn;
  int sock;              /* the base, the index in socks[] it talks to the server from (or whose address
                          * its TCP connection is bound to); -1 while it has none (turn NULL) */
  bool tcp;              /* ?transport=tcp: over tcp_fd, its own connection to the server */
  int tcp_fd;            /* -1 for UDP, and once the connection is gone */
  parley__tls_stream *tls; /* turns: TLS on tcp_fd (NULL once the connection is gone) */
  int stream_err;        /* a write found the stream over (TLS): the next read closes it */
  int srv;               /* index in eng->turn: the server's URL in the error event */
  char why[PARLEY__TLS_ERROR_MAX]; /* why the connection went, for that event */
  size_t rlen, wlen;
  uint8_t rbuf[PARLEY__CALL_TCP_RBUF], wbuf[PARLEY__CALL_TCP_WBUF];
  int local;             /* the agent's local index for the relayed candidate; -1 until allocated */
  bool settled;          /* added to the agent, or given up on */
  parley__netaddr server;
  parley__netaddr base;  /* socks[sock]'s address when it was made (a slot may get a new socket) */
} parley__call_relay;

struct parley_call {
  parley__target tgt; /* first member */
  parley_engine *eng;
  parley_session *session; /* under eng->lock */

  atomic_bool muted; /* parley_call_set_mute: any thread; media->muted follows (under eng->lock) */
  atomic_int volume_pct; /* parley__call_set_volume: any thread; media->volume_pct follows */

  /* ---- under eng->lock ---- */
  parley_signaling_state sig;
  bool hungup;
  bool started;
  bool offer_made;  /* create_offer ran since the last stable state */
  bool offered_dtls; /* and offered DTLS-SRTP (else SDES: a re-offer in a call an SDES offer set up) */
  bool answer_made; /* create_answer ran for the pending remote offer */
  bool remote_applied;
  bool local_applied;
  bool controlling;
  uint64_t sess_id, sess_version;

  /* ICE over UDP */
  parley__ice_agent *ice;
  parley__udp socks[PARLEY__CALL_MAX_SOCKS]; /* index = the agent's local index; fd -1: gone or a relay */
  int nsocks;
  int64_t handover_due_us; /* a local address carrying media went away: restart ICE if media has not
                            * come back on a new pair by then (call_handover.c); 0 = none */
  uint64_t handover_pkts;  /* pkts_recv when it went */
  parley__liveness *mon;
  parley__ice_liveness il;
  parley__call_relay relays[PARLEY_ENGINE_MAX_TURN_SERVERS];
  int nrelays;
  parley__event evstore[PARLEY__CALL_EVQ];
  parley__event_queue evq;
  bool agent_failed_reported;
  bool gathered; /* the agent's GATHERING_DONE came: descriptions carry a=end-of-candidates */
  parley_ice_state ice_monitor, ice_shown; /* the monitor's last ICE state; the last one posted */

  /* SRTP: keyed by SDES (local_key and the peer's a=crypto) or by DTLS */
  parley__sdes_crypto local_key;
  parley__srtp *tx_srtp;
  parley__srtp *rx_srtp;

  /* DTLS-SRTP (call_dtls.c), when the peer's description carries a=fingerprint */
  parley__dtls *dtls;
  parley__dtls_fingerprint dtls_peer;
  parley__dtls_role dtls_role;
  int dtls_local;             /* before ICE selects a pair: where the peer's first DTLS datagram came */
  parley__netaddr dtls_remote;
  bool dtls_has_path;
  /* The answerer's first flight can beat its answer to us: kept until the answer makes our session. */
  uint8_t dtls_early[PARLEY__CALL_DTLS_EARLY_MAX];
  size_t dtls_early_len;
  int dtls_early_local;
  parley__netaddr dtls_early_src;
  parley_peer_state peer_ice, peer_shown; /* the ICE side's peer state; the combined one last posted */

  /* RTP / RTCP */
  int pt;          /* negotiated Opus payload type */
  int remote_ptime_ms;    /* the peer's a=ptime (0: absent): the packets we send, when we code it */
  int remote_maxptime_ms; /* the peer's a=maxptime (0: absent): bounds the packets we send */
  /* RTP header extensions both sides agreed (ids 1..14, 0 = off) and the mid the mid extension carries. */
  uint8_t ext_audio_level, ext_mid;
  char mid[PARLEY__SDP_TOKEN_MAX];
  int audio_level_received; /* -dBov of the peer's latest packet (RFC 6464), -1 until one carries it */
  bool voice_received;      /* that packet's voice-activity flag */
  uint32_t ssrc;
  uint16_t seq;
  char cname[32];
  parley__rtp_rx rx;
  bool rx_valid;
  uint32_t remote_ssrc;
  int64_t next_rtcp_us;
  uint32_t last_sr_mid; /* middle 32 bits of the peer's last SR, 0 = none */
  int64_t last_sr_arrival_us;
  uint32_t rtp_packets, rtp_octets; /* SR sender info */
  uint32_t last_tx_ts;
  int64_t last_tx_us;
  parley__sdp *remote_offer;        /* kept from set_remote(offer) to create_answer */

  /* stats */
  double rtt_ms, fraction_lost;
  double fraction_lost_received; /* the fraction lost in our latest report of the peer's stream; -1 before */
  double loss_tracked; /* the encoder's FEC loss hint state (parley__loss_hint_update) */
  int loss_hint_pct;
  uint16_t first_seq;       /* our first RTP sequence number */
  bool peer_reported;       /* a report block about our stream arrived */
  int32_t peer_cum_lost;    /* its cumulative lost and extended highest sequence */
  uint32_t peer_ext_highest;
  uint64_t pkts_sent, bytes_sent, pkts_recv, bytes_recv;
  uint32_t ice_pairs_selected;

  /* audio */
  parley__call_media *media;
  int slot;
};

static inline uint32_t rand32(void) {
  uint32_t v = 0;
  if (RAND_bytes((unsigned char *)&v, sizeof v) != 1) v = (uint32_t)(uintptr_t)&v ^ 0x9e3779b9u;
  return v;
}

static inline int64_t now_us(parley_engine *e) { return parley__clock_now(&e->clock); }

/* ---- call.c ---- */
/* One datagram out of the call's socket local (STUN, SRTP, SRTCP); a send error goes to the liveness
 * monitor (an ICMP error pending on the socket says the peer may be gone). */
void parley__call_send(parley_call *c, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len);
/* One datagram (or a relayed peer's data) into the agent, SRTP/SRTCP or DTLS as the demux classes it. */
void parley__call_demux(parley_call *c, int local, const parley__netaddr *src, uint8_t *buf, size_t n, int64_t now);
/* Posts the monitor's queued events and the ICE state refined by the agent's. */
void parley__call_drain_events(parley_call *c);
/* Applies op to the signaling state; posts the change. */
void parley__call_post_signaling(parley_call *c, parley__sdp_op op);
/* Starts a held input file once media flows (started, a selected pair, DTLS done if used). */
void parley__call_release_input(parley_call *c);
/* Opens the call's sockets and ICE agent and monitor if not yet (controlling: our role). 0 or an error. */
int parley__call_ensure_transport(parley_call *c, bool controlling);
/* A fresh SDES key for our outbound SRTP. 0 or an error. */
int parley__call_make_local_key(parley_call *c, parley__srtp_suite suite, uint32_t tag);

/* ---- call_handover.c ---- */
/* Opens a socket on every usable host address that has none and gives it to the agent (live: the
 * agent started, so it is trickled and checked at once). Returns how many were added. */
int parley__call_open_socks(parley_call *c, bool live, int64_t now);
/* Gathers again: closes the sockets whose address went away, opens the new ones. Returns how many
 * changed; *lost_selected (may be NULL) when the selected pair's socket was one that went. */
int parley__call_regather(parley_call *c, int64_t now, bool *lost_selected);
/* The network thread's part: the fallback ICE restart when media did not come back. */
int64_t parley__call_handover_deadline(const parley_call *c);
void parley__call_handover_service(parley_call *c, int64_t now);

/* ---- call_dtls.c ---- */
/* Our sha-256 fingerprint "AB:CD:..." for a=fingerprint. */
const char *parley__call_fingerprint(const parley_call *c);
/* The DTLS session for the peer's m-line (a=fingerprint, a=setup; offer: it is the peer's offer). 0, or an
 * error with *why set for the app. A re-offer with the same fingerprint keeps the session. */
int parley__call_dtls_configure(parley_call *c, const parley__sdp_media *m, bool offer, const char **why);
/* Posts PEER_STATE_CHANGED if the state combined from peer_ice and DTLS changed (message: the reason). */
void parley__call_post_peer_state(parley_call *c, int64_t now, const char *message);
/* A datagram the demux classed as DTLS, from local/src. */
void parley__call_dtls_receive(parley_call *c, int local, const parley__netaddr *src, uint8_t *buf, size_t len,
                               int64_t now);
/* Starts the handshake once ICE selected a pair, runs its timers: the network thread's service. */
int64_t parley__call_dtls_deadline(const parley_call *c, int64_t now);
void parley__call_dtls_service(parley_call *c, int64_t now);
/* close_notify (hang-up); free (teardown). */
void parley__call_dtls_close(parley_call *c, int64_t now);
void parley__call_dtls_free(parley_call *c);

/* ---- call_turn.c: relayed candidates (network thread, or an app thread setting up, under the lock) ---- */
/* Starts an allocation on each of the engine's TURN servers from the first socket of its family, and
 * tells the agent to wait for them before gathering is done. Before parley__ice_start. */
void parley__call_turn_start(parley_call *c, int64_t now);
/* After the host sockets changed (parley__call_regather): each relay whose base socket closed, or that
 * had none, is allocated again from a live socket (the old allocation, unreachable, expires on the
 * server) and its relayed candidate trickled once ready; the old candidate leaves the agent (if it was
 * sel's, the monitor is told and *lost_selected set). Returns how many allocations were started. */
int parley__call_turn_regather(parley_call *c, int64_t now, int sel, const parley__netaddr *sel_remote,
                               bool *lost_selected);
/* What the agent, DTLS and media send on a relay's local index: wrapped for the server (a Send
 * indication, or ChannelData once the peer's channel is bound) and sent from the base socket. True
 * when local is a relay's (sent or dropped), false for a socket's. */
bool parley__call_turn_send(parley_call *c, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len);
/* A datagram on socket sock from src: 1 when it was a peer's data through a relay (*local, *peer, and
 * *data and *len inside buf, unwrapped), 0 when the TURN client took it, PARLEY_ENOTFOUND when it is not
 * from a TURN server of that socket. */
int parley__call_turn_receive(parley_call *c, int sock, const parley__netaddr *src, uint8_t *buf, size_t n,
                              int64_t now, int *local, parley__netaddr *peer, uint8_t **data, size_t *len);
/* A socket error (ICMP) about a TURN server is one about its relayed path: true when it was. */
bool parley__call_turn_socket_error(parley_call *c, int sock, const parley__udp_error *err, int64_t now);
/* A permission (and channel) on every allocation for a remote candidate's address. */
void parley__call_turn_permit(parley_call *c, const parley__netaddr *peer, int64_t now);
/* Requests, retransmissions and refreshes due; allocations that finished become relayed candidates;
 * TCP connections read (their peers' data to parley__call_demux) and flushed. */
void parley__call_turn_service(parley_call *c, int64_t now);
int64_t parley__call_turn_deadline(const parley_call *c);
/* The TCP connections' fds (after the sockets' in parley__call_fds), at most cap. */
int parley__call_turn_fds(const parley_call *c, int *fds, int cap);
bool parley__call_turn_is_relay(const parley_call *c, int local);
/* Releases every allocation (a Refresh with lifetime 0, sent at once) and frees the clients. */
void parley__call_turn_close(parley_call *c, int64_t now);

/* ---- call_media.c ---- */
int parley__call_media_new(parley_call *c, parley__call_media **out);
void parley__call_media_free(parley__call_media *m);
void parley__call_media_free_any(void *m); /* for parley__engine_retire */
/* RTCP SR/RR (and BYE when bye) to the selected pair. */
void parley__call_send_rtcp(parley_call *c, int64_t now, bool bye);
/* One datagram the demux classed as RTP / RTCP, from the selected pair (buf is unprotected in place). */
void parley__call_on_rtp(parley_call *c, uint8_t *buf, size_t len, int64_t now);
void parley__call_on_rtcp(parley_call *c, uint8_t *buf, size_t len, int64_t now);
/* Encoded frames from the audio thread's tx ring out as SRTP. */
void parley__call_drain_tx(parley_call *c, int64_t now);

#endif
