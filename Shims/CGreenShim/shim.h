// shim.h — what the interposers share: the per-fd table and parking helpers.
#ifndef GREEN_SHIM_INTERNAL_H
#define GREEN_SHIM_INTERNAL_H

#include "real.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include "green_hub_abi.h"
#include "green_time.h"

GREEN_HIDDEN_BEGIN

// ---- the fd table --------------------------------------------------------------
//
// What the shim knows about each fd number. "Managed" fds were created by
// the shim on a fiber (socket, accept, pipe, …): the shim set O_NONBLOCK on
// them itself and shows the program the flags it asked for. Other fds are
// classified on first use on a fiber: sockets are driven with MSG_DONTWAIT,
// pipes/FIFOs/terminals by waiting for readiness first; everything else
// (regular files, …) passes straight through.

enum fd_kind {
    FD_UNKNOWN = 0,
    FD_PASSTHROUGH,   ///< cannot be waited on (regular file, directory, …)
    FD_SOCKET,        ///< a socket the shim did not create
    FD_STREAM,        ///< a pipe, FIFO or terminal the shim did not create
    FD_MANAGED,       ///< created by the shim: O_NONBLOCK set internally
    FD_INTERNAL,      ///< the core's own (libev's epoll fd, eventfd): not the program's to close
};

typedef struct fd_info {
    uint8_t kind;          ///< enum fd_kind
    uint8_t is_socket;
    uint8_t user_nonblock; ///< the program asked for O_NONBLOCK: never park
    uint8_t read_drained;  ///< the last read came back short: the next one waits first
    uint8_t messages;      ///< a message socket (datagram, seqpacket, raw): a short read says nothing about what is queued
    uint8_t access;        ///< O_RDONLY/O_WRONLY/O_RDWR of a pipe or terminal: a call on the wrong end fails at once
    uint8_t tcp;           ///< 0 not asked yet, 1 a TCP socket (a short read empties it: io.c), 2 not
    int64_t rcv_timeout;   ///< SO_RCVTIMEO in ns, 0 = none
    int64_t snd_timeout;   ///< SO_SNDTIMEO in ns, 0 = none
} fd_info;

// Records are shared by every thread: an fd number closed on one thread is
// reused on another, ordered by the kernel but not by the C memory model. So
// fields are read and written as relaxed atomics (plain loads and stores on
// x86_64 and aarch64), and `kind` with acquire/release so that a record seen
// as classified has its other fields in place.
#define FD_LOAD(e, field) __atomic_load_n(&(e)->field, __ATOMIC_RELAXED)
#define FD_STORE(e, field, v) __atomic_store_n(&(e)->field, (v), __ATOMIC_RELAXED)
#define FD_KIND(e) __atomic_load_n(&(e)->kind, __ATOMIC_ACQUIRE)
#define FD_SET_KIND(e, v) __atomic_store_n(&(e)->kind, (uint8_t)(v), __ATOMIC_RELEASE)

