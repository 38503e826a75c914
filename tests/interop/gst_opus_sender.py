#!/usr/bin/python3
"""gst_opus_sender.py: an independent Opus/SRTP sender for parley's interop tests.

GStreamer encodes a WAV file (opusenc at --frame-ms, its own timestamps: the first frame is short by
the encoder's lookahead), payloads it (rtpopuspay, RFC 7587) and protects it with an SDES key
(srtpenc, libsrtp). This script is the ICE side of that peer: a controlling ICE agent with one host
candidate on 127.0.0.1 that checks parley's candidates with USE-CANDIDATE and answers parley's checks
and consent requests (RFC 8445, RFC 7675; STUN RFC 8489 with Python's hmac and zlib). Media goes out
of the same socket once a check has succeeded.

stdio protocol: writes its SDP offer, then a line END; reads parley's answer up to a line END; when
the file has been sent, writes "DONE packets=N" and exits 0. Every wait is bounded.
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys
import threading
import time
import zlib

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401

MAGIC = 0x2112A442
BINDING_REQUEST, BINDING_SUCCESS = 0x0001, 0x0101
USERNAME, MESSAGE_INTEGRITY, XOR_MAPPED_ADDRESS = 0x0006, 0x0008, 0x0020
PRIORITY, USE_CANDIDATE, FINGERPRINT, ICE_CONTROLLING = 0x0024, 0x0025, 0x8028, 0x802A


def attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def stun(msg_type, tid, attrs, key):
    """A STUN message with MESSAGE-INTEGRITY (HMAC-SHA1 with key) and FINGERPRINT."""
    body = b"".join(attrs)
    head = struct.pack("!HHI", msg_type, len(body) + 24, MAGIC) + tid
    mi = hmac.new(key, head + body, hashlib.sha1).digest()
    body += attr(MESSAGE_INTEGRITY, mi)
    head = struct.pack("!HHI", msg_type, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
    return head + body + attr(FINGERPRINT, struct.pack("!I", crc))


def parse_stun(data):
    if len(data) < 20 or data[0] > 1:
        return None
    msg_type, length, magic = struct.unpack("!HHI", data[:8])
    if magic != MAGIC or 20 + length > len(data):
        return None
    attrs, off = {}, 20
    while off + 4 <= 20 + length:
        kind, alen = struct.unpack("!HH", data[off:off + 4])
        attrs[kind] = data[off + 4:off + 4 + alen]
        off += 4 + alen + (4 - alen % 4) % 4
    return msg_type, data[8:20], attrs


def xor_address(addr):
    ip = struct.unpack("!I", socket.inet_aton(addr[0]))[0] ^ MAGIC
    return struct.pack("!BBHI", 0, 1, addr[1] ^ (MAGIC >> 16), ip)


def read_answer():
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line or line.strip() == "END":
            break
        lines.append(line.strip())
    ufrag = pwd = None
    cands = []
    for line in lines:
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            pwd = line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            f = line.split()
            if f[2].lower() == "udp" and f[7] == "host" and ":" not in f[4]:
                cands.append((f[4], int(f[5])))
    if not ufrag or not pwd or not cands:
        sys.exit("gst_opus_sender: the answer lacks ICE credentials or an IPv4 host candidate")
    return ufrag, pwd, cands


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wav", required=True)
    ap.add_argument("--frame-ms", required=True, choices=["10", "20", "40", "60"])
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    Gst.init(None)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ufrag = base64.b32encode(os.urandom(5)).decode().lower()[:8]
    pwd = base64.b64encode(os.urandom(18)).decode().replace("/", "x").replace("+", "y")
    key = os.urandom(30)
    print("\r\n".join([
        "v=0", f"o=- {int.from_bytes(os.urandom(4), 'big')} 1 IN IP4 127.0.0.1", "s=gst", "t=0 0",
        f"m=audio {port} RTP/SAVPF 111", "c=IN IP4 127.0.0.1", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}",
        "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", f"a=ptime:{args.frame_ms}",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(key).decode(),
        f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host", "a=end-of-candidates", "a=rtcp-mux",
        "a=sendonly", ""]))
    print("END", flush=True)
    r_ufrag, r_pwd, cands = read_answer()

    selected = []
    stop = threading.Event()
    tiebreaker = os.urandom(8)
    checks = {}

    def receive():
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                data, src = sock.recvfrom(2048)
            except socket.timeout:
                continue
            msg = parse_stun(data)
            if not msg:
                continue  # parley's own RTP/RTCP: this peer only sends
            msg_type, tid, attrs = msg
            if msg_type == BINDING_REQUEST and attrs.get(USERNAME, b"").startswith(ufrag.encode() + b":"):
                sock.sendto(stun(BINDING_SUCCESS, tid, [attr(XOR_MAPPED_ADDRESS, xor_address(src))], pwd.encode()), src)
            elif msg_type == BINDING_SUCCESS and tid in checks and not selected:
                selected.append(checks[tid])

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    deadline = time.monotonic() + 10
    while not selected and time.monotonic() < deadline:
        for cand in cands:
            tid = os.urandom(12)
            checks[tid] = cand
            req = stun(BINDING_REQUEST, tid, [attr(USERNAME, f"{r_ufrag}:{ufrag}".encode()),
                                              attr(PRIORITY, struct.pack("!I", 1862270975)),
                                              attr(ICE_CONTROLLING, tiebreaker), attr(USE_CANDIDATE, b"")],
                       r_pwd.encode())
            sock.sendto(req, cand)
        time.sleep(0.05)
    if not selected:
        sys.exit("gst_opus_sender: no ICE check succeeded")
    peer = selected[0]

    pipeline = Gst.parse_launch(
        f"filesrc location={args.wav} ! wavparse ! audioconvert ! audioresample ! "
        f"audio/x-raw,rate=48000,channels=1 ! opusenc frame-size={args.frame_ms} bitrate=32000 "
        f"audio-type=voice ! rtpopuspay pt=111 ! srtpenc key={key.hex()} ! "
        "appsink name=out sync=true max-buffers=200")
    sink = pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    sent = 0
    end = time.monotonic() + args.timeout
    while time.monotonic() < end:
        sample = sink.try_pull_sample(100 * Gst.MSECOND)
        if sample is None:
            msg = bus.pop_filtered(Gst.MessageType.EOS | Gst.MessageType.ERROR)
            if msg and msg.type == Gst.MessageType.ERROR:
                sys.exit(f"gst_opus_sender: {msg.parse_error()[0].message}")
            if msg or sink.is_eos():
                break
            continue
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            sock.sendto(bytes(info.data), peer)
            buf.unmap(info)
            sent += 1
    pipeline.set_state(Gst.State.NULL)
    time.sleep(0.3)  # parley's last consent checks still get answers while it drains
    stop.set()
    rx.join(1)
    print(f"DONE packets={sent}", flush=True)
    return 0 if sent > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
