#!/usr/bin/python3
"""aiortc_peer.py: an independent WebRTC endpoint (aiortc: its own ICE, DTLS-SRTP, RTP and Opus) for
parley's interop tests.

One call, signalled through files: with --offer it writes its offer to --sdp-out and waits for the
answer in --sdp-in; with --answer it waits for the offer in --sdp-in and writes its answer to --sdp-out.
(aiortc gathers every candidate before it hands out a description, so nothing is trickled.) It sends
--play (a WAV file, looped) as its microphone and records what it receives to --record (WAV). It ends
after --duration seconds with a clean close (DTLS close_notify, RTCP BYE), or never closes when
--no-close is given, so the test can kill it instead.

Every state change goes to stdout as one JSON line with the seconds since start, for the test to read:
  {"t": 1.234, "event": "connectionState", "value": "connected"}
Exit status: 0 after a call that connected, 1 if it never connected, 2 on bad arguments.

aiortc skips loopback addresses when it gathers, so run it in a network namespace with a veth.
"""
import argparse
import asyncio
import json
import os
import sys
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRecorder

T0 = time.monotonic()


def say(event, value):
    print(json.dumps({"t": round(time.monotonic() - T0, 3), "event": event, "value": value}), flush=True)


async def wait_for_file(path, timeout):
    """The contents of path once a writer has finished it (written to path.tmp and renamed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if text.strip():
                return text
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no description in {path} after {timeout} s")


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


async def run(args):
    pc = RTCPeerConnection()
    connected = asyncio.Event()
    done = asyncio.Event()

    @pc.on("connectionstatechange")
    async def on_connection_state():
        say("connectionState", pc.connectionState)
        if pc.connectionState == "connected":
            connected.set()
        if pc.connectionState in ("failed", "closed"):
            done.set()

    @pc.on("iceconnectionstatechange")
    async def on_ice_state():
        say("iceConnectionState", pc.iceConnectionState)

    recorder = MediaRecorder(args.record) if args.record else None

    @pc.on("track")
    def on_track(track):
        say("track", track.kind)
        if recorder:
            recorder.addTrack(track)

        @track.on("ended")
        async def on_ended():
            say("trackEnded", track.kind)

    player = MediaPlayer(args.play, loop=True) if args.play else None
    if player:
        pc.addTrack(player.audio)
    else:
        pc.addTransceiver("audio", direction="recvonly")

    if args.offer:
        await pc.setLocalDescription(await pc.createOffer())
        write_atomic(args.sdp_out, pc.localDescription.sdp)
        say("signalingState", pc.signalingState)
        answer = await wait_for_file(args.sdp_in, args.timeout)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    else:
        offer = await wait_for_file(args.sdp_in, args.timeout)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        write_atomic(args.sdp_out, pc.localDescription.sdp)
    say("signalingState", pc.signalingState)
    if recorder:
        await recorder.start()

    try:
        await asyncio.wait_for(connected.wait(), args.timeout)
    except asyncio.TimeoutError:
        say("error", "never connected")
        await pc.close()
        return 1
    try:
        await asyncio.wait_for(done.wait(), args.duration)  # the peer may end it first
    except asyncio.TimeoutError:
        pass
    if args.no_close:
        await asyncio.sleep(3600)  # the test kills us
    if recorder:
        await recorder.stop()
    await pc.close()
    say("closed", True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--offer", action="store_true", help="make the offer")
    role.add_argument("--answer", action="store_true", help="answer an offer")
    p.add_argument("--sdp-in", required=True, help="the peer's description (waited for)")
    p.add_argument("--sdp-out", required=True, help="ours")
    p.add_argument("--play", help="WAV file to send, looped")
    p.add_argument("--record", help="WAV file for what arrives")
    p.add_argument("--duration", type=float, default=5.0, help="seconds connected before closing")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the peer")
    p.add_argument("--no-close", action="store_true", help="never close: wait to be killed")
    args = p.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
