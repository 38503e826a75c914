"""peer_stdio.py: the stdio side of the WebRTC interop peers (aiortc_peer.py, webrtcbin_peer.py):
an SDP read from stdin up to a line END, and one line said on stdout at once."""
import sys


def read_sdp():
    lines = []
    for line in sys.stdin:
        if line.startswith("END"):
            return "".join(lines)
        lines.append(line)
    sys.exit("%s: stdin ended before END" % sys.argv[0])


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
