# serve-lib.sh: what the shell tests of `parley-call serve` share (sourced). The sourcing script
# defines fail() and $tool, and keeps the background pids it must kill in $pids.

# wait_for POLLS WHAT CMD...: runs CMD every 0.05 s until it succeeds; fails with WHAT after POLLS tries.
wait_for() {
  n=$1
  what=$2
  shift 2
  i=0
  until "$@"; do
    i=$((i + 1))
    [ $i -lt "$n" ] || fail "$what"
    sleep 0.05
  done
}

# serve LOG ARGS...: starts parley-call serve on a free port in the background; sets $url (http://...)
# and $serve_pid. A SIGTERM to $serve_pid reaches serve through timeout(1), which kills it 15 s later if
# it is still there: serve's orderly stop may take 4 s by design (2 s for the calls to close, 2 s for
# the event streams to drain), and more under AddressSanitizer on a loaded machine.
serve() {
  log=$1
  shift
  timeout -k 15 120 "$tool" serve 127.0.0.1:0 --loopback-only "$@" > "$log" 2>&1 &
  serve_pid=$!
  pids="$pids $serve_pid"
  wait_for 100 "serve did not start" grep -q '^serving at' "$log"
  url=$(sed -n 's|^serving at \(http://[0-9.:]*\)/.*|\1|p' "$log")
}
