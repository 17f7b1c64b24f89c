// wait_queues.c — FIFO queues of parked fibers, the building block of the
// Swift runtime's locks, conditions, semaphores and channels.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

// ---- wait queues ---------------------------------------------------------------

static void waitq_remove(green_waitq *q, green_fiber *f) {
    if (f->wq_prev) f->wq_prev->wq_next = f->wq_next;
    else q->head = f->wq_next;
    if (f->wq_next) f->wq_next->wq_prev = f->wq_prev;
    else q->tail = f->wq_prev;
    f->wq_next = f->wq_prev = NULL;
    f->waitq = NULL;
}

int green_waitq_park(green_waitq *q, int64_t deadline, int flags) {
    green_fiber *self = green_tls_sched->run.current;
    self->waitq = q;
    self->wq_next = NULL;
    self->wq_prev = q->tail;
    if (q->tail) q->tail->wq_next = self;
    else q->head = self;
    q->tail = self;
    self->wait_label = q->label ? q->label : "wait queue";
    self->pins++; // the queue is its hub's: it stays there until off it
    int r = green_park_until(deadline, flags);
    if (self->waitq) waitq_remove(self->waitq, self);
    self->pins--;
    return r;
}

bool green_waitq_wake_one(green_waitq *q) {
    while (q->head) {
        green_fiber *f = q->head;
        waitq_remove(q, f);
        if (f->state == GREEN_FIBER_PARKED) {
            green_wake(f, GREEN_WAKE_NORMAL);
            return true;
        }
        // Already woken by its deadline or a cancellation: it will not take this.
    }
    return false;
}

size_t green_waitq_wake_all(green_waitq *q) {
    size_t n = 0;
    while (q->head) {
        green_fiber *f = q->head;
        waitq_remove(q, f);
        if (f->state == GREEN_FIBER_PARKED) {
            green_wake(f, GREEN_WAKE_NORMAL);
            n++;
        }
    }
    return n;
}

bool green_waitq_is_empty(const green_waitq *q) { return q->head == NULL; }