/// The record for fd (created zeroed), or NULL if fd is negative or huge.
fd_info *shim_fd_get(int fd);
/// The table: chunks of SHIM_FD_CHUNK records, made on first use (fdtable.c).
#define SHIM_FD_CHUNK_BITS 12
#define SHIM_FD_MAX_CHUNKS 1024 // 4 M fds
extern _Atomic(fd_info *) shim_fd_chunks[SHIM_FD_MAX_CHUNKS];
/// The record for fd if its chunk exists, else NULL. Never allocates: for
/// close() (fork children's close loops, signal handlers). Inline: every
/// read and write on a fiber looks its fd up.
static inline fd_info *shim_fd_find(int fd) {
    unsigned c = (unsigned)fd >> SHIM_FD_CHUNK_BITS; // a negative fd is past the last chunk
    if (c >= SHIM_FD_MAX_CHUNKS) return NULL;
    fd_info *chunk = atomic_load_explicit(&shim_fd_chunks[c], memory_order_acquire);
    return chunk ? &chunk[fd & ((1 << SHIM_FD_CHUNK_BITS) - 1)] : NULL;
}
/// fd_get, classifying an unknown fd first (fstat / F_GETFL).
fd_info *shim_fd_classify(int fd);
/// Forget fd (it was closed).
void shim_fd_forget(int fd);
/// fd names a new file the shim does not manage (a pipe, an eventfd, a
/// socket made off a fiber): forget what the shim knew of the number and
/// give it a new generation (green_fd_opened), as shim_fd_adopt does.
void shim_fd_new_file(int fd);
/// Close an fd the shim made for itself (a signalfd, a pidfd) with a raw
/// system call — no cancellation point, safe in cleanup handlers; errno is
/// kept — telling the hubs that its number will name another file.
void shim_close_own(int fd);
/// Forget every fd of [first, last] (close_range).
void shim_fd_forget_range(unsigned first, unsigned last);
/// The lowest internal fd (shim_fd_is_internal) in [first, last], or -1.
int shim_fd_next_internal(unsigned first, unsigned last);
/// The core's own fd (libev's), which the program never opened: to the
/// program that number is not open (EBADF), as for any number it never got.
static inline int shim_fd_is_internal(int fd) {
    fd_info *e = shim_fd_find(fd);
    return e && FD_KIND(e) == FD_INTERNAL && !green_tls_making_internal_fds;
}

/// Record an fd the shim just created on a fiber and made non-blocking.
void shim_fd_adopt(int fd, int is_socket, int user_nonblock);
/// Note whether a socket the shim created carries messages rather than a byte stream (`type` as given to socket()).
void shim_fd_note_type(int fd, int type);
/// Copy what is known about `from` to `to` (dup shares the open file description).
void shim_fd_copy(int from, int to);

/// Sockets are about to be shared with another process (fork, exec,
/// posix_spawn): every socket the shim made non-blocking is driven per call
/// from now on (FD_SOCKET). With `restore_kernel_flags`, the kernel's
/// O_NONBLOCK is also put back to what the program asked for, on every such
/// socket or (`only_inheritable`) on those not close-on-exec.
void shim_fd_share_sockets(int restore_kernel_flags, int only_inheritable);

/// Move a short-lived fd of the shim's own (a signalfd, a pidfd) out of the
/// program's low numbers, close-on-exec, so that the program's next open()
/// gets the number it would natively. Returns the fd to use.
int shim_fd_out_of_the_way(int fd);

// ---- the program's memory -------------------------------------------------------
//
// A copy that fails with EFAULT where the kernel would, instead of crashing
// the shim (user_memory.c): one system call each, for what an interposer
// must read before the kernel has looked at it. Return 0, or -1 and EFAULT.

/// The kernel's signal set: 64 signals, 8 bytes (glibc's sigset_t is 128).
#define SHIM_KERNEL_SIGSET 8
int shim_copy_in(void *dst, const void *src, size_t n);
/// Several pieces in one call (`here[i]` gets `there[i]`).
int shim_copy_in_v(const struct iovec *here, const struct iovec *there, int n);
int shim_copy_out(void *dst, const void *src, size_t n);
/// The kernel's part of a signal set, the rest of `dst` empty.
int shim_copy_sigset(sigset_t *dst, const sigset_t *src);

// ---- parking -------------------------------------------------------------------

/// The hub ABI, valid whenever green_on_fiber() is true.
static inline const green_hub_abi *hub(void) { return green_hub_abi_get(); }

/// Deadline `timeout_ns` from now, or none for 0.
int64_t shim_deadline_after(int64_t timeout_ns);

/// errno for a wake reason other than "ready"; -1 (out of line: the rare case).
int shim_fail_for_wake(int reason);

