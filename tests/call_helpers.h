/* call_helpers.h: shared steps of the tests that run calls through the public API. */
#ifndef PARLEY_TESTS_CALL_HELPERS_H
#define PARLEY_TESTS_CALL_HELPERS_H

#include <stddef.h>

#include "parley/parley.h"

/* a offers, b answers (each side's local and remote description set), then both start. The SDP texts
 * are left in offer/answer (cap bytes each) for the caller to inspect. Asserts (Criterion) that every
 * step succeeds, naming the step and, for a rejected description, the parser's message. */
void th_negotiate(parley_call *a, parley_call *b, char *offer, char *answer, size_t cap);

/* An engine with no audio I/O on loopback candidates only (IPv4), asserted to start. */
parley_engine *th_null_engine(void);

#endif
