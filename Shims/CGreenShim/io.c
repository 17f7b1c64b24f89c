// io.c — reads and writes on sockets and pipes: one engine (input, output)
// behind the read/recv and write/send families.
//
// On a fiber, a call that would block parks the fiber until the fd is ready
// (through the hub ABI) and then retries, so the caller sees exactly what a
// blocking call returns: all bytes written, partial reads as the kernel gives
// them, EOF, ECONNREFUSED, EPIPE (SIGPIPE as usual), EAGAIN after
// SO_RCVTIMEO/SO_SNDTIMEO. A program that set O_NONBLOCK itself gets EAGAIN
// as before and never parks.
#include "io_modes.h"
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

// ---- one operation, described so the loops below can retry it -----------------

enum op_kind { OP_READ, OP_READV, OP_RECV, OP_RECVFROM, OP_RECVMSG,
               OP_WRITE, OP_WRITEV, OP_SEND, OP_SENDTO, OP_SENDMSG };

typedef struct io_op {
    enum op_kind kind;
    int fd;
    void *buf;               ///< read/recv/write/send buffer
    size_t len;
    struct iovec *iov;       ///< readv/writev
    int iovcnt;
    int flags;               ///< recv/send flags
    struct sockaddr *addr;   ///< recvfrom source
    socklen_t *addrlen;
    const struct sockaddr *dest; ///< sendto destination
    socklen_t destlen;
    struct msghdr *msg;      ///< recvmsg/sendmsg
    int turn_taken;          ///< the caller took the fair turn already (green_fair_turn)
    int partial;             ///< the call moved bytes already (recvmsg_rest's reads, shim_send_rest's sends)
    int64_t deadline;        ///< input: when its waits end, 0 = the socket's SO_RCVTIMEO from now
} io_op;

/// The largest count for which read and write answer as recv and send do:
/// the kernel's MAX_RW_COUNT. Past it read and write check the whole range
/// of the buffer first (EFAULT) where recv and send shorten the count.
#define RW_COUNT_MAX ((size_t)INT_MAX & ~(size_t)4095)

/// Perform the operation once. `extra` (socket flags: MSG_DONTWAIT, and
/// MSG_NOSIGNAL after part of a write went out) turns read/write on a socket
/// into recv/send with them (same semantics, per call) — for arguments on
/// which both answer alike (a count up to RW_COUNT_MAX, at most IOV_MAX
/// buffers: readv says EINVAL past it, recvmsg EMSGSIZE).
static ssize_t perform(io_op *op, int extra) {
    int dontwait = extra != 0;
    int f = op->flags | extra;
    int vector_ok = op->iovcnt >= 0 && op->iovcnt <= IOV_MAX;
    switch (op->kind) {
    case OP_READ:
        return dontwait && op->len <= RW_COUNT_MAX ? REAL(recv)(op->fd, op->buf, op->len, extra)
                                                   : REAL(read)(op->fd, op->buf, op->len);
    case OP_READV:
        if (dontwait && vector_ok) {
            struct msghdr m = {.msg_iov = op->iov, .msg_iovlen = (size_t)op->iovcnt};
            return REAL(recvmsg)(op->fd, &m, extra);
        }
        return REAL(readv)(op->fd, op->iov, op->iovcnt);
    case OP_RECV: return REAL(recv)(op->fd, op->buf, op->len, f);
    case OP_RECVFROM: return REAL(recvfrom)(op->fd, op->buf, op->len, f, op->addr, op->addrlen);
    case OP_RECVMSG: return REAL(recvmsg)(op->fd, op->msg, f);
    case OP_WRITE:
        return dontwait && op->len <= RW_COUNT_MAX ? REAL(send)(op->fd, op->buf, op->len, extra)
                                                   : REAL(write)(op->fd, op->buf, op->len);
    case OP_WRITEV:
        if (dontwait && vector_ok) {
            struct msghdr m = {.msg_iov = op->iov, .msg_iovlen = (size_t)op->iovcnt};
            return REAL(sendmsg)(op->fd, &m, extra);
        }
        return REAL(writev)(op->fd, op->iov, op->iovcnt);
    case OP_SEND: return REAL(send)(op->fd, op->buf, op->len, f);
    case OP_SENDTO: return REAL(sendto)(op->fd, op->buf, op->len, f, op->dest, op->destlen);
    case OP_SENDMSG: return REAL(sendmsg)(op->fd, op->msg, f);
    }
    errno = EINVAL;
    return -1;
}

