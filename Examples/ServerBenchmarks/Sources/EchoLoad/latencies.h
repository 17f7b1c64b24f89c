// Per-request latencies, kept one by one so percentiles are exact.
#ifndef ECHO_LOAD_LATENCIES_H
#define ECHO_LOAD_LATENCIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *ns;
    size_t count, capacity;
} Latencies;

/// Record one request's latency in nanoseconds.
void latencies_add(Latencies *l, uint64_t ns);

/// The latency at percentile p (0–100) in nanoseconds, nearest rank; sorts
/// the samples. 0 when there are none.
uint64_t latencies_percentile(Latencies *l, double p);

#endif
