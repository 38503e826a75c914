/* call_lib.h: the reusable parts of parley-call (tools/call.c), kept apart so tests/test_calltool.c can
 * exercise them without running the binary: the TCP rendezvous used by `listen` / `dial`, the SDP file and stream exchange used by `offer` /
 * `answer`, and the event timeline formatting.
 *
 * Threads: every function is plain blocking code for the tool's control thread (no shared state); none
 * is real-time safe. Buffers are the caller's (borrowed); nothing is allocated across calls. Errors are
 * negative PARLEY_E* codes. */
#ifndef PARLEY_TOOLS_CALL_LIB_H
#define PARLEY_TOOLS_CALL_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "parley/parley.h"
#include "sim/sdp_via.h" /* SDP rewriting and HOST:PORT for --via and the rendezvous */

/* The largest description the tool takes, in bytes with the NUL: a browser's offer with audio, video
 * and data runs 5-10 KB. */
#define PARLEY__CALLTOOL_SDP_MAX 32768

/* TCP rendezvous. addr is "HOST:PORT" (as parley__via_split_hostport takes it) or "PORT" (for
 * 127.0.0.1).
 * listen: binds addr and listens; *listen_fd gets the socket (the caller closes it) and *bound_port,
 * if non-NULL, the actual port (port 0 picks one). accept: waits at most timeout_ms for one
 * connection and returns its fd. dial: connects to addr, retrying every 50 ms until timeout_ms (the
 * listener may start later); returns the fd. Errors: PARLEY_EINVAL (bad addr), PARLEY_ENETWORK
 * (socket/bind/listen/accept/connect error other than "not yet listening": errno says which, e.g.
 * EADDRINUSE, EADDRNOTAVAIL, ENETUNREACH), PARLEY_ETIMEDOUT. */
int parley__calltool_rv_listen(const char *addr, int *bound_port, int *listen_fd);
int parley__calltool_rv_accept(int listen_fd, int timeout_ms);
int parley__calltool_rv_dial(const char *addr, int timeout_ms);

/* One message on a rendezvous stream: a 4-byte big-endian length, then that many bytes (an SDP; at
 * most PARLEY__CALLTOOL_MAX_MSG). send: 0 or PARLEY_EINVAL / PARLEY_ENETWORK. recv: reads it into
 * buf (NUL-terminated; cap must exceed its length) within timeout_ms; returns its length, or
 * PARLEY_ETIMEDOUT, PARLEY_ENOSPC (*size, if size is non-NULL, gets the message's length),
 * PARLEY_EPARSE (length out of range), PARLEY_ENETWORK (closed early). */
#define PARLEY__CALLTOOL_MAX_MSG 1048576
int parley__calltool_msg_send(int fd, const char *text);
int parley__calltool_msg_recv(int fd, char *buf, size_t cap, int timeout_ms, size_t *size);

/* Writes text to path atomically (path.tmp, then rename), so a reader polling for path sees either
 * nothing or the whole description. 0 or PARLEY_EIO. */
int parley__calltool_write_file(const char *path, const char *text);
/* Waits (bounded by timeout_ms, polling every 50 ms) until path exists and is complete: non-empty,
 * ends with a newline and unchanged in size between two polls. Reads it into buf (NUL-terminated).
 * stale (may be NULL) is a stat of a file that was at path before and must not be taken (the answer
 * file of an earlier run): a file with the same inode and modification time is waited past.
 * Returns the length, PARLEY_ETIMEDOUT, PARLEY_ENOSPC (larger than cap - 1; *size, if size is
 * non-NULL, gets the file's size) or PARLEY_EIO. */
struct stat;
int parley__calltool_read_file_wait(const char *path, const struct stat *stale, char *buf, size_t cap,
                                    int timeout_ms, size_t *size);
/* Reads one description from a stream: lines up to EOF or the first blank line after some text
 * (an SDP never contains a blank line). Returns the length, PARLEY_ENOSPC (the rest of the description
 * is read and dropped; *size, if size is non-NULL, gets its whole length) or PARLEY_EIO (nothing read). */
int parley__calltool_read_stream(FILE *in, char *buf, size_t cap, size_t *size);

/* What ev says, without time or side: "track-stopped (timeout)", "peer connected", "ice checking".
 * Returns the length (truncated to cap - 1), PARLEY_EINVAL. */
int parley__calltool_describe_event(char *buf, size_t cap, const parley_event *ev);
/* One timeline line for ev, without a newline: "   1234 ms  A  track-stopped (timeout)"; peer states read
 * "peer connected", ICE states "ice checking". ms is the time
 * since the tool started, side a short label. Returns the length (truncated to cap - 1). */
int parley__calltool_format_event(char *buf, size_t cap, int64_t ms, const char *side, const parley_event *ev);

/* ICE restarts over WHIP (RFC 9725 4.4.2), whose PATCH bodies are RFC 8840 fragments; one audio section.
 * sdp_attr: the value of text's first "a=NAME:" line into out; false if there is none or it does not
 * fit. ice_frag: sdp's ICE credentials, its audio m-line and mid, and its a=candidate /
 * a=end-of-candidates lines as a fragment. sdp_restart: sdp with frag's credentials in place of its own
 * and frag's candidates in place of its own (at the end of its audio section): a restart's offer or
 * answer rebuilt from the previous one. Both return the length written to out, PARLEY_EINVAL,
 * PARLEY_EPARSE (no a=ice-ufrag / a=ice-pwd to take) or PARLEY_ENOSPC. */
bool parley__calltool_sdp_attr(const char *text, const char *name, char *out, size_t cap);
int parley__calltool_ice_frag(const char *sdp, char *out, size_t cap);
int parley__calltool_sdp_restart(const char *sdp, const char *frag, char *out, size_t cap);

#endif
