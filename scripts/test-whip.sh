#!/bin/sh
# test-whip.sh BUILD: parley-call serve (WHIP, RFC 9725) and parley-call whip end to end on 127.0.0.1
# (about 40 s), with curl as an independent HTTP client:
#  1. serve --echo and whip --in/--out: the caller hears its own tone back at a steady level; DELETE
#     on the Location ends the server's call (200), and the server logs closed; whip --restart-at 2:
#     an ICE restart by PATCH, answered (200, the server logs it), a new pair selected on both sides,
#     and the echo keeps coming at its level through and after it; a restart refused (503) or answered
#     with no fragment (a proxy in front of serve): the caller says why and the call goes on;
#  2. curl drives the protocol with a parley offer: 201 with Location, ETag and an SDP answer (the
#     offerer's call then connects); the call's event stream (SSE) carries parley's events; PATCH
#     trickle 204, stale ETag 412, wrong type 415; an ICE restart (If-Match "*", new credentials): 200
#     with parley's new credentials and candidates as a fragment and a new ETag, the old one then 412,
#     without credentials 400; DELETE 200, then 404;
#  3. bad requests: wrong Content-Type 415, no/garbage SDP 400, wrong method 405, unknown call 404,
#     oversized body 413; the page, its script and 404 for the rest;
#     SIGTERM mid-call with the call's event stream open: the caller gets a BYE, the stream ends, exit 0;
#  4. --max-calls: two calls at once, a third gets 503 with Retry-After;
#  5. with chromium installed: the page runs headless (?auto=1), calls, and POSTs its report to
#     /report with no script errors (the call itself needs DTLS-SRTP, issue 10).
# Every step runs under `timeout`. Exits non-zero on the first failure.
set -eu
build=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
tool="$build/bin/parley-call"
[ -x "$tool" ] || { echo "test-whip: $tool not built" >&2; exit 1; }
command -v curl >/dev/null || { echo "test-whip: curl not installed (scripts/install-deps.sh)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/parley-whip.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  # Chromium's helper processes may still be closing their profile files for a moment.
  rm -rf "$tmp" 2>/dev/null || { sleep 1; rm -rf "$tmp"; } || true
}
trap cleanup EXIT INT TERM
fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
pass() { echo "ok: $*"; }

. scripts/wav-lib.sh # wav_tone, wav_windows
. scripts/serve-lib.sh # wait_for, serve
# stop_serve: SIGTERM, which must end it cleanly (exit 0: under ASan no leak or error either).
stop_serve() {
  t0=$(date +%s%N)
  kill -TERM "$serve_pid" 2>/dev/null || true
  rc=0
  wait "$serve_pid" || rc=$?
  echo "serve: SIGTERM -> exit $rc after $((($(date +%s%N) - t0) / 1000000)) ms"
  [ "$rc" = 0 ] || fail "serve exited $rc on SIGTERM"
}
# status METHOD PATH [curl args...]: prints the HTTP status only.
status() {
  m=$1
  p=$2
  shift 2
  timeout -k 5 10 curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$m" "$@" "$url$p"
}
expect() { # expect WANT GOT WHAT
  [ "$1" = "$2" ] || fail "$3: HTTP $2, want $1 ($(head -c 200 "$tmp/body"))"
  pass "$3: $1 $(head -n 1 "$tmp/body" | head -c 80)"
}

wav_tone "$tmp/tone.wav" 5

echo "== 1. parley-call whip -> parley-call serve --echo"
serve "$tmp/serve1.log" --echo
timeout -k 5 40 "$tool" whip "$url/whip" --loopback-only --in "$tmp/tone.wav" --in-end hangup --out "$tmp/heard.wav" --no-aec --no-ns \
  > "$tmp/whip1.log" 2>&1 || fail "whip call exited $?"
grep -q 'track-started' "$tmp/whip1.log" || fail "the whip caller's track never started"
grep -q "^whip: DELETE $url/whip/[0-9a-f]*: 200" "$tmp/whip1.log" || fail "DELETE on the Location was not 200"
wait_for 60 "the server's call did not close" grep -q ': closed$' "$tmp/serve1.log"
# The echo comes back (the caller without canceller and suppressor, which would remove it): from 0.5 s
# after it arrives, three 1 s windows at the tone's level (each 0.2 of full scale: -11 dBFS RMS; the
# codec and the echo path take a few dB), within 3 dB of each other.
wav_windows "$tmp/heard.wav" 4800 > "$tmp/windows"
first=$(awk '$1 > -40 {print NR; exit}' "$tmp/windows")
[ -n "$first" ] || fail "no echo came back"
wav_windows "$tmp/heard.wav" 48000 $((4800 * (first + 5))) | head -n 3 > "$tmp/levels"
[ "$(wc -l < "$tmp/levels")" -eq 3 ] || fail "the echo lasted less than 3.5 s"
awk 'NR == 1 {lo = hi = $1} {if ($1 < lo) lo = $1; if ($1 > hi) hi = $1} END {exit !(lo > -18 && hi < -8 && hi - lo < 3)}' \
  "$tmp/levels" || fail "the echo's level is not steady near -11 dBFS: $(tr '\n' ' ' < "$tmp/levels")"
