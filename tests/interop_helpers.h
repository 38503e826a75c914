/* interop_helpers.h: what the interop tests share: a peer program (Debian's python3 running a script in
 * tests/interop/) on pipes, the line protocol its SDP travels in, and the speech correlation that says
 * a recording holds a fixture. */
#ifndef PARLEY_TESTS_INTEROP_HELPERS_H
#define PARLEY_TESTS_INTEROP_HELPERS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct th_peer {
  pid_t pid;
  FILE *to, *from; /* its stdin, its stdout */
} th_peer;

/* Runs /usr/bin/python3 (Debian's, which python3-gi and python3-aiortc belong to, not another python3
 * earlier on PATH) with argv (argv[0] "python3", NULL-terminated). Asserts it started. */
void th_peer_start(th_peer *p, char *const argv[]);
/* Reads lines into buf until a line "END" (not kept); false at end of file or when buf is too small. */
bool th_read_until_end(FILE *f, char *buf, size_t cap);
/* Waits up to timeout_s for the peer to exit, kills it after that; closes its pipes. Its exit status,
 * or -1 (killed, or it died by a signal). */
int th_peer_wait(th_peer *p, int timeout_s);
/* Mean over 200 ms pieces of x (0.5 s .. 5 s) of each piece's best correlation with y (48 kHz): the call's
 * delay is found once over 4 s of speech, then each piece is searched within 100 ms of it. 0 when y is
 * too short or too few pieces are voiced. */
double th_piecewise_speech(const float *x, size_t nx, const float *y, size_t ny);

#endif
