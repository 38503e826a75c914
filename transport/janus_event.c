/* janus_event.c: turns what Janus sends on a session's long poll into parley__janus_event values (see
 * janus.h). Owns nothing past each call: the participant array it builds is freed once the caller's
 * function returned. Pure parsing (jansson), no I/O; called on the Janus client's thread and by tests.
 *
 * What Janus sends (Janus API and the AudioBridge's events): core messages by "janus" (event,
 * webrtcup, media, hangup, timeout, error, keepalive, ...) and the plugin's by plugindata.data
 * "audiobridge" (joined, event with participants / leaving / kicked / error, talking,
 * stopped-talking, destroyed). A JSEP answer may ride on any event. Unknown messages are skipped. */
#include "transport/janus.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

static uint64_t id_of(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static const char *str_of(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static int deliver(parley__janus_event *ev, parley__janus_fn fn, void *user) {
  if (!ev->message) ev->message = "";
  fn(ev, user);
  return 1;
}

/* A "participants" array as events: the count delivered (0 or 1). */
static int participants(const json_t *list, parley__janus_kind kind, uint64_t self, parley__janus_fn fn,
                        void *user) {
  size_t n = json_array_size(list);
  parley__janus_participant *p = calloc(n ? n : 1, sizeof *p);
  if (!p) return 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *o = json_array_get(list, i);
    if (!json_is_object(o) || !id_of(o, "id")) continue;
    p[k].id = id_of(o, "id");
    snprintf(p[k].display, sizeof p[k].display, "%s", str_of(o, "display"));
    p[k].muted = json_is_true(json_object_get(o, "muted"));
    p[k].setup = json_is_true(json_object_get(o, "setup"));
    json_t *t = json_object_get(o, "talking");
    p[k].talking = json_is_boolean(t) ? json_is_true(t) : -1;
    k++;
  }
  parley__janus_event ev = {.kind = kind, .id = self, .participants = p, .count = k};
  int got = kind == PARLEY__JANUS_JOINED || k ? deliver(&ev, fn, user) : 0;
  free(p);
  return got;
}

/* plugindata.data of the AudioBridge: events delivered. */
static int plugin_event(const json_t *d, parley__janus_fn fn, void *user) {
  const char *what = str_of(d, "audiobridge");
  parley__janus_event ev = {.id = id_of(d, "id")};
  /* "joined" with our id is our own join; without one, the others' (participants that just joined). */
  if (!strcmp(what, "joined"))
    return participants(json_object_get(d, "participants"), ev.id ? PARLEY__JANUS_JOINED : PARLEY__JANUS_PARTICIPANTS,
                        ev.id, fn, user);
  if (!strcmp(what, "talking") || !strcmp(what, "stopped-talking")) {
    ev.kind = what[0] == 't' ? PARLEY__JANUS_TALKING : PARLEY__JANUS_STOPPED_TALKING;
    return deliver(&ev, fn, user);
  }
  if (!strcmp(what, "destroyed")) {
    ev.kind = PARLEY__JANUS_ROOM_GONE;
    return deliver(&ev, fn, user);
  }
  if (strcmp(what, "event") != 0) return 0;
  int got = 0;
  if (json_object_get(d, "error_code")) {
    ev.kind = PARLEY__JANUS_ERROR;
    ev.error_code = (int)json_integer_value(json_object_get(d, "error_code"));
    ev.message = str_of(d, "error");
    got += deliver(&ev, fn, user);
  }
  if (json_is_array(json_object_get(d, "participants")))
    got += participants(json_object_get(d, "participants"), PARLEY__JANUS_PARTICIPANTS, 0, fn, user);
  static const struct { const char *key; parley__janus_kind kind; } gone[] = {
      {"leaving", PARLEY__JANUS_LEAVING}, {"unpublished", PARLEY__JANUS_LEAVING}, {"kicked", PARLEY__JANUS_KICKED}};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    uint64_t who = id_of(d, gone[i].key);
    if (!who) continue;
    parley__janus_event g = {.kind = gone[i].kind, .id = who};
    got += deliver(&g, fn, user);
  }
  return got;
}

static int one(const json_t *m, uint64_t handle, parley__janus_fn fn, void *user) {
  if (!json_is_object(m)) return 0;
  const char *what = str_of(m, "janus");
  parley__janus_event ev = {0};
  if (!strcmp(what, "timeout")) {
    ev.kind = PARLEY__JANUS_SESSION_GONE;
    ev.message = "Janus timed the session out";
    return deliver(&ev, fn, user);
  }
  if (!strcmp(what, "error")) { /* on a long poll: the session is unknown to Janus */
    ev.kind = PARLEY__JANUS_SESSION_GONE;
    ev.message = str_of(json_object_get(m, "error"), "reason");
    return deliver(&ev, fn, user);
  }
  uint64_t sender = id_of(m, "sender");
  if (sender && handle && sender != handle) return 0;
  int got = 0;
  if (!strcmp(what, "event")) {
    json_t *pd = json_object_get(m, "plugindata");
    got += plugin_event(json_object_get(pd, "data"), fn, user);
    json_t *jsep = json_object_get(m, "jsep");
    if (!strcmp(str_of(jsep, "type"), "answer") && *str_of(jsep, "sdp")) {
      ev.kind = PARLEY__JANUS_ANSWER;
      ev.sdp = str_of(jsep, "sdp");
      got += deliver(&ev, fn, user);
    }
  } else if (!strcmp(what, "webrtcup")) {
    ev.kind = PARLEY__JANUS_WEBRTC_UP;
    got += deliver(&ev, fn, user);
  } else if (!strcmp(what, "media")) {
    ev.kind = PARLEY__JANUS_MEDIA;
    ev.receiving = json_is_true(json_object_get(m, "receiving"));
    got += deliver(&ev, fn, user);
  } else if (!strcmp(what, "hangup")) {
    ev.kind = PARLEY__JANUS_HANGUP;
    ev.message = str_of(m, "reason");
    got += deliver(&ev, fn, user);
  }
  return got;
}

int parley__janus_parse(const char *text, size_t len, uint64_t handle, parley__janus_fn fn, void *user) {
  if (!text || !fn) return PARLEY_EINVAL;
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) return PARLEY_EPARSE;
  int got = 0;
  if (json_is_array(root))
    for (size_t i = 0; i < json_array_size(root); i++) got += one(json_array_get(root, i), handle, fn, user);
  else
    got = one(root, handle, fn, user);
  json_decref(root);
  return got;
}
