/* sdp.h: a small SDP model (RFC 8866) for parley's one audio stream, its writer and parser, and the
 * RFC 3264 offer/answer step.
 *
 * The model keeps every m-line of a description (so an answer can mirror the offer's m-line count),
 * but only understands what a voice call needs: origin, connection address, media type/port/proto/
 * formats, rtpmap, fmtp (opus useinbandfec/usedtx read out, the raw string kept), ptime, mid,
 * ice-ufrag, ice-pwd, ICE candidates (RFC 8839), end-of-candidates, crypto (RFC 4568, kept as strings
 * for the SRTP layer to interpret), fingerprint and setup (DTLS-SRTP, RFC 8122 / 4145: the fingerprint
 * kept as text for transport/dtls.h), rtcp-mux and direction; and what browsers write beside them
 * (sdp_webrtc.c): group:BUNDLE, msid, rtcp-rsize, ice-options:trickle and the two extmaps parley speaks.
 * Unknown lines and attributes are skipped.
 *
 * Limits are fixed array sizes (PARLEY__SDP_MAX_*); input beyond them is refused with PARLEY_EPARSE
 * (parser) or PARLEY_ERANGE/PARLEY_ENOSPC (answer/writer), never truncated silently.
 *
 * Threads and real-time: stateless functions over caller-owned structs; any thread, one call per
 * struct at a time. They do not allocate, lock or log, but signalling is not audio-path work.
 * A parley__sdp is large (~185 KiB): allocate it, do not put several on a small stack.
 */
#ifndef PARLEY_TRANSPORT_SDP_H
#define PARLEY_TRANSPORT_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARLEY__SDP_MAX_MEDIA 8       /* m-lines per description */
#define PARLEY__SDP_MAX_FORMATS 32    /* formats per m-line */
#define PARLEY__SDP_MAX_CANDIDATES 32 /* a=candidate lines per m-line */
#define PARLEY__SDP_MAX_CRYPTO 8      /* a=crypto lines per m-line */
#define PARLEY__SDP_TOKEN_MAX 64      /* addresses, names, tokens: at most 63 bytes */
#define PARLEY__SDP_ICE_MAX 257       /* ice-ufrag / ice-pwd: at most 256 bytes (RFC 8839) */
#define PARLEY__SDP_FMTP_MAX 256      /* raw fmtp parameters: at most 255 bytes */
#define PARLEY__SDP_CRYPTO_MAX 256    /* crypto key-params / session-params: at most 255 bytes */
#define PARLEY__SDP_FINGERPRINT_MAX 208 /* "sha-512 " + 64 hex pairs with colons fits */
#define PARLEY__SDP_MSID_MAX 132      /* "<stream id> <track id>", 64 + 1 + 64 bytes (RFC 8830) */

/* The RTP header extensions parley negotiates (RFC 8285 a=extmap URIs). */
#define PARLEY__SDP_EXT_AUDIO_LEVEL "urn:ietf:params:rtp-hdrext:ssrc-audio-level" /* RFC 6464 */
#define PARLEY__SDP_EXT_MID "urn:ietf:params:rtp-hdrext:sdes:mid"                 /* RFC 8843 */

typedef enum parley__sdp_dir {
  PARLEY__SDP_SENDRECV = 0, /* the default when no direction attribute is present */
  PARLEY__SDP_SENDONLY,
  PARLEY__SDP_RECVONLY,
  PARLEY__SDP_INACTIVE,
} parley__sdp_dir;

typedef enum parley__sdp_proto {
  PARLEY__SDP_PROTO_OTHER = 0, /* anything else: parsed and kept, never accepted in an answer */
  PARLEY__SDP_PROTO_RTP_AVP,
  PARLEY__SDP_PROTO_RTP_SAVP,
  PARLEY__SDP_PROTO_RTP_SAVPF,
  PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF,
} parley__sdp_proto;

