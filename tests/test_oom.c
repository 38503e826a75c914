/* test_oom.c: the allocation-failure sweep. For k = 1, 2, ... the k-th allocation after arming fails
 * (every malloc-family call in the process, the libraries' included, goes through the interposer
 * below) while an engine starts, two calls negotiate, start, hang up and are freed. Every API call
 * returns 0 or PARLEY_ENOMEM (or the documented consequence of an earlier failure), nothing crashes,
 * nothing allocated in the run is left over, and every call that was created gets CLOSED exactly once,
 * as its last event. The sweep ends at the first k that the run never reaches. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

/* Sanitizer runtimes own the allocator (as in test_pipeline.c): there the interposer is compiled out
 * and the sweep is skipped; the plain build (make test) runs it and counts leaks itself. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#ifndef SANITIZED
/* ---- the interposer: fails the k-th allocation after arming; tracks what the run allocated ---- */

static char bootstrap[8192]; /* dlsym may allocate before the real functions are known */
static size_t bootstrap_used;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static int resolving;

static atomic_bool armed;
static atomic_long alloc_n, fail_at;
static atomic_bool failed;

/* Live allocations made while armed: open addressing, tombstones; cleared per run. */
#define LIVE_CAP (1u << 16)
#define TOMB ((void *)1)
static void *live[LIVE_CAP];
static void *live_caller[LIVE_CAP]; /* who allocated it: named when it is left over */
static long live_count;
static bool live_overflow;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const void *p) { return ((uintptr_t)p >> 4) * 2654435761u & (LIVE_CAP - 1); }

