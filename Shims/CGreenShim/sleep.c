// sleep.c — sleep, usleep, nanosleep and clock_nanosleep park the fiber on a
// hub timer. Interrupted (the fiber was cancelled or its timeout scope
// expired), they report EINTR and the time left, as a signal would.
#include "shim.h"

#define NS 1000000000LL

static int valid(const struct timespec *ts) {
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < NS;
}

static void fill_remaining(struct timespec *rem, int64_t deadline) {
    if (!rem) return;
    int64_t left = deadline - green_now_ns();
    if (left < 0) left = 0;
    rem->tv_sec = left / NS;
    rem->tv_nsec = left % NS;
}

static int64_t add_clamped(int64_t now, int64_t sec, int64_t nsec) {
    if (sec > (INT64_MAX - now) / NS - 1) return GREEN_NO_DEADLINE;
    return now + sec * NS + nsec;
}

GREEN_EXPORT unsigned int sleep(unsigned int seconds) {
    if (!green_on_fiber()) return REAL(sleep)(seconds);
    green_fair_turn(); // sleep(0) in a loop still lets the others run
    int64_t deadline = add_clamped(green_now_ns(), seconds, 0);
    if (hub()->sleep_until(deadline) == 0) return 0;
    int64_t left = deadline - green_now_ns();
    return left <= 0 ? 0 : (unsigned int)((left + NS - 1) / NS);
}

GREEN_EXPORT int usleep(useconds_t usec) {
    if (!green_on_fiber()) return REAL(usleep)(usec);
    green_fair_turn();
    int r = hub()->sleep_until(green_now_ns() + (int64_t)usec * 1000);
    if (r == 0) return 0;
    errno = EINTR;
    return -1;
}

GREEN_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
    if (!green_on_fiber()) return REAL(nanosleep)(req, rem);
    green_fair_turn();
    if (!req) { errno = EFAULT; return -1; }
    if (!valid(req)) { errno = EINVAL; return -1; }
    int64_t deadline = add_clamped(green_now_ns(), req->tv_sec, req->tv_nsec);
    if (hub()->sleep_until(deadline) == 0) return 0;
    fill_remaining(rem, deadline);
    errno = EINTR;
    return -1;
}

/// clock_nanosleep returns an error number instead of setting errno.
GREEN_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    if (!green_on_fiber() || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME))
        return REAL(clock_nanosleep)(clock, flags, req, rem);
    green_fair_turn();
    if (!req) return EFAULT;
    if (!valid(req)) return EINVAL;
    if (!(flags & TIMER_ABSTIME)) {
        int64_t deadline = add_clamped(green_now_ns(), req->tv_sec, req->tv_nsec);
        if (hub()->sleep_until(deadline) == 0) return 0;
        fill_remaining(rem, deadline);
        return EINTR;
    }
    // Absolute time on `clock`: sleep on the monotonic clock for the
    // difference, and check again on wake-up (the clock may have been set).
    int64_t target = (int64_t)req->tv_sec * NS + req->tv_nsec;
    for (;;) {
        struct timespec now;
        clock_gettime(clock, &now);
        int64_t left = target - ((int64_t)now.tv_sec * NS + now.tv_nsec);
        if (left <= 0) return 0;
        if (hub()->sleep_until(green_now_ns() + left) != 0) return EINTR; // rem is untouched for TIMER_ABSTIME
    }
}
