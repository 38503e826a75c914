/* ice_sdp.c: ICE candidate <-> SDP a=candidate conversion (see ice_sdp.h). Stateless. */
#define _POSIX_C_SOURCE 200809L
#include "transport/ice_sdp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parley/parley.h"

static const parley__ice_cand_type from_sdp_type[] = {
    [PARLEY__SDP_CAND_HOST] = PARLEY__ICE_HOST, [PARLEY__SDP_CAND_SRFLX] = PARLEY__ICE_SRFLX,
    [PARLEY__SDP_CAND_PRFLX] = PARLEY__ICE_PRFLX, [PARLEY__SDP_CAND_RELAY] = PARLEY__ICE_RELAY};
static const parley__sdp_cand_type to_sdp_type[] = {
    [PARLEY__ICE_HOST] = PARLEY__SDP_CAND_HOST, [PARLEY__ICE_SRFLX] = PARLEY__SDP_CAND_SRFLX,
    [PARLEY__ICE_PRFLX] = PARLEY__SDP_CAND_PRFLX, [PARLEY__ICE_RELAY] = PARLEY__SDP_CAND_RELAY};

int parley__ice_candidate_from_sdp(parley__ice_candidate *out, const parley__sdp_candidate *in) {
  if (!out || !in || in->component != 1 || in->port == 0 || (unsigned)in->type > PARLEY__SDP_CAND_RELAY ||
      in->foundation[0] == '\0')
    return PARLEY_EINVAL;
  if (strcasecmp(in->transport, "udp") != 0) return PARLEY_ENOTSUP;
  memset(out, 0, sizeof *out);
  if (parley__netaddr_from_ip(&out->addr, in->addr, in->port) != 0) return PARLEY_ENOTSUP;
  if (in->has_raddr) (void)parley__netaddr_from_ip(&out->related, in->raddr, in->rport);
  snprintf(out->foundation, sizeof out->foundation, "%s", in->foundation);
  out->component = 1;
  out->priority = in->priority;
  out->type = from_sdp_type[in->type];
  out->local = -1;
  return 0;
}

static void ip_text(const parley__netaddr *a, char *buf, size_t cap) {
  if (!inet_ntop(a->family == PARLEY__NETADDR_V6 ? AF_INET6 : AF_INET, a->ip, buf, (socklen_t)cap)) buf[0] = '\0';
}

int parley__ice_candidate_to_sdp(parley__sdp_candidate *out, const parley__ice_candidate *in) {
  if (!out || !in || (unsigned)in->type > PARLEY__ICE_RELAY ||
      (in->addr.family != PARLEY__NETADDR_V4 && in->addr.family != PARLEY__NETADDR_V6))
    return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  snprintf(out->foundation, sizeof out->foundation, "%s", in->foundation);
  out->component = in->component ? in->component : 1;
  snprintf(out->transport, sizeof out->transport, "udp");
  out->priority = in->priority;
  ip_text(&in->addr, out->addr, sizeof out->addr);
  out->port = in->addr.port;
  out->type = to_sdp_type[in->type];
  if (in->type != PARLEY__ICE_HOST && in->related.family != 0) {
    out->has_raddr = true;
    ip_text(&in->related, out->raddr, sizeof out->raddr);
    out->rport = in->related.port;
  }
  return 0;
}
