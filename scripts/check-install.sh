#!/bin/sh
# check-install.sh: installs the built tree into a temporary prefix and checks what an app finds there:
#  - libparley.so's SONAME follows the ABI rule (0.x: libparley.so.0.MINOR; from 1.0: libparley.so.MAJOR);
#  - the installed headers include only installed headers and system headers, and compile alone (C, C++);
#  - the installed tools run (`--help`);
#  - every examples/*.c builds against the INSTALLED headers and library four ways: pkg-config shared,
#    pkg-config --static (against a copy of the prefix without libparley.so, so the linker must take
#    libparley.a and its dependencies from `pkg-config --static --libs`), and a CMake find_package(parley)
#    project with parley::parley and with parley::parley_static; and each build runs (bounded) and must
#    exit 0: each example exits 0 only when what it shows happened. An example that needs another
#    library names its pkg-config module in a line "/* pkg-config: MODULE */" (whip_client: libcurl);
#    whip_client calls the installed `parley-call serve`.
# Usage: scripts/check-install.sh [build-dir]   (default: build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "check-install: $*" >&2
  exit 1
}

prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name parley.pc | head -n 1)
[ -n "$pc" ] || fail "parley.pc not installed"
libdir=$(dirname "$(dirname "$pc")")
inc="$prefix/include"

echo "check-install: SONAME"
version=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --modversion parley)
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ "$major" = 0 ]; then want="libparley.so.$major.$minor"; else want="libparley.so.$major"; fi
soname=$(readelf -d "$libdir/libparley.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "$want" ] || fail "libparley.so $version has SONAME '$soname', the ABI rule says $want"
[ -f "$libdir/$soname" ] || fail "$soname is not installed"

echo "check-install: installed headers"
for h in "$inc"/parley/*.h; do
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' "$h" > "$tmp/includes"
  while read -r dep; do
    case $dep in
    parley/*) [ -f "$inc/$dep" ] || fail "$h includes $dep, which is not installed" ;;
    *) printf '#include <%s>\n' "$dep" | $cc -x c -fsyntax-only - 2>/dev/null ||
      fail "$h includes $dep, neither installed nor a system header" ;;
    esac
  done < "$tmp/includes"
done
echo '#include <parley/parley.h>' > "$tmp/header_alone.c"
$cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$inc" "$tmp/header_alone.c"
${CXX:-c++} -x c++ -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/header_alone.c"

echo "check-install: installed tools"
for tool in parley-call parley-netsim parley-pipeline parley-bench; do
  [ -x "$prefix/bin/$tool" ] || fail "$tool not installed in bin/"
  "$prefix/bin/$tool" --help > "$tmp/help.txt" 2>&1 || { cat "$tmp/help.txt" >&2; fail "$tool --help failed"; }
done

examples=$(cd "$root/examples" && ls *.c | sed 's/\.c$//')

echo "check-install: pkg-config builds (shared and --static)"
# The static check uses a copy of the prefix without libparley.so (parley.pc is relocatable: its prefix
# is its own location), as on a machine where only libparley.a is installed.
cp -R "$prefix" "$tmp/static-prefix"
rm -f "$tmp/static-prefix/${libdir#"$prefix"/}"/libparley.so*
static_pcdir="$tmp/static-prefix/${libdir#"$prefix"/}/pkgconfig"
# pc_build PKG_CONFIG_DIR OUT SRC PKG-CONFIG-LIBS-FLAG: compile and link one example with pkg-config.
# The example's own modules ("/* pkg-config: M */"): shared.
extra_modules() { sed -n 's|^/\* pkg-config: \(.*\) \*/$|\1|p' "$1"; }
pc_build() (
  PKG_CONFIG_PATH=$1
  export PKG_CONFIG_PATH
  extra=$(extra_modules "$3")
  $cc -std=c11 -Wall -Wextra -Werror "$3" -o "$2" $(pkg-config --cflags parley $extra) $(pkg-config $4 parley) \
    ${extra:+$(pkg-config --libs $extra)} -lm
)
mkdir -p "$tmp/pc"
for ex in $examples; do
  pc_build "$(dirname "$pc")" "$tmp/pc/${ex}_shared" "$root/examples/$ex.c" --libs
  pc_build "$static_pcdir" "$tmp/pc/${ex}_static" "$root/examples/$ex.c" "--static --libs"
done

echo "check-install: CMake find_package builds (parley::parley and parley::parley_static)"
mkdir -p "$tmp/proj"
{
  echo "cmake_minimum_required(VERSION 3.25)"
  echo "project(parley_examples C)"
  echo "find_package(parley REQUIRED)"
  echo "find_package(PkgConfig REQUIRED)"
  for ex in $examples; do
    extra=$(extra_modules "$root/examples/$ex.c")
    libs=""
    for m in $extra; do
      echo "pkg_check_modules(EX_$m REQUIRED IMPORTED_TARGET $m)"
      libs="$libs PkgConfig::EX_$m"
    done
    for kind in shared static; do
      target=parley::parley
      [ $kind = static ] && target=parley::parley_static
      echo "add_executable(${ex}_$kind \"$root/examples/$ex.c\")"
      echo "set_target_properties(${ex}_$kind PROPERTIES C_STANDARD 11)"
      echo "target_compile_options(${ex}_$kind PRIVATE -Wall -Wextra -Werror)"
      echo "target_link_libraries(${ex}_$kind PRIVATE $target$libs m)"
    done
  done
} > "$tmp/proj/CMakeLists.txt"
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null

# What each example is given: a 48 kHz speech clip where it plays one, a file for what it hears, and
# for whip_client a WHIP endpoint: the installed parley-call serve, echoing.
clip="$root/tests/data/speech_a_48k.wav"
timeout -k 5 600 "$prefix/bin/parley-call" serve 127.0.0.1:0 --echo --loopback-only > "$tmp/serve.txt" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
until grep -q '^serving at' "$tmp/serve.txt"; do
  i=$((i + 1))
  [ $i -lt 100 ] || fail "parley-call serve did not start: $(cat "$tmp/serve.txt")"
  sleep 0.05
done
whip_url=$(sed -n 's|^serving at \(http://[0-9.:]*\)/.*|\1/whip|p' "$tmp/serve.txt")
for exe in "$tmp"/pc/* "$tmp"/proj/build/*_shared "$tmp"/proj/build/*_static; do
  name=$(basename "$exe")
  case $name in
  *_shared) readelf -d "$exe" | grep -q "NEEDED.*\[$soname\]" || fail "$exe does not load $soname" ;;
  *) ! readelf -d "$exe" | grep -q "NEEDED.*libparley" || fail "$exe loads libparley.so, not libparley.a" ;;
  esac
  case ${name%_*} in
  minimal_call) set -- "$clip" "$tmp/heard.wav" ;;
  session_mesh | room_mesh) set -- "$clip" ;;
  whip_client) set -- "$whip_url" "$clip" "$tmp/whip_heard.wav" 2 ;;
  *) set -- ;;
  esac
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout -k 5 30 "$exe" "$@" > "$tmp/out.txt" 2>&1 || {
    cat "$tmp/out.txt" >&2
    fail "$exe failed"
  }
  echo "check-install: $(echo "$exe" | sed "s|^$tmp/||"): $(tail -n 1 "$tmp/out.txt")"
done
echo "check-install: ok"
