/* nscall.h: a real call between two parley engines, each in a Linux network namespace of its own, for
 * the tests and the bench that take addresses away mid-call (network handover). Two veth links join
 * the namespaces: link 0 (a0 10.66.0.1 - b0 10.66.0.2) and link 1 (a1 - b1, subnet 10.66.1.0/24).
 * A starts on link 0 only; B on link 0 and, unless both sides move, link 1 (10.66.1.2) too.
 * parley__nscall_move takes a side's address on one link away and gives it one on the other.
 *
 * The nscall is the call's signalling channel, with a configurable one-way delay: it relays every
 * LOCAL_CANDIDATE line (unless told not to) and, on NEGOTIATION_NEEDED, runs the offer/answer
 * (create_offer on that side now, the offer delivered after the delay, the answer back after it). Like
 * an app avoiding glare, it starts no offer while another exchange is in flight: a side's
 * NEGOTIATION_NEEDED waits for it (both sides restart ICE when both moved and nothing was trickled).
 * Each side's event kinds are recorded in order, with the interrupted/resumed messages.
 *
 * Needs root (ip netns, veth). Namespaces are named "parley-<pid>-a"/"-b" and deleted by free; the
 * engines are created with the calling thread inside each namespace (their threads and sockets stay
 * there) and the thread is put back where it was. Threads: create, pump, move and free on one app
 * thread; events arrive on the engines' dispatch threads (under the nscall's mutex). Not real-time. */
#ifndef PARLEY_SIM_NSCALL_H
#define PARLEY_SIM_NSCALL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "parley/parley.h"

#define PARLEY__NSCALL_MAX_EVENTS 256
#define PARLEY__NSCALL_MAX_MSGS 64

typedef struct parley__nscall_config {
  int signaling_delay_ms;  /* one way, for candidates, offers and answers */
  bool relay_candidates;   /* pass LOCAL_CANDIDATE lines to the other side [true in init] */
  bool b_moves_too;        /* B has no link-1 address at first: it will move as well */
  const char *input_a, *input_b;   /* capture files (looped); NULL = silence */
  const char *output_a, *output_b; /* playout files; NULL = discarded */
} parley__nscall_config;

struct parley__nscall;

typedef struct parley__nscall_side {
  struct parley__nscall *h;
  int index;
  parley_engine *eng;
  parley_call *call;
  int listener[PARLEY_EVENT_CALL_KIND_COUNT];
  parley_event_kind kinds[PARLEY__NSCALL_MAX_EVENTS];
  int nkinds;
  char interrupted_msg[128], resumed_msg[128];
  int negotiations; /* NEGOTIATION_NEEDED seen */
} parley__nscall_side;

typedef struct parley__nscall_msg {
  int64_t due_us;
  int to;          /* side the message is for */
  int type;        /* 0 candidate, 1 offer, 2 answer, 3 negotiation needed (local, no delay) */
  char text[8192];
} parley__nscall_msg;

typedef struct parley__nscall {
  parley__nscall_config cfg;
  char ns[2][40];
  int ns_fd[2];
  int home_fd;
  parley__nscall_side side[2];
  pthread_mutex_t lock;
  parley__nscall_msg *msgs; /* PARLEY__NSCALL_MAX_MSGS */
  int nmsgs;
  int dropped_msgs;
  int offers_in_flight; /* offers sent whose answer is not applied yet: no new offer meanwhile (glare) */
} parley__nscall;

void parley__nscall_config_init(parley__nscall_config *cfg);
/* Namespaces, links, engines, the call negotiated and started. 0, PARLEY_ENOTSUP (no root, no network
 * namespaces or no veth: the caller skips) or another error (*why says which step). */
int parley__nscall_create(parley__nscall *h, const parley__nscall_config *cfg, const char **why);
/* Delivers the signalling messages that are due. Call every few ms. */
void parley__nscall_pump(parley__nscall *h);
/* Side 0 (A) or 1 (B) loses its address on link `from` and gets one on the other link. 0 or -1. */
int parley__nscall_move(parley__nscall *h, int side, int from);
/* Count of `kind` events on a side so far (under the lock). */
int parley__nscall_count(parley__nscall *h, int side, parley_event_kind kind);
/* The side's INTERRUPTED/RESUMED kinds in order into out (at most max); returns the count. */
int parley__nscall_outages(parley__nscall *h, int side, parley_event_kind *out, int max);
/* Watching for media on a new path after a move: per side, the count of selected pairs when it was
 * taken and, once a new pair shows, the packets received at that moment. */
typedef struct parley__nscall_mark {
  uint32_t pairs[2];
  bool new_pair[2];
  uint64_t received[2];
} parley__nscall_mark;
/* Takes the mark (just before a move). */
void parley__nscall_mark_take(parley__nscall *h, parley__nscall_mark *m);
/* True once each side selected a new pair and received an RTP packet after seeing it (a packet queued
 * before the move cannot count). Poll it. */
bool parley__nscall_media_back(parley__nscall *h, parley__nscall_mark *m);
/* Hangs up, frees the engines, deletes the namespaces. */
void parley__nscall_free(parley__nscall *h);
/* Monotonic microseconds (CLOCK_MONOTONIC). */
int64_t parley__nscall_now_us(void);

#endif
