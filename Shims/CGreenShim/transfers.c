// transfers.c — sendfile and splice: the kernel moves the bytes between two
// descriptors. When one of them is a socket the shim made non-blocking under
// the program (FD_MANAGED, or shared with another process since a fork), the
// kernel answers EAGAIN where the program's blocking call would wait: here
// the fiber parks on that socket and the call goes on, so the program sees
// what a blocking call returns. Neither call has a per-call MSG_DONTWAIT: on
// a socket a spawned program shares (blocking in the kernel again) the fiber
// waits until it is ready before each call, which may still block in the
// kernel for the rest (marked, so that `green run` hands the hub off). With
// no such socket (regular files, pipes, sockets the program made
// non-blocking itself) the call goes to the kernel as it is, marked too.
#include "io_modes.h"
#include <limits.h>

_Static_assert(sizeof(off_t) == sizeof(off64_t), "sendfile64 is sendfile on 64-bit Linux");

/// The kernel moves at most this much per call (MAX_RW_COUNT); a blocking
/// sendfile of more returns this much, and so does the loop below.
#define TRANSFER_MAX ((size_t)INT_MAX & ~(size_t)4095)

/// fd's record if it is a socket the program left blocking, which the
/// kernel may answer EAGAIN: one the shim made non-blocking (NONBLOCK), or
/// one another process may share since a fork or spawn (DONTWAIT: its
/// kernel flag is non-blocking after a fork, blocking after a spawn).
static fd_info *socket_blocking_for_program(int fd, int *shared) {
    fd_info *e = NULL;
    int m = mode_for(fd, &e);
    *shared = m == DONTWAIT;
    return m == NONBLOCK || m == DONTWAIT ? e : NULL;
}

/// Before a call on a shared socket (which may block in the kernel): wait
/// until it is ready, so the call at least starts without blocking.
static int ready_first(int fd, fd_info *rec, int shared, int reading) {
    if (!rec || !shared || ready_now(fd, reading ? POLLIN : POLLOUT)) return 0;
    int64_t timeout = reading ? FD_LOAD(rec, rcv_timeout) : FD_LOAD(rec, snd_timeout);
    return shim_wait_ready(fd, reading ? GREEN_READ : GREEN_WRITE, shim_deadline_after(timeout));
}

/// Whether fd is a pipe or terminal left blocking in the kernel (WAIT_FIRST):
/// the fiber waits until it is ready before a call on it.
static int blocking_pipe(int fd) {
    fd_info *e = NULL;
    return mode_for(fd, &e) == WAIT_FIRST;
}

/// Park until the side that said EAGAIN is ready: the input socket if it
/// has nothing to read, else the output socket. -1 (errno as the blocking
/// call says it) when the wait fails, or when neither side is a socket the
/// shim made non-blocking: that EAGAIN is the program's own.
static int wait_for_side(int in, fd_info *in_rec, int out, fd_info *out_rec) {
    if (in_rec && !ready_now(in, POLLIN))
        return shim_wait_ready(in, GREEN_READ, shim_deadline_after(FD_LOAD(in_rec, rcv_timeout)));
    if (out_rec) return shim_wait_ready(out, GREEN_WRITE, shim_deadline_after(FD_LOAD(out_rec, snd_timeout)));
    errno = EAGAIN;
    return -1;
}

/// A blocking sendfile sends `count` bytes (at most TRANSFER_MAX), fewer only
/// at the end of `in` or when a wait fails after some were sent; the offset
/// (*offset, or in's file position) moves with every byte, as in each call.
GREEN_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
    if (!green_on_fiber()) return REAL(sendfile)(out, in, offset, count);
    green_fair_turn(); // a sender that never fills the socket still lets the others run
    int out_shared, in_shared;
    fd_info *out_rec = socket_blocking_for_program(out, &out_shared);
    fd_info *in_rec = socket_blocking_for_program(in, &in_shared);
    if (!out_rec && !in_rec) return SHIM_BLOCKING_CALL(REAL(sendfile)(out, in, offset, count));
    if (count > TRANSFER_MAX) count = TRANSFER_MAX;
    size_t sent = 0;
    for (;;) {
        if (ready_first(in, in_rec, in_shared, 1) != 0 || ready_first(out, out_rec, out_shared, 0) != 0)
            return sent ? (ssize_t)sent : -1;
        ssize_t r = SHIM_BLOCKING_CALL(REAL(sendfile)(out, in, offset, count - sent));
        if (r > 0) {
            sent += (size_t)r;
            if (sent == count) return (ssize_t)sent;
            continue; // the socket took part of it: the next call says EAGAIN if it is full
        }
        if (r == 0) return (ssize_t)sent; // the end of in (or count 0)
        if (!would_block() || wait_for_side(in, in_rec, out, out_rec) != 0) return sent ? (ssize_t)sent : -1;
    }
}

GREEN_EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count) {
    return sendfile(out, in, (off_t *)offset, count);
}

/// splice answers as read does: what one call moves, once something could
/// be moved. A pipe end stays blocking in the kernel (sockets.c): the fiber
/// waits until it is ready before the call, so only the socket's side can
/// say EAGAIN. SPLICE_F_NONBLOCK asks for EAGAIN: the call goes as it is.
GREEN_EXPORT ssize_t splice(int in, loff_t *in_offset, int out, loff_t *out_offset, size_t len, unsigned int flags) {
    if (!green_on_fiber() || (flags & SPLICE_F_NONBLOCK))
        return SHIM_BLOCKING_CALL(REAL(splice)(in, in_offset, out, out_offset, len, flags));
    green_fair_turn();
    int in_shared, out_shared;
    fd_info *in_rec = socket_blocking_for_program(in, &in_shared);
    fd_info *out_rec = socket_blocking_for_program(out, &out_shared);
    if (!in_rec && !out_rec) return SHIM_BLOCKING_CALL(REAL(splice)(in, in_offset, out, out_offset, len, flags));
    for (;;) {
        if (blocking_pipe(in) && !ready_now(in, POLLIN) && shim_wait_ready(in, GREEN_READ, GREEN_NO_DEADLINE) != 0)
            return -1;
        if (blocking_pipe(out) && !ready_now(out, POLLOUT) && shim_wait_ready(out, GREEN_WRITE, GREEN_NO_DEADLINE) != 0)
            return -1;
        if (ready_first(in, in_rec, in_shared, 1) != 0 || ready_first(out, out_rec, out_shared, 0) != 0) return -1;
        ssize_t r = SHIM_BLOCKING_CALL(REAL(splice)(in, in_offset, out, out_offset, len, flags));
        if (r >= 0 || !would_block()) return r;
        if (wait_for_side(in, in_rec, out, out_rec) != 0) return -1;
    }
}
