"""Parse an SDP file with aiortc (an independent implementation) and print what it understood, one fact a
line, for tests/test_sdp_webrtc.c to compare: groups, then per m-line its kind, port, proto, mid, rtcp-mux,
direction, msid, codecs, header extensions, candidates, end-of-candidates and ice-options."""
import sys

from aiortc.sdp import SessionDescription

text = open(sys.argv[1], newline="").read()
sd = SessionDescription.parse(text)
out = []
for g in sd.group:
    out.append("group %s %s" % (g.semantic, " ".join(g.items)))
for m in sd.media:
    out.append("m %s %d %s mid=%s mux=%d dir=%s" % (m.kind, m.port, m.profile, m.rtp.muxId, m.rtcp_mux,
                                                   m.direction))
    if m.msid:
        out.append(" msid %s" % m.msid)
    for c in m.rtp.codecs:
        out.append(" codec %d %s %d %s" % (c.payloadType, c.mimeType, c.clockRate, c.channels))
    for e in m.rtp.headerExtensions:
        out.append(" ext %d %s" % (e.id, e.uri))
    for c in m.ice_candidates:
        out.append(" cand %s %s %d" % (c.type, c.ip, c.port))
    if m.ice_candidates_complete:
        out.append(" end-of-candidates")
    if m.ice_options:
        out.append(" ice-options %s" % m.ice_options)
print("\n".join(out))
