// fdtable.c — the per-fd records, in lazily allocated chunks so that lookups
// are two loads and no lock. Fields are atomics (see FD_LOAD in shim.h).
#include "shim.h"
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BITS SHIM_FD_CHUNK_BITS
#define CHUNK_SIZE (1 << CHUNK_BITS)
#define MAX_CHUNKS SHIM_FD_MAX_CHUNKS

_Atomic(fd_info *) shim_fd_chunks[SHIM_FD_MAX_CHUNKS];

/// Chunk c, allocated now (another thread may do the same: one wins). Out
/// of line: every call on an fd looks its record up, a chunk is made once.
__attribute__((noinline, cold)) static fd_info *make_chunk(unsigned c) {
    fd_info *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
    if (!fresh) return NULL;
    fd_info *expected = NULL;
    if (atomic_compare_exchange_strong(&shim_fd_chunks[c], &expected, fresh)) return fresh;
    free(fresh);
    return expected;
}

fd_info *shim_fd_get(int fd) {
    if (fd < 0) return NULL;
    unsigned c = (unsigned)fd >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) return NULL;
    fd_info *chunk = atomic_load_explicit(&shim_fd_chunks[c], memory_order_acquire);
    if (__builtin_expect(!chunk, 0) && !(chunk = make_chunk(c))) return NULL;
    return &chunk[fd & (CHUNK_SIZE - 1)];
}

/// Ask the kernel what fd is and record it: the first call on a number the
/// shim did not see made (out of line: its struct stat is a large frame).
__attribute__((noinline)) static fd_info *classify_now(int fd, fd_info *e) {
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL; // EBADF etc.: let libc answer
    int fl = REAL(fcntl)(fd, F_GETFL);
    FD_STORE(e, user_nonblock, fl >= 0 && (fl & O_NONBLOCK));
    FD_STORE(e, is_socket, S_ISSOCK(st.st_mode) != 0);
    if (S_ISSOCK(st.st_mode)) {
        int type = 0;
        socklen_t len = sizeof type;
        FD_STORE(e, messages, getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type != SOCK_STREAM);
        FD_SET_KIND(e, FD_SOCKET);
    }
    // Pipes, FIFOs, terminals, and the anonymous-inode fds (no file type:
    // eventfd, signalfd, timerfd, inotify) can all be waited on with poll.
    else if (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd)) || (st.st_mode & S_IFMT) == 0) {
        FD_STORE(e, access, fl >= 0 ? (uint8_t)(fl & O_ACCMODE) : O_RDWR);
        FD_SET_KIND(e, FD_STREAM);
    }
    else FD_SET_KIND(e, FD_PASSTHROUGH);
    return e;
}

fd_info *shim_fd_classify(int fd) {
    fd_info *e = shim_fd_get(fd);
    if (!e || FD_KIND(e) != FD_UNKNOWN) return e;
    return classify_now(fd, e);
}

/// Write a whole record, `kind` last so that readers see it complete.
static void shim_fd_store(fd_info *e, fd_info v) {
    FD_STORE(e, is_socket, v.is_socket);
    FD_STORE(e, user_nonblock, v.user_nonblock);
    FD_STORE(e, read_drained, 0);
    FD_STORE(e, messages, v.messages);
    FD_STORE(e, access, v.access);
    FD_STORE(e, tcp, v.tcp);
    FD_STORE(e, rcv_timeout, v.rcv_timeout);
    FD_STORE(e, snd_timeout, v.snd_timeout);
    FD_SET_KIND(e, v.kind);
}

void shim_fd_forget(int fd) {
    fd_info *e = shim_fd_find(fd); // an fd never recorded has nothing to forget
    if (e) shim_fd_store(e, (fd_info){0});
}

/// Calls fn(record) for each record of [first, last] whose chunk exists
/// (never allocates); stops at the first non-zero answer and returns it.
static long each_in_range(unsigned first, unsigned last, long (*fn)(fd_info *e, unsigned fd)) {
    for (unsigned c = first >> CHUNK_BITS; c < MAX_CHUNKS && c <= (last >> CHUNK_BITS); c++) {
        fd_info *chunk = atomic_load_explicit(&shim_fd_chunks[c], memory_order_acquire);
        if (!chunk) continue;
        unsigned lo = c == (first >> CHUNK_BITS) ? (first & (CHUNK_SIZE - 1)) : 0;
        unsigned hi = c == (last >> CHUNK_BITS) ? (last & (CHUNK_SIZE - 1)) : CHUNK_SIZE - 1;
        for (unsigned i = lo; i <= hi; i++) {
            long r = fn(&chunk[i], (c << CHUNK_BITS) + i);
            if (r) return r;
        }
    }
    return 0;
}

