/* sdp_webrtc.c: the WebRTC attributes of an SDP (see sdp_webrtc.h): BUNDLE, msid, rtcp-rsize,
 * ice-options:trickle and the audio-level / mid extmaps, parsed, written and answered.
 *
 * Owns nothing; any thread, one call per struct at a time; no allocation, locks or logging. A browser
 * offer carries more than parley uses (other extmaps, msid-semantic, ssrc lines): those stay unknown
 * and skipped, so only a malformed line of an attribute kept here fails a parse.
 */
#include "transport/sdp_webrtc.h"

#include <stdio.h>
#include <string.h>

#include "parley/parley.h"

/* a=extmap:<id>["/"<direction>] <uri> [<attributes>] (RFC 8285 section 8). */
static int parse_extmap(parley__sdp_media *m, span v, const char **why) {
  span idtok, uri, dir;
  if (!next_token(&v, &idtok) || !next_token(&v, &uri)) {
    *why = "extmap needs <id> <uri>";
    return -1;
  }
  span id = split_at(idtok, '/', &dir);
  uint32_t n;
  if (!parse_u32(id, 65535, &n) || n == 0) {
    *why = "bad extmap id";
    return -1;
  }
  bool has_dir = dir.p != id.p + id.n;
  /* parley writes one-byte headers only (ids 1..14) and sends and receives both extensions. */
  if (n > 14 || (has_dir && !span_eq(dir, "sendrecv"))) return 1;
  bool level = span_eq(uri, PARLEY__SDP_EXT_AUDIO_LEVEL), mid = span_eq(uri, PARLEY__SDP_EXT_MID);
  if ((level && m->ext_mid == n) || (mid && m->ext_audio_level == n)) {
    *why = "one extmap id for two extensions"; /* RFC 8285 5: an id names one extension */
    return -1;
  }
  if (level) m->ext_audio_level = (uint8_t)n;
  if (mid) m->ext_mid = (uint8_t)n;
  return 1;
}

/* a=group:<semantics> <mid>... (RFC 5888); only the first BUNDLE group is kept. */
static int parse_group(parley__sdp *s, span v, const char **why) {
  span sem, mid;
  if (!next_token(&v, &sem)) {
    *why = "group needs semantics";
    return -1;
  }
  if (!span_eq(sem, "BUNDLE") || s->bundle_count) return 1;
  size_t n = 0;
  while (next_token(&v, &mid)) {
    if (n >= PARLEY__SDP_MAX_MEDIA) {
      *why = "too many mids in BUNDLE";
      return -1;
    }
    if (!copy_span(s->bundle[n], sizeof s->bundle[n], mid)) {
      *why = "bad mid in BUNDLE";
      return -1;
    }
    n++;
  }
  s->bundle_count = n;
  return 1;
}

static bool has_trickle(span v) {
  span tok;
  while (next_token(&v, &tok))
    if (span_eq(tok, "trickle")) return true;
  return false;
}

int parley__sdp_webrtc_attr(parley__sdp *s, parley__sdp_media *m, span name, span value, bool has_value,
                            const char **why) {
  if (span_eq(name, "ice-options")) {
    if (has_trickle(value)) *(m ? &m->ice_trickle : &s->ice_trickle) = true;
    return 1;
  }
  if (!m) return span_eq(name, "group") && has_value ? parse_group(s, value, why) : 0;
  if (span_eq(name, "rtcp-rsize")) {
    m->rtcp_rsize = true;
    return 1;
  }
  if (span_eq(name, "extmap") && has_value) return parse_extmap(m, value, why);
  if (span_eq(name, "msid") && has_value) {
    /* "<stream id> [<track id>]": ours to mirror nowhere, so one that does not fit is left out. */
    span v = trim(value), stream, track, more;
    if (next_token(&v, &stream) && (!next_token(&v, &track) || !next_token(&v, &more)))
      (void)copy_span(m->msid, sizeof m->msid, trim(value));
    return 1;
  }
  return 0;
}

