// transfers.c — sendfile and splice: the kernel moves the bytes between two
// descriptors, and either may make the call wait.
//
// - A socket the program left blocking may be non-blocking in the kernel
//   (the shim's own, FD_MANAGED, or one shared with another process since a
//   fork): there the kernel says EAGAIN where the program's call waits, so
//   the fiber parks on that side and the call goes on.
// - A socket a spawned program shares is blocking in the kernel again, and
//   so are pipes the program made (sockets.c): the fiber waits until such a
//   side is ready before each call, so that the call does not start by
//   blocking the hub's thread. (splice is told SPLICE_F_NONBLOCK, which the
//   kernel applies to the pipe side; a sendfile into a pipe may still block
//   for the rest of its count.) Each call is marked as one that may block,
//   so that `green run` hands the hub off when it takes long.
//
// Fds of other kinds (regular files, fds the program made non-blocking
// itself) are the kernel's business: their EAGAIN is the program's own.
#include "io_modes.h"
#include <limits.h>

_Static_assert(sizeof(off_t) == sizeof(off64_t), "sendfile64 is sendfile on 64-bit Linux");

/// The kernel moves at most this much per call (MAX_RW_COUNT); so does a
/// blocking sendfile, and so the loop below.
#define TRANSFER_MAX ((size_t)INT_MAX & ~(size_t)4095)

/// One end of a transfer, and how a fiber waits for it.
typedef struct side {
    int fd;
    short ready_events;   ///< POLLIN for the input side, POLLOUT for the output
    enum { SIDE_OTHER, SIDE_SOCKET, SIDE_PIPE } kind;
    int blocks_in_kernel; ///< the kernel's call may block on it: wait until ready first
    int64_t timeout;      ///< SO_RCVTIMEO or SO_SNDTIMEO of a socket, 0 = none
} side;

static side side_of(int fd, int input) {
    side s = {.fd = fd, .ready_events = input ? POLLIN : POLLOUT, .kind = SIDE_OTHER};
    fd_info *e = NULL;
    switch (mode_for(fd, &e)) {
    case NONBLOCK: // the shim's socket: non-blocking in the kernel
    case DONTWAIT: // shared with another process: the kernel's flag may be either
        s.kind = SIDE_SOCKET;
        if (FD_KIND(e) == FD_SOCKET) {
            int fl = REAL(fcntl)(fd, F_GETFL);
            s.blocks_in_kernel = fl >= 0 && !(fl & O_NONBLOCK); // blocking again after a spawn
        }
        s.timeout = input ? FD_LOAD(e, rcv_timeout) : FD_LOAD(e, snd_timeout);
        break;
    case WAIT_FIRST: // a pipe or terminal, blocking in the kernel; its wrong end fails at once
        if (FD_LOAD(e, access) != (input ? O_WRONLY : O_RDONLY)) {
            s.kind = SIDE_PIPE;
            s.blocks_in_kernel = 1;
        }
        break;
    }
    return s;
}

static int side_ready(const side *s) { return ready_now(s->fd, s->ready_events); }

/// Park until the side is ready. Once the call moved bytes (`done`), a
/// signal handler ends the wait even with SA_RESTART: the kernel's call
/// then returns the count so far.
static int wait_for(const side *s, size_t done) {
    int events = s->ready_events == POLLIN ? GREEN_READ : GREEN_WRITE;
    int64_t deadline = shim_deadline_after(s->timeout);
    return shim_wait_ready_after(s->fd, events, deadline, done);
}

/// Before a call: a side the kernel may block on is waited for until ready.
static int ready_first(const side *s, size_t done) {
    if (!s->blocks_in_kernel || side_ready(s)) return 0;
    return wait_for(s, done);
}

/// After EAGAIN: park until the side that said it is ready. 0 to try again;
/// -1 (errno as the blocking call says it) when the wait fails, or with
/// EAGAIN when the side that is not ready is one the program made
/// non-blocking itself.
static int wait_after_eagain(const side *in, const side *out, size_t done) {
    const side *sides[2] = {in, out};
    for (int i = 0; i < 2; i++) {
        const side *s = sides[i];
        if (side_ready(s)) continue;
        if (s->kind != SIDE_OTHER) return wait_for(s, done);
        errno = EAGAIN;
        return -1;
    }
    return 0; // both ready by now
}

