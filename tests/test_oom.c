/* test_oom.c: the allocation-failure sweep. For k = 1, 2, ... the k-th allocation that libparley makes
 * after arming fails, while an engine starts, two calls negotiate, join a session, start, hang up and are
 * freed, the session is freed, and a mesh room is joined, hears a member, mutes, is left and freed. Every API call returns 0 or PARLEY_ENOMEM (or the documented
 * consequence of an earlier failure), nothing crashes, nothing allocated in the run is left over, and
 * every call that was created gets CLOSED exactly once, as its last event.
 *
 * "Made by libparley": the stack, walked from the allocation outwards, reaches libparley's code before
 * any library that cannot take a failed allocation (below). So parley's own allocations fail, and so do
 * those it makes through a library that handles ENOMEM (libopus, glibc's getifaddrs, pthread_create),
 * while the libraries' own lazy work (NSS loading its modules) is left alone. The test links the shared
 * libparley to know its code's address range.
 *
 * make test runs every k up to SWEEP_ALL and a deterministic sample above it (a few seconds);
 * PARLEY_OOM_SWEEP=full runs every k. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"
#include "tests/alloc_interpose.h"

#ifndef AI_SANITIZED
/* ---- which allocations fail: the interposer's hooks ---- */

static atomic_bool armed;
static atomic_long alloc_n, fail_at; /* libparley's allocations since arming; the one that fails */
static atomic_bool failed;

/* The libraries an allocation's stack may pass through, by what the sweep does with their allocations:
 * - PARLEY: libparley. An allocation whose stack reaches it before any NEVER_FAILS library may fail.
 * - NEVER_FAILS: libraries that crash when an allocation inside them fails (found by this sweep):
 *   - libsrtp 2.5 (Debian 12): srtp_create frees a half-made session with srtp_dealloc, which walks
 *     the stream list that failed to allocate (NULL dereference in srtp_stream_list_for_each);
 *   - NSS, libsrtp's crypto in Debian (libnss3, the NSPR/softoken libraries it allocates through and
 *     the modules it loads lazily on each NSS_InitContext): frees a garbage pointer or crashes;
 *   - speexdsp 1.2 (echo canceller, preprocessor): never checks what speex_alloc returns;
 *   - the dynamic loader (dlopen, on behalf of any of them).
 * - UNTRACKED: what they allocate is kept by the library for the process or the thread (OpenSSL's
 *   fetched-method cache and per-thread DRBGs, NSPR's per-thread error text, the dynamic loader's TLS
 *   blocks for a new thread: 20 of those were once left over by a run after the warm-up on a fresh
 *   machine), so it is not counted as left over. libcrypto handles a failed allocation, so it may fail.
 *   (So the DTLS objects parley holds through libcrypto are left to the ASan build's leak check.) */
enum { PARLEY = 1, NEVER_FAILS = 2, UNTRACKED = 4 };
static const struct {
  const char *name; /* a substring of the loaded object's path */
  int flags;
} modules[] = {{"libparley.so", PARLEY},
               {"libsrtp2", NEVER_FAILS},
               {"libspeexdsp", NEVER_FAILS},
               {"ld-linux", NEVER_FAILS | UNTRACKED},
               {"libnss", NEVER_FAILS | UNTRACKED},
               {"libnspr4", NEVER_FAILS | UNTRACKED},
               {"libplc4", NEVER_FAILS | UNTRACKED},
               {"libplds4", NEVER_FAILS | UNTRACKED},
               {"libsoftokn3", NEVER_FAILS | UNTRACKED},
               {"libfreebl", NEVER_FAILS | UNTRACKED},
               {"libcrypto", UNTRACKED}};
#define RANGE_MAX 64
static struct {
  uintptr_t lo, hi;
  int flags;
} ranges[RANGE_MAX];
static int n_ranges;

