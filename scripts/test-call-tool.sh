#!/bin/sh
# test-call-tool.sh BUILD: end-to-end checks of build/bin/parley-call on 127.0.0.1 and [::1] (about 70 s):
#  1. loopback call through the relay with a blackout: the timeline has the expected events in order,
#     the tool reports the recovery, the output WAV exists and is not silent;
#  2. listen/dial in two processes with an --echo peer: the dialer hears itself back, at a steady
#     level; --in starts with the media, --in-end hangup/loop; --loopback lasts as long as --in; the
#     same through coturn (when installed) with --relay-only;
#  3. offer/answer through files, and through stdin/stdout over FIFOs;
#  4. bad arguments, missing or wrong-format input, unknown device: non-zero exit, a message, and
#     the output WAV that was already open is kept valid;
#  5. each tool's --help lists its options; parley-netsim's per-direction and repeated impairments;
#     SIGINT ends a call cleanly.
# Every step runs under `timeout`. Exits non-zero on the first failure.
set -eu
build=$(cd "${1:-build}" && pwd) # absolute, before moving to the repo root
cd "$(dirname "$0")/.."
tool="$build/bin/parley-call"
speech=tests/data/speech_a_48k.wav
[ -x "$tool" ] || { echo "test-call-tool: $tool not built" >&2; exit 1; }
tmp=$(mktemp -d /tmp/parley-calltool.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

. scripts/wav-lib.sh # wav_peak, wav_final, wav_tone, wav_windows
# Windows (from wav_windows) at or above LEVEL dBFS: windows_over FILE LEVEL.
windows_over() { awk -v l="$2" '$1 >= l {n++} END {print n + 0}' "$1"; }

# Line number of the first line matching $2 in file $1 after line $3 (0 if none).
line_after() {
  awk -v pat="$2" -v after="$3" 'NR > after && index($0, pat) {print NR; found = 1; exit} END {if (!found) print 0}' "$1"
}
in_order() { # file pattern...: each pattern occurs after the previous one
  f=$1; shift
  at=0
  for pat in "$@"; do
    n=$(line_after "$f" "$pat" "$at")
    [ "$n" -gt 0 ] || { cat "$f" >&2; fail "'$pat' missing after line $at of $f"; }
    at=$n
  done
}

# 1. Loopback with a blackout.
timeout -k 5 30 "$tool" --loopback --in "$speech" --out "$tmp/lb.wav" --cut-at 2 --restore-at 3.5 --duration 5 \
  --quiet > "$tmp/lb.txt" 2>&1 || { cat "$tmp/lb.txt" >&2; fail "loopback call exited non-zero"; }
for s in A B; do
  in_order "$tmp/lb.txt" "$s  peer connected" "$s  track-started" "$s  interrupted(network-lost)" \
    "$s  peer connected" "$s  resumed(network-lost)" "stats at" "$s  closed" "detection"
  in_order "$tmp/lb.txt" "$s  track-started" "$s  track-stopped (timeout)" "$s  track-started"
  in_order "$tmp/lb.txt" "$s  track-started" "$s  peer disconnected" "$s  peer connected"
done
in_order "$tmp/lb.txt" "B  track-stopped (bye)"
in_order "$tmp/lb.txt" "cut -> track-stopped" "cut -> disconnected" "restore -> connected"
[ "$(tail -n 1 "$tmp/lb.txt")" = ok ] || fail "loopback did not end with ok"
grep -q "not seen" "$tmp/lb.txt" && { cat "$tmp/lb.txt" >&2; fail "a detection was not seen"; }
wav_final "$tmp/lb.wav" || fail "loopback output WAV not finalised"
[ "$(wav_peak "$tmp/lb.wav")" -gt 1000 ] || fail "loopback output WAV is silent"
# The latency line means A's speech was found in B's file (a measurement, not a goal: parley-bench
# latency holds the goal); only its presence and sign are checked.
grep -Eq '^latency: [0-9]+\.[0-9] ms mouth-to-ear' "$tmp/lb.txt" ||
  { grep '^latency' "$tmp/lb.txt" >&2; fail "loopback printed no measured latency"; }
# The loss over the call counts the 1.5 s blackout of a 5 s call (about 30 %), whatever the last RTCP
# interval saw: A's stream as the peer reported it, and as B counted it.
sent=$(sed -n 's/^  A: .* loss sent \([0-9.]*\) % over the call.*/\1/p' "$tmp/lb.txt")
recv=$(sed -n 's/^  B: .* received \([0-9.]*\) % (.*/\1/p' "$tmp/lb.txt")
awk -v a="$sent" -v b="$recv" 'BEGIN {exit !(a + 0 >= 15 && a + 0 <= 45 && b + 0 >= 15 && b + 0 <= 45)}' ||
  { grep -A1 '^  [AB]:' "$tmp/lb.txt" >&2; fail "call loss over a 1.5 s blackout: sent '$sent' %, received '$recv' %"; }
pass "loopback call with blackout and recovery ($(grep -c ' ms  ' "$tmp/lb.txt") timeline lines, loss $sent % / $recv %)"

# 10 ms frames, no relay.
timeout -k 5 20 "$tool" --loopback --in "$speech" --out "$tmp/lb10.wav" --frame-ms 10 --duration 2 --quiet \
  > "$tmp/lb10.txt" 2>&1 || { cat "$tmp/lb10.txt" >&2; fail "10 ms loopback"; }
[ "$(wav_peak "$tmp/lb10.wav")" -gt 1000 ] || fail "10 ms loopback output is silent"
pass "loopback call with 10 ms frames"

# The low-delay profile: 5 ms frames, restricted-lowdelay Opus; the tool's latency line says 5 ms frames
# (the figure itself is parley-bench latency's to measure, not a test's).
timeout -k 5 20 "$tool" --loopback --in "$speech" --out "$tmp/lbld.wav" --low-delay --duration 3 --quiet \
  > "$tmp/lbld.txt" 2>&1 || { cat "$tmp/lbld.txt" >&2; fail "low-delay loopback"; }
[ "$(wav_peak "$tmp/lbld.wav")" -gt 1000 ] || fail "low-delay loopback output is silent"
grep -q "^latency: .* one 5 ms frame of capture" "$tmp/lbld.txt" || { cat "$tmp/lbld.txt" >&2; fail "low-delay: not 5 ms frames"; }
pass "loopback call with the low-delay profile"

# Any mono or stereo WAV the user gives: a 44.1 kHz stereo clip goes through the same call.
timeout -k 5 20 "$tool" --loopback --in tests/data/speech_b_44k_stereo.wav --out "$tmp/lbst.wav" --duration 3 --quiet \
  > "$tmp/lbst.txt" 2>&1 || { cat "$tmp/lbst.txt" >&2; fail "stereo 44.1 kHz loopback"; }
wav_final "$tmp/lbst.wav" || fail "stereo loopback output WAV not finalised"
[ "$(wav_peak "$tmp/lbst.wav")" -gt 1000 ] || fail "stereo 44.1 kHz loopback output is silent"
pass "loopback call with a 44.1 kHz stereo file"
# A rate no sound card runs at (22.05 kHz): the file device converts it to 48 kHz.
timeout -k 5 20 "$tool" --loopback --in tests/data/speech_a_22k_stereo.wav --out "$tmp/lb22.wav" --duration 3 --quiet \
  > "$tmp/lb22.txt" 2>&1 || { cat "$tmp/lb22.txt" >&2; fail "stereo 22.05 kHz loopback"; }
wav_final "$tmp/lb22.wav" || fail "22.05 kHz loopback output WAV not finalised"
[ "$(wav_peak "$tmp/lb22.wav")" -gt 1000 ] || fail "stereo 22.05 kHz loopback output is silent"
pass "loopback call with a 22.05 kHz stereo file"

# 2. listen / dial, the listener echoes.
port=$((20000 + $$ % 20000))
timeout -k 5 20 "$tool" listen "127.0.0.1:$port" --echo --quiet --timeout 10 > "$tmp/listen.txt" 2>&1 &
lpid=$!
pids="$pids $lpid"
timeout -k 5 20 "$tool" dial "127.0.0.1:$port" --in "$speech" --out "$tmp/dial.wav" --duration 3 --quiet --timeout 10 \
  > "$tmp/dial.txt" 2>&1 || { cat "$tmp/dial.txt" "$tmp/listen.txt" >&2; fail "dial exited non-zero"; }
wait "$lpid" || { cat "$tmp/listen.txt" >&2; fail "listen exited non-zero"; }
in_order "$tmp/listen.txt" "B  track-started" "B  track-stopped (bye)" "B  closed"
in_order "$tmp/dial.txt" "A  track-started" "A  closed"
[ "$(wav_peak "$tmp/dial.wav")" -gt 1000 ] || fail "the dialer did not hear its echo"
pass "listen/dial with an echo peer"

# 2b. The echo peer does not cancel its own echo: a steady tone comes back at a steady level. (The
# dialer's own canceller and suppressor are off: a tone is predictable from its delayed copy.) The 1 s
# windows from 0.5 s after the echo arrived span 8 s and must stay within 3 dB.
wav_tone "$tmp/tone12.wav" 12
port=$((port + 2))
timeout -k 5 30 "$tool" listen "127.0.0.1:$port" --echo --quiet --timeout 10 > "$tmp/listen2.txt" 2>&1 &
lpid=$!
pids="$pids $lpid"
timeout -k 5 30 "$tool" dial "127.0.0.1:$port" --in "$tmp/tone12.wav" --out "$tmp/echo.wav" --no-aec --no-ns \
  --duration 10.5 --quiet --timeout 10 > "$tmp/dial2.txt" 2>&1 || { cat "$tmp/dial2.txt" >&2; fail "echo dial"; }
wait "$lpid" || { cat "$tmp/listen2.txt" >&2; fail "echo listen exited non-zero"; }
wav_windows "$tmp/echo.wav" 24000 > "$tmp/echo.half" # 0.5 s windows, to find the echo's start
first=$(awk '$1 > -40 {print NR; exit}' "$tmp/echo.half")
[ -n "$first" ] || fail "no echo came back"
wav_windows "$tmp/echo.wav" 48000 $((24000 * first)) | head -n 8 > "$tmp/echo.win"
[ "$(wc -l < "$tmp/echo.win")" -eq 8 ] || { cat "$tmp/echo.win" >&2; fail "echo shorter than 8 s"; }
spread=$(awk 'NR == 1 {lo = hi = $1} {if ($1 < lo) lo = $1; if ($1 > hi) hi = $1} END {printf "%.2f", hi - lo}' "$tmp/echo.win")
awk -v s="$spread" 'BEGIN {exit !(s <= 3.0)}' ||
  { tr '\n' ' ' < "$tmp/echo.win" >&2; fail "the echo level moved by $spread dB over 8 s (the peer cancels its echo?)"; }
pass "an echo peer returns a steady level: 8 x 1 s windows within $spread dB ($(head -n 1 "$tmp/echo.win" | cut -c1-6) dBFS)"

# 2c. --in waits for the call's media: the answerer starts 3 s late, so the 2 s tone would be over
# before media flowed if it had started with the tool. --in-end hangup: the offerer ends the call when
# the tone ends (no --duration), and the answerer sees the hang-up.
wav_tone "$tmp/tone2.wav" 2
timeout -k 5 30 "$tool" offer --sdp-out "$tmp/o2.sdp" --sdp-in "$tmp/a2.sdp" --loopback-only --in "$tmp/tone2.wav" \
  --in-end hangup --no-ns --quiet --timeout 10 > "$tmp/offer3.txt" 2>&1 &
opid=$!
pids="$pids $opid"
sleep 3
timeout -k 5 30 "$tool" answer --sdp-in "$tmp/o2.sdp" --sdp-out "$tmp/a2.sdp" --loopback-only --out "$tmp/late.wav" \
  --quiet --timeout 10 > "$tmp/answer3.txt" 2>&1 || { cat "$tmp/answer3.txt" "$tmp/offer3.txt" >&2; fail "late answer"; }
wait "$opid" || { cat "$tmp/offer3.txt" >&2; fail "offer with --in-end hangup exited non-zero"; }
in_order "$tmp/answer3.txt" "B  track-started" "B  track-stopped (bye)" "B  closed"
wav_windows "$tmp/late.wav" 4800 > "$tmp/late.win"
heard=$(windows_over "$tmp/late.win" -25)
[ "$heard" -ge 18 ] && [ "$heard" -le 22 ] || fail "the late answerer heard $heard x 100 ms of the 2 s tone, not ~20"
pass "--in starts with the media ($heard x 100 ms of a 2 s tone after 3 s of signaling), --in-end hangup ends the call"

# 2d. --loopback lasts as long as --in (plus a second), and --in-end loop repeats a short file.
wav_tone "$tmp/tone7.wav" 7
timeout -k 5 30 "$tool" --loopback --in "$tmp/tone7.wav" --out "$tmp/lb7.wav" --no-ns --quiet > "$tmp/lb7.txt" 2>&1 ||
  { cat "$tmp/lb7.txt" >&2; fail "7 s loopback"; }
wav_windows "$tmp/lb7.wav" 4800 > "$tmp/lb7.win"
heard=$(windows_over "$tmp/lb7.win" -25)
[ "$heard" -ge 68 ] || fail "a 7 s file in loopback was heard for $heard x 100 ms"
timeout -k 5 30 "$tool" --loopback --in "$tmp/tone2.wav" --in-end loop --duration 5 --out "$tmp/lbloop.wav" --no-ns \
  --quiet > "$tmp/lbloop.txt" 2>&1 || { cat "$tmp/lbloop.txt" >&2; fail "looping loopback"; }
wav_windows "$tmp/lbloop.wav" 4800 > "$tmp/lbloop.win"
heard=$(windows_over "$tmp/lbloop.win" -25)
[ "$heard" -ge 45 ] || fail "a looping 2 s file was heard for $heard x 100 ms of a 5 s call"
pass "loopback plays the whole 7 s file; --in-end loop repeats a 2 s one for 5 s"

# 2f. Through a TURN server: coturn on 127.0.0.1 (if installed), both sides relay-only, so the echo comes
# back through two allocations; each side waits for its relayed candidate before sending its description.
if [ -x /usr/bin/turnserver ]; then
  tport=$((port + 40))
  mkdir -p "$tmp/turn"
  /usr/bin/turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port "$tport" \
    --min-port=$((tport + 1)) --max-port=$((tport + 100)) --lt-cred-mech --user=u:p --realm=parley.test \
    --allow-loopback-peers --no-tls --no-dtls --no-cli --userdb="$tmp/turn/db" --pidfile="$tmp/turn/pid" \
    --log-file=stdout > "$tmp/turn/log" 2>&1 &
  tpid=$!
  pids="$pids $tpid"
  sleep 1
  turn="--ice-server turn:127.0.0.1:$tport --turn-user u --turn-password p --relay-only"
  port=$((port + 1))
  timeout -k 5 20 "$tool" listen "127.0.0.1:$port" --echo --quiet --timeout 10 $turn > "$tmp/tlisten.txt" 2>&1 &
  lpid=$!
  pids="$pids $lpid"
  sleep 0.3
  timeout -k 5 20 "$tool" dial "127.0.0.1:$port" --in "$speech" --out "$tmp/tdial.wav" --duration 3 --timeout 10 \
    $turn > "$tmp/tdial.txt" 2>&1 || { cat "$tmp/tdial.txt" "$tmp/tlisten.txt" >&2; fail "dial through TURN"; }
  wait "$lpid" || { cat "$tmp/tlisten.txt" >&2; fail "listen through TURN exited non-zero"; }
  kill "$tpid" 2>/dev/null || true
  grep -q "typ relay raddr 0.0.0.0 rport 0" "$tmp/tdial.txt" || { cat "$tmp/tdial.txt" >&2; fail "no relayed candidate"; }
  if grep -q "typ host" "$tmp/tdial.txt"; then fail "a host candidate with --relay-only"; fi
  in_order "$tmp/tdial.txt" "A  track-started" "A  closed"
  [ "$(wav_peak "$tmp/tdial.wav")" -gt 1000 ] || fail "the dialer did not hear its echo through TURN"
  pass "listen/dial through coturn, both relay-only"
fi
# --turn-ca: a file without a certificate is refused at the start, saying which option is wrong.
if "$tool" offer --sdp-out "$tmp/tca.sdp" --ice-server turns:127.0.0.1 --turn-user u --turn-password p \
  --turn-ca "$speech" --timeout 1 > "$tmp/tca.txt" 2>&1; then fail "--turn-ca with a WAV file accepted"; fi
grep -q -- "--turn-ca is not a readable PEM file" "$tmp/tca.txt" || { cat "$tmp/tca.txt" >&2; fail "--turn-ca's error"; }
pass "--turn-ca refuses a file without certificates"

# 2e. --via: the dialer routes the call through parley-netsim (a meeting point: no --forward) with no
# hand-edited SDP; a 2 s blackout there is a passive disconnect both sides report, then recover from.
netsim="$build/bin/parley-netsim"
rport=$((port + 5))
timeout -k 5 30 "$netsim" --listen "127.0.0.1:$rport" --blackout 3:2 --duration 12 > "$tmp/netsim.txt" 2>&1 &
npid=$!
pids="$pids $npid"
port=$((port + 6))
timeout -k 5 30 "$tool" listen "127.0.0.1:$port" --out "$tmp/via.wav" --quiet --timeout 10 > "$tmp/vlisten.txt" 2>&1 &
lpid=$!
pids="$pids $lpid"
timeout -k 5 30 "$tool" dial "127.0.0.1:$port" --via "127.0.0.1:$rport" --in "$tmp/tone12.wav" --no-ns --duration 8 \
  --quiet --timeout 10 > "$tmp/vdial.txt" 2>&1 || { cat "$tmp/vdial.txt" "$tmp/vlisten.txt" >&2; fail "dial --via"; }
wait "$lpid" || { cat "$tmp/vlisten.txt" >&2; fail "listen (peer of --via) exited non-zero"; }
kill -INT "$npid" 2>/dev/null || true
wait "$npid" || true
grep -q "peer B known" "$tmp/netsim.txt" || { cat "$tmp/netsim.txt" >&2; fail "the relay never saw the second peer"; }
in_order "$tmp/vdial.txt" "A  track-started" "A  interrupted(network-lost)" "A  resumed(network-lost)" "A  closed"
in_order "$tmp/vlisten.txt" "B  track-started" "B  interrupted(network-lost)" "B  resumed(network-lost)" \
  "B  track-stopped (bye)"
[ "$(wav_peak "$tmp/via.wav")" -gt 1000 ] || fail "--via: the listener heard nothing"
pass "--via routes a call through parley-netsim; its blackout is reported and recovered on both sides"

# 2f. The same over IPv6: [::1] literals for the listener, the dialer and the relay.
timeout 20 "$netsim" --listen "[::1]:$((port + 7))" --duration 6 > "$tmp/netsim6.txt" 2>&1 &
npid=$!
pids="$pids $npid"
timeout 20 "$tool" listen "[::1]:$((port + 8))" --out "$tmp/via6.wav" --quiet --timeout 10 > "$tmp/vlisten6.txt" 2>&1 &
lpid=$!
pids="$pids $lpid"
timeout 20 "$tool" dial "[::1]:$((port + 8))" --via "[::1]:$((port + 7))" --in "$speech" --duration 3 --quiet \
  --timeout 10 > "$tmp/vdial6.txt" 2>&1 || { cat "$tmp/vdial6.txt" "$tmp/vlisten6.txt" >&2; fail "dial --via [::1]"; }
wait "$lpid" || { cat "$tmp/vlisten6.txt" >&2; fail "listen on [::1] exited non-zero"; }
wait "$npid" || true
grep -q "peer B known" "$tmp/netsim6.txt" || { cat "$tmp/netsim6.txt" >&2; fail "the IPv6 relay never saw B"; }
in_order "$tmp/vlisten6.txt" "B  track-started" "B  track-stopped (bye)"
[ "$(wav_peak "$tmp/via6.wav")" -gt 1000 ] || fail "--via [::1]: the listener heard nothing"
pass "listen, dial and --via take [::1]:PORT"

# 3a. offer / answer through files (the answerer starts first and waits for the offer file).
timeout -k 5 20 "$tool" answer --sdp-in "$tmp/offer.sdp" --sdp-out "$tmp/answer.sdp" --loopback-only \
  --out "$tmp/answer.wav" --quiet --timeout 10 > "$tmp/answer.txt" 2>&1 &
apid=$!
pids="$pids $apid"
timeout -k 5 20 "$tool" offer --sdp-out "$tmp/offer.sdp" --sdp-in "$tmp/answer.sdp" --loopback-only --in "$speech" \
  --duration 2 --quiet --timeout 10 > "$tmp/offer.txt" 2>&1 || { cat "$tmp/offer.txt" >&2; fail "offer exited non-zero"; }
wait "$apid" || { cat "$tmp/answer.txt" >&2; fail "answer exited non-zero"; }
grep -q "^a=candidate:" "$tmp/offer.sdp" || fail "offer file has no candidate"
grep -q "^a=fingerprint:sha-256 " "$tmp/answer.sdp" || fail "answer file has no DTLS fingerprint"
[ "$(wav_peak "$tmp/answer.wav")" -gt 1000 ] || fail "the answerer heard nothing"
pass "offer/answer through files"

# 3b. offer / answer through stdin/stdout, cross-connected with FIFOs (opened in an order that cannot
# deadlock: each FIFO's writer and reader open it as their first redirection).
mkfifo "$tmp/to_answer" "$tmp/to_offer"
timeout -k 5 20 "$tool" answer --loopback-only --out "$tmp/answer2.wav" --quiet --timeout 10 \
  > "$tmp/to_offer" < "$tmp/to_answer" 2> "$tmp/answer2.err" &
apid=$!
pids="$pids $apid"
timeout -k 5 20 "$tool" offer --loopback-only --in "$speech" --duration 2 --quiet --timeout 10 \
  < "$tmp/to_offer" > "$tmp/to_answer" 2> "$tmp/offer2.err" || { cat "$tmp/offer2.err" >&2; fail "stdio offer"; }
wait "$apid" || { cat "$tmp/answer2.err" >&2; fail "stdio answer"; }
[ "$(wav_peak "$tmp/answer2.wav")" -gt 1000 ] || fail "stdio: the answerer heard nothing"
pass "offer/answer through stdin/stdout"

# 4. Errors.
expect_fail() { # description, then the command
  what=$1; shift
  if timeout -k 5 10 "$@" > "$tmp/err.out" 2> "$tmp/err.txt"; then fail "$what: exited 0"; fi
  grep -q "parley-call: " "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "$what: no message"; }
}
expect_fail "no mode" "$tool"
expect_fail "unknown option" "$tool" --loopback --bogus
expect_fail "bad frame size" "$tool" --loopback --frame-ms 30
expect_fail "cut without restore" "$tool" --loopback --cut-at 2
expect_fail "restore before cut" "$tool" --loopback --cut-at 3 --restore-at 2
expect_fail "bad seconds" "$tool" --loopback --duration abc
expect_fail "dial without address" "$tool" dial
expect_fail "bad address" "$tool" listen 127.0.0.1:99999 --timeout 1
expect_fail "bad relay" "$tool" dial 127.0.0.1:1 --via relay.example:9000 --timeout 1
expect_fail "unbracketed IPv6 relay" "$tool" dial 127.0.0.1:1 --via ::1:9000 --timeout 1
expect_fail "relay in loopback" "$tool" --loopback --via 127.0.0.1:9000
expect_fail "relay-only without TURN" "$tool" dial 127.0.0.1:1 --relay-only --timeout 1
expect_fail "not an ICE server URL" "$tool" dial 127.0.0.1:1 --ice-server http://127.0.0.1:3478 --timeout 1
expect_fail "TURN without credentials" "$tool" dial 127.0.0.1:1 --ice-server turn:127.0.0.1:3478 --timeout 1
expect_fail "device with files" "$tool" dial 127.0.0.1:1 --device x --in "$speech"
expect_fail "unknown device" "$tool" dial 127.0.0.1:1 --device "no-such-device-$$" --timeout 1
if [ "$("$tool" --list-devices 2>&1)" = "$("$tool" --list-devices 2>/dev/null)" ]; then
  pass "--list-devices prints nothing on stderr (no ALSA/JACK library noise)"
else
  "$tool" --list-devices 2>&1 >/dev/null | head -n 5 >&2; fail "--list-devices printed library noise"
fi
"$tool" --list-devices | grep -q '^no audio devices' && { grep -q "no audio devices on this machine" "$tmp/err.txt" ||
  { cat "$tmp/err.txt" >&2; fail "opening a device on a machine without one does not say so"; }; }
# Network errors carry the system's reason: an address not on this host, a port already listened on.
expect_fail "address not here" "$tool" listen 192.0.2.1:7000 --timeout 1
grep -q "Cannot assign requested address" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "no reason for the bind error"; }
timeout -k 5 10 "$tool" listen "127.0.0.1:$((port + 3))" --timeout 3 --quiet > "$tmp/busy.txt" 2>&1 &
bpid=$!
pids="$pids $bpid"
n=0
until grep -q "listening at" "$tmp/busy.txt" 2>/dev/null || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
expect_fail "port in use" "$tool" listen "127.0.0.1:$((port + 3))" --timeout 1
grep -q "Address already in use" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "no reason for the port in use"; }
kill "$bpid" 2>/dev/null || true
wait "$bpid" 2>/dev/null || true
# An SDP over the limit says how large it is and what the limit is.
awk 'BEGIN {print "v=0"; for (i = 0; i < 1000; i++) print "a=x-padding:" i " 0123456789012345678901234567890123456789"}' > "$tmp/huge.sdp"
expect_fail "huge sdp" "$tool" answer --sdp-in "$tmp/huge.sdp" --timeout 1
grep -Eq "the SDP is [0-9]+ bytes, the limit is 32767" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "huge SDP message"; }
expect_fail "nobody listening" "$tool" dial "127.0.0.1:$((port + 1))" --timeout 0.5
expect_fail "no sdp file" "$tool" answer --sdp-in "$tmp/none.sdp" --timeout 0.3
printf 'v=0\nthis is not sdp\n' > "$tmp/junk.sdp"
expect_fail "junk sdp" "$tool" answer --sdp-in "$tmp/junk.sdp" --timeout 1
expect_fail "missing input" "$tool" --loopback --in "$tmp/none.wav" --out "$tmp/e1.wav"
wav_final "$tmp/e1.wav" || fail "missing input: the output WAV was not kept valid"
expect_fail "wrong format" "$tool" --loopback --in README.md --out "$tmp/e2.wav"
wav_final "$tmp/e2.wav" || fail "wrong format: the output WAV was not kept valid"
expect_fail "unwritable output" "$tool" --loopback --in "$speech" --out /nonexistent-dir/x.wav
pass "bad arguments and files exit non-zero with a message"