/// A blocking sendfile into a socket sends `count` bytes (at most
/// TRANSFER_MAX), fewer only at the end of `in` or when a wait fails after
/// some were sent; into a pipe, what one call moves once there is room. The
/// offset (*offset, or in's file position) moves with every byte.
GREEN_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    if (!green_on_fiber()) return REAL(sendfile)(out_fd, in_fd, offset, count);
    green_fair_check(); // a sender that never fills the socket still lets the others run
    side in = side_of(in_fd, 1), out = side_of(out_fd, 0);
    // Arguments the kernel refuses before it looks at either side must not
    // wait: a count with its top bit set; a pipe as the input (EINVAL).
    int refused = (ssize_t)count < 0 || (in.kind == SIDE_PIPE && !isatty(in_fd)); // a terminal it takes
    if ((in.kind == SIDE_OTHER && out.kind == SIDE_OTHER) || refused)
        return SHIM_BLOCKING_CALL(REAL(sendfile)(out_fd, in_fd, offset, count));
    // The kernel reads the offset before it looks at either side: a bad one
    // is EFAULT at once, not after a wait for a full pipe.
    off_t at;
    if (offset && (in.blocks_in_kernel || out.blocks_in_kernel) && shim_copy_in(&at, offset, sizeof at) != 0) return -1;
    // Into a pipe (the only output a socket can feed) the kernel waits for
    // room once and fills it once: one call's worth, not the whole count.
    int once = out.kind == SIDE_PIPE || in.kind == SIDE_SOCKET;
    // The first call gets the program's count (the kernel refuses one with
    // its top bit set); the rest, what is left of at most TRANSFER_MAX.
    size_t limit = count > TRANSFER_MAX ? TRANSFER_MAX : count;
    size_t sent = 0;
    for (;;) {
        if (count && (ready_first(&in, sent) != 0 || ready_first(&out, sent) != 0)) return sent ? (ssize_t)sent : -1;
        ssize_t r = SHIM_BLOCKING_CALL(REAL(sendfile)(out_fd, in_fd, offset, sent ? limit - sent : count));
        if (r > 0) {
            sent += (size_t)r;
            if (sent >= limit || once) return (ssize_t)sent;
            continue; // the socket took part of it: the next call says EAGAIN if it is full
        }
        if (r == 0) return (ssize_t)sent; // the end of in (or count 0)
        if (!would_block() || wait_after_eagain(&in, &out, sent) != 0) return sent ? (ssize_t)sent : -1;
    }
}

GREEN_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count) {
    return sendfile(out_fd, in_fd, (off_t *)offset, count);
}

/// splice answers once something could be moved, with what it moved: from
/// a socket, what one call takes; from a pipe into a socket, all the pipe
/// holds (up to len), as a blocking socket takes it. SPLICE_F_NONBLOCK from
/// the program asks for EAGAIN: the call goes as it is.
GREEN_EXPORT ssize_t splice(int in_fd, loff_t *in_offset, int out_fd, loff_t *out_offset, size_t len,
                            unsigned int flags) {
    if (!green_on_fiber() || (flags & SPLICE_F_NONBLOCK))
        return SHIM_BLOCKING_CALL(REAL(splice)(in_fd, in_offset, out_fd, out_offset, len, flags));
    green_fair_check();
    side in = side_of(in_fd, 1), out = side_of(out_fd, 0);
    if (in.kind == SIDE_OTHER && out.kind == SIDE_OTHER)
        return SHIM_BLOCKING_CALL(REAL(splice)(in_fd, in_offset, out_fd, out_offset, len, flags));
    in.blocks_in_kernel &= in.kind == SIDE_SOCKET; // SPLICE_F_NONBLOCK keeps a pipe from blocking
    out.blocks_in_kernel &= out.kind == SIDE_SOCKET;
    size_t moved = 0;
    for (;;) {
        if (len && (ready_first(&in, moved) != 0 || ready_first(&out, moved) != 0)) return moved ? (ssize_t)moved : -1;
        ssize_t r = SHIM_BLOCKING_CALL(
            REAL(splice)(in_fd, in_offset, out_fd, out_offset, len - moved, flags | SPLICE_F_NONBLOCK));
        if (r > 0) {
            moved += (size_t)r;
            // Into a socket a blocking call goes on while the pipe has more.
            if (moved < len && out.kind == SIDE_SOCKET && in.kind == SIDE_PIPE && side_ready(&in)) continue;
            return (ssize_t)moved;
        }
        if (r == 0) return (ssize_t)moved;
        if (!would_block() || wait_after_eagain(&in, &out, moved) != 0) return moved ? (ssize_t)moved : -1;
    }
}