static long forget_one(fd_info *e, unsigned fd) {
    (void)fd;
    shim_fd_store(e, (fd_info){0});
    return 0;
}

void shim_fd_forget_range(unsigned first, unsigned last) {
    if (first <= last) each_in_range(first, last, forget_one);
}

static long internal_one(fd_info *e, unsigned fd) {
    return FD_KIND(e) == FD_INTERNAL ? (long)fd + 1 : 0;
}

int shim_fd_next_internal(unsigned first, unsigned last) {
    if (first > last || green_tls_making_internal_fds) return -1;
    return (int)each_in_range(first, last, internal_one) - 1;
}

// A number the shim sees a new file take (adopt: socket, socketpair, accept;
// copy: dup, F_DUPFD; new_file: pipe, popen, eventfd, epoll_create, sockets
// made off a fiber, fds received with SCM_RIGHTS) gets a new generation too
// (green_fd_opened): the close that freed it may have been one no
// interposer saw.

void shim_fd_new_file(int fd) {
    green_fd_opened(fd);
    shim_fd_forget(fd);
}

void shim_fd_adopt(int fd, int is_socket, int user_nonblock) {
    green_fd_opened(fd);
    fd_info *e = shim_fd_get(fd);
    if (e) shim_fd_store(e, (fd_info){.kind = FD_MANAGED, .is_socket = (uint8_t)is_socket,
                                  .user_nonblock = (uint8_t)user_nonblock});
}

void shim_fd_note_type(int fd, int type) {
    fd_info *e = shim_fd_get(fd);
    if (e) FD_STORE(e, messages, (type & 0xf) != SOCK_STREAM);
}

void shim_fd_copy(int from, int to) {
    green_fd_opened(to);
    fd_info *a = shim_fd_get(from), *b = shim_fd_get(to);
    if (!a || !b) return;
    shim_fd_store(b, (fd_info){.kind = FD_KIND(a), .is_socket = FD_LOAD(a, is_socket),
                          .user_nonblock = FD_LOAD(a, user_nonblock), .messages = FD_LOAD(a, messages),
                          .access = FD_LOAD(a, access), .tcp = FD_LOAD(a, tcp),
                          .rcv_timeout = FD_LOAD(a, rcv_timeout), .snd_timeout = FD_LOAD(a, snd_timeout)});
}

int64_t shim_deadline_after(int64_t timeout_ns) {
    return timeout_ns > 0 ? green_deadline_in(timeout_ns) : GREEN_NO_DEADLINE;
}

int shim_errno_for_wake(int reason) {
    switch (reason) {
    case GREEN_WAKE_DEADLINE: return EAGAIN;
    case GREEN_WAKE_FD_CLOSED: return EBADF;
    case GREEN_WAKE_CANCELLED: return ECANCELED;
    case GREEN_WAKE_TIMEOUT_SCOPE: return ETIMEDOUT;
    case GREEN_WAKE_SIGNAL: return EINTR;
    default: return EINTR;
    }
}

int shim_fail_for_wake(int reason) {
    errno = shim_errno_for_wake(reason);
    return -1;
}

// ---- sockets shared with another process ------------------------------------------
//
// A socket the shim made is non-blocking in the kernel, and O_NONBLOCK
// belongs to the open file description, which fork and exec share. So once
// another process may hold the socket, neither side may rely on that flag:
// both drive it per call (FD_SOCKET: MSG_DONTWAIT, wait before accept), and
// before another program can see it (exec, posix_spawn) the kernel's flag is
// put back to what the program asked for. (Reads and writes say MSG_DONTWAIT
// on FD_MANAGED sockets too, io.c's dontwait_for: one may be waiting when
// the flag is put back.)

void shim_fd_share_sockets(int restore_kernel_flags, int only_inheritable) {
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        fd_info *chunk = atomic_load_explicit(&shim_fd_chunks[c], memory_order_acquire);
        if (!chunk) continue;
        for (int i = 0; i < CHUNK_SIZE; i++) {
            fd_info *e = &chunk[i];
            int kind = FD_KIND(e);
            if (kind != FD_MANAGED && kind != FD_SOCKET) continue;
            int fd = (int)(c << CHUNK_BITS) + i;
            if (kind == FD_MANAGED) FD_SET_KIND(e, FD_SOCKET);
            if (!restore_kernel_flags || FD_LOAD(e, user_nonblock)) continue;
            if (only_inheritable) {
                int fdflags = REAL(fcntl)(fd, F_GETFD);
                if (fdflags < 0 || (fdflags & FD_CLOEXEC)) continue;
            }
            int fl = REAL(fcntl)(fd, F_GETFL);
            if (fl >= 0 && (fl & O_NONBLOCK)) REAL(fcntl)(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
    }
}
