/* parley.h: the public API of parley, a real-time voice engine. The one header an app includes.
 *
 * Conventions, kept everywhere:
 *  - every exported name starts with parley_ (functions, types) or PARLEY_ (constants);
 *  - functions that can fail return 0 or a count on success and a negative PARLEY_E* code on failure;
 *    parley_strerror() names the code. There is no hidden "last error";
 *  - if a call fails, nothing it was given is kept and no callback it registered will fire;
 *  - every function says which thread may call it. "Any thread" functions are thread-safe;
 *    "real-time safe" functions never allocate, lock, block, log or make a system call.
 */
#ifndef PARLEY_H
#define PARLEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PARLEY_BUILDING)
#define PARLEY_API __attribute__((visibility("default")))
#else
#define PARLEY_API
#endif

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 4
#define PARLEY_VERSION_PATCH 0

/* Error codes: X(name, value, message). Values are stable; new codes are appended. */
#define PARLEY_ERRNO_MAP(X)                                                            \
  X(EINVAL, -1, "invalid argument")                                                    \
  X(ENOMEM, -2, "out of memory")                                                       \
  X(ERANGE, -3, "value out of range")                                                  \
  X(ENOSPC, -4, "buffer too small")                                                    \
  X(EAGAIN, -5, "try again: nothing available now")                                    \
  X(EFULL, -6, "queue full")                                                           \
  X(EPARSE, -7, "malformed input")                                                     \
  X(ECODEC, -8, "codec error")                                                         \
  X(EDSP, -9, "signal processing error")                                               \
  X(EIO, -10, "input/output error")                                                    \
  X(EDEVICE, -11, "audio device error")                                                \
  X(ECRYPTO, -12, "cryptographic failure")                                             \
  X(EAUTH, -13, "authentication failed")                                               \
  X(EREPLAY, -14, "replayed packet")                                                   \
  X(ESTATE, -15, "not allowed in the current state")                                   \
  X(ENOTSUP, -16, "not supported")                                                     \
  X(ENOTFOUND, -17, "not found")                                                       \
  X(ETIMEDOUT, -18, "timed out")                                                       \
  X(ENETWORK, -19, "network error")                                                    \
  X(EFORMAT, -20, "unsupported format")

enum parley_error {
#define PARLEY__ERR_ENUM(name, value, msg) PARLEY_##name = (value),
  PARLEY_ERRNO_MAP(PARLEY__ERR_ENUM)
#undef PARLEY__ERR_ENUM
};

/* A readable message for an error code; never NULL. Any thread, real-time safe. */
PARLEY_API const char *parley_strerror(int err);
/* The code's symbolic name ("PARLEY_EINVAL"); never NULL. Any thread, real-time safe. */
PARLEY_API const char *parley_err_name(int err);
/* "MAJOR.MINOR.PATCH" of the library actually linked. Any thread. */
PARLEY_API const char *parley_version(void);

#ifdef __cplusplus
}
#endif

/* Engines, calls and events. */
#include "parley/engine.h"
/* Rooms: multi-party voice through a mesh or a Janus AudioBridge. */
#include "parley/room.h"

#endif /* PARLEY_H */
