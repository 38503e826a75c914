"""RTP header extensions through GStreamer's GstRtp (an independent RFC 8285 implementation), for
tests/test_rtp.c.

  make        prints two packets GstRtp wrote, as hex, one a line: the one-byte form (audio level 0x8a
              as id 1, mid "0" as id 4) and the two-byte form (id 1 = 0x8a, id 20 = a 24-byte mid),
              each with the payload f8 01 02.
  read HEX    prints what GstRtp reads from the packet HEX: "ID DATA" for each one-byte element id
              1..14 it finds, then "payload HEX".
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import Gst, GstRtp  # noqa: E402

Gst.init(None)
RW = Gst.MapFlags.READ | Gst.MapFlags.WRITE
PAYLOAD = bytes([0xF8, 0x01, 0x02])


def packet(two_bytes):
    buf = GstRtp.rtp_buffer_new_allocate(len(PAYLOAD), 0, 0)
    ok, rtp = GstRtp.RTPBuffer.map(buf, RW)
    assert ok
    rtp.set_payload_type(111)
    rtp.set_seq(7)
    rtp.set_timestamp(960)
    rtp.set_ssrc(0x11223344)
    if two_bytes:
        assert rtp.add_extension_twobytes_header(0, 1, bytes([0x8A]))
        assert rtp.add_extension_twobytes_header(0, 20, b"mid-longer-than-16-bytes")
    else:
        assert rtp.add_extension_onebyte_header(1, bytes([0x8A]))
        assert rtp.add_extension_onebyte_header(4, b"0")
    rtp.unmap()
    # The payload is written after the extension so that it cannot be moved by it.
    ok, rtp = GstRtp.RTPBuffer.map(buf, RW)
    off = rtp.get_header_len()
    rtp.unmap()
    buf.fill(off, PAYLOAD)
    ok, info = buf.map(Gst.MapFlags.READ)
    data = bytes(info.data)
    buf.unmap(info)
    return data


def read(data):
    buf = Gst.Buffer.new_wrapped(data)
    ok, rtp = GstRtp.RTPBuffer.map(buf, Gst.MapFlags.READ)
    assert ok, "GstRtp refused the packet"
    out = []
    for i in range(1, 15):
        found, ext = rtp.get_extension_onebyte_header(i, 0)
        if found:
            out.append("%d %s" % (i, bytes(ext).hex()))
    off = rtp.get_header_len()
    out.append("payload %s" % data[off:off + rtp.get_payload_len()].hex())
    rtp.unmap()
    return "\n".join(out)


if sys.argv[1] == "make":
    print(packet(False).hex())
    print(packet(True).hex())
else:
    print(read(bytes.fromhex(sys.argv[2])))
