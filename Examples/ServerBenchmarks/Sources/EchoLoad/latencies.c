// Per-request latencies and their percentiles.
#include "latencies.h"

#include <stdio.h>
#include <stdlib.h>

void latencies_add(Latencies *l, uint64_t ns) {
    if (l->count == l->capacity) {
        l->capacity = l->capacity ? l->capacity * 2 : 1 << 16;
        l->ns = realloc(l->ns, l->capacity * sizeof *l->ns);
        if (l->ns == NULL) {
            fprintf(stderr, "echo-load: out of memory for latencies\n");
            exit(1);
        }
    }
    l->ns[l->count++] = ns;
}

/// qsort's order for uint64_t.
static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t latencies_percentile(Latencies *l, double p) {
    if (l->count == 0) return 0;
    qsort(l->ns, l->count, sizeof *l->ns, compare_u64);
    double exact = p / 100.0 * (double)l->count;
    size_t rank = (size_t)exact;
    if ((double)rank < exact) rank++; // the nearest rank rounds up
    if (rank < 1) rank = 1;
    return l->ns[rank - 1];
}