pass "whip call: the caller hears its tone back ($(sort -n "$tmp/levels" | sed -n '1p;$p' | tr '\n' ' ')dBFS), DELETE 200, server closed"
wav_tone "$tmp/tone7.wav" 7
timeout -k 5 40 "$tool" whip "$url/whip" --loopback-only --in "$tmp/tone7.wav" --in-end hangup --out "$tmp/heard2.wav" \
  --no-aec --no-ns --restart-at 2 > "$tmp/whip1r.log" 2>&1 || fail "whip call with --restart-at exited $?"
id=$(sed -n 's|^whip: http://.*/whip/\([0-9a-f]*\)$|\1|p' "$tmp/whip1r.log")
grep -q "^call $id: ICE restart$" "$tmp/serve1.log" || fail "the server logged no ICE restart for call $id"
grep -q ' A  whip: ICE restart answered (PATCH 200, ufrag [^ ]*, ETag "[0-9a-f]*")$' "$tmp/whip1r.log" ||
  fail "the caller's timeline shows no answered restart"
# Each side selected a second pair: the restart's checks ran with the new credentials both ways.
grep -q 'ICE pairs selected 2$' "$tmp/whip1r.log" || fail "the caller selected no new pair after the restart"
wait_for 60 "the server's restarted call did not close" grep -q "^call $id: closed" "$tmp/serve1.log"
grep -q 'ICE pairs selected 2$' "$tmp/serve1.log" || fail "the server selected no new pair after the restart"
# The echo, in 0.1 s windows from 0.5 s after it arrives to 5.5 s (the restart comes at about 2 s):
# none drops out (below -30 dBFS), and 1 s windows from 2.5 s on stay at the tone's level.
wav_windows "$tmp/heard2.wav" 4800 > "$tmp/windows2"
first=$(awk '$1 > -40 {print NR; exit}' "$tmp/windows2")
[ -n "$first" ] || fail "no echo came back in the restarted call"
awk -v a=$((first + 5)) -v b=$((first + 55)) 'NR >= a && NR < b && $1 < -30 {bad++} NR >= b {n++} END {exit bad || !n}' \
  "$tmp/windows2" || fail "the echo dropped out around the restart (or ended before 5.5 s)"
wav_windows "$tmp/heard2.wav" 48000 $((4800 * (first + 25))) | head -n 3 > "$tmp/levels2"
[ "$(wc -l < "$tmp/levels2")" -eq 3 ] || fail "the echo after the restart lasted less than 3 s"
awk 'NR == 1 {lo = hi = $1} {if ($1 < lo) lo = $1; if ($1 > hi) hi = $1} END {exit !(lo > -18 && hi < -8 && hi - lo < 3)}' \
  "$tmp/levels2" || fail "the echo after the restart is not steady near -11 dBFS: $(tr '\n' ' ' < "$tmp/levels2")"
