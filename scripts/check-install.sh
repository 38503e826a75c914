#!/bin/sh
# check-install.sh: installs the built library into a temporary prefix and builds examples/minimal_call.c
# against the INSTALLED headers and library twice, with pkg-config and with a CMake find_package(parley)
# project, then runs each build (bounded). Usage: scripts/check-install.sh [build-dir]   (default: build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name parley.pc | head -n 1)
[ -n "$pc" ] || { echo "check-install: parley.pc not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

echo "check-install: pkg-config build"
PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_PATH
# parley.pc is relocatable (prefix from its own location), so nothing needs overriding here.
pkgconf() { pkg-config "$@" parley; }
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$root/examples/minimal_call.c" -o "$tmp/minimal_call_pc" \
  $(pkgconf --cflags) $(pkgconf --libs)

echo "check-install: CMake find_package build"
mkdir -p "$tmp/proj"
cat > "$tmp/proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(minimal_call C)
find_package(parley REQUIRED)
add_executable(minimal_call "$root/examples/minimal_call.c")
set_target_properties(minimal_call PROPERTIES C_STANDARD 11)
target_link_libraries(minimal_call PRIVATE parley::parley)
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null

for exe in "$tmp/minimal_call_pc" "$tmp/proj/build/minimal_call"; do
  echo "check-install: running $(basename "$exe")"
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout 30 "$exe" \
    "$root/tests/data/speech_a_48k.wav" "$tmp/heard.wav" > "$tmp/out.txt" 2>&1 || {
    cat "$tmp/out.txt" >&2
    echo "check-install: $(basename "$exe") failed" >&2
    exit 1
  }
  tail -n 2 "$tmp/out.txt"
done
echo "check-install: ok"
