#!/bin/sh
# bench-room-janus.sh: runs `parley-bench room` against a Janus of its own: a network namespace with a
# veth pair (Janus's libnice gathers no loopback address), scripts/janus-room.sh in it with a 5 s
# session timeout, the bench over Janus's WebSocket API (a killed member's connection closes and Janus
# drops its session at once; over HTTP the vanish figure would be that timeout), then Janus stopped.
# As root.
# Usage: bench-room-janus.sh BUILD_DIR [bench options, e.g. --json --participants 3]
set -eu
[ "${PARLEY_IN_NETNS:-}" = 1 ] || PARLEY_IN_NETNS=1 exec unshare -n "$0" "$@"
build=$1
shift
cd "$(dirname "$0")/.."
ip link set lo up
ip link add pj0 type veth peer name pj1
ip addr add 10.77.0.1/24 dev pj0
ip addr add 10.77.0.2/24 dev pj1
ip link set pj0 up
ip link set pj1 up
sysctl -q -w net.ipv4.conf.pj0.accept_local=1 net.ipv4.conf.pj1.accept_local=1
dir=$(mktemp -d /tmp/parley_janus_bench_XXXXXX)
sh scripts/janus-room.sh "$dir" 5 pj1 >"$dir/janus.out" 2>&1 & # its banner would break --json
janus=$!
trap 'kill $janus 2>/dev/null; wait $janus 2>/dev/null; rm -rf "$dir"' EXIT
i=0
until curl -s -o /dev/null --max-time 1 http://127.0.0.1:8088/janus/info && curl -s -o /dev/null --max-time 1 http://127.0.0.1:8188/; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "bench-room-janus: janus did not start (log: $dir/janus.log)" >&2; exit 1; }
  sleep 0.1
done
"$build/bin/parley-bench" room --janus ws://127.0.0.1:8188/ "$@"