pass "whip --restart-at 2: $(grep -o 'ICE restart answered.*' "$tmp/whip1r.log"), a new pair on both sides, the echo steady after it ($(sort -n "$tmp/levels2" | sed -n '1p;$p' | tr '\n' ' ')dBFS)"
# A restart the server refuses (503), or answers with a 200 that is no fragment, through a proxy that
# forwards the rest: the caller says why, and the call goes on to its end on the old pair.
cat > "$tmp/proxy.py" <<'EOF'
import http.server, sys, urllib.error, urllib.request
up, mode = sys.argv[1], sys.argv[2]
class Proxy(http.server.BaseHTTPRequestHandler):
    def reply(self, code, headers, data):
        self.send_response(code)
        for k in ("Content-Type", "Location", "ETag"):
            if headers.get(k):
                self.send_header(k, headers[k])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req = urllib.request.Request(up + self.path, data=body or None, method=self.command,
                                     headers={"Content-Type": self.headers.get("Content-Type", "")})
        try:
            r = urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            r = e
        self.reply(r.status, r.headers, r.read())
    do_POST = do_DELETE = forward
    def do_PATCH(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if mode == "refuse":
            self.reply(503, {"Content-Type": "text/plain"}, b"restarts are off today\n")
        else:
            self.reply(200, {"Content-Type": "application/trickle-ice-sdpfrag"}, b"a=end-of-candidates\r\n")
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
print("proxy at http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
EOF
for mode in refuse garble; do
  timeout -k 5 60 /usr/bin/python3 "$tmp/proxy.py" "$url" $mode > "$tmp/proxy_$mode.log" 2>&1 &
  proxy_pid=$!
  pids="$pids $proxy_pid"
  wait_for 100 "the proxy did not start" grep -q '^proxy at' "$tmp/proxy_$mode.log"
  proxy=$(sed -n 's/^proxy at //p' "$tmp/proxy_$mode.log")
  timeout -k 5 40 "$tool" whip "$proxy/whip" --loopback-only --duration 4 --restart-at 1 > "$tmp/whip1_$mode.log" 2>&1 ||
    fail "whip call with a $mode restart exited $?"
  kill "$proxy_pid" 2>/dev/null || true
  case $mode in
  refuse) why='^parley-call: whip ICE restart: HTTP 503: restarts are off today$' ;;
  *) why='^parley-call: whip ICE restart: the 200.s body is not a fragment with a=ice-ufrag and a=ice-pwd' ;;
  esac
  grep -q "$why" "$tmp/whip1_$mode.log" || fail "the caller did not say why the $mode restart failed"
  if grep -q 'ICE restart answered' "$tmp/whip1_$mode.log"; then fail "a $mode restart counted as answered"; fi
  grep -q 'ICE pairs selected 1$' "$tmp/whip1_$mode.log" && grep -q "^whip: DELETE $proxy/whip/[0-9a-f]*: 200" \
    "$tmp/whip1_$mode.log" || fail "the call did not go on to its end after the $mode restart"
  if sed '/^stats at/q' "$tmp/whip1_$mode.log" | grep -q 'track-stopped\|interrupted'; then fail "the caller's track stopped after the $mode restart"; fi
  pass "a $mode restart: '$(grep -o 'whip ICE restart: .*' "$tmp/whip1_$mode.log" | head -c 80)', the call went on to its DELETE"
done
stop_serve

echo "== 2. curl as the WHIP client, parley-call offer as the browser"
serve "$tmp/serve2.log" --echo --max-calls 1
timeout -k 5 40 "$tool" offer --loopback-only --sdp-out "$tmp/offer.sdp" --sdp-in "$tmp/answer.sdp" --duration 0 \
  > "$tmp/offer.log" 2>&1 &
