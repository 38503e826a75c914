/* thread_check.c: the debug-build owner check (see thread_check.h). Stateless. */
#include "base/thread_check.h"

#ifdef PARLEY_THREAD_CHECKS
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

void parley__owner_check(parley__owner *o, const char *what) {
  uintptr_t me = (uintptr_t)pthread_self(), none = 0;
  if (atomic_compare_exchange_strong(&o->thread, &none, me) || none == me) return;
  fprintf(stderr, "parley: thread contract broken: %s called from thread %#lx, owned by thread %#lx\n", what,
          (unsigned long)me, (unsigned long)none);
  abort();
}
#else
/* Nothing: the checks compile to nothing (ISO C wants a translation unit to declare something). */
typedef int parley__thread_check_unused;
#endif
