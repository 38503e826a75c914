#!/usr/bin/python3
"""nice_peer.py: an independent ICE agent (libnice, through GObject introspection) for parley's interop
tests (tests/test_interop_ice.c), with RFC 8445 regular nomination (NICE_AGENT_OPTION_REGULAR_NOMINATION)
and RFC 7675 consent freshness on. It does ICE only and counts the RTP parley sends; it never
decrypts media. libnice skips loopback addresses: the test runs it in its own network namespace.

--role controlling: writes an offer (libnice nominates, regular); controlled: answers parley's offer.
stdio: its SDP then a line END; reads the other side up to a line END; once its component is ready
writes "CONNECTED"; after --hold seconds a line "SUMMARY k=v ...", then waits for one more line (or
end of file) before it exits. Received media goes through GStreamer's nicesrc, the one piece that
attaches libnice's receive path from Python. Every wait is bounded.
"""
import argparse
import base64
import os
import select
import sys
import time

import gi

gi.require_version("Nice", "0.1")
gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp, Nice  # noqa: E402,F401

STATE = {"rtp": 0, "selected": 0}
# The protocol's own stdout; fd 1 itself goes to stderr, where GLib writes its debug messages.
OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def drain():
    """Counts parley's Opus RTP packets that reached libnice (through GStreamer's nicesrc, which
    attaches libnice's receive path; without it libnice reads nothing, STUN included)."""
    sink = RECV[0]
    if sink is None:
        return
    for _ in range(256):
        sample = sink.try_pull_sample(0)
        if sample is None:
            return
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            data = bytes(info.data)
            buf.unmap(info)
            if len(data) >= 12 and data[0] >> 6 == 2 and (data[1] & 0x7F) == 111:
                STATE["rtp"] += 1


RECV = [None]


def run_until(ctx, done, seconds):
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        ctx.iteration(False)
        drain()
        time.sleep(0.002)
    return done()


def read_until_end(ctx, seconds, marker=b"\nEND"):
    """Lines from stdin up to END (or, with marker b"\n", one line), while libnice's context keeps
    running (answering checks)."""
    lines, buf = [], b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.iteration(False)
        drain()
        if select.select([sys.stdin], [], [], 0.002)[0]:
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            if (b"\n" in buf) if marker == b"\n" else (marker in b"\n" + buf):
                break
    for line in buf.decode().splitlines():
        if line.strip() == "END":
            break
        lines.append(line.strip())
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["controlling", "controlled"], required=True)
    ap.add_argument("--hold", type=float, default=1.0)
    args = ap.parse_args()
    ctx = GLib.MainContext.default()
    agent = Nice.Agent.new_full(ctx, Nice.Compatibility.RFC5245,
                                Nice.AgentOption.REGULAR_NOMINATION | Nice.AgentOption.CONSENT_FRESHNESS)
    agent.set_property("controlling-mode", args.role == "controlling")
    agent.set_property("ice-tcp", False)
    stream = agent.add_stream(1)
    Gst.init(None)
    pipeline = Gst.Pipeline.new("rx")
    src = Gst.ElementFactory.make("nicesrc")
    sink = Gst.ElementFactory.make("appsink")
    if src is None or sink is None:
        sys.exit("nice_peer: GStreamer's nicesrc (gstreamer1.0-nice) is missing")
    src.set_property("agent", agent)
    src.set_property("stream", stream)
    src.set_property("component", 1)
    sink.set_property("sync", False)
    sink.set_property("max-buffers", 1000)
    pipeline.add(src)
    pipeline.add(sink)
    src.link(sink)
    pipeline.set_state(Gst.State.PLAYING)
    RECV[0] = sink
    ready = {"state": None, "gathered": False}

    agent.connect("candidate-gathering-done", lambda *a: ready.__setitem__("gathered", True))
    agent.connect("component-state-changed", lambda a, s, c, st: ready.__setitem__("state", st))
    agent.connect("new-selected-pair-full", lambda *a: STATE.__setitem__("selected", STATE["selected"] + 1))
    if not agent.gather_candidates(stream) or not run_until(ctx, lambda: ready["gathered"], 5):
        sys.exit("nice_peer: gathering failed")
    ok, ufrag, pwd = agent.get_local_credentials(stream)
    cands = [agent.generate_local_candidate_sdp(c) for c in agent.get_local_candidates(stream, 1)]
    cands = [c for c in cands if " UDP " in c.upper() and ":" not in c.split()[4]]
    host, port = cands[0].split()[4], cands[0].split()[5]
    key = base64.b64encode(os.urandom(30)).decode()
    sdp = "\r\n".join(["v=0", f"o=- 1 1 IN IP4 {host}", "s=libnice", "t=0 0", f"m=audio {port} RTP/SAVPF 111",
                       f"c=IN IP4 {host}", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", "a=rtpmap:111 opus/48000/2",
                       "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key] + cands +
                      ["a=end-of-candidates", "a=rtcp-mux", "a=sendrecv", ""])
    if args.role == "controlling":
        print(sdp + "END", file=OUT, flush=True)
    remote = read_until_end(ctx, 20)
    r_ufrag = next((l.split(":", 1)[1] for l in remote if l.startswith("a=ice-ufrag:")), None)
    r_pwd = next((l.split(":", 1)[1] for l in remote if l.startswith("a=ice-pwd:")), None)
    rc = [agent.parse_remote_candidate_sdp(stream, l) for l in remote if l.startswith("a=candidate:")]
    rc = [c for c in rc if c is not None]
    if not r_ufrag or not r_pwd or not rc:
        sys.exit("nice_peer: parley's description lacks ICE credentials or candidates")
    agent.set_remote_credentials(stream, r_ufrag, r_pwd)
    agent.set_remote_candidates(stream, 1, rc)
    if args.role == "controlled":
        print(sdp + "END", file=OUT, flush=True)
    connected = run_until(ctx, lambda: ready["state"] == Nice.ComponentState.READY, 10)
    if connected:
        print("CONNECTED", file=OUT, flush=True)
    run_until(ctx, lambda: False, args.hold)
    failed = ready["state"] == Nice.ComponentState.FAILED
    print(f"SUMMARY connected={int(connected)} ready_at_end={int(ready['state'] == Nice.ComponentState.READY)} "
          f"failed={int(failed)} selected_pairs={STATE['selected']} rtp_pt111={STATE['rtp']} "
          f"parley_candidates={len(rc)}", file=OUT, flush=True)
    read_until_end(ctx, 10, b"\n")  # keep answering until the test has read its side
    pipeline.set_state(Gst.State.NULL)
    return 0 if connected else 1


if __name__ == "__main__":
    sys.exit(main())
