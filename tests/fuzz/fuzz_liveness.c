/* fuzz_liveness.c: libFuzzer target for the liveness monitor (transport/liveness.h) driven by hostile
 * event sequences. The input is a list of 4-byte records: an input kind, a time step (ms, 0..255: time
 * never goes backwards, as the monitor requires) and two argument bytes. After every input the monitor
 * is ticked at its deadline when that is due, as an owner would.
 * Checks the promises of liveness.h: inputs return 0 / PARLEY_EFULL / PARLEY_ESTATE only (never
 * PARLEY_EINVAL for valid arguments), tick returns only known actions, a queue of 16 drained after
 * every call never overflows, events come in documented pairs (interrupted and resumed alternate, one
 * ICE change and one peer change at a time), and after close nothing more happens. */
#include "parley/parley.h"
#include "transport/liveness.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
  bool interrupted;
  bool closed;
} seen;

static void drain(parley__event_queue *q, seen *s) {
  parley__event ev;
  int n = 0;
  bool was_closed = s->closed;
  while (parley__event_queue_pop(q, &ev) == 0) {
    if (++n > 6) abort(); /* "one call appends at most 6 events" */
    if (was_closed) abort(); /* nothing after the call that closed */
    switch (ev.kind) {
    case PARLEY_EVENT_INTERRUPTED:
      if (s->interrupted || ev.code == PARLEY_INTERRUPT_NONE) abort();
      s->interrupted = true;
      break;
    case PARLEY_EVENT_RESUMED:
      if (!s->interrupted) abort();
      s->interrupted = false;
      break;
    case PARLEY_EVENT_TRACK_STOPPED:
      if (ev.stop_reason == PARLEY_STOP_NONE || ev.stop_reason >= PARLEY__STOP_REASON_COUNT) abort();
      break;
    case PARLEY_EVENT_ICE_STATE_CHANGED:
      if (ev.ice_state == PARLEY_ICE_CLOSED) s->closed = true;
      break;
    default: break;
    }
  }
}

static void check_input(int rc) {
  if (rc != 0 && rc != PARLEY_ESTATE) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int errnos[] = {ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENETDOWN, EMSGSIZE, EPERM};
  parley__event slots[16];
  parley__event_queue q;
  parley__event_queue_init(&q, slots, 16);
  parley__liveness_config cfg;
  parley__liveness_config_init(&cfg);
  if (size > 0 && (data[0] & 1)) { /* short timers: more transitions per input */
    cfg.consent_interval_us = 300000;
    cfg.consent_retry_after_us = 600000;
    cfg.consent_retry_interval_us = 100000;
    cfg.consent_expiry_us = 1500000;
    cfg.media_timeout_us = 400000;
  }
  int err = 0;
  parley__liveness *m = parley__liveness_new(&cfg, &q, &err);
  if (!m) abort();
  seen s = {0};
  int64_t now = 0;
  for (size_t i = 1; i + 4 <= size; i += 4) {
    uint8_t kind = data[i], a = data[i + 2], b = data[i + 3];
    now += (int64_t)data[i + 1] * 1000;
    uint32_t ssrc = (uint32_t)(a & 3); /* few ssrcs: changes, byes and stragglers collide */
    switch (kind % 12) {
    case 0: check_input(parley__liveness_on_ice_checking(m, now)); break;
    case 1: check_input(parley__liveness_on_ice_connected(m, now)); break;
    case 2: check_input(parley__liveness_on_rtp(m, now, ssrc, b & 1)); break;
    case 3: check_input(parley__liveness_on_rtcp(m, now)); break;
    case 4: check_input(parley__liveness_on_rtcp_bye(m, now, ssrc)); break;
    case 5: check_input(parley__liveness_on_remote_direction(m, now, (parley__liveness_direction)(a % 4))); break;
    case 6: check_input(parley__liveness_on_probe_response(m, now)); break;
    case 7: check_input(parley__liveness_on_consent_response(m, now)); break;
    case 8:
      check_input(parley__liveness_on_socket_error(m, now, errnos[a % (sizeof errnos / sizeof errnos[0])]));
      break;
    case 9: parley__liveness_on_rtt(m, ((int64_t)a << 8 | b) * 100); break;
    case 10:
      if (b == 0xff) check_input(parley__liveness_close(m, now));
      break;
    default: { /* let time run to the next deadline, as the owner's loop would */
      int64_t d = parley__liveness_next_deadline_us(m);
      if (d != INT64_MAX && d > now && d - now < 10000000) now = d;
      break;
    }
    }
    drain(&q, &s);
    if (parley__liveness_next_deadline_us(m) <= now) {
      int act = parley__liveness_tick(m, now);
      if (act < 0 || (act & ~(PARLEY__LIVENESS_SEND_PROBE | PARLEY__LIVENESS_SEND_CONSENT))) abort();
      drain(&q, &s);
      if (parley__liveness_next_deadline_us(m) <= now && !s.closed) abort(); /* a tick serves the deadline */
    }
    if (parley__liveness_interrupted(m) != s.interrupted) abort();
    if (parley__liveness_peer_state(m) != parley__peer_state_from_ice(parley__liveness_ice_state(m))) abort();
  }
  if (parley__liveness_tick(m, now) < 0) abort();
  drain(&q, &s);
  if (now > 0 && !s.closed && parley__liveness_tick(m, now - 1) != PARLEY_EINVAL) abort(); /* time backwards */
  if (q.dropped != 0) abort();
  parley__liveness_free(m);
  return 0;
}
