/* ice_sdp.h: converts between the agent's candidates (ice.h) and SDP a=candidate records (sdp.h).
 * Pure functions, any thread, no allocation. */
#ifndef PARLEY_TRANSPORT_ICE_SDP_H
#define PARLEY_TRANSPORT_ICE_SDP_H

#include "transport/ice.h"
#include "transport/sdp.h"

/* For parley__ice_add_remote_candidate. 0; PARLEY_ENOTSUP for a transport other than UDP or an address
 * that is not a numeric IP (e.g. an mDNS ".local" name: not resolved here); PARLEY_EINVAL otherwise
 * (bad component, port 0, NULL). */
int parley__ice_candidate_from_sdp(parley__ice_candidate *out, const parley__sdp_candidate *in);
/* For the local description / trickling. 0 or PARLEY_EINVAL. */
int parley__ice_candidate_to_sdp(parley__sdp_candidate *out, const parley__ice_candidate *in);

#endif
