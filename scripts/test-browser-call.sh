#!/bin/sh
# test-browser-call.sh BUILD: a real browser calls parley. Headless Chromium loads the page that
# `parley-call serve` serves, and the page calls parley over WHIP (DTLS-SRTP, ICE, Opus) on 127.0.0.1.
#  1. Audio both ways: Chromium's fake microphone plays speech_a (the page asks for it raw: no echo
#     cancellation, noise suppression or gain control); parley answers with speech_b. Levels per 20 ms
#     (the browser's Opus at ~32 kbit/s keeps the envelope, not the waveform): parley's recording must
#     follow what the page measured on its microphone (parley's own speech the control), and what the
#     page measured on parley's track must follow speech_b (speech_a the control).
#  2. Chromium killed mid-call (SIGKILL, every process of it): parley's `interrupted` must come within
#     1 s of the kill, read from its Server-Sent Events (wall-clock times).
#  3. The path cut with nft (UDP to and from parley's media port dropped): parley's `interrupted` within
#     1 s, beside when Chromium itself noticed (from the page's report).
#  4. An ICE restart over WHIP: the page restarts ICE 3 s into an echo call (PATCH If-Match "*" with new
#     credentials, RFC 9725); parley answers with its own, the browser's selected pair moves to the new
#     credentials, and the echo of its microphone keeps coming back afterwards.
# Run by .ci/run (Chromium is installed there; without it this script skips). Every wait is bounded.
set -eu
build=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
tool="$build/bin/parley-call"
[ -x "$tool" ] || { echo "test-browser-call: $tool not built" >&2; exit 1; }
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "test-browser-call: skip: chromium is not installed (apt-get install chromium)"
  exit 0