/// As it is: a regular file, a terminal, an fd the program made non-blocking…
static ssize_t perform_as_is(io_op *op) { return SHIM_BLOCKING_CALL(perform(op, 0)); }

/// Whether a call in mode m says MSG_DONTWAIT itself. Even on a socket the
/// shim made non-blocking (NONBLOCK) it never relies on the kernel's flag:
/// a posix_spawn or exec while the call waits puts the flag back to the
/// program's (fdtable.c, sockets shared with another process), and a call
/// that trusted it then would block the hub's thread.
static inline int dontwait_for(int m) { return m == DONTWAIT || m == NONBLOCK; }

/// The socket flags a call in mode m adds (see perform). Once part of a
/// write went out, the rest says MSG_NOSIGNAL: a blocking send that sent
/// some bytes returns their count, and the kernel raises SIGPIPE only for a
/// call that sent none.
static inline int extra_flags(int m, size_t sent) {
    if (!dontwait_for(m)) return 0;
    return MSG_DONTWAIT | (sent ? MSG_NOSIGNAL : 0);
}


// ---- the program's buffers ------------------------------------------------------------
//
// A bad pointer gets the kernel's EFAULT, never a crash here: the engines
// read a program's iovec array or msghdr only after a kernel call took it
// (the call's success says they are readable), or through shim_copy_in.

/// Bytes in an iovec array.
static size_t iov_total(const struct iovec *iov, int n) {
    size_t t = 0;
    for (int i = 0; i < n; i++) t += iov[i].iov_len;
    return t;
}

/// Drop the first `n` bytes from an iovec array in place.
static void iov_advance(struct iovec **iov, int *n, size_t bytes) {
    while (*n > 0 && bytes >= (*iov)->iov_len) {
        bytes -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0 && bytes) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + bytes;
        (*iov)->iov_len -= bytes;
    }
}

/// Whether an iovec array's lengths are the kernel's to take: each, and
/// their sum, at most SSIZE_MAX (else it says EINVAL). Adds them to *total.
static int iov_lengths_ok(const struct iovec *iov, int n, size_t *total) {
    size_t t = *total;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t) return 0;
        t += iov[i].iov_len;
    }
    *total = t;
    return 1;
}

/// Bytes in a readv's buffers, read with shim_copy_in; 0 when the array
/// cannot be read, its count is out of range or its lengths are (the
/// kernel's readv then answers at once: EFAULT, EINVAL).
static size_t readv_room(const struct iovec *iov, int n) {
    if (n <= 0 || n > IOV_MAX) return 0;
    struct iovec part[64];
    size_t total = 0;
    for (int i = 0; i < n; i += 64) {
        int k = n - i < 64 ? n - i : 64;
        if (shim_copy_in(part, iov + i, (size_t)k * sizeof *part) != 0 || !iov_lengths_ok(part, k, &total)) return 0;
    }
    return total;
}

// ---- input ---------------------------------------------------------------------------

/// Reads whose short result says "the socket is empty now": read/recv of at
/// least one byte into one buffer on a byte stream. Not message sockets
/// (datagram, seqpacket: each read is one message), not flags that change
/// what is read or waited for (MSG_PEEK, MSG_OOB…), not recvfrom/recvmsg or
/// scatter reads.
static inline int drain_hint_applies(const io_op *op, const fd_info *e) {
    if (op->len == 0 || FD_LOAD(e, messages)) return 0;
    return op->kind == OP_READ || (op->kind == OP_RECV && (op->flags & ~(MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)) == 0);
}

