#!/usr/bin/python3
"""aioice_peer.py: an independent ICE agent (aioice, the ICE library under aiortc) for parley's interop
tests (tests/test_interop_ice.c). It does ICE only: it watches what parley sends on the wire (STUN
requests and their attributes, RTP headers) and checks parley's answers; it never decrypts media.

aioice skips loopback addresses, so the test runs this script in a network namespace of its own with a
veth pair (10.77.0.1 and 10.77.0.2).

Modes (--role is this peer's ICE role; the offerer controls):
  controlling  offers; aioice nominates as it does (aggressive: USE-CANDIDATE on every check).
               --check-delay S: aioice answers parley's checks but starts its own (which nominate)
               only S seconds after it has parley's answer, so parley's media on a valid pair before
               nomination can be seen.
  controlled   answers parley's offer; parley nominates.
After ICE completes: --consent N authenticated binding requests on the selected pair, 0.1 s apart (as
RFC 7675 consent checks), each must be answered; --flood N:K (repeatable) N unauthenticated binding
requests (wrong password) from K sockets, counting parley's error replies over the next second; then --hold seconds answering
parley's checks, or until stdin closes.

stdio: the offer (or answer) then a line END; reads the other side up to a line END; when ICE is done
writes "CONNECTED ip port" (its end of the selected pair); at the end a line "RESULT {json}" (the wire log) and a line "SUMMARY k=v ..."
(the figures the test asserts), then waits for one more line (or end of file) before it closes. Every wait is bounded.
"""
import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time

import aioice
from aioice import stun
from aioice.ice import StunProtocol

T0 = time.monotonic()
log = {"requests": [], "rtp": [], "use_candidate_sent": None}


def now():
    return time.monotonic() - T0


def watch_wire():
    """Records every STUN request and RTP packet aioice's sockets receive, then lets aioice handle it."""
    original = StunProtocol.datagram_received

    def datagram_received(self, data, addr):
        try:
            msg = stun.parse_message(data)
        except ValueError:
            msg = None
        if msg is not None and msg.message_class == stun.Class.REQUEST:
            log["requests"].append({
                "t": now(), "tid": msg.transaction_id.hex(), "src": list(addr),
                "dst": [self.local_candidate.host, self.local_candidate.port],
                "use_candidate": "USE-CANDIDATE" in msg.attributes,
                "controlling": "ICE-CONTROLLING" in msg.attributes,
                "controlled": "ICE-CONTROLLED" in msg.attributes})
        elif msg is None and len(data) >= 12 and data[0] >> 6 == 2 and not 64 <= (data[1] & 0x7F) < 96:
            log["rtp"].append({"t": now(), "pt": data[1] & 0x7F, "seq": int.from_bytes(data[2:4], "big"),
                               "ssrc": data[8:12].hex(), "src": list(addr)})
        return original(self, data, addr)

    StunProtocol.datagram_received = datagram_received


def note_nomination():
    """Records when aioice first sends USE-CANDIDATE."""
    original = StunProtocol.request

    async def request(self, request, addr, integrity_key=None, retransmissions=None):
        if "USE-CANDIDATE" in request.attributes and log["use_candidate_sent"] is None:
            log["use_candidate_sent"] = now()
        return await original(self, request, addr, integrity_key=integrity_key, retransmissions=retransmissions)

    StunProtocol.request = request


