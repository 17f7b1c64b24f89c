// green_time.h — durations and deadlines in nanoseconds, for the C targets.
// All arithmetic saturates instead of overflowing (signed overflow is
// undefined behaviour in C): a timeout too large to represent becomes
// GREEN_NO_DEADLINE, "wait for ever", which is what the caller meant.
#ifndef GREEN_TIME_H
#define GREEN_TIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>
#include "green_core.h"

#define GREEN_NS_PER_SEC 1000000000LL

/// a + b, clamped to [INT64_MIN, INT64_MAX].
static inline int64_t green_add_sat(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/// a * b, clamped to [INT64_MIN, INT64_MAX].
static inline int64_t green_mul_sat(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

/// tv_nsec in [0, 1e9) and tv_sec not negative: what every timeout call accepts.
static inline bool green_timespec_valid(const struct timespec *t) {
    return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < GREEN_NS_PER_SEC;
}

/// A timespec (as a duration or a point on its clock) in ns, saturating.
static inline int64_t green_timespec_ns(const struct timespec *t) {
    return green_add_sat(green_mul_sat((int64_t)t->tv_sec, GREEN_NS_PER_SEC), (int64_t)t->tv_nsec);
}

/// A timeval in ns, saturating.
static inline int64_t green_timeval_ns(const struct timeval *t) {
    return green_add_sat(green_mul_sat((int64_t)t->tv_sec, GREEN_NS_PER_SEC), green_mul_sat((int64_t)t->tv_usec, 1000));
}

/// ns as a timespec (ns >= 0).
static inline struct timespec green_ns_timespec(int64_t ns) {
    struct timespec t = {.tv_sec = (time_t)(ns / GREEN_NS_PER_SEC), .tv_nsec = (long)(ns % GREEN_NS_PER_SEC)};
    return t;
}

/// The monotonic deadline `ns` from now (ns <= 0: now); GREEN_NO_DEADLINE
/// when it is too far away to represent.
static inline int64_t green_deadline_in(int64_t ns) {
    int64_t now = green_now_ns();
    if (ns <= 0) return now;
    int64_t d = green_add_sat(now, ns);
    return d == INT64_MAX ? GREEN_NO_DEADLINE : d;
}

/// Nanoseconds left until `deadline` (0 once it has passed).
static inline int64_t green_ns_until(int64_t deadline) {
    int64_t left = deadline - green_now_ns();
    return left > 0 ? left : 0;
}

#endif
