// signals.c — signal handlers that run as ordinary code on the hub instead
// of in signal context: libev catches the signal and wakes the loop, and the
// runtime's callback spawns a fiber for the user's handler.
#include "internal.h"
#include <errno.h>
#include <stdlib.h>

struct green_signal_watch {
    ev_signal sig;
    struct ev_loop *loop;
    void (*cb)(void *ctx);
    void *ctx;
};

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)loop; (void)revents;
    green_signal_watch *sw = (green_signal_watch *)w;
    sw->cb(sw->ctx);
}

green_signal_watch *green_signal_watch_start(int signum, void (*cb)(void *), void *ctx) {
    green_sched *s = green_sched_create();
    if (!s || signum <= 0 || signum >= NSIG) { errno = EINVAL; return NULL; }
    green_signal_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    ev_signal_init(&w->sig, on_signal, signum);
    w->loop = s->loop;
    w->cb = cb;
    w->ctx = ctx;
    ev_signal_start(s->loop, &w->sig);
    ev_unref(s->loop); // a handler alone does not keep waits alive
    return w;
}

void green_signal_watch_stop(green_signal_watch *w) {
    if (!w) return;
    ev_ref(w->loop);
    ev_signal_stop(w->loop, &w->sig);
    free(w);
}