static ssize_t input(io_op *op) {
    if (!op->turn_taken) green_fair_check(); // a reader that always finds bytes still lets the others run
    fd_info *e = NULL;
    // MSG_DONTWAIT never waits, and neither does MSG_ERRQUEUE: an empty error
    // queue says EAGAIN at once, however the socket is set (socat asks after
    // a refused connect, and a socket that is readable or hung up would make
    // a wait-and-retry loop spin for ever).
    int m = (op->flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) ? PASS : mode_for(op->fd, &e);
    // A read on a pipe's write end fails at once (EBADF); it never gets readable.
    if (m == PASS || (m == WAIT_FIRST && FD_LOAD(e, access) == O_WRONLY)) return perform_as_is(op);
    // A zero-length read(2)/readv(2) returns 0 at once whatever the socket
    // holds (the kernel answers it before the socket sees it), where recv
    // with MSG_DONTWAIT would say EAGAIN and the fiber would wait for bytes,
    // or take a datagram or a pending error. readv's buffers are summed
    // through shim_copy_in (no call has read them yet); an array the kernel
    // refuses (EFAULT, EINVAL) is its readv's answer, at once.
    if ((op->kind == OP_READ && op->len == 0) || (op->kind == OP_READV && readv_room(op->iov, op->iovcnt) == 0))
        return perform(op, 0);
    int64_t deadline = op->deadline ? op->deadline : shim_deadline_after(FD_LOAD(e, rcv_timeout));
    // MSG_WAITALL: read on until the buffer is full. Not with MSG_PEEK,
    // which would peek at the same first bytes again.
    // On a byte stream only: a message socket's read is one message anyway.
    int waitall = (op->flags & MSG_WAITALL) && !(op->flags & MSG_PEEK) && !FD_LOAD(e, messages) &&
                  (op->kind == OP_RECV || op->kind == OP_RECVFROM);
    size_t want = op->len < RW_COUNT_MAX ? op->len : RW_COUNT_MAX; // the kernel reads no more in one call
    size_t got = 0;
    char *base = op->buf;
    int hinted = !waitall && drain_hint_applies(op, e);
    // The last read came back short, so it most likely emptied the socket and
    // this one would only say EAGAIN: wait first and save that syscall. Safe
    // because readiness is level-triggered: bytes that came in meanwhile make
    // the wait return at once.
    int wait_errno = 0; // the wait first ran out (EAGAIN) or met a signal (EINTR)
    if (hinted && m != WAIT_FIRST && FD_LOAD(e, read_drained) && shim_wait_ready(op->fd, GREEN_READ, deadline) != 0) {
        // Still read once: a blocking read returns bytes already queued (or
        // EOF, or the socket's error) whatever the timeout or a signal. Any
        // other failure (EBADF: closed meanwhile, ECANCELED…) must not touch the fd.
        if (errno != EAGAIN && errno != EINTR) return -1;
        wait_errno = errno;
    }
    for (;;) {
        ssize_t r;
        if (m == WAIT_FIRST) {
            if (!ready_now(op->fd, POLLIN) && shim_wait_ready_after(op->fd, GREEN_READ, deadline, op->partial) != 0)
                return -1;
            r = perform(op, 0);
        } else {
            r = perform(op, extra_flags(m, 0));
        }
        if (r < 0 && m != WAIT_FIRST && would_block()) {
            if (wait_errno) { errno = wait_errno; return -1; } // nothing queued: the wait's answer
            if (shim_wait_ready_after(op->fd, GREEN_READ, deadline, got + (size_t)op->partial) != 0)
                return got ? (ssize_t)got : -1;
            continue;
        }
        if (r < 0 && dontwait_for(m) && errno == ENOTSOCK) {
            m = reclassify(op->fd, &e);
            if (m == PASS || (m == WAIT_FIRST && FD_LOAD(e, access) == O_WRONLY)) return perform_as_is(op);
            if (!dontwait_for(m)) continue;
        }
        if (hinted && (r >= 0 || !would_block())) FD_STORE(e, read_drained, r > 0 && (size_t)r < op->len);
        if (!waitall || r <= 0) return r < 0 && got ? (ssize_t)got : (r < 0 ? r : (ssize_t)(got + (size_t)r));
        // MSG_WAITALL: keep reading until the buffer is full or EOF.
        got += (size_t)r;
        if (got >= want) return (ssize_t)got;
        op->buf = base + got;
        op->len -= (size_t)r;
    }
}

// ---- output --------------------------------------------------------------------------

/// After a wait for room on a stream socket: did an error wake it (a reset,
/// a peer gone with unread bytes)? A blocked send takes that error first:
/// with bytes already sent it returns their count and the kernel keeps the
/// error for the next call; with none the error is its answer, without
/// SIGPIPE. A send tried again would instead take the error as its own
/// (the next call then says EPIPE) or, on a Unix socket, say EPIPE and
/// raise SIGPIPE. 1 to stop (errno set when nothing was sent); 0 to send
/// again. A poll only after a wait: not on the path of a send that fits.
static int stop_after_write_wait(int fd, size_t sent) {
    struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    if (REAL(poll)(&p, 1, 0) <= 0 || !(p.revents & POLLERR)) return 0;
    if (sent) return 1;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return 0; // an error-queue entry
    errno = err;
    return 1;
}

/// The rest of a writev's or sendmsg's buffers once part went out: a
/// private copy of the program's iovec array (and msghdr), advanced as
/// bytes go. Taken only when needed: a call that sends everything at once
/// (the common case) uses the program's own arrays.
typedef struct rest_of_vector {
    struct iovec *iov; ///< what is left, in `local` or `heap`; NULL until taken
    int cnt;
    struct iovec *heap; ///< malloc'd for more than 64 buffers, else NULL
    struct msghdr msg; ///< sendmsg: the program's, pointing at `iov`
    struct iovec local[64];
} rest_of_vector;

