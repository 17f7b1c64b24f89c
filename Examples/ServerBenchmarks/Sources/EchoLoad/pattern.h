// The bytes each request sends: a pseudo-random pattern, shifted per
// connection and per request so that a byte echoed to the wrong connection,
// out of order or from an earlier request does not compare equal.
#ifndef ECHO_LOAD_PATTERN_H
#define ECHO_LOAD_PATTERN_H

#include <stddef.h>
#include <stdint.h>

enum { PATTERN_SHIFTS = 251 };

/// A pattern of size + PATTERN_SHIFTS bytes (every message is a window of it).
unsigned char *pattern_make(size_t size);

/// Where request number `seq` of connection `conn` starts in the pattern.
size_t pattern_offset(int conn, uint64_t seq);

#endif
