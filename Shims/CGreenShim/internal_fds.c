// internal_fds.c — the core's own fds (libev's epoll fd and its wake-up
// eventfd, the hub's edge-triggered set) stay out of the program's way.
// (close, dup and fcntl say EBADF for them too: fd_lifecycle.c,
// fd_options.c.) Made at start-up, they would take
// the lowest free numbers, so the program's first open() would not return 3
// (and with stdio closed, they would become fds 0 and 1). While the core
// makes them (green_tls_making_internal_fds), each new one is moved near the
// top of the first 1024 numbers, close-on-exec, and recorded as internal so
// that the program's close() of that number says EBADF, as for any number
// it never opened.
#include "shim.h"
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

/// Lowest number for an internal fd: just under the soft fd limit, or under
/// 1024 (select()'s FD_SETSIZE) when the limit is higher; 0 when too small.
/// The window holds three fds per hub (libev's epoll set and eventfd, the
/// edge set of edge_poller.c): 416 numbers fit `green run`'s 64 hubs twice
/// (a fork child's new hubs next to its parent's) and more.
static int internal_floor(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    rlim_t top = rl.rlim_cur < 1024 ? rl.rlim_cur : 1024;
    if (top >= 512) return (int)top - 416;
    return top >= 64 ? (int)top - 32 : 0;
}

int shim_fd_out_of_the_way(int fd) {
    int floor = internal_floor();
    if (fd < 0 || floor <= fd) return fd;
    int high = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, floor);
    if (high < 0) return fd;
    shim_close_own(fd);
    return high;
}

static int internal(int fd) {
    if (fd < 0) return fd;
    if (!green_tls_making_internal_fds) {
        shim_fd_new_file(fd); // the program's own: a new file behind this number
        return fd;
    }
    fd = shim_fd_out_of_the_way(fd);
    fd_info *e = shim_fd_get(fd);
    if (e) {
        shim_fd_forget(fd);
        FD_SET_KIND(e, FD_INTERNAL);
    }
    return fd;
}

GREEN_EXPORT int epoll_create(int size) { return internal(REAL(epoll_create)(size)); }

/// libev aborts when the kernel refuses to watch a number with EBADF, ELOOP
/// or EINVAL (a number another thread closed just as a wait on it began).
/// For a hub's own epoll set those become ENOMEM, on which libev drops the
/// fd's watchers with EV_ERROR: the waiter tries its call again and gets the
/// kernel's answer. The program's own epoll sets get the kernel's errors.
GREEN_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    int r = REAL(epoll_ctl)(epfd, op, fd, ev);
    if (r != 0 && (errno == EBADF || errno == ELOOP || errno == EINVAL)) {
        fd_info *e = shim_fd_find(epfd);
        if (e && FD_KIND(e) == FD_INTERNAL) errno = ENOMEM;
    }
    return r;
}
GREEN_EXPORT int epoll_create1(int flags) { return internal(REAL(epoll_create1)(flags)); }
/// fstat of a number the program never opened: EBADF, as natively (CPython's
/// fd_status.py lists a child's open fds this way).
GREEN_EXPORT int fstat(int fd, struct stat *st) {
    if (shim_fd_is_internal(fd)) { errno = EBADF; return -1; }
    return REAL(fstat)(fd, st);
}

GREEN_EXPORT int fstat64(int fd, struct stat64 *st) {
    if (shim_fd_is_internal(fd)) { errno = EBADF; return -1; }
    return REAL(fstat64)(fd, st);
}

GREEN_EXPORT int eventfd(unsigned int initval, int flags) { return internal(REAL(eventfd)(initval, flags)); }