static void live_add(void *p, void *caller) {
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

static void live_remove(void *p) {
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

static void resolve(void) {
  if (real_malloc || resolving) return;
  resolving = 1;
  real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  resolving = 0;
}

static void *bootstrap_alloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (bootstrap_used + n > sizeof bootstrap) return NULL;
  void *p = bootstrap + bootstrap_used;
  bootstrap_used += n;
  return p;
}

/* Libraries whose allocations never fail here, because they crash when one does (found by this sweep;
 * their allocations are still tracked for leaks):
 * - libsrtp 2.5 (Debian 12): srtp_create frees a half-made session with srtp_dealloc, which walks the
 *   stream list that failed to allocate (NULL dereference in srtp_stream_list_for_each);
 * - NSS, libsrtp's crypto in Debian (libnss3 and the NSPR/softoken libraries it allocates through):
 *   NSS_InitContext frees a garbage pointer when an allocation inside it fails. NSS's allocations are
 *   not tracked either: NSPR keeps per-thread state (PR_SetErrorText's text) for the thread's life.
 * Their code ranges are found with dl_iterate_phdr before the sweep. */
static const char *const exempt_libs[] = {"libsrtp2", "libnss3", "libnssutil3", "libnspr4", "libplc4",
                                           "libplds4", "libsoftokn3", "libfreebl"};
#define EXEMPT_MAX 32
static uintptr_t exempt_lo[EXEMPT_MAX], exempt_hi[EXEMPT_MAX];
static bool exempt_untracked[EXEMPT_MAX];
static int n_exempt;
static bool srtp_seen;

static int find_exempt(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  bool hit = false;
  for (size_t i = 0; i < sizeof exempt_libs / sizeof exempt_libs[0]; i++)
    if (strstr(info->dlpi_name, exempt_libs[i])) hit = true;
  if (!hit) return 0;
  if (strstr(info->dlpi_name, "libsrtp2")) srtp_seen = true;
  for (int i = 0; i < info->dlpi_phnum && n_exempt < EXEMPT_MAX; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    exempt_untracked[n_exempt] = !strstr(info->dlpi_name, "libsrtp2");
    exempt_lo[n_exempt] = info->dlpi_addr + ph->p_vaddr;
    exempt_hi[n_exempt++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
  }
  return 0;
}

/* true: this allocation (called from caller) fails. */
static bool should_fail(void *caller) {
  if (!atomic_load(&armed)) return false;
  for (int i = 0; i < n_exempt; i++)
    if ((uintptr_t)caller >= exempt_lo[i] && (uintptr_t)caller < exempt_hi[i]) return false;
  if (atomic_fetch_add(&alloc_n, 1) + 1 != atomic_load(&fail_at)) return false;
  atomic_store(&failed, true);
  errno = ENOMEM; /* as the real allocator does */
  return true;
}

static bool untracked(void *caller) {
  for (int i = 0; i < n_exempt; i++)
    if (exempt_untracked[i] && (uintptr_t)caller >= exempt_lo[i] && (uintptr_t)caller < exempt_hi[i]) return true;
  return false;
}

static void *note(void *p, void *caller) {
  if (p && atomic_load(&armed) && !untracked(caller)) live_add(p, caller);
  return p;
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

void *malloc(size_t n) {
  resolve();
  if (!real_malloc) return bootstrap_alloc(n);
  return should_fail(__builtin_return_address(0)) ? NULL : note(real_malloc(n), __builtin_return_address(0));
}
void *calloc(size_t a, size_t b) {
  resolve();
  if (!real_calloc) {
    void *p = bootstrap_alloc(a * b);
    if (p) memset(p, 0, a * b);
    return p;
  }
  return should_fail(__builtin_return_address(0)) ? NULL : note(real_calloc(a, b), __builtin_return_address(0));
}
void *realloc(void *p, size_t n) {
  resolve();
  if (should_fail(__builtin_return_address(0))) return NULL;
  void *q = real_realloc(p, n);
  if (q || n == 0) {
    if (p) live_remove(p);
    note(q, __builtin_return_address(0));
  }
  return q;
}
void free(void *p) {
  if (!p || ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap)) return;
  resolve();
  live_remove(p);
  real_free(p);
}
int posix_memalign(void **out, size_t align, size_t n) {
  resolve();
  if (should_fail(__builtin_return_address(0))) return ENOMEM;
  int r = real_posix_memalign(out, align, n);
  if (r == 0) note(*out, __builtin_return_address(0));
  return r;
}
void *aligned_alloc(size_t align, size_t n) {
  resolve();
  return should_fail(__builtin_return_address(0)) ? NULL : note(real_aligned_alloc(align, n), __builtin_return_address(0));
}
/* strdup/strndup: glibc's call malloc through the PLT, so they fail and are tracked with it. */

static void arm(long k) {
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

#define MAX_K 20000
enum { A, B, NCALLS };

typedef struct run {
  char bad[256]; /* the first broken promise, or "" (no Criterion call while armed: it allocates) */
  int closed[NCALLS];
  int after_closed[NCALLS]; /* events delivered after CLOSED */
  parley_call *call[NCALLS];
} run;

static void expect(run *r, bool ok, const char *what, int code) {
  if (!ok && !r->bad[0]) snprintf(r->bad, sizeof r->bad, "%s returned %d (%s)", what, code, parley_strerror(code));
}

/* 0 or PARLEY_ENOMEM; true when it succeeded. */
static bool step(run *r, const char *what, int code) {
  expect(r, code >= 0 || code == PARLEY_ENOMEM, what, code);
  return code >= 0;
}

static void on_event(const parley_event *ev, void *user) {
  run *r = user;
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
      expect(r, ids[c][k] > 0, "parley_on", ids[c][k]);
    }
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
  for (int c = 0; c < NCALLS; c++)
    if (r->call[c]) expect(r, parley_call_hangup(r->call[c]) == 0, "hangup", 0);
  dispatch_for(r, e, 2000); /* until every call's CLOSED */
  for (int c = 0; c < NCALLS; c++) {
    if (!r->call[c]) continue;
    for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
      if (ids[c][k] > 0) expect(r, parley_call_off(r->call[c], ids[c][k]) == 0, "parley_off", 0);
    int fr = parley_call_free(r->call[c]);
    expect(r, fr == 0, "call_free", fr);
  }
  parley_engine_free(e);
}

Test(oom, every_allocation_failure_is_clean) {
  /* Unfinished: NSS still crashes inside a lazily loaded module (SECMOD_LoadModule -> libnspr4) at some
   * k; run by hand with PARLEY_OOM_SWEEP=1 until that library is exempted too. */
  if (!getenv("PARLEY_OOM_SWEEP")) cr_skip_test("PARLEY_OOM_SWEEP=1 runs the unfinished sweep");
  /* One run unarmed first: the libraries' one-time state (OpenSSL, libsrtp, glibc's thread stacks)
   * is made there and kept for the process, not counted as the sweep's leaks. */
  run warm = {0};
  one_run(&warm); /* NSS is loaded by libsrtp's first session */
  dl_iterate_phdr(find_exempt, NULL);
  cr_assert(srtp_seen, "libsrtp2 is not loaded");
  cr_assert_str_empty(warm.bad, "%s", warm.bad);
  cr_assert_eq(warm.closed[A], 1);
  long k = 1;
  for (; k <= MAX_K; k++) {
    run r = {0};
    arm(k);
    one_run(&r);
    disarm();
    bool hit = atomic_load(&failed);
    cr_assert_str_empty(r.bad, "k=%ld: %s", k, r.bad);
    for (int c = 0; c < NCALLS; c++) {
      if (!r.call[c]) continue;
      cr_assert_eq(r.closed[c], 1, "k=%ld: call %d got CLOSED %d times", k, c, r.closed[c]);
      cr_assert_eq(r.after_closed[c], 0, "k=%ld: call %d had events after CLOSED", k, c);
    }
    char where[256];
    pthread_mutex_lock(&live_lock);
    long left = live_count;
    bool over = live_overflow;
    first_left_over(where, sizeof where);
    pthread_mutex_unlock(&live_lock);
    cr_assert(!over, "k=%ld: the live table overflowed", k);
    cr_assert_eq(left, 0, "k=%ld: %ld allocations left over, the first by %s", k, left, where);
    if (!hit) break; /* the run never reached its k-th allocation: every one has failed once */
  }
  cr_assert_leq(k, MAX_K, "the sweep did not finish within %d allocations", MAX_K);
  cr_log_info("oom sweep: %ld runs", k);
}

#else
Test(oom, every_allocation_failure_is_clean) { cr_skip_test("the allocator interposer needs an unsanitized build"); }
#endif
