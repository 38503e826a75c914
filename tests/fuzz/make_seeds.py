#!/usr/bin/env python3
"""Writes the small seed inputs under tests/fuzz/corpus/ (run once; the outputs are committed).
Packets follow the RFC 3550 layouts: RTP 5.1, SR/RR 6.4, SDES 6.5, BYE 6.6."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rtp(pt, seq, ts, ssrc, payload=b"", csrcs=(), ext=None, pad=0, marker=False):
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    h = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    h += b"".join(struct.pack("!I", c) for c in csrcs)
    if ext is not None:
        profile, body = ext
        h += struct.pack("!HH", profile, len(body) // 4) + body
    tail = (b"\0" * (pad - 1) + bytes([pad])) if pad else b""
    return h + payload + tail


write("fuzz_rtp", "opus_plain", rtp(111, 1, 960, 0x1234, b"\xfc\xff\xfe"))
write("fuzz_rtp", "csrc_ext_pad", rtp(96, 0x1234, 0xDEADBEEF, 0x01020304, b"\xf8\xff\xfe",
                                        csrcs=(0x11111111, 0x22222222, 0x33333333),
                                        ext=(0xBEDE, b"\x10\xaa\x00\x00"), pad=3, marker=True))
write("fuzz_rtp", "max_csrc", rtp(0, 65535, 0, 1, b"x" * 20, csrcs=tuple(range(15))))


def hdr(count, pt, body, pad=0):
    n = 4 + len(body) + pad
    assert n % 4 == 0
    return struct.pack("!BBH", 0x80 | (0x20 if pad else 0) | count, pt, n // 4 - 1) + body + (
        (b"\0" * (pad - 1) + bytes([pad])) if pad else b"")


def block(ssrc, frac, lost, ext, jitter, lsr, dlsr):
    return struct.pack("!IIIIII", ssrc, (frac << 24) | (lost & 0xFFFFFF), ext, jitter, lsr, dlsr)


def sdes(ssrc, cname):
    chunk = struct.pack("!I", ssrc) + bytes([1, len(cname)]) + cname + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    return hdr(1, 202, chunk)


def bye(ssrc, reason=b""):
    body = struct.pack("!I", ssrc)
    if reason:
        r = bytes([len(reason)]) + reason
        body += r + b"\0" * (-len(r) % 4)
    return hdr(1, 203, body)


sr = hdr(1, 200, struct.pack("!IIIIII", 0xDEADBEEF, 0xE1234567, 0x890ABCDE, 48000, 50, 4000)
         + block(1, 64, -2, 70000, 16, 0xB7052000, 0x00054000))
rr = hdr(1, 201, struct.pack("!I", 0x11223344) + block(0xAABBCCDD, 64, -2, 0x10005, 16, 0xB7052000, 0x54000))
write("fuzz_rtcp", "sr_sdes", sr + sdes(0xDEADBEEF, b"parley@example"))
write("fuzz_rtcp", "rr_sdes_bye", rr + sdes(0x11223344, b"abcd") + bye(0x11223344, b"bye"))
write("fuzz_rtcp", "rr_empty_padded", hdr(0, 201, struct.pack("!I", 7), pad=4))
write("fuzz_rtcp", "rr_app_sdes", hdr(0, 201, struct.pack("!I", 9)) + hdr(0, 204, struct.pack("!I", 9) + b"TEST")
      + sdes(9, b"n"))

write("fuzz_sdes", "cm_lifetime", b"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20")
write("fuzz_sdes", "cm_mki", b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n")
write("fuzz_sdes", "gcm", b"2 AEAD_AES_128_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==|1000")

# fuzz_srtp: flags byte (bit 0 GCM, bit 1 RTCP, bit 2 protect-then-unprotect), then one packet.
opus = rtp(111, 7, 960, 0x1234, b"\xfc\xff\xfe" * 20)
write("fuzz_srtp", "rtp_cm_round_trip", b"\x04" + opus)
write("fuzz_srtp", "rtp_gcm_round_trip", b"\x05" + opus)
write("fuzz_srtp", "rtcp_cm_round_trip", b"\x06" + sr + sdes(0xDEADBEEF, b"parley@example"))
write("fuzz_srtp", "rtcp_gcm_round_trip", b"\x07" + rr + bye(0x11223344, b"bye"))
write("fuzz_srtp", "rtp_hostile", b"\x00" + opus + b"\x01" * 10)
write("fuzz_srtp", "rtcp_hostile", b"\x02" + rr + b"\x80\x00\x00\x01" + b"\x02" * 10)


# fuzz_liveness: a settings byte, then records (kind % 12, step ms, a, b); see fuzz_liveness.c.
def live(*recs):
    return b"\x01" + b"".join(bytes(r) for r in recs)


media = [(2, 20, 0, 1)] * 10
write("fuzz_liveness", "connect_talk_icmp_kill", live((0, 0, 0, 0), (1, 5, 0, 0), *media, (9, 0, 0x01, 0x90),
                                                     (8, 0, 0, 0), (11, 0, 0, 0), (8, 20, 0, 0), (11, 0, 0, 0),
                                                     (11, 0, 0, 0), (6, 200, 0, 0), *media))
write("fuzz_liveness", "bye_hold_consent", live((1, 0, 0, 0), *media, (4, 10, 0, 0), (2, 10, 1, 1), (5, 10, 2, 0),
                                                (5, 10, 0, 0), (7, 255, 0, 0), *([(11, 0, 0, 0)] * 20),
                                                (10, 0, 0, 0xff), (2, 1, 0, 1)))

# fuzz_recv: a chain byte, then records (flags: bit 0 protect as the peer, bit 1 RTCP; step ms;
# length, 2 bytes big-endian; bytes).
def rec(flags, step, data):
    return struct.pack("!BBH", flags, step, len(data)) + data


talk = b"".join(rec(1, 20, rtp(111, 100 + i, 960 * i, 0x77, b"\xfc" + bytes(range(40)))) for i in range(12))
write("fuzz_recv", "talk_rtcp_bye", b"\x00" + talk + rec(3, 20, sr + sdes(0x77, b"x") + bye(0x77))
      + rec(0, 5, rtp(111, 200, 0, 0x77, b"\xfc\x00")))
write("fuzz_recv", "talk_10ms_plain", b"\x03" + talk + rec(1, 40, rtp(0, 1, 2, 3, b"\x00")))

# fuzz_calltool and fuzz_sdp: SDPs up to the 8 KB the tool and the API examples accept.
with open(os.path.join(here, "corpus", "fuzz_sdp", "browser_offer.sdp"), "rb") as f:
    offer = f.read()
write("fuzz_calltool", "browser_offer.sdp", offer)
cands = b"".join(b"a=candidate:%d 1 udp %d 192.0.2.%d %d typ host generation 0 network-id 1 network-cost 10\r\n"
                 % (i, 2122260223 - i, i + 1, 50000 + i) for i in range(27))
big = offer.replace(b"a=ice-ufrag:Xq7b\r\n", cands + b"a=ice-ufrag:Xq7b\r\n", 1)
big = big.replace(b"a=ice-ufrag:Xq7b\n", cands.replace(b"\r\n", b"\n") + b"a=ice-ufrag:Xq7b\n", 1)
pad = 8000 - len(big)
if pad > 0:
    big += b"a=x-pad:" + b"p" * (pad - 10) + b"\r\n"
write("fuzz_sdp", "large_offer.sdp", big)
write("fuzz_calltool", "large_offer.sdp", big)

# fuzz_websocket: RFC 6455 5.7's frames (a server's unmasked, a fragmented message with a ping between),
# a masked one, a 256-byte binary frame, and a 101 response followed by a frame.
ws_hello = bytes([0x81, 0x05]) + b"Hello"
ws_frag = bytes([0x01, 0x03]) + b"Hel" + bytes([0x89, 0x05]) + b"Hello" + bytes([0x80, 0x02]) + b"lo"
write("fuzz_websocket", "hello_fragments", b"\x00" + ws_hello + ws_frag)
write("fuzz_websocket", "masked_hello", bytes([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]))
write("fuzz_websocket", "binary_256", bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(range(256)))
write("fuzz_websocket", "handshake", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: janus-protocol\r\n\r\n" + ws_hello)