/// The program's iovec array (and count) of a writev or sendmsg. Read only
/// once the kernel took it, or through vector_take's check.
static void vector_of(const io_op *op, const struct iovec **iov, int *cnt) {
    if (op->kind == OP_WRITEV) {
        *iov = op->iov;
        *cnt = op->iovcnt;
    } else {
        *iov = op->msg->msg_iov;
        *cnt = (int)op->msg->msg_iovlen;
    }
}

/// Copy the program's memory: through shim_copy_in if `checked`,
/// else directly (a kernel call took it already).
static int read_program(void *out, const void *from, size_t n, int checked) {
    if (checked) return shim_copy_in(out, from, n) == 0;
    memcpy(out, from, n);
    return 1;
}

/// Take a private copy of op's buffers and point op at it. `checked`: no
/// kernel call took them yet, so they are read through shim_copy_in.
/// 1 on success; 0 when they cannot be read or are out of range (the
/// program's own call then answers: EFAULT, EINVAL, EMSGSIZE…); -1 without
/// memory (errno ENOMEM).
static int vector_take(io_op *op, rest_of_vector *v, int checked) {
    if (op->kind == OP_SENDMSG) {
        if (!read_program(&v->msg, op->msg, sizeof v->msg, checked)) return 0;
        if (v->msg.msg_iovlen > IOV_MAX) return 0;
    }
    const struct iovec *src = op->kind == OP_SENDMSG ? v->msg.msg_iov : op->iov;
    int cnt = op->kind == OP_SENDMSG ? (int)v->msg.msg_iovlen : op->iovcnt;
    if (cnt < 0 || cnt > IOV_MAX) return 0;
    struct iovec *copy = cnt <= 64 ? v->local : malloc((size_t)cnt * sizeof *copy);
    if (!copy) { errno = ENOMEM; return -1; }
    size_t bytes = (size_t)cnt * sizeof *copy, total = 0;
    // (Lengths the kernel refuses are its EINVAL: the PIPE_BUF cap would make them valid.)
    if (!read_program(copy, src, bytes, checked) || (checked && !iov_lengths_ok(copy, cnt, &total))) {
        if (copy != v->local) free(copy);
        return 0;
    }
    v->iov = copy;
    v->cnt = cnt;
    v->heap = copy != v->local ? copy : NULL;
    if (op->kind == OP_SENDMSG) {
        v->msg.msg_iov = copy;
        op->msg = &v->msg;
    } else {
        op->iov = copy;
    }
    return 1;
}

/// Drop `bytes` that went out from the private copy.
static void vector_advance(io_op *op, rest_of_vector *v, size_t bytes) {
    iov_advance(&v->iov, &v->cnt, bytes);
    if (op->kind == OP_SENDMSG) {
        v->msg.msg_iov = v->iov;
        v->msg.msg_iovlen = (size_t)v->cnt;
        // Passed fds and credentials went with the first bytes: the rest of
        // the message carries none (else each piece passes the fds again).
        v->msg.msg_control = NULL;
        v->msg.msg_controllen = 0;
    } else {
        op->iov = v->iov;
        op->iovcnt = v->cnt;
    }
}

/// Cap the private copy at `limit` bytes for one call (its last entry
/// shortened); returns the entry cut (or -1) and its length in *cut_len,
/// for vector_uncap.
static int vector_cap(io_op *op, rest_of_vector *v, size_t limit, size_t *cut_len, int *saved_cnt) {
    *saved_cnt = v->cnt;
    size_t bytes = 0;
    for (int i = 0; i < v->cnt; i++) {
        if (bytes + v->iov[i].iov_len > limit) {
            *cut_len = v->iov[i].iov_len;
            v->iov[i].iov_len = limit - bytes;
            if (op->kind == OP_SENDMSG) v->msg.msg_iovlen = (size_t)(i + 1);
            else op->iovcnt = i + 1;
            return i;
        }
        bytes += v->iov[i].iov_len;
    }
    return -1;
}

static void vector_uncap(io_op *op, rest_of_vector *v, int cut, size_t cut_len, int saved_cnt) {
    if (cut < 0) return;
    v->iov[cut].iov_len = cut_len;
    if (op->kind == OP_SENDMSG) v->msg.msg_iovlen = (size_t)saved_cnt;
    else op->iovcnt = saved_cnt;
}

