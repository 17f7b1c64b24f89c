// snapshot.c — a hub's fibers as values (for the fiber dump): state, what a
// parked fiber waits on and for how long.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

// ---- snapshots -------------------------------------------------------------------

static void describe(green_sched *s, const green_fiber *f, green_fiber_info *out) {
    out->id = f->id;
    memcpy(out->name, f->name, sizeof out->name);
    out->state = (green_fiber_state)f->state;
    int parked = f->state == GREEN_FIBER_PARKED;
    out->waiting_on = parked && f->wait_label ? f->wait_label : "";
    int is_fd = parked && f->wait_label && strcmp(f->wait_label, "fd") == 0;
    out->fd = is_fd ? f->wait_fd : -1;
    out->fd_events = is_fd ? f->wait_events : 0;
    out->parked_seconds = parked ? ev_now(s->loop) - f->parked_at : 0;
}

size_t green_sched_snapshot(green_sched *s, green_fiber_info *out, size_t max) {
    size_t n = 0;
    if (n < max) describe(s, s->run.root, &out[n]);
    n++;
    for (green_fiber *f = s->census.all; f; f = f->all_next) {
        if (n < max) describe(s, f, &out[n]);
        n++;
    }
    return n;
}
