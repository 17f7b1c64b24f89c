// fd_lifecycle.c — close and dup: fibers waiting on an fd are woken (EBADF)
// and their watchers removed before its number can be reused, and the
// shim's record follows the fd (dup shares the open file description).
#include "shim.h"

/// Wake this hub's fibers waiting on fd (they get EBADF) before the number is freed.
static void closing(int fd) {
    const green_hub_abi *abi = green_hub_abi_get();
    if (abi) abi->fd_closing(fd);
}

GREEN_EXPORT int close(int fd) {
    // The core's own fds are not the program's: to it, that number is not
    // open (a daemon's close-everything loop must not take the hub's epoll fd).
    if (shim_fd_is_internal(fd)) {
        errno = EBADF;
        return -1;
    }
    closing(fd);
    shim_fd_forget(fd);
    return REAL(close)(fd);
}

GREEN_EXPORT int dup(int fd) {
    if (shim_fd_is_internal(fd)) { errno = EBADF; return -1; }
    int r = REAL(dup)(fd);
    if (r >= 0) shim_fd_copy(fd, r);
    return r;
}

// dup2/dup3 onto one of the core's own numbers: a hub's event loop holds
// it and cannot move to another, so the call fails with EBUSY (what Linux
// says for a number being opened) instead of breaking the hub.
GREEN_EXPORT int dup2(int from, int to) {
    if (shim_fd_is_internal(from)) { errno = EBADF; return -1; }
    if (shim_fd_is_internal(to)) { errno = EBUSY; return -1; }
    if (from != to) closing(to);
    int r = REAL(dup2)(from, to);
    if (r >= 0 && from != to) shim_fd_copy(from, to);
    return r;
}

GREEN_EXPORT int dup3(int from, int to, int flags) {
    if (shim_fd_is_internal(from)) { errno = EBADF; return -1; }
    if (shim_fd_is_internal(to)) { errno = EBUSY; return -1; }
    if (from != to) closing(to);
    int r = REAL(dup3)(from, to, flags);
    if (r >= 0) shim_fd_copy(from, to);
    return r;
}
