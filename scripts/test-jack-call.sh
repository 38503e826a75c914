#!/bin/sh
# test-jack-call.sh BUILD: a call through a real audio device: a private JACK server (dummy driver,
# 48 kHz, 480-frame periods) and two parley-call processes on 127.0.0.1 (about 15 s).
#   listen side: --device system (PortAudio's JACK client), its JACK output wired back to its input
#                with jack_connect, so it sends back what it plays (AEC off, or it would cancel it);
#   dial side:   plays the speech clip from a file and records what comes back.
# Passes when both calls start and end cleanly, the listen side's device runs without a device
# interruption, and the dialer records the speech that went round through JACK.
# Skips (exit 0, "skip:") without jackd/jack_connect. jackd always dies with this script: it is our
# child with PR_SET_PDEATHSIG (setpriv --pdeathsig) and the EXIT trap kills it.
# The server name is fixed and runs are serialised with a lock file: JACK's shared registry holds
# only a few server entries and a killed server's entry is reclaimed only by a server of the same name
# (see tests/test_device.c).
set -eu
build=$(cd "${1:-build}" && pwd) # absolute, before moving to the repo root
cd "$(dirname "$0")/.."
tool="$build/bin/parley-call"
speech=tests/data/speech_a_48k.wav
server=parley-calltest
lock=/tmp/parley-calltest-jackd.lock
for p in jackd jack_connect jack_disconnect jack_lsp setpriv flock; do
  command -v "$p" > /dev/null || { echo "skip: $p is not installed"; exit 0; }
done
[ -x "$tool" ] || { echo "test-jack-call: $tool not built" >&2; exit 1; }
tmp=$(mktemp -d /tmp/parley-jackcall.XXXXXX)
jpid=""
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  if [ -n "$jpid" ]; then
    kill "$jpid" 2>/dev/null || true
    n=0
    while kill -0 "$jpid" 2>/dev/null && [ $n -lt 20 ]; do sleep 0.1; n=$((n + 1)); done
    kill -9 "$jpid" 2>/dev/null || true
  fi
  rm -f /dev/shm/*_"$server"_* 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

exec 9> "$lock"
flock -w 30 9 || fail "another run holds $lock"
export JACK_DEFAULT_SERVER=$server JACK_NO_START_SERVER=1
setpriv --pdeathsig KILL jackd -n "$server" --no-realtime -d dummy -r 48000 -p 480 > "$tmp/jackd.log" 2>&1 &
jpid=$!
n=0
until jack_lsp > /dev/null 2>&1 || [ $n -ge 100 ]; do
  kill -0 "$jpid" 2>/dev/null || { cat "$tmp/jackd.log" >&2; fail "jackd exited"; }
  sleep 0.1
  n=$((n + 1))
done
[ $n -lt 100 ] || fail "jackd did not come up"
"$tool" --list-devices 2> /dev/null | grep -q "JACK" || fail "PortAudio does not list the JACK device"

port=$((20000 + $$ % 20000))
timeout -k 5 30 "$tool" listen "127.0.0.1:$port" --device system --no-aec --no-ns --quiet --timeout 15 \
  > "$tmp/listen.txt" 2> "$tmp/listen.err" &
lpid=$!
pids="$lpid"
# Wire the listener's JACK output back to its input once its client exists (it opens the device at
# start, before the rendezvous).
n=0
until jack_lsp 2> /dev/null | grep -q "^PortAudio:out_0" || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
[ $n -lt 100 ] || { cat "$tmp/listen.err" >&2; fail "the listener's JACK client did not appear"; }
jack_disconnect system:capture_1 PortAudio:in_0 2> /dev/null || true
jack_connect PortAudio:out_0 PortAudio:in_0 || fail "jack_connect"

timeout -k 5 30 "$tool" dial "127.0.0.1:$port" --in "$speech" --out "$tmp/dial.wav" --no-aec --duration 5 --quiet \
  --timeout 15 > "$tmp/dial.txt" 2> "$tmp/dial.err" || { cat "$tmp/dial.txt" "$tmp/dial.err" >&2; fail "dial"; }
wait "$lpid" || { cat "$tmp/listen.txt" "$tmp/listen.err" >&2; fail "listen exited non-zero"; }
pids=""
cat "$tmp/listen.txt"
grep -q "B  track-started" "$tmp/listen.txt" || fail "listen: no track-started"
grep -q "B  track-stopped (bye)" "$tmp/listen.txt" || fail "listen: no bye"
grep -q "interrupted(device" "$tmp/listen.txt" && fail "listen: device interrupted"
peak=$(od -An -v -td2 -j44 "$tmp/dial.wav" | awk '{for (i = 1; i <= NF; i++) {v = $i < 0 ? -$i : $i; if (v > m) m = v}} END {print m + 0}')
echo "dialer heard its speech back through JACK: peak $peak"
[ "$peak" -gt 1000 ] || fail "the dialer heard nothing back through JACK"
echo "test-jack-call: passed"
