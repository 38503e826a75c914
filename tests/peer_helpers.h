/* peer_helpers.h: an independent peer (a Python script on Debian's /usr/bin/python3) as a child
 * process on pipes, for the interop tests. Test thread only. */
#ifndef PARLEY_TESTS_PEER_HELPERS_H
#define PARLEY_TESTS_PEER_HELPERS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct th_peer {
  pid_t pid;
  FILE *to, *from; /* its stdin, its stdout */
} th_peer;

/* Starts /usr/bin/python3 (the one python3-gi and python3-aioice belong to, not another python3
 * earlier on PATH) with args (NULL-terminated, at most 14: the script first). The child is killed when
 * the test process dies. Asserts (Criterion) that the pipes and the fork work. */
void th_peer_start(th_peer *p, const char *const *args);

/* Reads lines into buf until a line "END" (not kept); false at end of file or when buf is full. */
bool th_read_until_end(FILE *f, char *buf, size_t cap);

/* Waits up to timeout_s for the peer to exit, kills it after that; closes the pipes. Its exit status,
 * -1 when it was killed or died of a signal. */
int th_peer_wait(th_peer *p, int timeout_s);

#endif
