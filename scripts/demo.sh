#!/bin/sh
# make demo: the engine-core pipeline on the committed speech clip, then a real loopback call (two
# engines, ICE + SRTP over 127.0.0.1) through a relay that blacks the path out from 3 s to 5 s:
# prints the event timeline of both sides, the detection times, the call statistics and the mouth-to-ear
# latency measured on the files (~10 s).
set -eu
build=${1:-build}
mkdir -p out
for bin in parley-pipeline parley-call; do
  if [ ! -x "$build/bin/$bin" ]; then
    echo "demo: $build/bin/$bin was not built" >&2
    exit 1
  fi
done
"$build/bin/parley-pipeline" --in tests/data/speech_a_48k.wav --out out/pipeline_out.wav --seed 1
echo
echo "== loopback call, network blackout from 3 s to 5 s =="
exec "$build/bin/parley-call" --loopback --in tests/data/speech_a_48k.wav --out out/call_out.wav \
  --cut-at 3 --restore-at 5 --duration 7 --quiet
