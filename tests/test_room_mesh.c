#define _GNU_SOURCE
/* test_room_mesh.c: rooms (include/parley/room.h) through the mesh backend: the entry points' bad
 * input, and (below) three engines in one process joined to one mesh room over an in-test message
 * channel. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "tests/call_helpers.h"

static int drop_send(const char *to, const char *message, void *user) {
  (void)to;
  (void)message;
  (void)user;
  return 0;
}

static void noop(const parley_event *ev, void *user) {
  (void)ev;
  (void)user;
}

static void mesh_config(parley_room_config *rc, const char *id) {
  parley_room_config_init(rc);
  rc->room_id = "standup";
  rc->member_id = id;
  rc->display_name = id;
  rc->send = drop_send;
}

Test(room, config_defaults_and_names) {
  parley_room_config rc;
  memset(&rc, 0xff, sizeof rc);
  parley_room_config_init(&rc);
  cr_expect_eq(rc.backend, PARLEY_ROOM_MESH);
  cr_expect_eq(rc.vanish_grace_ms, 5000);
  cr_expect_null(rc.room_id);
  cr_expect_null(rc.send);
  cr_expect(!rc.mute_microphone && !rc.mute_earphone);
  parley_room_config_init(NULL);
  cr_expect_str_eq(parley_leave_reason_name(PARLEY_LEAVE_NONE), "none");
  cr_expect_str_eq(parley_leave_reason_name(PARLEY_LEAVE_LEFT), "left");
  cr_expect_str_eq(parley_leave_reason_name(PARLEY_LEAVE_KICKED), "kicked");
  cr_expect_str_eq(parley_leave_reason_name(PARLEY_LEAVE_VANISHED), "vanished");
  cr_expect_str_eq(parley_leave_reason_name(PARLEY_LEAVE_FAILED), "failed");
  cr_expect_str_eq(parley_leave_reason_name((parley_leave_reason)99), "unknown");
  cr_expect_str_eq(parley_leave_reason_name((parley_leave_reason)-1), "unknown");
}

Test(room, null_handles_are_refused) {
  parley_room_member m;
  parley_room_stats st;
  cr_expect_eq(parley_room_receive(NULL, "a", "x"), PARLEY_EINVAL);
  cr_expect_eq(parley_room_leave(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_room_free(NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_room_members(NULL, &m, 1), PARLEY_EINVAL);
  cr_expect_eq(parley_room_set_mute_microphone(NULL, true), PARLEY_EINVAL);
  cr_expect_eq(parley_room_set_mute_earphone(NULL, true), PARLEY_EINVAL);
  cr_expect_eq(parley_room_set_member_volume(NULL, "a", 50), PARLEY_EINVAL);
  cr_expect_eq(parley_room_on(NULL, PARLEY_EVENT_CLOSED, noop, NULL), PARLEY_EINVAL);
  cr_expect_eq(parley_room_off(NULL, 1), PARLEY_EINVAL);
  cr_expect_eq(parley_room_get_stats(NULL, &st), PARLEY_EINVAL);
}

Test(room, join_refuses_bad_config) {
  parley_engine *e = th_null_engine();
  parley_room *room = (parley_room *)1;
  parley_room_config rc;
  mesh_config(&rc, "alice");
  cr_expect_eq(parley_room_join(NULL, &rc, &room), PARLEY_EINVAL);
  cr_expect_null(room, "*out cleared on failure");
  cr_expect_eq(parley_room_join(e, NULL, &room), PARLEY_EINVAL);
  cr_expect_eq(parley_room_join(e, &rc, NULL), PARLEY_EINVAL);
  char longid[PARLEY_ROOM_ID_MAX + 1];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  const char *ids[] = {NULL, "", longid, "al\nice", "tab\there"};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    mesh_config(&rc, "alice");
    rc.room_id = ids[i];
    cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "room id %zu", i);
    mesh_config(&rc, ids[i]);
    rc.display_name = "Alice";
    cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "member id %zu", i);
    mesh_config(&rc, "alice");
    rc.display_name = ids[i];
    cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "display name %zu", i);
  }
  mesh_config(&rc, "alice");
  rc.send = NULL;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "mesh without send");
  mesh_config(&rc, "alice");
  rc.vanish_grace_ms = 0;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "no grace");
  mesh_config(&rc, "alice");
  rc.backend = (parley_room_backend)7;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "unknown backend");
  mesh_config(&rc, NULL);
  rc.display_name = "Alice";
  rc.backend = PARLEY_ROOM_JANUS;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EINVAL, "janus without url");
#ifndef PARLEY_HAVE_JANUS
  rc.janus_url = "http://127.0.0.1:8088/janus";
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_ENOTSUP, "janus not built");
#endif
  /* An engine with a session has no room for a room. */
  parley_session *s;
  cr_assert_eq(parley_session_new(e, &s), 0);
  mesh_config(&rc, "alice");
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_EFULL);
  cr_expect_eq(parley_session_free(s), 0);
  parley_engine_free(e);
}

Test(room, join_needs_48khz) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.device_rate_hz = 16000;
  parley_engine *e;
  cr_assert_eq(parley_engine_new(&cfg, &e), 0);
  parley_room_config rc;
  mesh_config(&rc, "alice");
  parley_room *room;
  cr_expect_eq(parley_room_join(e, &rc, &room), PARLEY_ENOTSUP);
  parley_engine_free(e);
}
