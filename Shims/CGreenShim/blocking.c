// blocking.c — calls that may block in the kernel with nothing a fiber could
// wait for: positioned reads and writes (regular files), flushing to disk and
// file locks. They run as they are on the fiber's OS thread; under `green
// run` the hub goes on without that thread when one takes long (the core's
// handoff.c), so a thread writing to a slow disk no longer stops the
// program's other threads. Off a fiber, and in a linked program, they are
// libc's with a few loads more.
#include "shim.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/uio.h>

GREEN_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pread)(fd, buf, n, offset));
}

GREEN_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pread64)(fd, buf, n, offset));
}

GREEN_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pwrite)(fd, buf, n, offset));
}

GREEN_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pwrite64)(fd, buf, n, offset));
}

GREEN_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n, off_t offset) {
    return SHIM_BLOCKING_CALL(REAL(preadv)(fd, iov, n, offset));
}

GREEN_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int n, off64_t offset) {
    return SHIM_BLOCKING_CALL(REAL(preadv64)(fd, iov, n, offset));
}

GREEN_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pwritev)(fd, iov, n, offset));
}

GREEN_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t offset) {
    return SHIM_BLOCKING_CALL(REAL(pwritev64)(fd, iov, n, offset));
}

GREEN_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int n, off_t offset, int flags) {
    return SHIM_BLOCKING_CALL(REAL(preadv2)(fd, iov, n, offset, flags));
}

GREEN_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t offset, int flags) {
    return SHIM_BLOCKING_CALL(REAL(pwritev2)(fd, iov, n, offset, flags));
}

GREEN_EXPORT int fsync(int fd) { return SHIM_BLOCKING_CALL(REAL(fsync)(fd)); }
GREEN_EXPORT int fdatasync(int fd) { return SHIM_BLOCKING_CALL(REAL(fdatasync)(fd)); }
GREEN_EXPORT int syncfs(int fd) { return SHIM_BLOCKING_CALL(REAL(syncfs)(fd)); }

GREEN_EXPORT void sync(void) {
    green_call call;
    green_sched *hub = green_call_enter(&call);
    REAL(sync)();
    if (hub) green_call_leave(&call);
}

GREEN_EXPORT int sync_file_range(int fd, off64_t offset, off64_t n, unsigned int flags) {
    return SHIM_BLOCKING_CALL(REAL(sync_file_range)(fd, offset, n, flags));
}

GREEN_EXPORT int flock(int fd, int op) { return SHIM_BLOCKING_CALL(REAL(flock)(fd, op)); }
GREEN_EXPORT int lockf(int fd, int cmd, off_t n) { return SHIM_BLOCKING_CALL(REAL(lockf)(fd, cmd, n)); }
GREEN_EXPORT int lockf64(int fd, int cmd, off64_t n) { return SHIM_BLOCKING_CALL(REAL(lockf64)(fd, cmd, n)); }
