#!/usr/bin/python3
"""aiortc_peer.py: an aiortc (independent Python WebRTC stack: its own ICE, DTLS, SRTP and RTP) peer
for tests/test_interop_aiortc.c. It sends a WAV file as Opus and records what it hears into a WAV file.

stdio protocol: with --role offer it writes its SDP offer, then a line END, and reads the answer up to
a line END; with --role answer it reads the offer up to END and writes its answer and END. Then it
writes "connected" when its peer connection is, and after --seconds of call either closes the
connection (--end close: DTLS close_notify and RTCP BYE) and writes "closed", or (--end hang) writes
"hanging" and waits to be killed, or (--end dtls-close) closes only its DTLS transport (close_notify, no
RTCP BYE), writes "dtls-closed" and waits to be killed. Progress goes to stderr.
"""
import argparse
import asyncio
import sys

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRecorder

from peer_stdio import read_sdp, say


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["offer", "answer"], required=True)
    ap.add_argument("--wav", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--end", choices=["close", "hang", "dtls-close"], default="close")
    args = ap.parse_args()

    pc = RTCPeerConnection()
    player = MediaPlayer(args.wav)
    recorder = MediaRecorder(args.out)
    pc.addTrack(player.audio)
    connected = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        recorder.addTrack(track)

    @pc.on("connectionstatechange")
    def on_state():
        print("aiortc_peer: connection", pc.connectionState, file=sys.stderr)
        if pc.connectionState == "connected":
            connected.set()

    loop = asyncio.get_running_loop()
    if args.role == "offer":
        await pc.setLocalDescription(await pc.createOffer())
        say(pc.localDescription.sdp + "END")
        answer = await loop.run_in_executor(None, read_sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    else:
        offer = await loop.run_in_executor(None, read_sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        say(pc.localDescription.sdp + "END")
    await recorder.start()
    try:
        await asyncio.wait_for(connected.wait(), 15)
    except asyncio.TimeoutError:
        say("not connected: " + pc.connectionState)
        await recorder.stop()
        await pc.close()
        return 1
    say("connected")
    await asyncio.sleep(args.seconds)
    if args.end == "hang":
        say("hanging")
        await asyncio.sleep(600)
    if args.end == "dtls-close":
        await pc.getTransceivers()[0].sender.transport.stop()
        say("dtls-closed")
        await asyncio.sleep(600)
    await recorder.stop()
    await pc.close()
    say("closed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