void parley__sdp_webrtc_inherit(parley__sdp *s) {
  for (size_t i = 0; i < s->media_count; i++) s->media[i].ice_trickle |= s->ice_trickle;
}

bool parley__sdp_webrtc_writable(const parley__sdp *s) {
  if (s->bundle_count > PARLEY__SDP_MAX_MEDIA) return false;
  for (size_t i = 0; i < s->bundle_count; i++)
    if (!is_token(s->bundle[i])) return false;
  for (size_t i = 0; i < s->media_count && i < PARLEY__SDP_MAX_MEDIA; i++) {
    const parley__sdp_media *m = &s->media[i];
    if (!is_text(m->msid) || m->ext_audio_level > 14 || m->ext_mid > 14 ||
        (m->ext_mid && m->ext_mid == m->ext_audio_level))
      return false;
  }
  return true;
}

/* snprintf into buf at *len, keeping the length it would need (so overflow shows at the end). */
/* Appends to buf at *len (which counts on past cap, as snprintf does): fmt with one string, or with
 * one number. */
static void add(char *buf, size_t cap, int *len, const char *fmt, const char *arg) {
  size_t at = (size_t)*len < cap ? (size_t)*len : cap;
  int n = snprintf(buf + at, cap - at, fmt, arg);
  if (n > 0) *len += n;
}

static void add_num(char *buf, size_t cap, int *len, const char *fmt, unsigned num) {
  size_t at = (size_t)*len < cap ? (size_t)*len : cap;
  int n = snprintf(buf + at, cap - at, fmt, num);
  if (n > 0) *len += n;
}

int parley__sdp_webrtc_write_session(const parley__sdp *s, char *buf, size_t cap) {
  int len = 0;
  if (cap) buf[0] = '\0';
  if (s->bundle_count) {
    add(buf, cap, &len, "%s", "a=group:BUNDLE");
    for (size_t i = 0; i < s->bundle_count; i++) add(buf, cap, &len, " %s", s->bundle[i]);
    add(buf, cap, &len, "%s", "\r\n");
  }
  if (s->ice_trickle) add(buf, cap, &len, "%s", "a=ice-options:trickle\r\n");
  return len;
}

int parley__sdp_webrtc_write_media(const parley__sdp_media *m, char *buf, size_t cap) {
  int len = 0;
  if (cap) buf[0] = '\0';
  if (m->msid[0]) add(buf, cap, &len, "a=msid:%s\r\n", m->msid);
  if (m->ice_trickle) add(buf, cap, &len, "%s", "a=ice-options:trickle\r\n");
  if (m->ext_audio_level)
    add_num(buf, cap, &len, "a=extmap:%u " PARLEY__SDP_EXT_AUDIO_LEVEL "\r\n", m->ext_audio_level);
  if (m->ext_mid) add_num(buf, cap, &len, "a=extmap:%u " PARLEY__SDP_EXT_MID "\r\n", m->ext_mid);
  if (m->rtcp_rsize) add(buf, cap, &len, "%s", "a=rtcp-rsize\r\n");
  return len;
}

int parley__sdp_webrtc_answer(const parley__sdp *offer, const parley__sdp_answer_params *params,
                              size_t index, parley__sdp *answer) {
  const parley__sdp_media *o = &offer->media[index];
  parley__sdp_media *a = &answer->media[index];
  a->ext_audio_level = o->ext_audio_level;
  a->ext_mid = o->mid[0] ? o->ext_mid : 0; /* the mid extension carries the a=mid value */
  a->rtcp_rsize = o->rtcp_rsize;
  a->ice_trickle = params->ice_trickle;
  if (params->msid) {
    size_t n = strlen(params->msid);
    if (n >= sizeof a->msid) return PARLEY_ERANGE;
    memcpy(a->msid, params->msid, n + 1);
  }
  answer->bundle_count = 0;
  for (size_t i = 0; o->mid[0] && i < offer->bundle_count; i++) {
    if (strcmp(offer->bundle[i], o->mid) == 0) {
      memcpy(answer->bundle[0], o->mid, sizeof answer->bundle[0]);
      answer->bundle_count = 1;
    }
  }
  return 0;
}