offer_pid=$!
pids="$pids $offer_pid"
wait_for 100 "parley-call offer wrote no offer" test -s "$tmp/offer.sdp"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary "@$tmp/offer.sdp")
expect 201 "$code" "POST /whip with a parley offer"
location=$(tr -d '\r' < "$tmp/headers" | sed -n 's/^[Ll]ocation: //p')
etag=$(tr -d '\r' < "$tmp/headers" | sed -n 's/^[Ee][Tt]ag: //p')
ctype=$(tr -d '\r' < "$tmp/headers" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
case $location in /whip/*) ;; *) fail "Location '$location' is not /whip/ID" ;; esac
[ -n "$etag" ] || fail "no ETag"
[ "$ctype" = application/sdp ] || fail "answer Content-Type '$ctype'"
head -n 1 "$tmp/body" | grep -q '^v=0' || fail "the 201's body is not an SDP"
cp "$tmp/body" "$tmp/answer.tmp" && mv "$tmp/answer.tmp" "$tmp/answer.sdp"
wait_for 200 "the offerer's call did not start with the WHIP answer" grep -q 'track-started' "$tmp/offer.log"
pass "201: Location $location, ETag $etag, application/sdp answer; the offerer's call started"
id=${location#/whip/}
timeout -k 5 10 curl -s -N --max-time 1 "$url/events/$id" > "$tmp/events" || true
grep -q '^data: {"t":[0-9]*,"wall":[0-9]*,"event":"track-started"' "$tmp/events" || fail "the event stream has no track-started"
grep -q '"event":"server","text":"answer sent"' "$tmp/events" || fail "the event stream has no 'answer sent'"
pass "GET /events/ID: $(grep -c '^data:' "$tmp/events") events, track-started among them"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary "@$tmp/offer.sdp")
[ "$code" = 503 ] && grep -qi '^retry-after:' "$tmp/headers" || fail "a second call with --max-calls 1: HTTP $code, want 503 + Retry-After"
pass "busy: 503 with Retry-After"
frag="a=mid:0
a=end-of-candidates"
code=$(status PATCH "$location" -H 'Content-Type: text/plain' --data-binary "$frag")
expect 415 "$code" "PATCH with a wrong type"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H 'If-Match: "stale"' --data-binary "$frag")
expect 412 "$code" "PATCH with a stale ETag"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H "If-Match: $etag" --data-binary "$frag")
expect 204 "$code" "PATCH trickle (end-of-candidates)"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H "If-Match: $etag" \
  --data-binary "a=candidate:not a candidate")
expect 400 "$code" "PATCH with a bad candidate"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H 'If-Match: *' --data-binary "$frag")
expect 400 "$code" "PATCH If-Match * without new credentials"
restart="a=ice-ufrag:rst1
a=ice-pwd:restartpassword0123456789
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=mid:0
a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host
a=end-of-candidates"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H 'If-Match: *' --data-binary "$restart")
expect 200 "$code" "PATCH If-Match * (ICE restart)"
tr -d '\r' < "$tmp/headers" | grep -qi '^content-type: application/trickle-ice-sdpfrag$' || fail "the restart's answer is not a fragment"
etag2=$(tr -d '\r' < "$tmp/headers" | sed -n 's/^[Ee][Tt]ag: //p')
[ -n "$etag2" ] && [ "$etag2" != "$etag" ] || fail "the restart kept the ETag ($etag2)"
old_ufrag=$(tr -d '\r' < "$tmp/answer.sdp" | sed -n 's/^a=ice-ufrag://p' | head -n 1)
new_ufrag=$(tr -d '\r' < "$tmp/body" | sed -n 's/^a=ice-ufrag://p')
[ -n "$new_ufrag" ] && [ "$new_ufrag" != "$old_ufrag" ] || fail "the restart's ufrag '$new_ufrag' (was '$old_ufrag')"
grep -q '^a=ice-pwd:' "$tmp/body" && grep -q '^a=candidate:.* typ host' "$tmp/body" || fail "the restart's fragment: $(cat "$tmp/body")"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H "If-Match: $etag" --data-binary "$frag")
expect 412 "$code" "PATCH with the ETag from before the restart"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' -H "If-Match: $etag2" --data-binary "$frag")
expect 204 "$code" "PATCH trickle with the restart's ETag"
code=$(status GET "$location")
expect 405 "$code" "GET on a call"
grep -qi '^allow: PATCH, DELETE' "$tmp/headers" || fail "405 without Allow"
code=$(status DELETE "$location")
expect 200 "$code" "DELETE the call"
code=$(status DELETE "$location")
expect 404 "$code" "DELETE it again"
code=$(status PATCH "$location" -H 'Content-Type: application/trickle-ice-sdpfrag' --data-binary "$frag")
expect 404 "$code" "PATCH a deleted call"
wait "$offer_pid" || fail "parley-call offer exited non-zero after the server hung up"
grep -q 'track-stopped (bye)' "$tmp/offer.log" || fail "the offerer saw no BYE after DELETE"
pass "after DELETE the offerer got the BYE and ended"

echo "== 3. bad requests, the page"
code=$(status POST /whip -H 'Content-Type: text/plain' --data-binary "@$tmp/offer.sdp")
expect 415 "$code" "POST /whip as text/plain"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary '')
expect 400 "$code" "POST /whip without a body"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary 'hello')
expect 400 "$code" "POST /whip with garbage"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary "v=0
m=video 9 UDP/TLS/RTP/SAVPF 96")
expect 400 "$code" "POST /whip with an offer parley cannot take"
code=$(status GET /whip)
expect 405 "$code" "GET /whip"
grep -qi '^allow: POST' "$tmp/headers" || fail "405 without Allow"
code=$(status DELETE /whip/0123456789abcdef)
expect 404 "$code" "DELETE an unknown call"
head -c 40000 /dev/zero | tr '\0' 'a' > "$tmp/big"
code=$(status POST /whip -H 'Content-Type: application/sdp' --data-binary "@$tmp/big")
expect 413 "$code" "POST /whip with 40 KB"
code=$(status POST /whip -H 'Content-Type: application/sdp' -H 'Transfer-Encoding: chunked' --data-binary "@$tmp/big")
expect 413 "$code" "POST /whip with 40 KB, chunked"
code=$(status GET /events/0123456789abcdef)
expect 404 "$code" "events of an unknown call"
code=$(status POST /report -H 'Content-Type: text/plain' --data-binary '{}')
expect 415 "$code" "POST /report as text/plain"
code=$(status GET /)
expect 200 "$code" "GET /"
grep -q 'src="call.js"' "$tmp/body" || fail "/ is not the call page"
code=$(status GET /call.js)
expect 200 "$code" "GET /call.js"
grep -qi '^content-type: text/javascript' "$tmp/headers" || fail "call.js is not text/javascript"
code=$(status GET /../CMakeLists.txt --path-as-is)
expect 404 "$code" "GET outside the page"
# Stopping the server mid-call, with the call's event stream open: it hangs up (the caller sees the
# BYE), ends the stream, and exits 0.
timeout -k 5 40 "$tool" whip "$url/whip" --loopback-only --duration 20 > "$tmp/whip3.log" 2>&1 &
whip_pid=$!
pids="$pids $whip_pid"
wait_for 200 "the call before the stop did not start" grep -q 'track-started' "$tmp/whip3.log"
id=$(sed -n 's|^whip: http://.*/whip/\([0-9a-f]*\)$|\1|p' "$tmp/whip3.log")
timeout -k 5 15 curl -s -N "$url/events/$id" > "$tmp/events3" &
curl_pid=$!
pids="$pids $curl_pid"
wait_for 100 "the event stream did not open" grep -q 'track-started' "$tmp/events3"
stop_serve
wait "$curl_pid" || fail "the event stream did not end when the server stopped (curl $?)"
grep -q '"text":"server stopping"' "$tmp/events3" || fail "the event stream did not say the server stopped"
wait "$whip_pid" || fail "the caller exited non-zero after the server stopped"
grep -q 'track-stopped (bye)' "$tmp/whip3.log" || fail "the caller saw no BYE when the server stopped"
pass "SIGTERM mid-call: the caller got the BYE, the event stream ended, serve exited 0"

echo "== 4. two calls at once (--max-calls 2), a third is refused"
serve "$tmp/serve4.log" --echo --max-calls 2
for n in 1 2; do
  timeout -k 5 40 "$tool" whip "$url/whip" --loopback-only --duration 4 --quiet > "$tmp/whip4_$n.log" 2>&1 &
  eval "w$n=$!"
  pids="$pids $!"
done
two_answered() { [ "$(grep -c 'answered' "$tmp/serve4.log")" -ge 2 ]; }
wait_for 100 "two calls were not answered" two_answered
if timeout -k 5 20 "$tool" whip "$url/whip" --loopback-only --duration 1 > "$tmp/whip4_3.log" 2>&1; then
  fail "a third call was taken"
fi
grep -q 'HTTP 503: busy' "$tmp/whip4_3.log" || fail "the third call did not report 503 busy"
wait "$w1" || fail "call 1 failed"
wait "$w2" || fail "call 2 failed"
for n in 1 2; do grep -q 'track-started' "$tmp/whip4_$n.log" || fail "call $n did not start"; done
pass "two concurrent calls connected; the third got '$(grep -o 'HTTP 503.*' "$tmp/whip4_3.log")'"
stop_serve

echo "== 5. the page in headless Chromium"
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "skip: chromium is not installed (apt-get install chromium)"
else
  serve "$tmp/serve5.log" --echo --report "$tmp/report.json"
  timeout -k 5 60 "$chromium" --headless=new --no-sandbox --user-data-dir="$tmp/chromium" \
    --use-fake-ui-for-media-stream --use-fake-device-for-media-stream --autoplay-policy=no-user-gesture-required \
    --allow-loopback-in-peer-connection "$url/?auto=1&seconds=3" > "$tmp/chromium.log" 2>&1 &
  chromium_pid=$!
  pids="$pids $chromium_pid"
  wait_for 800 "the page posted no report within 40 s" test -s "$tmp/report.json"
  kill "$chromium_pid" 2>/dev/null || true
  wait "$chromium_pid" 2>/dev/null || true
  /usr/bin/python3 - "$tmp/report.json" <<'EOF' || fail "the page's report"
import json, sys
rep = json.loads(open(sys.argv[1]).readline())
assert rep["errors"] == [], "script errors: %s" % rep["errors"]
assert any("POST /whip" in e["text"] for e in rep["timeline"]), "the page never POSTed its offer"
assert len(rep["micDb"]) > 0, "no microphone level measured"
if rep["ok"]:  # a browser call (DTLS-SRTP): both sides saw media
    assert any(e["event"] == "track-started" for e in rep["parley"]), "parley never saw the page's track"
    assert rep["stats"].get("packetsReceived", 0) > 0, "the page received no RTP"
    print("page: connected; %d parley events, inbound %s" % (len(rep["parley"]), rep["stats"]))
else:
    print("page: no call (%s); its script ran without errors and reported" % rep["error"])
EOF
  pass "headless Chromium ran the page and reported"
fi
echo "test-whip: all passed"
