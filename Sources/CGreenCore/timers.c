// timers.c — waits with a deadline: parking until a monotonic deadline,
// sleeps, and timeout scopes (a fiber's nested deadlines, each turning its
// next interruptible park into GREEN_WAKE_TIMEOUT_SCOPE once it fires).
#include "internal.h"
#include <stdlib.h>
#include <string.h>

// ---- deadlines ---------------------------------------------------------------

typedef struct timer_wait {
    ev_timer timer;
    green_fiber *fiber;
} timer_wait;

static void timer_wait_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop; (void)revents;
    green_wake(((timer_wait *)w)->fiber, GREEN_WAKE_DEADLINE);
}

/// Seconds until the monotonic deadline, for a libev timer. libev caches its
/// time per loop iteration and counts timers from that; refresh it first so
/// a timer never fires before the deadline (green_sleep_until re-checks too).
static ev_tstamp seconds_until(struct ev_loop *loop, int64_t deadline) {
    ev_now_update(loop);
    int64_t left = deadline - green_now_ns();
    if (left < 0) left = 0;
    return (ev_tstamp)left / 1e9;
}

/// A park with a deadline: a libev timer wakes the fiber when it passes.
/// Apart from green_park_until so that a park without one (every join,
/// lock and queue wait) is a bare jump to green_park, with no frame for
/// the timer.
__attribute__((noinline)) static int park_with_timer(int64_t deadline, int flags) {
    green_sched *s = green_tls_sched;
    green_fiber *self = s->run.current;
    if (green_now_ns() >= deadline) {
        int r = (flags & GREEN_PARK_UNINTERRUPTIBLE) ? 0 : green_take_interrupt(self);
        return r ? r : GREEN_WAKE_DEADLINE;
    }
    timer_wait tw;
    ev_timer_init(&tw.timer, timer_wait_cb, seconds_until(s->loop, deadline), 0.);
    tw.fiber = self;
    self->pins++; // woken, it stops the timer on this hub's loop: it stays here until then
    ev_timer_start(s->loop, &tw.timer);
    int r = green_park(flags);
    ev_timer_stop(s->loop, &tw.timer);
    self->pins--;
    return r;
}

int green_park_until(int64_t deadline, int flags) {
    if (deadline == GREEN_NO_DEADLINE) return green_park(flags);
    return park_with_timer(deadline, flags);
}

void green_set_wait_label(const char *label) {
    green_sched *s = green_tls_sched;
    if (s) s->run.current->wait_label = label;
}

int green_sleep_until(int64_t deadline, int flags) {
    for (;;) {
        green_tls_sched->run.current->wait_label = "sleep";
        int r = green_park_until(deadline, flags);
        if (r == GREEN_WAKE_DEADLINE || r == GREEN_WAKE_NORMAL) {
            if (green_now_ns() >= deadline) return 0;
            continue; // early or spurious: sleep the rest
        }
        return r;
    }
}

// ---- timeout scopes ------------------------------------------------------------

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop; (void)revents;
    green_timeout *t = (green_timeout *)w;
    green_fiber *f = t->fiber;
    t->fired = true;
    f->timeouts_fired++;
    if (f->state == GREEN_FIBER_PARKED && !(f->park_flags & GREEN_PARK_UNINTERRUPTIBLE)) {
        int r = green_take_interrupt(f);
        if (r) green_wake(f, r);
    }
}

green_timeout *green_timeout_start(int64_t deadline) {
    green_sched *s = green_tls_sched;
    if (!s) return NULL;
    green_timeout *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    green_fiber *f = s->run.current;
    t->fiber = f;
    t->outer = f->timeouts;
    f->timeouts = t;
    ev_timer_init(&t->timer, timeout_cb, seconds_until(s->loop, deadline), 0.);
    ev_timer_start(s->loop, &t->timer);
    return t;
}

bool green_timeout_stop(green_timeout *t) {
    if (!t) return false;
    green_fiber *f = t->fiber;
    ev_timer_stop(f->sched->loop, &t->timer);
    if (t->fired && !t->reported) f->timeouts_fired--;
    // Scopes nest, so t is normally the innermost; unlink it wherever it is.
    for (green_timeout **pp = &f->timeouts; *pp; pp = &(*pp)->outer)
        if (*pp == t) { *pp = t->outer; break; }
    if (f->expired == t) f->expired = NULL;
    bool fired = t->fired;
    free(t);
    return fired;
}

green_timeout *green_fiber_expired_timeout(const green_fiber *f) { return f->expired; }

bool green_timeout_unreported(const green_timeout *t) { return t && t->fired && !t->reported; }