static int find_ranges(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  for (size_t m = 0; m < sizeof modules / sizeof modules[0]; m++) {
    if (!strstr(info->dlpi_name, modules[m].name)) continue;
    for (int i = 0; i < info->dlpi_phnum && n_ranges < RANGE_MAX; i++) {
      const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
      if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
      ranges[n_ranges].lo = info->dlpi_addr + ph->p_vaddr;
      ranges[n_ranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
      ranges[n_ranges++].flags = modules[m].flags;
    }
    break;
  }
  return 0;
}

/* Finds the loaded modules' code (unarmed: the hooks read the table). */
static void find_modules(void) {
  n_ranges = 0;
  dl_iterate_phdr(find_ranges, NULL);
}

static int frame_flags(void *pc) {
  for (int i = 0; i < n_ranges; i++)
    if ((uintptr_t)pc >= ranges[i].lo && (uintptr_t)pc < ranges[i].hi) return ranges[i].flags;
  return 0;
}

static _Thread_local bool walking; /* backtrace may allocate (once): that allocation is nobody's */
static _Thread_local int last_flags; /* ai_fail's verdict, for the ai_made that follows */

/* The flags of the frames from the allocation outwards, up to and including the first PARLEY or
 * NEVER_FAILS one. */
static int stack_flags(void *caller) {
  int f = frame_flags(caller);
  if (f & (PARLEY | NEVER_FAILS) || walking) return f;
  walking = true;
  void *frames[64];
  int n = backtrace(frames, 64);
  walking = false;
  for (int i = 0; i < n && !(f & (PARLEY | NEVER_FAILS)); i++) f |= frame_flags(frames[i]);
  return f;
}

static bool ai_fail(void *caller) {
  if (!atomic_load(&armed)) return false;
  last_flags = stack_flags(caller);
  if ((last_flags & (PARLEY | NEVER_FAILS)) != PARLEY) return false;
  if (atomic_fetch_add(&alloc_n, 1) + 1 != atomic_load(&fail_at)) return false;
  atomic_store(&failed, true);
  return true;
}

/* Live allocations made while armed: open addressing, tombstones; cleared per run. */
#define LIVE_CAP (1u << 16)
#define TOMB ((void *)1)
static void *live[LIVE_CAP];
static void *live_caller[LIVE_CAP]; /* who allocated it: named when it is left over */
static long live_count;
static bool live_overflow;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const void *p) { return ((uintptr_t)p >> 4) * 2654435761u & (LIVE_CAP - 1); }

static void ai_made(void *p, void *caller) {
  if (!atomic_load(&armed) || last_flags & UNTRACKED) return;
  pthread_mutex_lock(&live_lock);
  size_t i = slot_of(p);
  for (size_t n = 0; n < LIVE_CAP; n++, i = (i + 1) & (LIVE_CAP - 1))
    if (!live[i] || live[i] == TOMB) {
      live[i] = p;
      live_caller[i] = caller;
      live_count++;
      pthread_mutex_unlock(&live_lock);
      return;
    }
  live_overflow = true;
  pthread_mutex_unlock(&live_lock);
}

static void ai_freed(void *p) {
  pthread_mutex_lock(&live_lock);
  size_t i = slot_of(p);
  for (size_t n = 0; n < LIVE_CAP && live[i]; n++, i = (i + 1) & (LIVE_CAP - 1))
    if (live[i] == p) {
      live[i] = TOMB;
      live_count--;
      break;
    }
  pthread_mutex_unlock(&live_lock);
}

/* "sym+off (lib)" of the first allocation left over, for the failure message. */
static void first_left_over(char *buf, size_t cap) {
  buf[0] = '\0';
  for (size_t i = 0; i < LIVE_CAP; i++) {
    if (!live[i] || live[i] == TOMB) continue;
    Dl_info info = {0};
    if (dladdr(live_caller[i], &info) && info.dli_sname)
      snprintf(buf, cap, "%s+%#lx (%s)", info.dli_sname, (unsigned long)((char *)live_caller[i] - (char *)info.dli_saddr),
               info.dli_fname);
    else
      snprintf(buf, cap, "%p (%s)", live_caller[i], info.dli_fname ? info.dli_fname : "?");
    return;
  }
}

