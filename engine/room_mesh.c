/* room_mesh.c: the mesh room backend (room_internal.h). Not implemented yet: parley_room_join(MESH)
 * returns PARLEY_ENOTSUP until it is. */
#include "engine/room_internal.h"

static int start(parley_room *room, void **state) {
  (void)room;
  (void)state;
  return PARLEY_ENOTSUP;
}

static int leave(void *state) {
  (void)state;
  return PARLEY_ENOTSUP;
}

static int set_mute_microphone(void *state, bool mute) {
  (void)state;
  (void)mute;
  return PARLEY_ENOTSUP;
}

static void state_free(void *state) { (void)state; }

const parley__room_backend_ops parley__room_mesh_ops = {
    .start = start, .leave = leave, .set_mute_microphone = set_mute_microphone, .free = state_free};