# 5. Command lines: each tool's --help comes from the table it parses and lists every option used here;
# parley-netsim takes an impairment per direction (--a2b-/--b2a-) and a blackout or spike repeatedly.
"$tool" --help > "$tmp/help.txt" || fail "parley-call --help exited non-zero"
for opt in loopback list-devices in out in-end device echo sdp-in sdp-out frame-ms duration timeout cut-at \
  restore-at loopback-only via no-aec no-ns quiet; do
  grep -q -- "^  --$opt\( \|$\)" "$tmp/help.txt" || fail "parley-call --help does not list --$opt"
done
"$netsim" --help > "$tmp/help.txt" || fail "parley-netsim --help exited non-zero"
for opt in listen forward delay jitter monotonic loss burst-loss reorder duplicate rate spike blackout trace \
  seed duration stats-interval queue max-datagram; do
  grep -q -- "^  --$opt\( \|$\)" "$tmp/help.txt" || fail "parley-netsim --help does not list --$opt"
done
timeout -k 5 10 "$netsim" --listen 127.0.0.1:0 --a2b-delay 5 --b2a-loss 10 --a2b-monotonic --blackout 1:1 \
  --blackout 3:1 --b2a-spike 1:20 --b2a-burst-loss 5:3 --seed 0x10 --duration 0.2 > "$tmp/ns.txt" 2>&1 ||
  { cat "$tmp/ns.txt" >&2; fail "parley-netsim refused per-direction and repeated impairments"; }
