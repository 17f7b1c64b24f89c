// message_batches.c — recvmmsg and sendmmsg: many messages in one call.
//
// On a socket the shim made non-blocking under the program (FD_MANAGED, or
// shared with another process since a fork) the kernel's loop over the messages says EAGAIN where the program's blocking
// call would wait. Here each kernel call says MSG_DONTWAIT and takes what it
// can; between calls the fiber parks until the socket is ready, and the calls
// add up to what one blocking call returns:
//
// - recvmmsg waits for the first message, then for more until `vlen` (the
//   kernel checks its `timeout` only after each message it received, and
//   writes the time left back), unless MSG_WAITFORONE; a wait that fails
//   after some messages returns those (the kernel's loop does the same with
//   its inner wait's error);
// - sendmmsg sends each message whole, as a blocking sendmsg does (on a
//   stream socket one message at a time), and returns the count sent when
//   a later one fails (the kernel loses that error too).
//
// Other sockets (and MSG_DONTWAIT) go to the kernel as they are.
#include "io_modes.h"
#include <limits.h>
#include <sys/syscall.h>

/// sendmmsg sends at most this many messages per call (UIO_MAXIOV);
/// recvmmsg has no such limit.
#define BATCH_MAX 1024u

/// A socket the program left blocking, or NULL: one the shim made
/// non-blocking (NONBLOCK) or one another process may share (DONTWAIT,
/// non-blocking in the kernel after a fork). Every call here says
/// MSG_DONTWAIT, whatever the kernel's flag.
static fd_info *socket_blocking_for_program(int fd) {
    fd_info *e = NULL;
    int m = mode_for(fd, &e);
    return m == NONBLOCK || m == DONTWAIT ? e : NULL;
}

/// The socket has an error queued (a refused datagram, a reset): the
/// kernel's loop would have stopped at it and kept it for the next call.
static int error_pending(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return REAL(poll)(&p, 1, 0) > 0 && (p.revents & POLLERR);
}

// ---- recvmmsg ---------------------------------------------------------------------------

/// Note the fds passed in received messages (shim_note_received_fds).
static int note_batch(struct mmsghdr *vec, int n) {
    for (int i = 0; i < n; i++) shim_note_received_fds(&vec[i].msg_hdr);
    return n;
}

/// Whether the program's timeout can take the time left: the kernel's
/// write to it says EFAULT for a read-only one (which recvmmsg then answers,
/// after its messages, as the kernel does), where the shim's would crash.
static int writable(struct timespec *t) {
    struct timespec keep = *t; // readable: the kernel read it in the first call
    if (GREEN_SYSCALL(SYS_clock_gettime, (long)CLOCK_MONOTONIC, (long)t) != 0) return 0; // longs: syscall() reads them so
    *t = keep;
    return 1;
}

GREEN_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout) {
    if (!green_on_fiber()) return note_batch(vec, REAL(recvmmsg)(fd, vec, vlen, flags, timeout));
    green_fair_check(); // a reader that always finds messages still lets the others run
    fd_info *e = (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) ? NULL : socket_blocking_for_program(fd);
    if (!e) return note_batch(vec, SHIM_BLOCKING_CALL(REAL(recvmmsg)(fd, vec, vlen, flags, timeout)));
    int64_t start = green_now_ns();
    // The first call takes the program's timeout as it is: the kernel checks
    // it (EFAULT, EINVAL) before anything else, and then the shim may read it.
    int r = REAL(recvmmsg)(fd, vec, vlen, flags | MSG_DONTWAIT, timeout);
    if (r < 0 && !would_block()) return -1;
    if (r == 0) return 0; // vlen 0
    // The time left (the kernel wrote it back after messages) and when it
    // runs out; for a timeout too long to count in ns, the kernel counts:
    // each call with messages writes its time left back into `left`.
    struct timespec left = {0, 0};
    int64_t end = GREEN_NO_DEADLINE;
    if (timeout) {
        left = *timeout;
        end = green_add_sat(r > 0 ? green_now_ns() : start, green_timespec_ns(&left));
    }
    int kernel_counts = end == GREEN_NO_DEADLINE;
    // The time left as of the last message, which is what the kernel
    // writes back (its loop then waits for the next one in vain).
    int64_t at_last = timeout && !kernel_counts ? green_timespec_ns(&left) : 0;
    unsigned got = r > 0 ? (unsigned)r : 0;
    note_batch(vec, (int)got);
    while (got < vlen) {
        // Where the kernel's loop would stop: MSG_WAITFORONE, its timeout
        // (checked after each message), out-of-band data.
        if (got && ((flags & MSG_WAITFORONE) || (vec[got - 1].msg_hdr.msg_flags & MSG_OOB))) break;
        if (got && timeout && !kernel_counts && green_now_ns() >= end) break;
        int64_t deadline = shim_deadline_after(FD_LOAD(e, rcv_timeout));
        if (!ready_now(fd, POLLIN) && shim_wait_ready_after(fd, GREEN_READ, deadline, got) != 0) {
            if (!got) return -1;
            break;
        }
        // An error that came meanwhile: the kernel's loop stops at it and
        // keeps it for the next call, where a call here would take it. (A
        // queued error-queue entry says POLLERR too: then fewer messages
        // come back than natively, which recvmmsg may always do. One that
        // comes between this look and the call is taken by the call and
        // lost: a window of a few instructions.)
        if (got && error_pending(fd)) break;
        if (timeout && !kernel_counts) left = green_ns_timespec(green_ns_until(end));
        r = REAL(recvmmsg)(fd, vec + got, vlen - got, flags | MSG_DONTWAIT, timeout ? &left : NULL);
        if (r > 0) {
            note_batch(vec + got, r);
            got += (unsigned)r;
            if (timeout && !kernel_counts) at_last = green_ns_until(end);
        } else if (r < 0 && !would_block()) {
            if (!got) return -1;
            break; // an error after messages: they are the answer
        }
    }
    if (timeout && got) {
        if (!kernel_counts) left = green_ns_timespec(at_last);
        if (!writable(timeout)) {
            errno = EFAULT;
            return -1;
        }
        *timeout = left;
    }
    return (int)got;
}

