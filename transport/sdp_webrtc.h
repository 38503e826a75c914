/* sdp_webrtc.h: the SDP attributes browsers write beside the audio basics (RFC 8829 JSEP): group:BUNDLE
 * (RFC 8843), msid (RFC 8830), rtcp-rsize (RFC 5506), ice-options:trickle (RFC 8840) and the extmaps
 * parley negotiates (RFC 8285): read, written and answered for sdp.c, which owns the line loop.
 *
 * Threads: stateless over caller structs, like sdp.c. Internal to transport/sdp*.c.
 */
#ifndef PARLEY_TRANSPORT_SDP_WEBRTC_H
#define PARLEY_TRANSPORT_SDP_WEBRTC_H

#include "transport/sdp.h"
#include "transport/sdp_span.h"

/* One a= attribute, name and value split at the first ':' (has_value: there was one). Returns 1 when it
 * was a WebRTC attribute and is stored, 0 when it is not one of them, -1 when it is malformed (*why says
 * what). m NULL: the session level. */
int parley__sdp_webrtc_attr(parley__sdp *s, parley__sdp_media *m, span name, span value, bool has_value,
                            const char **why);

/* After the last line: m-lines without their own ice-options inherit the session's. */
void parley__sdp_webrtc_inherit(parley__sdp *s);

/* Whether the WebRTC fields of s can be written (tokens where tokens go, no line breaks). */
bool parley__sdp_webrtc_writable(const parley__sdp *s);

/* The session-level and one m-line's WebRTC lines, CRLF-terminated, into buf: snprintf's return. */
int parley__sdp_webrtc_write_session(const parley__sdp *s, char *buf, size_t cap);
int parley__sdp_webrtc_write_media(const parley__sdp_media *m, char *buf, size_t cap);

/* Fills the WebRTC fields of the accepted answer m-line (answer->media[index]) from the offer's m-line
 * at the same index and params, and the answer's BUNDLE group. 0, or PARLEY_ERANGE (msid too long). */
int parley__sdp_webrtc_answer(const parley__sdp *offer, const parley__sdp_answer_params *params,
                              size_t index, parley__sdp *answer);

#endif