def sdp(conn, key_b64):
    host = conn.local_candidates[0].host
    lines = ["v=0", f"o=- {int.from_bytes(os.urandom(4), 'big')} 1 IN IP4 {host}", "s=aioice", "t=0 0",
             f"m=audio {conn.local_candidates[0].port} RTP/SAVPF 111", f"c=IN IP4 {host}",
             f"a=ice-ufrag:{conn.local_username}", f"a=ice-pwd:{conn.local_password}",
             "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
             "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key_b64]
    lines += ["a=candidate:" + c.to_sdp() for c in conn.local_candidates]
    lines += ["a=end-of-candidates", "a=rtcp-mux", "a=sendrecv", ""]
    return "\r\n".join(lines)


def read_until_end(deadline):
    lines = []
    while time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line or line.strip() == "END":
            break
        lines.append(line.strip())
    return lines


async def apply_remote(conn, lines):
    for line in lines:
        if line.startswith("a=ice-ufrag:"):
            conn.remote_username = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            conn.remote_password = line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            cand = aioice.Candidate.from_sdp(line[len("a=candidate:"):])
            if cand.transport.lower() == "udp" and ":" not in cand.host:
                await conn.add_remote_candidate(cand)
    await conn.add_remote_candidate(None)
    if not conn.remote_username or not conn.remote_password or not conn.remote_candidates:
        raise SystemExit("aioice_peer: parley's description lacks ICE credentials or an IPv4 candidate")


async def consent_checks(conn, n):
    """n binding requests on the selected pair as RFC 7675 consent checks (no USE-CANDIDATE, one
    transmission each); returns how many parley answered with a valid, authenticated response."""
    pair = conn._nominated[1]
    answered = 0
    for _ in range(n):
        req = conn.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(req, pair.remote_addr, integrity_key=conn.remote_password.encode(),
                                        retransmissions=0)
            answered += 1
        except stun.TransactionError:
            pass
        await asyncio.sleep(0.1)
    return answered


async def flood(target, n, sources):
    """n binding requests signed with a wrong password, spread over `sources` source addresses, as fast
    as they go; returns (error replies, other replies, seconds taken)."""
    socks = []
    for i in range(sources):
        # parley's budget is per source address: each source gets one of its own, added to our end of
        # the veth pair now (after gathering, so no candidate uses it)
        addr = f"10.77.1.{i + 1}"
        if subprocess.run(["ip", "addr", "replace", f"{addr}/32", "dev", "pv1"]).returncode != 0:
            raise SystemExit(f"aioice_peer: cannot add {addr}")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        s.setblocking(False)
        socks.append(s)
    start = time.monotonic()
    for i in range(n):
        req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        req.attributes["USERNAME"] = "nobody:flood"
        req.attributes["PRIORITY"] = 1
        req.attributes["ICE-CONTROLLED"] = 1
        req.add_message_integrity(b"not-the-password")  # and FINGERPRINT
        socks[i % sources].sendto(bytes(req), target)
    took = time.monotonic() - start
    errors = others = 0
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        got = False
        for s in socks:
            try:
                data, _ = s.recvfrom(2048)
            except BlockingIOError:
                continue
            got = True
            try:
                msg = stun.parse_message(data)
            except ValueError:
                others += 1
                continue
            if msg.message_class == stun.Class.ERROR and msg.attributes.get("ERROR-CODE", (0,))[0] >= 400:
                errors += 1
            else:
                others += 1
        if not got:
            await asyncio.sleep(0.01)
    for s in socks:
        s.close()
    return errors, others, took


def summary(r):
    """The figures the C test asserts, as integers (-1: not applicable)."""
    reqs, rtp = r["requests"], r["rtp"]
    out = {"connected": int(r["connected"]), "parley_candidates": r["parley_candidates"],
           "requests": len(reqs), "rtp": len(rtp),
           "rtp_ssrcs": len({p["ssrc"] for p in rtp}), "rtp_pt111": sum(p["pt"] == 111 for p in rtp),
           "controlling_requests": sum(q["controlling"] for q in reqs),
           "controlled_requests": sum(q["controlled"] for q in reqs),
           "consent_sent": r.get("consent_sent", 0), "consent_answered": r.get("consent_answered", 0)}
    nominations = [q for q in reqs if q["use_candidate"]]
    if nominations:
        first = nominations[0]
        # parley's plain checks on the pair it nominated, before the nomination, and its checks on other
        # pairs between its first check on that pair and the nomination (retransmissions of one check
        # share its transaction id)
        on_pair = [q for q in reqs if q["t"] < first["t"] and not q["use_candidate"] and
                   q["src"] == first["src"] and q["dst"] == first["dst"]]
        out["plain_checks_on_pair_before_nomination"] = len({q["tid"] for q in on_pair})
        t_first = on_pair[0]["t"] if on_pair else first["t"]
        out["other_checks_until_nomination"] = len({q["tid"] for q in reqs if t_first < q["t"] < first["t"] and
                                                    (q["src"], q["dst"]) != (first["src"], first["dst"])})
        out["nomination_after_pair_check_us"] = int((first["t"] - t_first) * 1e6)
    else:
        out["plain_checks_on_pair_before_nomination"] = -1
    t_nom = r.get("use_candidate_sent")
    out["rtp_before_nomination"] = sum(p["t"] < t_nom for p in rtp) if t_nom is not None else -1
    if r["connected"]:
        out["requests_after_connected"] = sum(q["t"] > r["t_connected"] and not q["use_candidate"] for q in reqs)
    for i, f in enumerate(r.get("floods", [])):
        out[f"flood{i}_sent"] = f["sent"]
        out[f"flood{i}_sources"] = f["sources"]
        out[f"flood{i}_errors"] = f["error_replies"]
        out[f"flood{i}_others"] = f["other_replies"]
        out[f"flood{i}_ms"] = int(f["seconds"] * 1000 + 0.5)
    if "consent_after_flood" in r:
        out["consent_after_flood"] = r["consent_after_flood"]
    return out


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["controlling", "controlled"], required=True)
    ap.add_argument("--check-delay", type=float, default=0.0)
    ap.add_argument("--consent", type=int, default=0)
    ap.add_argument("--flood", action="append", default=[], metavar="N:SOURCES")
    ap.add_argument("--hold", type=float, default=0.0)
    args = ap.parse_args()
    if os.environ.get("AIOICE_PEER_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG)
    watch_wire()
    note_nomination()
    conn = aioice.Connection(ice_controlling=args.role == "controlling", use_ipv6=False)
    await conn.gather_candidates()
    key = base64.b64encode(os.urandom(30)).decode()
    deadline = time.monotonic() + 20
    if args.role == "controlling":
        print(sdp(conn, key) + "END", flush=True)
        remote = read_until_end(deadline)
    else:
        remote = read_until_end(deadline)
    await apply_remote(conn, remote)
    if args.role == "controlled":
        print(sdp(conn, key) + "END", flush=True)
    result = {"connected": False, "parley_candidates": len(conn.remote_candidates)}
    # Until connect(), aioice answers parley's checks but sends none of its own.
    await asyncio.sleep(args.check_delay)
    try:
        await asyncio.wait_for(conn.connect(), 10)
        result["connected"] = True
        result["t_connected"] = now()
        pair = conn._nominated[1]
        result["selected"] = {"local": list(pair.local_addr), "remote": list(pair.remote_addr)}
        print(f"CONNECTED {pair.local_addr[0]} {pair.local_addr[1]}", flush=True)
    except (ConnectionError, asyncio.TimeoutError) as exc:
        result["error"] = str(exc) or type(exc).__name__
    if result["connected"] and args.consent:
        result["consent_sent"] = args.consent
        result["consent_answered"] = await consent_checks(conn, args.consent)
    if result["connected"] and args.flood:
        result["floods"] = []
        for spec in args.flood:
            n, sources = (int(x) for x in spec.split(":"))
            errors, others, took = await flood(conn._nominated[1].remote_addr, n, sources)
            result["floods"].append({"sent": n, "sources": sources, "error_replies": errors,
                                     "other_replies": others, "seconds": took})
        # parley still answers the call's own checks right after the floods
        result["consent_after_flood"] = await consent_checks(conn, 3)
    if args.hold > 0:
        await asyncio.sleep(args.hold)
    result.update(log)
    print("RESULT " + json.dumps(result), flush=True)
    if os.environ.get("AIOICE_PEER_LOG"):
        with open(os.environ["AIOICE_PEER_LOG"], "w") as f:
            json.dump(result, f, indent=1)
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in summary(result).items()), flush=True)
    # Stay (answering) until the test has read its side, so closing cannot disturb what it checks.
    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline), 10)
    await conn.close()
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
