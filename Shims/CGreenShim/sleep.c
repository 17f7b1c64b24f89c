// sleep.c — sleep, usleep, nanosleep and clock_nanosleep park the fiber on a
// hub timer. Interrupted (a handler ran for the thread, SA_RESTART or not, as
// the kernel never restarts a sleep; or the fiber was cancelled or its
// timeout scope expired), they report EINTR and the time left.
#include "shim.h"

#define NS GREEN_NS_PER_SEC

/// The time left into `rem`: EFAULT when the program cannot take it (the
/// kernel's answer then, in place of EINTR), else EINTR.
static int fill_remaining(struct timespec *rem, int64_t deadline) {
    if (!rem) return EINTR;
    struct timespec left = green_ns_timespec(green_ns_until(deadline));
    return shim_copy_out(rem, &left, sizeof left) == 0 ? EINTR : EFAULT;
}

GREEN_EXPORT unsigned int sleep(unsigned int seconds) {
    if (!green_on_fiber()) return REAL(sleep)(seconds);
    green_fair_check(); // sleep(0) in a loop still lets the others run
    int64_t deadline = green_deadline_in(green_mul_sat(seconds, NS));
    if (hub()->sleep_until(deadline, GREEN_PARK_NO_RESTART) == 0) return 0;
    int64_t left = green_ns_until(deadline);
    return left == 0 ? 0 : (unsigned int)((left - 1) / NS + 1); // whole seconds left, rounded up
}

GREEN_EXPORT int usleep(useconds_t usec) {
    if (!green_on_fiber()) return REAL(usleep)(usec);
    green_fair_check();
    int r = hub()->sleep_until(green_deadline_in((int64_t)usec * 1000), GREEN_PARK_NO_RESTART);
    if (r == 0) return 0;
    errno = EINTR;
    return -1;
}

GREEN_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
    if (!green_on_fiber()) return REAL(nanosleep)(req, rem);
    green_fair_check();
    struct timespec t; // read as the kernel reads it: EFAULT, not a crash
    if (shim_copy_in(&t, req, sizeof t) != 0) return -1;
    if (!green_timespec_valid(&t)) { errno = EINVAL; return -1; }
    int64_t deadline = green_deadline_in(green_timespec_ns(&t));
    if (hub()->sleep_until(deadline, GREEN_PARK_NO_RESTART) == 0) return 0;
    errno = fill_remaining(rem, deadline);
    return -1;
}

/// clock_nanosleep returns an error number instead of setting errno.
GREEN_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    if (!green_on_fiber() || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME))
        return REAL(clock_nanosleep)(clock, flags, req, rem);
    green_fair_check();
    struct timespec t; // read as the kernel reads it: EFAULT, not a crash
    if (shim_copy_in(&t, req, sizeof t) != 0) return EFAULT;
    if (!green_timespec_valid(&t)) return EINVAL;
    req = &t;
    if (!(flags & TIMER_ABSTIME)) {
        int64_t deadline = green_deadline_in(green_timespec_ns(req));
        if (hub()->sleep_until(deadline, GREEN_PARK_NO_RESTART) == 0) return 0;
        return fill_remaining(rem, deadline);
    }
    // Absolute time on `clock`: sleep on the monotonic clock for the
    // difference, and check again on wake-up (the clock may have been set).
    int64_t target = green_timespec_ns(req);
    for (;;) {
        struct timespec now;
        clock_gettime(clock, &now);
        int64_t left = target - green_timespec_ns(&now);
        if (left <= 0) return 0;
        if (hub()->sleep_until(green_deadline_in(left), GREEN_PARK_NO_RESTART) != 0) return EINTR; // rem is untouched for TIMER_ABSTIME
    }
}