/* k: the k-th allocation by libparley fails; 0: none does (counting only). */
static void arm(long k) {
  find_modules(); /* again each run: a module NSS unloaded may come back elsewhere */
  pthread_mutex_lock(&live_lock);
  memset(live, 0, sizeof live);
  live_count = 0;
  live_overflow = false;
  pthread_mutex_unlock(&live_lock);
  atomic_store(&alloc_n, 0);
  atomic_store(&failed, false);
  atomic_store(&fail_at, k);
  atomic_store(&armed, true);
}

static void disarm(void) { atomic_store(&armed, false); }

/* ---- the run ---- */

enum { A, B, NCALLS };

typedef struct run {
  char bad[256]; /* the first broken promise, or "" (no Criterion call while armed: it allocates) */
  int closed[NCALLS];
  int after_closed[NCALLS]; /* events delivered after CLOSED */
  int members_changed;      /* session events */
  parley_call *call[NCALLS];
  parley_session *session;
  int room_closed;       /* room CLOSED events */
  int room_after_closed; /* room events after it */
} run;

static void expect(run *r, bool ok, const char *what, int code) {
  if (!ok && !r->bad[0]) snprintf(r->bad, sizeof r->bad, "%s returned %d (%s)", what, code, parley_strerror(code));
}

/* 0 or PARLEY_ENOMEM; true when it succeeded. */
/* A clean failure is PARLEY_ENOMEM, or PARLEY_ECRYPTO when the allocation failed inside libcrypto (the
 * DTLS certificate and sessions): OpenSSL 3.0 does not always say that an allocation was the cause
 * (transport/dtls.c maps it to PARLEY_ENOMEM when it does). */
static bool step(run *r, const char *what, int code) {
  expect(r, code >= 0 || code == PARLEY_ENOMEM || code == PARLEY_ECRYPTO, what, code);
  return code >= 0;
}

static void on_event(const parley_event *ev, void *user) {
  run *r = user;
  if (ev->room) {
    if (r->room_closed) r->room_after_closed++;
    if (ev->kind == PARLEY_EVENT_CLOSED) r->room_closed++;
    return;
  }
  if (ev->session && ev->kind == PARLEY_EVENT_MEMBERS_CHANGED) r->members_changed++;
  for (int i = 0; i < NCALLS; i++) {
    if (ev->call != r->call[i]) continue;
    if (r->closed[i]) r->after_closed[i]++;
    if (ev->kind == PARLEY_EVENT_CLOSED) r->closed[i]++;
  }
}

static void dispatch_for(run *r, parley_engine *e, int ms) {
  struct pollfd p = {.fd = parley_engine_event_fd(e), .events = POLLIN};
  for (int i = 0; i < ms; i++) {
    if (poll(&p, 1, 1) > 0) expect(r, parley_engine_dispatch(e) >= 0, "dispatch", 0);
    bool all = true;
    for (int c = 0; c < NCALLS; c++)
      if (r->call[c] && !r->closed[c]) all = false;
    if (all) return;
  }
}

static int drop_message(const char *to, const char *message, void *user) {
  (void)to;
  (void)message;
  (void)user;
  return 0;
}

/* A mesh room on the engine once its session is gone: join, a member's hello (a call and an offer
 * follow), mute, leave, CLOSED, free. */
static void room_run(run *r, parley_engine *e) {
  parley_room_config rc;
  parley_room_config_init(&rc);
  rc.room_id = "oom";
  rc.member_id = "alice";
  rc.display_name = "Alice";
  rc.send = drop_message;
  parley_room *room = NULL;
  if (!step(r, "room_join", parley_room_join(e, &rc, &room))) return;
  int lids[2] = {parley_room_on(room, PARLEY_EVENT_CLOSED, on_event, r),
                 parley_room_on(room, PARLEY_EVENT_MEMBERS_CHANGED, on_event, r)};
  expect(r, lids[0] > 0 && lids[1] > 0, "parley_room_on", lids[0] > 0 ? lids[1] : lids[0]);
  step(r, "room_receive", parley_room_receive(room, "bob", "parley-room/1 hello 0 Bob"));
  step(r, "room_mute", parley_room_set_mute_microphone(room, true));
  expect(r, parley_room_leave(room) == 0, "room_leave", 0);
  struct pollfd p = {.fd = parley_engine_event_fd(e), .events = POLLIN};
  for (int i = 0; i < 2000 && !r->room_closed; i++)
    if (poll(&p, 1, 1) > 0) expect(r, parley_engine_dispatch(e) >= 0, "dispatch", 0);
  expect(r, r->room_closed == 1, "room CLOSED", r->room_closed);
  for (int i = 0; i < 2; i++)
    if (lids[i] > 0) expect(r, parley_room_off(room, lids[i]) == 0, "parley_room_off", 0);
  int fr = parley_room_free(room);
  expect(r, fr == 0, "room_free", fr);
}

