// The message bytes and where each request's window starts.
#include "pattern.h"

#include <stdlib.h>

unsigned char *pattern_make(size_t size) {
    unsigned char *p = malloc(size + PATTERN_SHIFTS);
    uint32_t x = 0x9E3779B9u; // xorshift32: cheap, and no byte repeats with a short period
    for (size_t i = 0; i < size + PATTERN_SHIFTS; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

size_t pattern_offset(int conn, uint64_t seq) {
    return (size_t)(((uint64_t)conn * 7u + seq) % PATTERN_SHIFTS);
}
