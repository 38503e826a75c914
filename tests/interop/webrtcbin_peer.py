#!/usr/bin/python3
"""webrtcbin_peer.py: GStreamer's webrtcbin (an independent WebRTC stack: libnice ICE, its own DTLS-SRTP
and RTP) as a peer for tests/test_interop_aiortc.c, with the same stdio protocol as aiortc_peer.py:
with --role offer it writes its SDP offer, then a line END, and reads the answer up to a line END; with
--role answer it reads the offer up to END and writes its answer and END (after ICE gathering, so all
candidates are in it). Then it writes "connected" when its peer connection is, and after --seconds of
call either ends its stream (--end close: EOS, so its RTP session sends RTCP BYE, then the pipeline
stops) and writes "closed",
or (--end hang) writes "hanging" and waits to be killed. It sends --wav as Opus and records what it
receives into --out (WAV, 48 kHz mono). Progress goes to stderr.
"""
import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from peer_stdio import read_sdp, say  # noqa: E402


def log(*a):
    print("webrtcbin_peer:", *a, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["offer", "answer"], required=True)
    ap.add_argument("--wav", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--end", choices=["close", "hang"], default="close")
    args = ap.parse_args()

    Gst.init(None)
    pipe = Gst.parse_launch(
        "webrtcbin name=w bundle-policy=max-bundle "
        "filesrc location=%s ! wavparse ! identity name=hold ! identity sync=true ! audioconvert ! audioresample "
        "! audio/x-raw,rate=48000,channels=1 "
        "! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w."
        % args.wav)
    w = pipe.get_by_name("w")
    loop = GLib.MainLoop()
    # The file starts when the call does (as aiortc's player does): held before the pacer until connected.
    pace_pad = pipe.get_by_name("hold").get_static_pad("src")
    hold = pace_pad.add_probe(Gst.PadProbeType.BLOCK | Gst.PadProbeType.BUFFER,  # caps pass: the offer needs them
                              lambda *_: Gst.PadProbeReturn.OK)
    state = {"gathered": threading.Event(), "connected": False}

    def on_pad(_w, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        rec = Gst.parse_bin_from_description(
            "rtpopusdepay ! opusdec ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
            "! wavenc ! filesink location=%s" % args.out, True)
        pipe.add(rec)
        rec.sync_state_with_parent()
        pad.link(rec.get_static_pad("sink"))
        state["rec"] = rec
        log("receiving", pad.get_current_caps().to_string() if pad.get_current_caps() else "")

    def on_state(_w, _p):
        s = w.get_property("connection-state")
        log("connection", s.value_nick)
        if s == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and not state["connected"]:
            state["connected"] = True
            # The held file's timestamps start at 0 but the pipeline has run since PLAYING: shift them to
            # now (an offset on a source pad moves the segment it sends), or the pacer lets the first
            # seconds out in one burst, which parley then plays 5 % fast for seconds to shed.
            pace_pad.set_offset(pipe.get_clock().get_time() - pipe.get_base_time())
            pace_pad.remove_probe(hold)
            say("connected")
            GLib.timeout_add(int(args.seconds * 1000), finish)

    def on_gathering(_w, _p):
        if w.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            state["gathered"].set()

    def local_sdp_when_gathered():
        def wait():
            state["gathered"].wait(15)
            GLib.idle_add(emit_local)
        threading.Thread(target=wait, daemon=True).start()

    def emit_local():
        desc = w.get_property("local-description")
        say(desc.sdp.as_text() + "END")
        if args.role == "offer":
            threading.Thread(target=take_answer, daemon=True).start()
        return False

    def take_answer():
        text = read_sdp()
        GLib.idle_add(set_remote, text, GstWebRTC.WebRTCSDPType.ANSWER, None)

    def set_remote(text, kind, then):
        _, msg = GstSdp.SDPMessage.new_from_text(text)
        desc = GstWebRTC.WebRTCSessionDescription.new(kind, msg)
        promise = Gst.Promise.new_with_change_func(lambda p: then() if then else None) if then else Gst.Promise.new()
        w.emit("set-remote-description", desc, promise)
        return False

    def on_created(promise, kind):
        reply = promise.get_reply()
        desc = reply.get_value(kind)
        w.emit("set-local-description", desc, Gst.Promise.new())
        local_sdp_when_gathered()

    def create_answer():
        w.emit("create-answer", None, Gst.Promise.new_with_change_func(on_created, "answer"))

    def finish():
        if args.end == "hang":
            say("hanging")
            return False
        # EOS from the source: the RTP session marks its source BYE and sends it in RTCP (RFC 3550).
        # EOS to the recorder finalises its WAV header.
        pipe.send_event(Gst.Event.new_eos())
        rec = state.get("rec")
        if rec is not None:
            rec.get_static_pad("sink").send_event(Gst.Event.new_eos())
        GLib.timeout_add(1000, stop)
        return False

    def stop():
        pipe.set_state(Gst.State.NULL)
        say("closed")
        loop.quit()
        return False

    w.connect("pad-added", on_pad)
    w.connect("notify::connection-state", on_state)
    w.connect("notify::ice-gathering-state", on_gathering)
    pipe.set_state(Gst.State.PLAYING)
    if args.role == "offer":
        # The pacer holds the first buffer, so no caps reach webrtcbin and it would never want to
        # negotiate: name the codec on the transceiver and offer at once.
        trans = w.emit("get-transceiver", 0)
        trans.set_property("codec-preferences", Gst.Caps.from_string(
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"))
        GLib.idle_add(lambda: w.emit("create-offer", None,
                                     Gst.Promise.new_with_change_func(on_created, "offer")) and False)
    else:
        offer = read_sdp()
        set_remote(offer, GstWebRTC.WebRTCSDPType.OFFER, create_answer)
    GLib.timeout_add(60000, lambda: (say("not connected"), loop.quit()) and False)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
