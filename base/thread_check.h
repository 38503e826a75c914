/* thread_check.h: checks, in debug builds, that each object is used by the thread its file's top comment
 * names. An object embeds a parley__owner per role (an SPSC ring has two: producer and consumer); the
 * first checked call claims the role for the calling thread, and every later checked call must come
 * from that thread, until the role is released (handed over to another thread on purpose).
 *
 * Built in with PARLEY_THREAD_CHECKS (on by default when CMAKE_BUILD_TYPE is Debug, else cmake
 * -DPARLEY_THREAD_CHECKS=ON; .ci/run runs every test so); otherwise the checks compile to nothing. A check reads pthread_self (no system call) and, on a
 * violation only, prints what was called from where and aborts: allowed on the audio path. */
#ifndef PARLEY_BASE_THREAD_CHECK_H
#define PARLEY_BASE_THREAD_CHECK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct parley__owner {
  atomic_uintptr_t thread; /* 0: unclaimed */
} parley__owner;

/* An object that threads share under a mutex (the engine's lock guards each call's ICE agent and
 * liveness monitor, which the network thread and the API's callers both drive): every checked call
 * must hold that mutex. With no mutex (lock NULL) the object belongs to one thread, as with
 * parley__owner. */
typedef struct parley__guard {
  pthread_mutex_t *lock; /* borrowed; NULL: one owner thread */
  parley__owner owner;
} parley__guard;

#ifdef PARLEY_THREAD_CHECKS
/* Claims o for this thread, or aborts if another thread holds it. what names the call, for the report. */
void parley__owner_check(parley__owner *o, const char *what);
/* Aborts unless this thread holds g->lock (or, with no lock, owns g). glibc: reads the mutex's owner. */
void parley__guard_check(parley__guard *g, const char *what);
#define PARLEY__OWNER_CHECK(o, what) parley__owner_check((o), (what))
#define PARLEY__OWNER_RELEASE(o) atomic_store(&(o)->thread, (uintptr_t)0)
#define PARLEY__GUARD_CHECK(g, what) parley__guard_check((g), (what))
#else
#define PARLEY__OWNER_CHECK(o, what) ((void)(o))
#define PARLEY__OWNER_RELEASE(o) ((void)(o))
#define PARLEY__GUARD_CHECK(g, what) ((void)(g))
#endif

#endif
