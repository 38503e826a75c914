/* sdp_answer.c: the RFC 3264 offer/answer step of sdp.h: an answer that mirrors the offer's m-lines,
 * accepts the first audio m-line with Opus and refuses the rest with port 0; the answer's direction; the
 * Opus fmtp parley advertises. Owns nothing; any thread, one call per struct at a time.
 */
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/sdp.h"
#include "transport/sdp_span.h"
#include "transport/sdp_webrtc.h"

/* ---- offer/answer ---- */

parley__sdp_dir parley__sdp_answer_dir(parley__sdp_dir offered, parley__sdp_dir local) {
  bool local_send = local == PARLEY__SDP_SENDRECV || local == PARLEY__SDP_SENDONLY;
  bool local_recv = local == PARLEY__SDP_SENDRECV || local == PARLEY__SDP_RECVONLY;
  bool peer_send = offered == PARLEY__SDP_SENDRECV || offered == PARLEY__SDP_SENDONLY;
  bool peer_recv = offered == PARLEY__SDP_SENDRECV || offered == PARLEY__SDP_RECVONLY;
  bool send = local_send && peer_recv, recv = local_recv && peer_send;
  if (send && recv) return PARLEY__SDP_SENDRECV;
  if (send) return PARLEY__SDP_SENDONLY;
  if (recv) return PARLEY__SDP_RECVONLY;
  return PARLEY__SDP_INACTIVE;
}

static bool copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) return false;
  memcpy(dst, src, n + 1);
  return true;
}

static bool acceptable(const parley__sdp_media *m) {
  return strcmp(m->type, "audio") == 0 && m->port != 0 && m->proto != PARLEY__SDP_PROTO_OTHER &&
         m->opus_pt >= 0;
}

static void reject(const parley__sdp_media *offered, parley__sdp_media *a) {
  parley__sdp_media_init(a);
  memcpy(a->type, offered->type, sizeof a->type);
  memcpy(a->proto_text, offered->proto_text, sizeof a->proto_text);
  a->proto = offered->proto;
  a->port = 0;
  a->formats[0] = offered->formats[0];
  a->formats[0].encoding[0] = '\0';
  a->formats[0].fmtp[0] = '\0';
  a->format_count = 1;
  memcpy(a->mid, offered->mid, sizeof a->mid);
  a->dir = PARLEY__SDP_INACTIVE;
}

static int accept_audio(const parley__sdp_media *o, const parley__sdp_answer_params *p,
                        parley__sdp_media *a) {
  parley__sdp_media_init(a);
  memcpy(a->type, o->type, sizeof a->type);
  memcpy(a->proto_text, o->proto_text, sizeof a->proto_text);
  a->proto = o->proto;
  a->port = p->port;
  memcpy(a->mid, o->mid, sizeof a->mid);
  a->rtcp_mux = o->rtcp_mux;
  a->dir = parley__sdp_answer_dir(o->dir, p->dir);
  a->ptime_ms = p->ptime_ms;
  a->maxptime_ms = p->maxptime_ms;

  parley__sdp_format *f = &a->formats[0];
  snprintf(f->id, sizeof f->id, "%d", o->opus_pt);
  f->pt = o->opus_pt;
  strcpy(f->encoding, "opus");
  f->clock_hz = 48000;
  f->channels = 2;
  parley__sdp_opus_fmtp(f->fmtp, sizeof f->fmtp, p->useinbandfec, p->usedtx);
  a->format_count = 1;

  if ((p->ice_ufrag && !copy_str(a->ice_ufrag, sizeof a->ice_ufrag, p->ice_ufrag)) ||
      (p->ice_pwd && !copy_str(a->ice_pwd, sizeof a->ice_pwd, p->ice_pwd)))
    return PARLEY_ERANGE;
  if (p->crypto) {
    a->crypto[0] = *p->crypto;
    a->crypto_count = 1;
  }
  if (p->fingerprint && !copy_str(a->fingerprint, sizeof a->fingerprint, p->fingerprint)) return PARLEY_ERANGE;
  a->setup = p->setup;
  if (p->candidate_count > PARLEY__SDP_MAX_CANDIDATES) return PARLEY_ERANGE;
  if (p->candidate_count && !p->candidates) return PARLEY_EINVAL;
  for (size_t i = 0; i < p->candidate_count; i++) a->candidates[i] = p->candidates[i];
  a->candidate_count = p->candidate_count;
  a->end_of_candidates = p->end_of_candidates;
  parley__sdp_resolve_opus(a);
  return 0;
}

int parley__sdp_answer(const parley__sdp *offer, const parley__sdp_answer_params *params,
                       parley__sdp *answer) {
  if (!offer || !params || !answer || !params->addr || params->port == 0 || offer == answer ||
      offer->media_count > PARLEY__SDP_MAX_MEDIA)
    return PARLEY_EINVAL;
  parley__sdp_init(answer);
  answer->sess_id = params->sess_id;
  answer->sess_version = params->sess_version;
  if (!copy_str(answer->origin_addr, sizeof answer->origin_addr, params->addr) ||
      !copy_str(answer->conn_addr, sizeof answer->conn_addr, params->addr))
    return PARLEY_ERANGE;
  answer->media_count = offer->media_count;
  int accepted = PARLEY_ENOTSUP;
  for (size_t i = 0; i < offer->media_count; i++) {
    const parley__sdp_media *o = &offer->media[i];
    if (accepted < 0 && acceptable(o)) {
      int rc = accept_audio(o, params, &answer->media[i]);
      if (rc < 0) return rc;
      accepted = (int)i;
      rc = parley__sdp_webrtc_answer(offer, params, i, answer);
      if (rc < 0) return rc;
    } else {
      reject(o, &answer->media[i]);
    }
  }
  return accepted;
}

void parley__sdp_opus_fmtp(char *buf, size_t cap, bool useinbandfec, bool usedtx) {
  if (!buf || cap == 0) return;
  snprintf(buf, cap, "minptime=3;useinbandfec=%d;usedtx=%d;stereo=0;sprop-stereo=0", useinbandfec ? 1 : 0,
           usedtx ? 1 : 0);
}