/* a=setup (RFC 4145, for DTLS RFC 5763 / 8842): who sends the ClientHello. */
typedef enum parley__sdp_setup {
  PARLEY__SDP_SETUP_NONE = 0, /* absent */
  PARLEY__SDP_SETUP_ACTPASS,
  PARLEY__SDP_SETUP_ACTIVE,
  PARLEY__SDP_SETUP_PASSIVE,
  PARLEY__SDP_SETUP_HOLDCONN,
} parley__sdp_setup;

typedef enum parley__sdp_cand_type {
  PARLEY__SDP_CAND_HOST = 0,
  PARLEY__SDP_CAND_SRFLX,
  PARLEY__SDP_CAND_PRFLX,
  PARLEY__SDP_CAND_RELAY,
} parley__sdp_cand_type;

/* a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
 *             [raddr <address>] [rport <port>] [<extension name> <value>]... (extensions ignored) */
typedef struct parley__sdp_candidate {
  char foundation[33];               /* 1..32 ice-chars */
  uint16_t component;                /* 1..256; 1 = RTP */
  char transport[16];                /* as written, e.g. "udp" or "UDP" */
  uint32_t priority;
  char addr[PARLEY__SDP_TOKEN_MAX];  /* IPv4, IPv6 or a name (mDNS "x.local"), as written */
  uint16_t port;
  parley__sdp_cand_type type;
  bool has_raddr;                    /* raddr/rport present (srflx, prflx, relay) */
  char raddr[PARLEY__SDP_TOKEN_MAX];
  uint16_t rport;
} parley__sdp_candidate;

/* a=crypto:<tag> <crypto-suite> <key-params> [<session-params>...] (RFC 4568), kept as text. */
typedef struct parley__sdp_crypto {
  uint32_t tag;                               /* 1..999999999 */
  char suite[PARLEY__SDP_TOKEN_MAX];          /* e.g. "AES_CM_128_HMAC_SHA1_80" */
  char key_params[PARLEY__SDP_CRYPTO_MAX];    /* e.g. "inline:<base64>|2^20|1:4" */
  char session_params[PARLEY__SDP_CRYPTO_MAX]; /* the rest of the line, "" when absent */
} parley__sdp_crypto;

/* One m= format with what a=rtpmap / a=fmtp said about it. */
typedef struct parley__sdp_format {
  char id[32];                       /* the m= token; for RTP protos a payload type 0..127 */
  int pt;                            /* payload type for RTP protos, else -1 */
  char encoding[PARLEY__SDP_TOKEN_MAX]; /* rtpmap encoding name, "" without rtpmap */
  uint32_t clock_hz;                 /* rtpmap clock rate, 0 without rtpmap */
  uint32_t channels;                 /* rtpmap encoding parameter, 0 when absent */
  char fmtp[PARLEY__SDP_FMTP_MAX];   /* raw a=fmtp parameters, "" when absent */
} parley__sdp_format;

