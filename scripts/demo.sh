#!/bin/sh
# make demo: runs the main job on the committed speech clip and prints what happened.
set -eu
build=${1:-build}
mkdir -p out
if [ -x "$build/bin/parley-pipeline" ]; then
  exec "$build/bin/parley-pipeline" --in tests/data/speech_a_48k.wav --out out/pipeline_out.wav --seed 1
fi
echo "demo: $build/bin/parley-pipeline was not built" >&2
exit 1