/// Park until fd is ready for `events`, with park flags (GREEN_PARK_*).
static inline int shim_wait_ready_flags(int fd, int events, int64_t deadline, int park_flags) {
    int r = green_hub_wait_fd(fd, events, deadline, park_flags, NULL);
    return r == GREEN_WAKE_NORMAL ? 0 : shim_fail_for_wake(r);
}

/// Park until fd is ready for `events`. 0 when ready; otherwise -1 with errno
/// set the way the blocking call would report it: EAGAIN when the socket
/// timeout (deadline) passed, EBADF when another fiber closed the fd,
/// ECANCELED when the fiber was cancelled, ETIMEDOUT for a timeout scope.
/// Inline: every read or write that parks comes this way.
static inline int shim_wait_ready(int fd, int events, int64_t deadline) {
    // A deadline here is a socket's SO_RCVTIMEO/SO_SNDTIMEO: such a wait is
    // never restarted after a handler, SA_RESTART or not (signal(7)).
    return shim_wait_ready_flags(fd, events, deadline, deadline == GREEN_NO_DEADLINE ? 0 : GREEN_PARK_NO_RESTART);
}

/// shim_wait_ready for a call that has moved `done` bytes or messages so
/// far (a write that sent part, a MSG_WAITALL read, recvmmsg, sendfile…):
/// once it has, a signal handler ends the wait even with SA_RESTART (EINTR),
/// since the kernel's call then returns the count so far instead of going on.
static inline int shim_wait_ready_after(int fd, int events, int64_t deadline, size_t done) {
    return done ? shim_wait_ready_flags(fd, events, deadline, GREEN_PARK_NO_RESTART)
                : shim_wait_ready(fd, events, deadline);
}

/// errno for a wake reason other than "ready".
int shim_errno_for_wake(int reason);

/// `expr`, a call that may block in the kernel with nothing a fiber can wait
/// for (a regular file's read or write, fsync, a blocking file lock), marked
/// so that `green run` may hand the hub to another OS thread while it takes
/// long (the core's green_call_enter). Elsewhere a few loads. errno as the
/// call left it.
#define SHIM_BLOCKING_CALL(expr)                                        \
    __extension__({                                                     \
        green_call shim_call_;                                          \
        green_sched *shim_hub_ = green_call_enter(&shim_call_);        \
        __typeof__(expr) shim_result_ = (expr);                         \
        if (shim_hub_) green_call_leave(&shim_call_);                   \
        shim_result_;                                                   \
    })

/// What `green run`'s preload library adds to the shim (NULL in a linked
/// program): the signal state each fiber thread has of its own.
typedef struct shim_thread_hooks {
    /// The calling fiber thread's own signal mask, which a child it starts
    /// must get (returns 1), or 0 off a fiber thread.
    int (*child_sigmask)(sigset_t *out);
    /// A signal sent to the calling fiber thread alone that is in `set`
    /// (taken: its number, with a siginfo like the kernel's), or 0.
    int (*take_thread_signal)(const sigset_t *set, siginfo_t *info);
    /// The calling fiber thread waits in sigwait for `set` from now (NULL:
    /// no longer): a signal of the set sent to it alone then wakes it, and
    /// only then (a blocked signal leaves its other waits alone). Non-zero:
    /// one is pending for it already, so no wait.
    int (*sigwait_waiting)(const sigset_t *set);
    /// The calling thread is about to exec (1), or its exec failed (0): no
    /// signal of the library's may be pending for its OS thread across the
    /// exec, where the new program would take it with the default action.
    void (*exec_hold)(int begin);
} shim_thread_hooks;
extern const shim_thread_hooks *_Atomic shim_threads;

/// Load the caller's own mask into the OS thread for a child to inherit
/// (`*saved` gets the mask to put back); 0 when there is nothing to do.
int shim_child_mask_enter(sigset_t *saved);
void shim_child_mask_leave(const sigset_t *saved);

GREEN_HIDDEN_END

/// glibc declares it from 2.34 on; the shim exports its own (exec.c).
int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);

#endif
