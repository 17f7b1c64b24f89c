// exclusivity.c — give every fiber its own Swift exclusivity access set.
//
// Swift's dynamic exclusivity checker keeps a thread-local linked list of
// active accesses whose records live in the accessing frames. Fibers share
// the thread, so without help a fiber parked inside a `modify` leaves its
// record on the list and the next fiber touching the same storage traps
// ("Simultaneous accesses"), or worse, ends an access through a frame on
// another stack. Swift concurrency solves the same problem for tasks with two
// exported runtime functions; we call them on every switch, here in C so no
// checked access straddles the switch itself.
//
// They are weak references: a C program preloading Green without the Swift
// runtime simply skips them.
#include <stdlib.h>
#include "internal.h"

extern void swift_task_enterThreadLocalContext(char *state) __attribute__((weak));
extern void swift_task_exitThreadLocalContext(char *state) __attribute__((weak));

/// GREEN_EXCLUSIVITY_HOOKS=0 turns the hooks off, to demonstrate (in tests)
/// the trap they prevent.
static int hooks_enabled = -1;

static int hooks_on(void) {
    if (hooks_enabled < 0) {
        const char *v = getenv("GREEN_EXCLUSIVITY_HOOKS");
        hooks_enabled = swift_task_exitThreadLocalContext && swift_task_enterThreadLocalContext &&
                        !(v && v[0] == '0');
    }
    return hooks_enabled;
}

void green_exclusivity_switch(green_fiber *from, green_fiber *to) {
    if (hooks_enabled > 0 || (hooks_enabled < 0 && hooks_on())) {
        // Move the access set of `from` off the thread, then put `to`'s on.
        // Every context, the root one included, starts with an empty saved set,
        // so the thread-wide list is empty between the two calls.
        swift_task_exitThreadLocalContext((char *)from->exclusivity);
        // With the thread's list now empty, entering a context that saved no
        // accesses changes nothing: skip the call (the common case).
        if (to->exclusivity[0]) swift_task_enterThreadLocalContext((char *)to->exclusivity);
    }
}

bool green_exclusivity_hooks_available(void) {
    return swift_task_exitThreadLocalContext != 0 && swift_task_enterThreadLocalContext != 0;
}