typedef struct parley__sdp_media {
  char type[16];                     /* "audio", "video", "application", ... */
  uint16_t port;                     /* 0 = rejected / disabled m-line */
  char proto_text[32];               /* as written */
  parley__sdp_proto proto;
  parley__sdp_format formats[PARLEY__SDP_MAX_FORMATS];
  size_t format_count;               /* >= 1 */
  char conn_addr[PARLEY__SDP_TOKEN_MAX]; /* media-level c= address, "" when absent */
  char mid[PARLEY__SDP_TOKEN_MAX];   /* a=mid, "" when absent */
  /* Opus, read from the rtpmap/fmtp of the first opus/48000/2 format in m= order. */
  int opus_pt;                       /* -1 when the m-line offers no opus */
  int opus_useinbandfec;             /* -1 absent, else 0/1 */
  int opus_usedtx;                   /* -1 absent, else 0/1 */
  uint32_t ptime_ms;                 /* a=ptime, 0 when absent */
  uint32_t maxptime_ms;              /* a=maxptime, 0 when absent */
  char ice_ufrag[PARLEY__SDP_ICE_MAX]; /* media level, or inherited from session level */
  char ice_pwd[PARLEY__SDP_ICE_MAX];
  parley__sdp_candidate candidates[PARLEY__SDP_MAX_CANDIDATES];
  size_t candidate_count;
  bool end_of_candidates;
  parley__sdp_crypto crypto[PARLEY__SDP_MAX_CRYPTO];
  size_t crypto_count;
  bool rtcp_mux;
  parley__sdp_dir dir;               /* media level, or inherited from session level */
  /* DTLS-SRTP, media level or inherited from session level. The first a=fingerprint is kept. */
  char fingerprint[PARLEY__SDP_FINGERPRINT_MAX]; /* "<hash-func> <hex:hex...>" as written, "" absent */
  parley__sdp_setup setup;
  /* WebRTC (sdp_webrtc.c). Extension ids are RFC 8285 one-byte ids 1..14; 0 = not offered. An extmap
   * with another URI, an id outside 1..14 or a direction other than sendrecv is ignored. */
  uint8_t ext_audio_level;           /* a=extmap id of PARLEY__SDP_EXT_AUDIO_LEVEL */
  uint8_t ext_mid;                   /* a=extmap id of PARLEY__SDP_EXT_MID */
  bool rtcp_rsize;                   /* a=rtcp-rsize (RFC 5506) */
  bool ice_trickle;                  /* a=ice-options with "trickle", media level or inherited */
  char msid[PARLEY__SDP_MSID_MAX];   /* a=msid value as written, "" when absent or longer than fits */
} parley__sdp_media;

typedef struct parley__sdp {
  char origin_user[PARLEY__SDP_TOKEN_MAX]; /* "-" when unused */
  uint64_t sess_id;
  uint64_t sess_version;
  char origin_addr[PARLEY__SDP_TOKEN_MAX];
  char session_name[PARLEY__SDP_TOKEN_MAX]; /* s=, "-" when unused */
  char conn_addr[PARLEY__SDP_TOKEN_MAX];    /* session-level c= address, "" when absent */
  parley__sdp_media media[PARLEY__SDP_MAX_MEDIA];
  size_t media_count;
  /* The first a=group:BUNDLE (RFC 8843): its mids in order; other group semantics are ignored. */
  char bundle[PARLEY__SDP_MAX_MEDIA][PARLEY__SDP_TOKEN_MAX];
  size_t bundle_count;
  bool ice_trickle;                  /* session-level a=ice-options with "trickle" */
} parley__sdp;

/* Where and why parsing failed: 1-based line number and "line N: <what>". */
typedef struct parley__sdp_error {
  int line;
  char msg[96];
} parley__sdp_error;

/* Reset s to an empty description (no media, names "-", no addresses). */
void parley__sdp_init(parley__sdp *s);
/* Reset m to an empty m-line: no formats, opus_pt -1, opus flags -1, sendrecv. */
void parley__sdp_media_init(parley__sdp_media *m);

/* Parse len bytes of SDP text (CRLF or LF line ends; need not be NUL-terminated) into out. Whatever
 * parses can be written back by parley__sdp_write (a CR inside a line is a parse error).
 * v=0 must be the first line; o= and s= must come before the first m=. Unknown lines and attributes
 * are ignored; session-level ice-ufrag/ice-pwd/direction apply to m-lines that lack their own.
 * Returns 0; PARLEY_EINVAL (NULL text or out); PARLEY_EPARSE with err (may be NULL) filled. */
int parley__sdp_parse(const char *text, size_t len, parley__sdp *out, parley__sdp_error *err);

/* Write s as SDP text with CRLF line ends into buf (NUL-terminated). Returns the text length (without
 * the NUL); PARLEY_ENOSPC when cap is too small; PARLEY_EINVAL for an unwritable model (no media
 * format, a field with spaces or line breaks where a token is expected). */
int parley__sdp_write(const parley__sdp *s, char *buf, size_t cap);