/// A blocking write sends everything (or fails); non-blocking pieces are
/// sent until done, parking when the buffer is full. If the wait fails after
/// some bytes went out, the count so far is returned, as the kernel does.
static ssize_t output(io_op *op) {
    if (!op->turn_taken) green_fair_check(); // a writer that never fills the buffer still lets the others run
    fd_info *e = NULL;
    int m = (op->flags & MSG_DONTWAIT) ? PASS : mode_for(op->fd, &e);
    // A write on a pipe's read end fails at once (EBADF); it never gets writable.
    if (m == PASS || (m == WAIT_FIRST && FD_LOAD(e, access) == O_RDONLY)) return perform_as_is(op);
    int64_t deadline = shim_deadline_after(FD_LOAD(e, snd_timeout));

    int vector = op->kind == OP_WRITEV || op->kind == OP_SENDMSG;
    rest_of_vector v;
    v.iov = v.heap = NULL;
    size_t total = op->len; // a vector's: summed once its arrays were read
    size_t sent = 0;
    ssize_t result;
    for (;;) {
        size_t chunk_limit = SIZE_MAX;
        if (m == WAIT_FIRST) {
            // The cap below edits the buffers, and the kernel checks them
            // before it would block: read them (checked) before the wait.
            if (vector && !v.iov) {
                int t = vector_take(op, &v, 1);
                if (t <= 0) {
                    result = t == 0 ? perform_as_is(op) : -1; // EFAULT, EINVAL… at once
                    break;
                }
                total = iov_total(v.iov, v.cnt);
            }
            if (total == 0) { // nothing to write: 0 at once, full or not
                result = perform_as_is(op);
                break;
            }
            if (!ready_now(op->fd, POLLOUT) &&
                shim_wait_ready_after(op->fd, GREEN_WRITE, deadline, sent + (size_t)op->partial) != 0) {
                result = sent ? (ssize_t)sent : -1;
                break;
            }
            chunk_limit = PIPE_BUF; // a write of at most PIPE_BUF to a writable pipe does not block
        }
        size_t saved_len = op->len, cut_len = 0;
        int cut = -1, saved_cnt = 0;
        if (!vector && op->len > chunk_limit) op->len = chunk_limit;
        if (vector && chunk_limit != SIZE_MAX) cut = vector_cap(op, &v, chunk_limit, &cut_len, &saved_cnt);
        ssize_t r = perform(op, extra_flags(m, sent));
        op->len = saved_len;
        if (vector) vector_uncap(op, &v, cut, cut_len, saved_cnt);
        if (r < 0 && dontwait_for(m) && errno == ENOTSOCK) {
            m = reclassify(op->fd, &e);
            if (m == PASS || (m == WAIT_FIRST && FD_LOAD(e, access) == O_RDONLY)) { result = perform_as_is(op); break; }
            if (!dontwait_for(m)) continue;
        }
        if (r < 0) {
            if (m != WAIT_FIRST && would_block()) {
                if (shim_wait_ready_after(op->fd, GREEN_WRITE, deadline, sent + (size_t)op->partial) != 0 ||
                    (!FD_LOAD(e, messages) && stop_after_write_wait(op->fd, sent))) {
                    result = sent ? (ssize_t)sent : -1;
                    break;
                }
                continue;
            }
            result = sent ? (ssize_t)sent : -1;
            break;
        }
        if (vector && !v.iov) {
            // The call took the program's arrays: readable. All sent (the
            // common case) needs no copy.
            const struct iovec *iov;
            int cnt;
            vector_of(op, &iov, &cnt);
            total = iov_total(iov, cnt);
            if ((size_t)r < total && vector_take(op, &v, 0) <= 0) {
                result = r; // no memory for the rest (or the program changed its msghdr meanwhile): what went out
                break;
            }
        }
        sent += (size_t)r;
        if (sent >= total) {
            result = (ssize_t)sent;
            break;
        }
        if (vector) vector_advance(op, &v, (size_t)r);
        else {
            op->buf = (char *)op->buf + r;
            op->len -= (size_t)r;
        }
    }
    free(v.heap);
    return result;
}

// ---- a connection's reads and writes, short -------------------------------------------
//
// What a server's connection does per request: read/recv into one buffer
// and write/send from one, on a stream socket the shim made non-blocking
// (FD_MANAGED), with no SO_RCVTIMEO/SO_SNDTIMEO and no flag that changes
// how the call waits. Each is one short "try, park on EAGAIN, retry" loop
// (as Go's internal/poll), with input()'s and output()'s answers for that
// case; every other case is theirs. The fair turn comes first, as there:
// the fibers it lets run may change the fd's record (O_NONBLOCK, a socket
// timeout, a posix_spawn that shares the socket, a close), so the record
// is read after it — once per call, as input() and output() read it (a
// change made while the call waits is seen by the next call).