static void one_run(run *r) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_NONE;
  cfg.dispatch = PARLEY_DISPATCH_APP;
  cfg.loopback_candidates = true;
  parley_engine *e = NULL;
  if (!step(r, "engine_new", parley_engine_new(&cfg, &e))) return;
  int ids[NCALLS][PARLEY_EVENT_CALL_KIND_COUNT] = {{0}};
  for (int c = 0; c < NCALLS; c++) {
    if (!step(r, "call_new", parley_call_new(e, &r->call[c]))) continue;
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) {
      ids[c][k] = parley_call_on(r->call[c], (parley_event_kind)k, on_event, r);
      expect(r, ids[c][k] > 0, "parley_call_on", ids[c][k]);
    }
  }
  /* A session with both calls as members: a leaves, b is freed inside it. */
  int sids[2] = {0};
  bool joined[NCALLS] = {false};
  if (step(r, "session_new", parley_session_new(e, &r->session))) {
    sids[0] = parley_session_on(r->session, PARLEY_EVENT_MEMBERS_CHANGED, on_event, r);
    sids[1] = parley_session_on(r->session, PARLEY_EVENT_SPEAKERS_CHANGED, on_event, r);
    expect(r, sids[0] > 0 && sids[1] > 0, "parley_session_on", sids[0] > 0 ? sids[1] : sids[0]);
    for (int c = 0; c < NCALLS; c++)
      if (r->call[c]) joined[c] = step(r, "session_join", parley_session_join(r->session, r->call[c]));
  }
  parley_call *a = r->call[A], *b = r->call[B];
  if (a && b) {
    static char offer[8192], answer[8192];
    parley_sdp_error se;
    /* Each step needs the ones before it: the first failure ends the negotiation. */
    (void)(step(r, "create_offer", parley_call_create_offer(a, offer, sizeof offer)) &&
           step(r, "offerer local", parley_call_set_local_description(a, offer)) &&
           step(r, "answerer remote", parley_call_set_remote_description(b, PARLEY_SDP_OFFER, offer, &se)) &&
           step(r, "create_answer", parley_call_create_answer(b, answer, sizeof answer)) &&
           step(r, "answerer local", parley_call_set_local_description(b, answer)) &&
           step(r, "offerer remote", parley_call_set_remote_description(a, PARLEY_SDP_ANSWER, answer, &se)) &&
           step(r, "start a", parley_call_start(a)) && step(r, "start b", parley_call_start(b)));
    dispatch_for(r, e, 2); /* the events so far, while the network thread runs */
  }
  if (joined[A]) step(r, "session_leave", parley_session_leave(r->session, a));
  for (int c = 0; c < NCALLS; c++)
    if (r->call[c]) expect(r, parley_call_hangup(r->call[c]) == 0, "hangup", 0);
  dispatch_for(r, e, 2000); /* until every call's CLOSED */
  for (int c = 0; c < NCALLS; c++) {
    if (!r->call[c]) continue;
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      if (ids[c][k] > 0) expect(r, parley_call_off(r->call[c], ids[c][k]) == 0, "parley_call_off", 0);
    int fr = parley_call_free(r->call[c]);
    expect(r, fr == 0, "call_free", fr);
  }
  if (r->session) {
    expect(r, parley_session_count(r->session) == 0, "session_count after the calls", parley_session_count(r->session));
    for (int i = 0; i < 2; i++)
      if (sids[i] > 0) expect(r, parley_session_off(r->session, sids[i]) == 0, "parley_session_off", 0);
    int fr = parley_session_free(r->session);
    expect(r, fr == 0, "session_free", fr);
  }
  room_run(r, e);
  parley_engine_free(e);
}