/* RFC 3264 section 6.1 direction of an answer to offered, given what the answerer wants locally. */
parley__sdp_dir parley__sdp_answer_dir(parley__sdp_dir offered, parley__sdp_dir local);

/* What the answerer contributes. Strings and arrays are borrowed for the call and copied. */
typedef struct parley__sdp_answer_params {
  uint64_t sess_id;
  uint64_t sess_version;
  const char *addr;                  /* o= and c= address; required */
  uint16_t port;                     /* RTP port of the accepted audio m-line; > 0 */
  const char *ice_ufrag;             /* NULL: omitted */
  const char *ice_pwd;               /* NULL: omitted */
  parley__sdp_dir dir;               /* the local wish, combined with the offer's direction */
  uint32_t ptime_ms;                 /* 0: omitted */
  uint32_t maxptime_ms;              /* 0: omitted */
  bool useinbandfec;
  bool usedtx;
  const parley__sdp_crypto *crypto;  /* the answerer's a=crypto for SRTP protos; NULL: omitted */
  const char *fingerprint;           /* the answerer's a=fingerprint value; NULL: omitted */
  parley__sdp_setup setup;           /* the answerer's a=setup; NONE: omitted */
  const parley__sdp_candidate *candidates;
  size_t candidate_count;
  bool end_of_candidates;
  const char *msid;                  /* a=msid of the accepted m-line; NULL: omitted */
  bool ice_trickle;                  /* write a=ice-options:trickle */
} parley__sdp_answer_params;

/* Build answer (overwritten) to offer: the same number of m-lines in the same order. The first audio
 * m-line with a non-zero port, a supported proto (RTP/AVP, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF) and
 * opus/48000/2 is accepted with only Opus (the offer's payload type), the offer's mid, rtcp-mux and
 * rtcp-rsize, the audio-level and mid extmaps it offered (their ids mirrored); every other m-line is
 * rejected (port 0, the offer's proto and first format, its mid). When the offer bundles the accepted
 * mid, the answer's BUNDLE group holds it alone (rejected m-lines leave the bundle, RFC 8843 7.3.3).
 * Returns the index of the accepted m-line; PARLEY_ENOTSUP when nothing could be accepted (answer then
 * holds every m-line rejected); PARLEY_EINVAL; PARLEY_ERANGE (a parameter does not fit the model). */
int parley__sdp_answer(const parley__sdp *offer, const parley__sdp_answer_params *params,
                       parley__sdp *answer);

/* One candidate attribute (RFC 8839, 5.1) as it travels alone, e.g. trickled: "candidate:..." with no
 * "a=" and no line end, written into buf; returns its length, PARLEY_ENOSPC (cap too small) or
 * PARLEY_EINVAL. PARLEY__SDP_CANDIDATE_LINE_MAX always suffices. */
#define PARLEY__SDP_CANDIDATE_LINE_MAX 320
int parley__sdp_candidate_format(const parley__sdp_candidate *c, char *buf, size_t cap);
/* Parses one candidate attribute: "candidate:...", with or without "a=" and a line end; at most len
 * bytes of text. 0, PARLEY_EPARSE or PARLEY_EINVAL. The same rules as inside an SDP. */
int parley__sdp_candidate_parse(const char *text, size_t len, parley__sdp_candidate *out);

/* The Opus fmtp parameters parley sends (RFC 7587, 6.1): what its receive side takes, for every
 * offer and answer. It plays packets of any duration (minptime=3, the 2.5 ms frame rounded up; with
 * a=maxptime:120 beside it), decodes mono (stereo=0) and sends mono (sprop-stereo=0). */
void parley__sdp_opus_fmtp(char *buf, size_t cap, bool useinbandfec, bool usedtx);

/* Derives m's opus_pt / opus_useinbandfec / opus_usedtx from its formats (the first opus/48000/2 in
 * m= order). Used by the parser and the answer. */
void parley__sdp_resolve_opus(parley__sdp_media *m);

#endif
