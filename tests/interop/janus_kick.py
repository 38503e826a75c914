#!/usr/bin/python3
"""janus_kick.py URL ROOM DISPLAY: a moderator for tests/test_room_janus.c, on Janus's own HTTP API
(urllib, no parley): creates a session, attaches the AudioBridge, finds the participant of ROOM whose
display name is DISPLAY (listparticipants) and kicks it. Exits 0 when Janus says success."""
import json
import sys
import urllib.request

url, room, display = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def post(path, body):
    body = dict(body, transaction="kick")
    req = urllib.request.Request(url + path, json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


session = post("", {"janus": "create"})["data"]["id"]
handle = post("/%d" % session, {"janus": "attach", "plugin": "janus.plugin.audiobridge"})["data"]["id"]


def audiobridge(body):
    return post("/%d/%d" % (session, handle), {"janus": "message", "body": body})["plugindata"]["data"]


found = [p["id"] for p in audiobridge({"request": "listparticipants", "room": room})["participants"]
         if p.get("display") == display]
if not found:
    sys.exit("no participant %r in room %d" % (display, room))
done = audiobridge({"request": "kick", "room": room, "id": found[0]})
post("/%d" % session, {"janus": "destroy"})
sys.exit(0 if done.get("audiobridge") == "success" else "kick refused: %r" % done)