/* One whole run armed at k; asserts the run's promises. Returns whether the k-th allocation was made. */
static bool run_at(long k) {
  run r = {0};
  arm(k);
  one_run(&r);
  disarm();
  cr_assert_str_empty(r.bad, "k=%ld: %s", k, r.bad);
  for (int c = 0; c < NCALLS; c++) {
    if (!r.call[c]) continue;
    cr_assert_eq(r.closed[c], 1, "k=%ld: call %d got CLOSED %d times", k, c, r.closed[c]);
    cr_assert_eq(r.after_closed[c], 0, "k=%ld: call %d had events after CLOSED", k, c);
  }
  cr_assert_eq(r.room_after_closed, 0, "k=%ld: room events after CLOSED", k);
  char where[256];
  pthread_mutex_lock(&live_lock);
  long left = live_count;
  bool over = live_overflow;
  first_left_over(where, sizeof where);
  pthread_mutex_unlock(&live_lock);
  cr_assert(!over, "k=%ld: the live table overflowed", k);
  cr_assert_eq(left, 0, "k=%ld: %ld allocations left over, the first by %s", k, left, where);
  return atomic_load(&failed);
}

#define SWEEP_ALL 40 /* every k up to here (the engine starting), then SWEEP_SAMPLES more, spread */
#define SWEEP_SAMPLES 80

Test(oom, every_allocation_failure_is_clean) {
  bool full = getenv("PARLEY_OOM_SWEEP") && !strcmp(getenv("PARLEY_OOM_SWEEP"), "full");
  /* One run unarmed first: the libraries' one-time state (OpenSSL, NSS, glibc's thread stacks, the
   * unwinder backtrace loads) is made there and kept for the process, not counted as the sweep's leaks. */
  void *frames[4];
  backtrace(frames, 4);
  run warm = {0};
  one_run(&warm);
  cr_assert_str_empty(warm.bad, "%s", warm.bad);
  cr_assert_eq(warm.closed[A], 1);
  cr_assert_geq(warm.members_changed, 2, "MEMBERS_CHANGED: %d", warm.members_changed);
  find_modules();
  cr_assert(frame_flags((void *)parley_engine_new) == PARLEY, "libparley.so is not loaded");
  /* How many allocations libparley makes in a run that does not fail: the fewest of three, as the
   * network thread's timing changes how many STUN rounds it does (each about 50 allocations inside
   * OpenSSL's HMAC). */
  long total = LONG_MAX;
  for (int i = 0; i < 3; i++) {
    cr_assert(!run_at(0));
    if (atomic_load(&alloc_n) < total) total = atomic_load(&alloc_n);
  }
  cr_assert_gt(total, SWEEP_ALL, "libparley allocated only %ld times", total);
  long runs = 0, hits = 0;
  if (full) {
    /* Until runs stop reaching their k-th allocation (how many a run makes varies a little with the
     * network thread's timing). */
    for (long k = 1, misses = 0; misses < 20; k++, runs++) {
      bool hit = run_at(k);
      hits += hit;
      misses = hit ? 0 : misses + 1;
    }
  } else {
    /* Every k at first, then an evenly spread, fixed sample of the rest (a prime stride, so that the
     * sample does not fall into step with repeated per-frame allocations). */
    long stride = (total - SWEEP_ALL) / SWEEP_SAMPLES + 1;
    while (stride > 2 && (stride % 2 == 0 || stride % 3 == 0 || stride % 5 == 0)) stride++;
    for (long k = 1; k <= total; k += k < SWEEP_ALL ? 1 : stride, runs++) hits += run_at(k);
  }
  /* Not a vacuous sweep: most runs did fail an allocation (a run that ends before its k is one whose
   * network thread did less). */
  cr_assert_geq(hits, runs / 2, "only %ld of %ld runs reached their failure", hits, runs);
  cr_log_info("oom sweep: %ld allocations by libparley per run, %ld runs, %ld failed one", total, runs, hits);
}

#else
Test(oom, every_allocation_failure_is_clean) { cr_skip_test("the allocator interposer needs an unsanitized build"); }
#endif