/// The record of a stream socket the shim made non-blocking for the
/// program, with no socket timeout for the direction asked; else NULL
/// (input() or output() then takes the call).
static inline fd_info *managed_stream(int fd, int reading) {
    fd_info *e = shim_fd_find(fd);
    if (!e || FD_KIND(e) != FD_MANAGED || FD_LOAD(e, user_nonblock) || FD_LOAD(e, messages)) return NULL;
    return (reading ? FD_LOAD(e, rcv_timeout) : FD_LOAD(e, snd_timeout)) == 0 ? e : NULL;
}

/// Is a stream socket plain TCP? Asked of the kernel once per file. Only
/// there does a short read say "the receive queue is empty" for certain (a
/// Unix socket's read stops short at bytes that carried fds or other
/// credentials, kernel TLS's at a change of record type), so that the wait
/// after it may be an edge-triggered one. (setsockopt of TCP_ULP later
/// says "not plain" too: fd_options.c.)
__attribute__((noinline, cold)) static uint8_t ask_tcp(fd_info *e, int fd) {
    int domain = 0, protocol = 0;
    socklen_t len = sizeof domain;
    int saved = errno;
    uint8_t tcp = 2;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6)) {
        len = sizeof protocol;
        char ulp[16] = "";
        socklen_t ulp_len = sizeof ulp;
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_TCP &&
            getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &ulp_len) == 0 && ulp[0] == 0)
            tcp = 1;
    }
    errno = saved;
    FD_STORE(e, tcp, tcp);
    return tcp;
}

/// The wait flags for a read's wait before it reads (the last one came back short).
static inline int short_read_wait_flags(fd_info *e, int fd) {
    uint8_t tcp = FD_LOAD(e, tcp);
    if (__builtin_expect(!tcp, 0)) tcp = ask_tcp(e, fd);
    return tcp == 1 ? GREEN_WAIT_SHORT_READ : 0;
}

/// Each call is recv or send with MSG_DONTWAIT (dontwait_for), whether the
/// program called read/write or recv/send: the same on a socket. A number
/// that no longer names a socket (closed behind the shim's back, reused by
/// a file) says ENOTSOCK; the general engine then looks at it afresh and
/// makes the program's own call.
__attribute__((always_inline)) static inline ssize_t stream_read(fd_info *e, int fd, void *buf, size_t n, int recv_call, int flags) {
    int wait_errno = 0; // as in input(): the wait first met a signal
    // Each wait here follows a drain (EAGAIN; a short read of TCP) and a
    // read follows each wait: the hub may keep the socket in its edge set.
    if (FD_LOAD(e, read_drained) &&
        shim_wait_ready_flags(fd, GREEN_READ, GREEN_NO_DEADLINE, short_read_wait_flags(e, fd)) != 0) {
        if (errno != EINTR) return -1;
        wait_errno = errno;
    }
    for (;;) {
        ssize_t r = REAL(recv)(fd, buf, n, flags | MSG_DONTWAIT);
        if (r < 0 && errno == ENOTSOCK) {
            io_op op = {.kind = recv_call ? OP_RECV : OP_READ, .fd = fd, .buf = buf, .len = n, .flags = flags,
                        .turn_taken = 1};
            return input(&op);
        }
        if (r >= 0 || !would_block()) {
            FD_STORE(e, read_drained, r > 0 && (size_t)r < n);
            return r;
        }
        if (wait_errno) { errno = wait_errno; return -1; }
        if (shim_wait_ready_flags(fd, GREEN_READ, GREEN_NO_DEADLINE, GREEN_WAIT_DRAINED) != 0) return -1;
    }
}

