/* thread_check.c: the debug-build owner and guard checks (see thread_check.h). Stateless. */
#define _GNU_SOURCE /* gettid */
#include "base/thread_check.h"

#ifdef PARLEY_THREAD_CHECKS
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void parley__owner_check(parley__owner *o, const char *what) {
  uintptr_t me = (uintptr_t)pthread_self(), none = 0;
  if (atomic_compare_exchange_strong(&o->thread, &none, me) || none == me) return;
  fprintf(stderr, "parley: thread contract broken: %s called from thread %#lx, owned by thread %#lx\n", what,
          (unsigned long)me, (unsigned long)none);
  abort();
}

void parley__guard_check(parley__guard *g, const char *what) {
  if (!g->lock) {
    parley__owner_check(&g->owner, what);
    return;
  }
  /* glibc records the locking thread's id in every mutex it locks (Debian is the target). */
  int holder = g->lock->__data.__owner;
  if (holder == gettid()) return;
  fprintf(stderr, "parley: thread contract broken: %s called from thread %d without its lock (held by %d)\n",
          what, (int)gettid(), holder);
  abort();
}
#else
/* Nothing: the checks compile to nothing (ISO C wants a translation unit to declare something). */
typedef int parley__thread_check_unused;
#endif
