#!/bin/sh
# janus-room.sh: runs Debian's janus (scripts/install-deps.sh installs it) as the AudioBridge server of
# parley's Janus tests and benches, with a configuration made here in DIR: the HTTP transport on
# 127.0.0.1:8088 (/janus), the WebSocket transport on 127.0.0.1:8188 (ws://127.0.0.1:8188/), and the
# AudioBridge plugin with room 1234 (48 kHz, talking events from the
# RFC 6464 audio level: the mean of the last 25 packets, 0.5 s, louder than -60 dBov).
#
# Janus's libnice gathers no loopback address: run it in a network namespace whose veth end IFACE
# carries the media (tests/test_room_janus.c and scripts/bench-room-janus.sh make one). SESSION_TIMEOUT
# (seconds, default 60) is how long Janus keeps a session that sends nothing: a participant on HTTP that
# vanishes (killed, unplugged) leaves the room that long after its last request, plus up to 2 s
# (Janus's session watchdog runs every 2 s). Over the WebSocket, Janus destroys the session as soon as
# the connection closes (reclaim_session_timeout stays 0), which a killed process's kernel does at
# once; a frozen process or a cut network keeps the connection open, and session_timeout applies. Janus 1.1.2 has no ICE consent freshness; nat's
# ice_keepalive_conncheck = true would drop a vanished participant when ICE fails instead (12 s measured
# with parley-bench room), but Janus's sample config warns that some libnice versions then break
# connections after 50 s, so it stays off here.
#
# The script ends by exec'ing janus (foreground, log in DIR/janus.log), so a parent's PR_SET_PDEATHSIG
# and its signals reach janus itself.
# Usage: janus-room.sh DIR [SESSION_TIMEOUT [IFACE]]
set -eu
dir=$1
timeout=${2:-60}
iface=${3:-pj1}
lib=
for d in /usr/lib/*/janus /usr/lib/janus; do
  [ -e "$d/plugins/libjanus_audiobridge.so" ] && lib=$d && break
done
[ -n "$lib" ] || { echo "janus-room.sh: no Janus AudioBridge plugin (apt-get install janus)" >&2; exit 1; }
mkdir -p "$dir/plugins" "$dir/transports"
ln -sf "$lib/plugins/libjanus_audiobridge.so" "$dir/plugins/"
ln -sf "$lib/transports/libjanus_http.so" "$lib/transports/libjanus_websockets.so" "$dir/transports/"
cat > "$dir/janus.jcfg" <<END
general: {
  configs_folder = "$dir"
  plugins_folder = "$dir/plugins"
  transports_folder = "$dir/transports"
  events_folder = "$dir/none"
  loggers_folder = "$dir/none"
  debug_level = 4
  session_timeout = $timeout
}
media: { no_media_timer = 1 }
nat: { ice_enforce_list = "$iface" }
END
cat > "$dir/janus.transport.http.jcfg" <<END
general: { json = "plain" base_path = "/janus" http = true port = 8088 ip = "127.0.0.1" }
admin: { admin_http = false }
END
cat > "$dir/janus.transport.websockets.jcfg" <<END
general: { json = "plain" ws = true ws_port = 8188 ws_ip = "127.0.0.1" wss = false }
admin: { admin_ws = false admin_wss = false }
END
# The static room's keys are the plugin's config names (audiolevel_event), not its API's.
cat > "$dir/janus.plugin.audiobridge.jcfg" <<END
general: { }
room-1234: {
  description = "parley"
  sampling_rate = 48000
  audiolevel_event = true
  audio_active_packets = 25
  audio_level_average = 60
}
END
exec janus -C "$dir/janus.jcfg" -F "$dir" -o -N -L "$dir/janus.log"