// ---- sendmmsg ---------------------------------------------------------------------------

/// The most of one message the kernel sends (MAX_RW_COUNT).
#define MESSAGE_MAX ((size_t)INT_MAX & ~(size_t)4095)

/// Bytes in a message's buffers.
static size_t message_bytes(const struct msghdr *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++) n += m->msg_iov[i].iov_len;
    return n;
}

/// The rest of a message a stream socket took part of, up to `whole` of its
/// bytes, through send(), which parks as the blocking sendmsg would have.
/// Returns the bytes sent.
static size_t send_rest(int fd, const struct msghdr *m, size_t done, size_t whole, int flags) {
    size_t sent = 0, skip = done, left = whole - done;
    for (size_t i = 0; i < m->msg_iovlen && left; i++) {
        const struct iovec *v = &m->msg_iov[i];
        if (skip >= v->iov_len) {
            skip -= v->iov_len;
            continue;
        }
        size_t want = v->iov_len - skip;
        if (want > left) want = left;
        // MSG_NOSIGNAL: part of the message went out, and a blocking
        // sendmsg that sent some bytes returns their count without SIGPIPE.
        ssize_t r = shim_send_rest(fd, (const char *)v->iov_base + skip, want, flags | MSG_NOSIGNAL);
        if (r > 0) {
            sent += (size_t)r;
            left -= (size_t)r;
        }
        if (r < 0 || (size_t)r < want) break;
        skip = 0;
    }
    return sent;
}

/// On a stream socket one message per kernel call: a call with MSG_DONTWAIT
/// may send part of a message and then, if the peer read meanwhile, the
/// next one, where a blocking call sends each whole. The kernel reads each
/// message first (EFAULT for a bad one), then the shim sends its rest.
static int send_stream_messages(int fd, fd_info *e, struct mmsghdr *vec, unsigned vlen, int flags) {
    for (unsigned i = 0; i < vlen; i++) {
        int r;
        while ((r = REAL(sendmmsg)(fd, vec + i, 1, flags | MSG_DONTWAIT)) < 0) {
            int64_t deadline = shim_deadline_after(FD_LOAD(e, snd_timeout));
            if (!would_block() || shim_wait_ready_after(fd, GREEN_WRITE, deadline, i) != 0)
                return i ? (int)i : -1;
        }
        size_t whole = message_bytes(&vec[i].msg_hdr);
        if (whole > MESSAGE_MAX) whole = MESSAGE_MAX; // the kernel sends no more of one message
        if (vec[i].msg_len < whole) {
            vec[i].msg_len += (unsigned)send_rest(fd, &vec[i].msg_hdr, vec[i].msg_len, whole, flags);
            if (vec[i].msg_len < whole) return (int)i + 1; // a wait failed partway: sent as far as it got
        }
    }
    return (int)vlen;
}

GREEN_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags) {
    if (!green_on_fiber()) return REAL(sendmmsg)(fd, vec, vlen, flags);
    green_fair_check(); // a sender that never fills the socket still lets the others run
    fd_info *e = (flags & MSG_DONTWAIT) ? NULL : socket_blocking_for_program(fd);
    if (!e) return SHIM_BLOCKING_CALL(REAL(sendmmsg)(fd, vec, vlen, flags));
    if (vlen > BATCH_MAX) vlen = BATCH_MAX;
    if (!FD_LOAD(e, messages)) return send_stream_messages(fd, e, vec, vlen, flags);
    unsigned done = 0;
    for (;;) {
        // Each message is one datagram: the kernel sends it whole or not at all.
        int r = REAL(sendmmsg)(fd, vec + done, vlen - done, flags | MSG_DONTWAIT);
        if (r > 0) {
            done += (unsigned)r;
            if (done == vlen) return (int)done;
            continue; // the next call says EAGAIN if the socket is full
        }
        if (r == 0) return (int)done; // vlen 0
        if (!would_block()) return done ? (int)done : -1;
        int64_t deadline = shim_deadline_after(FD_LOAD(e, snd_timeout));
        if (shim_wait_ready_after(fd, GREEN_WRITE, deadline, done) != 0)
            return done ? (int)done : -1;
    }
}
