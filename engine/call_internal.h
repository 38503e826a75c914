/* call_internal.h: struct parley_call and what call.c (life and state), call_sdp.c (descriptions),
 * call_dtls.c (DTLS-SRTP) and call_media.c (media over the network) share. Private to those files. Locks as in
 * engine_internal.h: everything below "under eng->lock" is touched only with eng->lock held. */
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
#include "transport/udp.h"

#define PARLEY__CALL_OPUS_PT 111
#define PARLEY__CALL_EXT_AUDIO_LEVEL 1 /* the a=extmap ids parley offers (RFC 8285 one-byte ids) */
#define PARLEY__CALL_EXT_MID 2
#define PARLEY__CALL_RTCP_INTERVAL_US 1000000 /* reports every 0.5..1.5 s: a voice call's RTT stays fresh */
#define PARLEY__CALL_MEDIA_POLL_US 500        /* tx ring drain retry while an audio period is overdue */
#define PARLEY__CALL_TX_AFTER_TICK_US 200     /* drain this long after a period is due to have ended */
#define PARLEY__CALL_DTLS_EARLY_MAX 1500      /* one early DTLS datagram (a ClientHello) kept */

struct parley_call {
  parley__target tgt; /* first member */
  parley_engine *eng;
  parley_session *session; /* under eng->lock */

  atomic_bool muted; /* parley_call_set_mute: any thread */
  atomic_int volume_pct; /* parley__call_set_volume: any thread */

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
  parley__udp socks[PARLEY__CALL_MAX_SOCKS];
  int nsocks;
  parley__liveness *mon;
  parley__ice_liveness il;
  parley__event evstore[PARLEY__CALL_EVQ];
  parley__event_queue evq;
  bool agent_failed_reported;
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
