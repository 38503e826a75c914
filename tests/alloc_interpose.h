/* alloc_interpose.h: replaces the process's malloc family for one test program (test_oom.c,
 * test_pipeline.c), so every allocation in the process, the libraries' included, passes through three
 * hooks that the including file defines:
 *   static bool ai_fail(void *caller);          true: this allocation fails (returns NULL / ENOMEM)
 *   static void ai_made(void *p, void *caller); p was allocated (not called for NULL)
 *   static void ai_freed(void *p);              p (never NULL) is about to be freed
 * `caller` is the return address of the allocation call. Include it from one file of one test only: it
 * defines malloc, calloc, realloc, free, posix_memalign and aligned_alloc (glibc's strdup and friends
 * call malloc, so they pass through too). The hooks run on whatever thread allocates, so they must be
 * thread-safe and must not allocate.
 *
 * Sanitizer runtimes own the allocator: under them AI_SANITIZED is defined and nothing is interposed
 * (the including test then skips what needs the hooks). */
#ifndef PARLEY_TESTS_ALLOC_INTERPOSE_H
#define PARLEY_TESTS_ALLOC_INTERPOSE_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AI_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AI_SANITIZED 1
#endif
#endif

#ifndef AI_SANITIZED
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static bool ai_fail(void *caller);
static void ai_made(void *p, void *caller);
static void ai_freed(void *p);

static char ai_bootstrap[8192]; /* dlsym may allocate before the real functions are known */
static size_t ai_bootstrap_used;
static void *(*ai_real_malloc)(size_t);
static void *(*ai_real_calloc)(size_t, size_t);
static void *(*ai_real_realloc)(void *, size_t);
static void (*ai_real_free)(void *);
static int (*ai_real_posix_memalign)(void **, size_t, size_t);
static void *(*ai_real_aligned_alloc)(size_t, size_t);
static int ai_resolving;

static void ai_resolve(void) {
  if (ai_real_malloc || ai_resolving) return;
  ai_resolving = 1;
  ai_real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  ai_real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  ai_real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  ai_real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  ai_real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  ai_real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  ai_resolving = 0;
}

static void *ai_bootstrap_alloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (ai_bootstrap_used + n > sizeof ai_bootstrap) return NULL;
  void *p = ai_bootstrap + ai_bootstrap_used;
  ai_bootstrap_used += n;
  return p;
}

static void *ai_made_or_null(void *p, void *caller) {
  if (p) ai_made(p, caller);
  return p;
}

void *malloc(size_t n) {
  ai_resolve();
  if (!ai_real_malloc) return ai_bootstrap_alloc(n);
  void *caller = __builtin_return_address(0);
  if (ai_fail(caller)) {
    errno = ENOMEM;
    return NULL;
  }
  return ai_made_or_null(ai_real_malloc(n), caller);
}

void *calloc(size_t a, size_t b) {
  ai_resolve();
  if (!ai_real_calloc) {
    void *p = ai_bootstrap_alloc(a * b);
    if (p) memset(p, 0, a * b);
    return p;
  }
  void *caller = __builtin_return_address(0);
  if (ai_fail(caller)) {
    errno = ENOMEM;
    return NULL;
  }
  return ai_made_or_null(ai_real_calloc(a, b), caller);
}

void *realloc(void *p, size_t n) {
  ai_resolve();
  void *caller = __builtin_return_address(0);
  if (ai_fail(caller)) {
    errno = ENOMEM;
    return NULL;
  }
  if (p) ai_freed(p); /* the block moves (or is freed when n == 0) */
  void *q = ai_real_realloc(p, n);
  if (!q && p && n) ai_made(p, caller); /* failed: p is still live */
  return ai_made_or_null(q, caller);
}

void free(void *p) {
  if (!p || ((char *)p >= ai_bootstrap && (char *)p < ai_bootstrap + sizeof ai_bootstrap)) return;
  ai_resolve();
  ai_freed(p);
  ai_real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
  ai_resolve();
  void *caller = __builtin_return_address(0);
  if (ai_fail(caller)) return ENOMEM;
  int r = ai_real_posix_memalign(out, align, n);
  if (r == 0) ai_made_or_null(*out, caller);
  return r;
}

void *aligned_alloc(size_t align, size_t n) {
  ai_resolve();
  void *caller = __builtin_return_address(0);
  if (ai_fail(caller)) {
    errno = ENOMEM;
    return NULL;
  }
  return ai_made_or_null(ai_real_aligned_alloc(align, n), caller);
}
#endif /* AI_SANITIZED */
#endif