/// Every byte, as a blocking send; the count so far if the wait then fails.
__attribute__((always_inline)) static inline ssize_t stream_write(int fd, const char *buf, size_t n, int send_call, int flags) {
    size_t sent = 0;
    for (;;) {
        ssize_t r = REAL(send)(fd, buf + sent, n - sent, flags | MSG_DONTWAIT | (sent ? MSG_NOSIGNAL : 0));
        if (r < 0 && errno == ENOTSOCK && !sent) {
            io_op op = {.kind = send_call ? OP_SEND : OP_WRITE, .fd = fd, .buf = (void *)buf, .len = n, .flags = flags,
                        .turn_taken = 1};
            return output(&op);
        }
        if (r >= 0) {
            sent += (size_t)r;
            if (sent >= n) return (ssize_t)sent;
            continue;
        }
        // After EAGAIN, and a send follows the wait: the edge set may serve it.
        if (!would_block() ||
            shim_wait_ready_flags(fd, GREEN_WRITE, GREEN_NO_DEADLINE, GREEN_WAIT_DRAINED | (sent ? GREEN_PARK_NO_RESTART : 0)) != 0 ||
            stop_after_write_wait(fd, sent))
            return sent ? (ssize_t)sent : -1;
    }
}

/// recv flags that keep a read on the short path: none that changes what is
/// read or how it waits (MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL…).
#define STREAM_READ_FLAGS (MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)

// ---- the interposers: input ----------------------------------------------------------

GREEN_EXPORT ssize_t read(int fd, void *buf, size_t n) {
    if (!green_on_fiber()) return REAL(read)(fd, buf, n);
    green_fair_check(); // a reader that always finds bytes still lets the others run
    fd_info *e = n && n <= RW_COUNT_MAX ? managed_stream(fd, 1) : NULL;
    if (e) return stream_read(e, fd, buf, n, 0, 0);
    io_op op = {.kind = OP_READ, .fd = fd, .buf = buf, .len = n, .turn_taken = 1};
    return input(&op);
}

GREEN_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n) {
    if (!green_on_fiber()) return REAL(readv)(fd, iov, n);
    io_op op = {.kind = OP_READV, .fd = fd, .iov = (struct iovec *)iov, .iovcnt = n};
    return input(&op);
}

GREEN_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
    if (!green_on_fiber()) return REAL(recv)(fd, buf, n, flags);
    green_fair_check();
    fd_info *e = n && !(flags & ~STREAM_READ_FLAGS) ? managed_stream(fd, 1) : NULL;
    if (e) return stream_read(e, fd, buf, n, 1, flags);
    io_op op = {.kind = OP_RECV, .fd = fd, .buf = buf, .len = n, .flags = flags, .turn_taken = 1};
    return input(&op);
}

GREEN_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *addrlen) {
    if (!green_on_fiber()) return REAL(recvfrom)(fd, buf, n, flags, addr, addrlen);
    io_op op = {.kind = OP_RECVFROM, .fd = fd, .buf = buf, .len = n, .flags = flags, .addr = addr, .addrlen = addrlen};
    return input(&op);
}

void shim_note_received_fds(const struct msghdr *msg) {
    if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr)) return;
    int saved = errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            shim_fd_new_file(fd);
        }
    }
    errno = saved;
}

static ssize_t note_received_fds(const struct msghdr *msg, ssize_t r) {
    if (r >= 0) shim_note_received_fds(msg);
    return r;
}

/// The rest of a recvmsg with MSG_WAITALL on a byte stream, whose first
/// input() returned `got` bytes, fewer than its buffers hold: as a blocking
/// call, read on until every buffer is full (at most RW_COUNT_MAX, where the
/// kernel cuts them). Each read is one more input() (which parks) on what is
/// left, until the one `deadline` of the whole call; it stops, as the kernel
/// does, at EOF, at an error, a signal or the timeout (the bytes so far are
/// the answer), and after a read that carried control data (passed fds).
/// `control_room` is the program's msg_controllen before the first read
/// (which wrote what it received there). The kernel read msg and its
/// buffers in the first call: they are valid here.
static ssize_t recvmsg_rest(int fd, struct msghdr *msg, int flags, size_t got, size_t control_room, int64_t deadline) {
    size_t cnt = msg->msg_iovlen;
    size_t total = iov_total(msg->msg_iov, (int)cnt);
    if (total > RW_COUNT_MAX) total = RW_COUNT_MAX;
    if (got >= total || msg->msg_controllen > 0 || (msg->msg_flags & MSG_CTRUNC)) return (ssize_t)got;
    struct iovec local[64];
    struct iovec *rest = cnt <= 64 ? local : malloc(cnt * sizeof *rest);
    if (!rest) return (ssize_t)got;
    memcpy(rest, msg->msg_iov, cnt * sizeof *rest);
    struct iovec *left = rest;
    int left_cnt = (int)cnt;
    iov_advance(&left, &left_cnt, got);
    // The rest goes into the program's control buffer (nothing came in the
    // first read), and nowhere for the address (a stream's is the first's).
    struct msghdr more = {.msg_iov = left, .msg_iovlen = (size_t)left_cnt, .msg_control = msg->msg_control};
    int saved = errno;
    while (got < total) {
        more.msg_controllen = control_room;
        io_op op = {.kind = OP_RECVMSG, .fd = fd, .msg = &more, .flags = flags, .turn_taken = 1, .partial = 1,
                    .deadline = deadline};
        ssize_t r = input(&op);
        if (r <= 0) break; // EOF, or a failure after some bytes: those bytes are the answer
        got += (size_t)r;
        msg->msg_flags = more.msg_flags;
        msg->msg_controllen = more.msg_controllen;
        if (more.msg_controllen > 0 || (more.msg_flags & MSG_CTRUNC)) {
            shim_note_received_fds(msg);
            break;
        }
        iov_advance(&more.msg_iov, &left_cnt, (size_t)r);
        more.msg_iovlen = (size_t)left_cnt;
    }
    errno = saved;
    if (rest != local) free(rest);
    return (ssize_t)got;
}

