#!/bin/sh
# Checks the layering that the folders promise (README, Layout): base/ <- transport/ <- engine/ <- bench/,
# demo/; tools/ use only the public API and sim/; sim/ (simulation and measurement) is never part of
# libparley. Usage: check-layout.sh BUILD_DIR
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
bad=0
# $1: folder, $2: folders it must not include from.
forbid() {
  for f in "$1"/*.c "$1"/*.h; do
    [ -e "$f" ] || continue
    for up in $2; do
      if grep -n "#include \"$up/" "$f"; then
        echo "check-layout: $f includes from $up/" >&2
        bad=1
      fi
    done
  done
}
forbid base "transport engine sim tools bench demo tests"
forbid transport "engine sim tools bench demo tests"
forbid engine "sim tools bench demo tests"
forbid sim "tools bench demo tests"
# The tools are programs on the public API ("parley/..."), the sim library and their own helpers.
forbid tools "base transport engine bench demo tests"
# The engine, its dispatch and sessions see calls only through call.c's functions: no ICE, SRTP or SDP.
for f in engine/engine.c engine/dispatch.c engine/session.c engine/engine_internal.h; do
  if grep -nE '#include "(transport/(ice|ice_[a-z]+|srtp|sdp)\.h|engine/call_internal\.h)"' "$f"; then
    echo "check-layout: $f reaches into the call's transport" >&2
    bad=1
  fi
done
# The ICE agent's insides are its own files' business.
for f in $(grep -l '#include "transport/ice_agent.h"' base/* transport/* engine/* sim/* tools/* bench/* demo/* tests/*.c 2>/dev/null); do
  case "$f" in
    transport/ice.c | transport/ice_*.c | transport/ice_agent.h) ;;
    *) echo "check-layout: $f includes transport/ice_agent.h (the ICE agent's private insides)" >&2; bad=1 ;;
  esac
done
# Small files that own one thing.
for f in engine/*.c transport/*.c; do
  n=$(wc -l < "$f")
  if [ "$n" -gt 700 ]; then
    echo "check-layout: $f has $n lines (at most 700: split it by job)" >&2
    bad=1
  fi
done
# No simulation object inside the library archive.
lib=$(find "$build" -name libparley.a | head -n 1)
if [ -z "$lib" ]; then
  echo "check-layout: no libparley.a under $build" >&2
  exit 1
fi
for src in sim/*.c; do
  obj=$(basename "$src").o
  if ar t "$lib" | grep -qx "$obj"; then
    echo "check-layout: $lib holds $obj from sim/" >&2
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check-layout: layering holds"
exit "$bad"