grep -q "^final stats" "$tmp/ns.txt" || fail "parley-netsim printed no final stats"
many=""
for i in $(seq 0 16); do many="$many --a2b-blackout $i:0.5"; done
# shellcheck disable=SC2086
if timeout -k 5 10 "$netsim" --listen 127.0.0.1:0 $many --duration 0.1 > /dev/null 2> "$tmp/ns.err"; then
  fail "parley-netsim took 17 blackouts in one direction"
fi
grep -q "at most 16 per direction" "$tmp/ns.err" || { cat "$tmp/ns.err" >&2; fail "17 blackouts: no reason"; }
for bad in "--a2b-listen 127.0.0.1:0" "--listen 127.0.0.1:0 --loss 101" "--listen 127.0.0.1:0 stray"; do
  # shellcheck disable=SC2086
  if timeout -k 5 10 "$netsim" $bad > /dev/null 2> "$tmp/ns.err"; then fail "parley-netsim $bad: exited 0"; fi
  grep -q "parley-netsim: " "$tmp/ns.err" || { cat "$tmp/ns.err" >&2; fail "parley-netsim $bad: no message"; }
done
pass "--help lists each tool's options; parley-netsim takes per-direction and repeated impairments"

# SIGINT in the middle of a call: clean hang-up, finalised WAV.
timeout -k 5 20 "$tool" --loopback --in "$speech" --out "$tmp/int.wav" --duration 30 --quiet > "$tmp/int.txt" 2>&1 &
ipid=$!
pids="$pids $ipid"
n=0
until grep -q "B  track-started" "$tmp/int.txt" || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
sleep 1
kill -INT "$ipid"
wait "$ipid" || true
in_order "$tmp/int.txt" "B  track-started" "B  track-stopped (bye)" "B  closed"
wav_final "$tmp/int.wav" || fail "SIGINT: output WAV not finalised"
[ "$(wav_peak "$tmp/int.wav")" -gt 1000 ] || fail "SIGINT: output WAV is silent"
pass "SIGINT ends the call cleanly"
echo "test-call-tool: all passed"