fi
tmp=$(mktemp -d /tmp/parley-browser.XXXXXX)
pids=""
nft_table=""
cleanup() {
  [ -z "$nft_table" ] || nft delete table inet "$nft_table" 2>/dev/null || true
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  pkill -9 -f "user-data-dir=$tmp/" 2>/dev/null || true
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
. scripts/serve-lib.sh # wait_for, serve
now_ms() { date +%s%3N; }

browser() { # PROFILE URL: headless Chromium with a fake microphone playing speech_a
  timeout -k 5 90 "$chromium" --headless=new --no-sandbox --user-data-dir="$tmp/$1" \
    --use-fake-ui-for-media-stream --use-fake-device-for-media-stream \
    --use-file-for-fake-audio-capture="$PWD/tests/data/speech_a_48k.wav" --autoplay-policy=no-user-gesture-required \
    --allow-loopback-in-peer-connection "$2" > "$tmp/$1.log" 2>&1 &
  browser_pid=$!
  pids="$pids $browser_pid"
}

# 1. Audio both ways.
serve "$tmp/serve1.log" --in tests/data/speech_b_48k.wav --in-end loop --out "$tmp/heard.wav" --report "$tmp/report.json"
browser prof1 "$url/?auto=1&seconds=8&raw=1"
wait_for 800 "the page posted no report within 40 s" test -s "$tmp/report.json"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" || fail "serve exited non-zero on SIGTERM"
pkill -9 -f "user-data-dir=$tmp/prof1" 2>/dev/null || true
/usr/bin/python3 - "$tmp/report.json" "$tmp/heard.wav" tests/data/speech_a_48k.wav tests/data/speech_b_48k.wav <<'EOF' ||
import json, sys, wave
import numpy as np

rep = json.loads(open(sys.argv[1]).readline())
assert rep["errors"] == [], "script errors: %s" % rep["errors"]
assert rep["ok"], "the page's call failed: %s" % rep["error"]
ms = rep["envelopeMs"]

def pcm(path):
    w = wave.open(path)
    assert w.getframerate() == 48000 and w.getnchannels() == 1, path
    return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768

def env_db(x):
    """RMS per envelope period in dBFS, floored at -60 dB, as the page measures its levels."""
    w = 48 * ms
    n = len(x) // w
    r = np.sqrt(np.mean(x[: n * w].reshape(n, w) ** 2, axis=1))
    return np.maximum(20 * np.log10(np.maximum(r, 1e-6)), -60)

def best_corr(probe, ref, loop):
    """Best correlation of probe with ref (looped when loop) over every lag."""
    ref = np.tile(ref, len(probe) // len(ref) + 3) if loop else ref
    best = -1.0
    for lag in range(0, len(ref) - len(probe) + 1):
        c = np.corrcoef(probe, ref[lag:lag + len(probe)])[0, 1]
        if np.isfinite(c):
            best = max(best, float(c))
    return best

heard = env_db(pcm(sys.argv[2]))
mic = np.maximum(np.array(rep["micDb"], dtype=np.float64), -60)
remote = np.maximum(np.array(rep["remoteDb"], dtype=np.float64), -60)
speech_a, speech_b = env_db(pcm(sys.argv[3])), env_db(pcm(sys.argv[4]))

# Parley's recording against what the page measured on its own microphone (Chromium's fake capture of
# speech_a: its level as the browser saw it), from the second second on; parley's own voice (speech_b)
# is the control: it must not come back.
probe = heard[50:50 + min(len(heard) - 50, 250)]
c_mic, c_own = best_corr(probe, mic, False), best_corr(probe, speech_b, True)
print("parley heard the page: level correlation with the page's microphone %.2f (control, parley's own speech %.2f)"
      % (c_mic, c_own))
assert len(probe) >= 150, "parley recorded only %d x %d ms" % (len(probe), ms)
assert c_mic >= 0.8 and c_mic > c_own + 0.3, "parley did not hear the browser's microphone"

# The page's measurement of parley's track against speech_b, the file parley sent (speech_a the control).
probe = remote[60:]
c_b, c_a = best_corr(probe, speech_b, True), best_corr(probe, speech_a, True)
print("the page heard parley: level correlation with speech_b %.2f (control speech_a %.2f) over %d x %d ms"
      % (c_b, c_a, len(probe), ms))
assert len(probe) >= 150, "the page measured only %d x %d ms" % (len(probe), ms)
assert c_b >= 0.7 and c_b > c_a + 0.3, "the page did not hear parley's speech"
print("page: %s; inbound %s" % (rep["connectionState"], rep["stats"]))
EOF
  fail "audio both ways"
pass "a browser call: speech both ways"

# 2. Chromium killed mid-call.
serve "$tmp/serve2.log" --echo
browser prof2 "$url/?auto=1&seconds=60"
wait_for 600 "the browser's call did not start" grep -q 'track-started' "$tmp/serve2.log"
id=$(sed -n 's/^call \([0-9a-f]*\): answered.*/\1/p' "$tmp/serve2.log" | head -n 1)
[ -n "$id" ] || fail "no call id in serve's log"
timeout -k 2 30 curl -sN "$url/events/$id" > "$tmp/events.txt" 2>/dev/null &
pids="$pids $!"
sleep 2
t_kill=$(now_ms)
pkill -9 -f "user-data-dir=$tmp/prof2" || fail "no Chromium to kill"
wait_for 100 "parley reported no interruption within 5 s of the kill" grep -q '"event":"interrupted"' "$tmp/events.txt"
t_int=$(sed -n 's/.*"wall":\([0-9]*\),"event":"interrupted".*/\1/p' "$tmp/events.txt" | head -n 1)
why=$(sed -n 's/.*"event":"interrupted","text":"\([^"]*\)".*/\1/p' "$tmp/events.txt" | head -n 1)
dt=$((t_int - t_kill))
echo "Chromium killed: parley interrupted after $dt ms ($why)"
[ "$dt" -ge 0 ] && [ "$dt" -le 1000 ] || fail "interrupted $dt ms after the kill (goal: within 1 s)"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" || fail "serve exited non-zero on SIGTERM"
pass "Chromium killed mid-call: parley interrupted within $dt ms"
pkill -9 -f "user-data-dir=$tmp/prof2" 2>/dev/null || true
# 3. The path cut: nft drops UDP to and from parley's media port (127.0.0.1, both directions). parley
#    must report it (interrupted network-lost) within 1 s; when Chromium noticed (its connection state
#    changes, from the page's report) is printed beside it, for comparison.
if ! command -v nft > /dev/null; then
  echo "skip 3: nft is not installed (apt-get install nftables)"
else
  serve "$tmp/serve3.log" --echo --report "$tmp/report3.json"
  browser prof3 "$url/?auto=1&seconds=16"
  wait_for 600 "the browser's call did not start" grep -q 'track-started' "$tmp/serve3.log"
  id=$(sed -n 's/^call \([0-9a-f]*\): answered.*/\1/p' "$tmp/serve3.log" | head -n 1)
  port=$(sed -n 's/.*local-candidate candidate:[^ ]* 1 udp [0-9]* 127\.0\.0\.1 \([0-9]*\) typ host.*/\1/p' "$tmp/serve3.log" |
    head -n 1)
  [ -n "$id" ] && [ -n "$port" ] || fail "no call id or media port in serve's log"
  timeout -k 2 40 curl -sN "$url/events/$id" > "$tmp/events3.txt" 2>/dev/null &
  pids="$pids $!"
  sleep 2
  nft_table="parley_browser_$$"
  nft add table inet "$nft_table"
  nft "add chain inet $nft_table input { type filter hook input priority 0; }"
  nft add rule inet "$nft_table" input udp dport "$port" drop
  nft add rule inet "$nft_table" input udp sport "$port" drop
  t_cut=$(now_ms)
  wait_for 100 "parley reported no interruption within 5 s of the cut" grep -q '"event":"interrupted"' "$tmp/events3.txt"
  t_int=$(sed -n 's/.*"wall":\([0-9]*\),"event":"interrupted".*/\1/p' "$tmp/events3.txt" | head -n 1)
  dt=$((t_int - t_cut))
  wait_for 500 "the page posted no report after the cut" test -s "$tmp/report3.json"
  nft delete table inet "$nft_table"
  nft_table=""
  chrome=$(/usr/bin/python3 - "$tmp/report3.json" "$t_cut" <<'EOF'
import json, sys
rep, cut = json.loads(open(sys.argv[1]).readline()), int(sys.argv[2])
seen = [(rep["t0Wall"] + e["t"] - cut, e["text"]) for e in rep["timeline"]
        if rep["t0Wall"] + e["t"] >= cut and ("disconnected" in e["text"] or "failed" in e["text"])]
print("%d ms (%s)" % seen[0] if seen else "not within the page's %d s" % rep["seconds"])
EOF
)
  echo "path cut: parley interrupted after $dt ms; Chromium noticed after $chrome"
  [ "$dt" -ge 0 ] && [ "$dt" -le 1000 ] || fail "interrupted $dt ms after the cut (goal: within 1 s)"
  pass "the path cut: parley interrupted within $dt ms (Chromium: $chrome)"
fi
# 4. ICE restart through WHIP.
serve "$tmp/serve4.log" --echo --report "$tmp/report4.json"
browser prof4 "$url/?auto=1&seconds=9&restart=3"
wait_for 800 "the page posted no report within 40 s" test -s "$tmp/report4.json"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" || fail "serve exited non-zero on SIGTERM"
pkill -9 -f "user-data-dir=$tmp/prof4" 2>/dev/null || true
grep -q 'ICE restart' "$tmp/serve4.log" || fail "serve logged no ICE restart"
/usr/bin/python3 - "$tmp/report4.json" <<'EOF' || fail "ICE restart over WHIP"
import json, sys
rep = json.loads(open(sys.argv[1]).readline())
assert rep["errors"] == [], "script errors: %s" % rep["errors"]
r = rep["restart"]
assert r and r.get("status") == 200 and "error" not in r, "restart: %s" % r
assert "connectedAt" in r, "the browser's selected pair never moved to the new credentials: %s" % r
ms = rep["envelopeMs"]
after = rep["remoteDb"][(r["connectedAt"] + 500) // ms:]
loud = sum(1 for db in after if db > -45)
print("ICE restart at %d ms: answered after %d ms, new pair after %d ms; then %d of %d x %d ms echo envelopes above -45 dBFS; page %s"
      % (r["at"], r["answeredAt"] - r["at"], r["connectedAt"] - r["at"], loud, len(after), ms, rep["connectionState"]))
assert rep["ok"], "the call did not stay connected: %s" % rep["connectionState"]
assert len(after) >= 100 and loud >= len(after) // 4, "the echo did not keep coming after the restart"
EOF
pass "an ICE restart over WHIP: new credentials both ways, the call kept going"
echo "test-browser-call: all passed"