GREEN_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    if (!green_on_fiber()) return note_received_fds(msg, REAL(recvmsg)(fd, msg, flags));
    // Each call says MSG_DONTWAIT, with which MSG_WAITALL takes what is
    // queued: on a byte stream a blocking recvmsg waits for the rest.
    fd_info *e = NULL;
    int waitall = (flags & MSG_WAITALL) && !(flags & (MSG_DONTWAIT | MSG_PEEK)) && dontwait_for(mode_for(fd, &e)) &&
                  !FD_LOAD(e, messages);
    struct msghdr before;
    if (waitall && shim_copy_in(&before, msg, sizeof before) != 0) waitall = 0;
    int64_t deadline = waitall ? shim_deadline_after(FD_LOAD(e, rcv_timeout)) : 0;
    io_op op = {.kind = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags, .deadline = deadline};
    ssize_t r = note_received_fds(msg, input(&op));
    if (r > 0 && waitall) return recvmsg_rest(fd, msg, flags, (size_t)r, before.msg_controllen, deadline);
    return r;
}

// ---- the interposers: output ---------------------------------------------------------

GREEN_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
    if (!green_on_fiber()) return REAL(write)(fd, buf, n);
    green_fair_check(); // a writer that never fills the buffer still lets the others run
    if (n <= RW_COUNT_MAX && managed_stream(fd, 0)) return stream_write(fd, buf, n, 0, 0);
    io_op op = {.kind = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = n, .turn_taken = 1};
    return output(&op);
}

GREEN_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n) {
    if (!green_on_fiber()) return REAL(writev)(fd, iov, n);
    io_op op = {.kind = OP_WRITEV, .fd = fd, .iov = (struct iovec *)iov, .iovcnt = n};
    return output(&op);
}

GREEN_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags) {
    if (!green_on_fiber()) return REAL(send)(fd, buf, n, flags);
    green_fair_check();
    if (!(flags & MSG_DONTWAIT) && managed_stream(fd, 0)) return stream_write(fd, buf, n, 1, flags);
    io_op op = {.kind = OP_SEND, .fd = fd, .buf = (void *)buf, .len = n, .flags = flags, .turn_taken = 1};
    return output(&op);
}

GREEN_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *dest, socklen_t destlen) {
    if (!green_on_fiber()) return REAL(sendto)(fd, buf, n, flags, dest, destlen);
    io_op op = {.kind = OP_SENDTO, .fd = fd, .buf = (void *)buf, .len = n, .flags = flags, .dest = dest, .destlen = destlen};
    return output(&op);
}

GREEN_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    if (!green_on_fiber()) return REAL(sendmsg)(fd, msg, flags);
    if (!msg) return REAL(sendmsg)(fd, msg, flags); // EFAULT, as libc says
    io_op op = {.kind = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
    return output(&op);
}

ssize_t shim_send_rest(int fd, const void *buf, size_t n, int flags) {
    io_op op = {.kind = OP_SEND, .fd = fd, .buf = (void *)buf, .len = n, .flags = flags, .turn_taken = 1, .partial = 1};
    return output(&op);
}

// Fortified variants (_FORTIFY_SOURCE builds of C libraries call these).
extern void __chk_fail(void) __attribute__((noreturn));

GREEN_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
    if (n > buflen) __chk_fail();
    return read(fd, buf, n);
}

GREEN_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) __chk_fail();
    return recv(fd, buf, n, flags);
}

GREEN_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr, socklen_t *addrlen) {
    if (n > buflen) __chk_fail();
    return recvfrom(fd, buf, n, flags, addr, addrlen);
}

