/* device_list.c: parley_device_list, the public face of the device layer's list (device.h). Owns
 * nothing past the call; any app thread, not real-time safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "parley/parley.h"

/* More devices than any sound system offers: bounds the scratch copy, so a huge cap cannot ask for
 * a huge allocation. */
#define MAX_LISTED 1024

int parley_device_list(parley_device_info *out, size_t cap) {
  if (!out && cap) return PARLEY_EINVAL;
  if (cap > MAX_LISTED) cap = MAX_LISTED;
  parley__device_info *tmp = NULL;
  if (cap && !(tmp = calloc(cap, sizeof *tmp))) return PARLEY_ENOMEM;
  int n = parley__device_list(tmp, cap);
  for (size_t i = 0; n > 0 && i < cap && i < (size_t)n; i++) {
    parley_device_info *o = &out[i];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", tmp[i].name);
    snprintf(o->host_api, sizeof o->host_api, "%s", tmp[i].host_api);
    o->input_channels = tmp[i].max_input_channels;
    o->output_channels = tmp[i].max_output_channels;
    o->default_rate_hz = tmp[i].default_rate_hz;
    o->default_input = tmp[i].default_input;
    o->default_output = tmp[i].default_output;
  }
  free(tmp);
  return n;
}
