// fd_lifecycle.c — close and dup: fibers waiting on an fd are woken (EBADF)
// and their watchers removed before its number can be reused, every hub is
// told that the number will name another file (its epoll registration is
// made anew at the next wait: fd_generations.c), and the shim's record
// follows the fd (dup shares the open file description). Every way a
// program lets go of a number goes through here: close, dup2/dup3 onto it,
// close_range/closefrom, and the stdio calls whose close no interposer sees
// (fclose, pclose, freopen).
#include "shim.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/// Before the number lets go of its file: wake this hub's fibers waiting on
/// it (they get EBADF), forget what the shim knew of the file (before the
/// number can be another thread's new fd), and no hub trusts its
/// registration of the number until closed().
static void closing(int fd) {
    green_fd_closing(fd);
    shim_fd_forget(fd);
}

/// After the close returned, whatever it returned.
static void closed(int fd) { green_fd_closed(fd); }

void shim_close_own(int fd) {
    if (fd < 0) return;
    int e = errno;
    green_fd_closing(fd);
    GREEN_SYSCALL(SYS_close, fd);
    green_fd_closed(fd);
    errno = e;
}

GREEN_EXPORT int close(int fd) {
    // The core's own fds are not the program's: to it, that number is not
    // open (a daemon's close-everything loop must not take the hub's epoll fd).
    if (shim_fd_is_internal(fd)) {
        errno = EBADF;
        return -1;
    }
    closing(fd);
    int r = REAL(close)(fd);
    int saved = errno;
    closed(fd);
    errno = saved;
    return r;
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
    if (from == to) return REAL(dup2)(from, to);
    // The call may fail (a bad `from`, EINTR): then `to` keeps its file,
    // its waiters and its record, as natively.
    green_fd_replacing(to);
    int r = REAL(dup2)(from, to);
    int saved = errno;
    green_fd_replaced(to, r >= 0);
    if (r >= 0) shim_fd_copy(from, to);
    errno = saved;
    return r;
}

GREEN_EXPORT int dup3(int from, int to, int flags) {
    if (shim_fd_is_internal(from)) { errno = EBADF; return -1; }
    if (shim_fd_is_internal(to)) { errno = EBUSY; return -1; }
    if (from == to) return REAL(dup3)(from, to, flags); // EINVAL
    green_fd_replacing(to);
    int r = REAL(dup3)(from, to, flags);
    int saved = errno;
    green_fd_replaced(to, r >= 0);
    if (r >= 0) shim_fd_copy(from, to);
    errno = saved;
    return r;
}

// ---- close_range and closefrom ----------------------------------------------------
//
// A daemon's closefrom(3) must not close the hubs' own fds: the range is
// closed around them, in pieces.

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/// The kernel's close_range (no libc wrapper before glibc 2.34).
static int sys_close_range(unsigned first, unsigned last, unsigned flags) {
    return (int)GREEN_SYSCALL(SYS_close_range, first, last, flags);
}

/// close_range of [first, last] with no internal fd in it.
static int close_program_range(unsigned first, unsigned last, unsigned flags) {
    int closes = !(flags & CLOSE_RANGE_CLOEXEC);
    if (closes) {
        green_fd_closing_range(first, last);
        shim_fd_forget_range(first, last);
    }
    int r = sys_close_range(first, last, flags);
    int saved = errno;
    if (closes) green_fd_closed_range(first, last);
    errno = saved;
    return r;
}

/// 0 when the kernel will run close_range with these flags, else the errno
/// it refuses it with (ENOSYS before Linux 5.9; EPERM or ENOSYS under a
/// seccomp filter). Asked with the same flags (but CLOSE_RANGE_UNSHARE,
/// which would unshare the fd table by itself) and a range that closes
/// nothing, before each range close, so that a refusal is known before any
/// waiter is woken or record forgotten. Only a kernel without the call is
/// remembered: a seccomp filter may be the calling thread's alone, or look
/// at the arguments.
static int close_range_refusal(unsigned flags) {
    static _Atomic bool missing;
    if (atomic_load_explicit(&missing, memory_order_relaxed)) return ENOSYS;
    int e = errno, r = 0;
    if (sys_close_range(~0U, ~0U, flags) != 0) {
        r = errno;
        if (r == ENOSYS) {
            // Before 5.9 an unknown number; a filter's ENOSYS is taken for that too.
            atomic_store_explicit(&missing, true, memory_order_relaxed);
        }
    }
    errno = e;
    return r;
}

GREEN_EXPORT int close_range(unsigned first, unsigned last, int flags) {
    // What the kernel refuses, it refuses before closing anything: so here.
    if (first > last || ((unsigned)flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))
        return sys_close_range(first, last, (unsigned)flags); // EINVAL
    // Setting close-on-exec wakes and forgets nothing: the kernel's answer is the call's.
    int refusal = flags & CLOSE_RANGE_CLOEXEC ? 0 : close_range_refusal((unsigned)flags & ~CLOSE_RANGE_UNSHARE);
    if (refusal) {
        errno = refusal;
        return -1;
    }
    for (;;) {
        int internal = shim_fd_next_internal(first, last);
        if (internal < 0) return close_program_range(first, last, (unsigned)flags);
        if ((unsigned)internal > first) {
            int r = close_program_range(first, (unsigned)internal - 1, (unsigned)flags);
            if (r != 0) return r;
        }
        if ((unsigned)internal == last) return 0;
        first = (unsigned)internal + 1;
    }
}

/// glibc's closefrom ends the process when it cannot close every fd.
static _Noreturn void closefrom_failed(void) {
    static const char msg[] = "*** closefrom failed to close a file descriptor ***: terminated\n";
    GREEN_SYSCALL(SYS_write, 2, msg, sizeof msg - 1);
    abort();
}

static int open_fd_dir(void) {
    return (int)GREEN_SYSCALL(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/// closefrom without close_range (a kernel before 5.9): what /proc/self/fd
/// lists from `first` up is closed one by one, as glibc's fallback does,
/// reading the directory again until a pass closes nothing. With no free
/// number to open the directory, numbers from `first` up are closed until
/// one was open; with no /proc, the process ends (glibc's fortify failure).
static void close_listed_from(unsigned first) {
    int dir = open_fd_dir();
    if (dir < 0 && errno != ENOENT) {
        // As glibc: close numbers from `first` up to the first open one. No
        // fd lies above the hard limit unless it was lowered after opening.
        struct rlimit rl;
        unsigned end = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < INT_MAX ? (unsigned)rl.rlim_max : INT_MAX;
        for (unsigned fd = first; fd < end; fd++) {
            if (shim_fd_is_internal((int)fd)) continue;
            if (GREEN_SYSCALL(SYS_fcntl, (int)fd, F_GETFD) >= 0 || errno != EBADF) {
                close((int)fd);
                break;
            }
        }
        dir = open_fd_dir();
    }
    if (dir < 0) closefrom_failed();
    char buf[4096] __attribute__((aligned(8)));
    for (int closed_some = 1; closed_some;) {
        closed_some = 0;
        GREEN_SYSCALL(SYS_lseek, dir, 0, SEEK_SET);
        long n;
        while ((n = GREEN_SYSCALL(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
            for (long at = 0; at < n;) {
                struct dirent64 *e = (struct dirent64 *)(buf + at);
                at += e->d_reclen;
                char *end;
                long fd = strtol(e->d_name, &end, 10);
                if (*end || e->d_name[0] == '.' || fd < (long)first || fd == dir || shim_fd_is_internal((int)fd)) continue;
                close((int)fd);
                closed_some = 1;
            }
        }
    }
    shim_close_own(dir);
}

GREEN_EXPORT void closefrom(int lowfd) {
    unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
    if (close_range(first, ~0U, 0) != 0) close_listed_from(first);
}

// ---- stdio streams ------------------------------------------------------------------
//
// glibc closes a stream's fd with its own internal call: announce it here.

/// The stream's fd, or -1 (fmemopen, a cookie stream of the program's own,
/// one of the hubs' numbers). errno is left alone: fileno says EBADF.
static int stream_fd(FILE *f) {
    if (!f) return -1;
    int e = errno;
    int fd = fileno_unlocked(f);
    errno = e;
    return fd >= 0 && !shim_fd_is_internal(fd) ? fd : -1;
}

/// fclose or pclose of f, its fd announced around the call.
static int close_stream(int (*real)(FILE *), FILE *f) {
    int fd = stream_fd(f);
    if (fd >= 0) closing(fd);
    int r = real == REAL(pclose) ? SHIM_BLOCKING_CALL(real(f)) : real(f);
    int saved = errno;
    if (fd >= 0) closed(fd);
    errno = saved;
    return r;
}

GREEN_EXPORT int fclose(FILE *f) { return close_stream(REAL(fclose), f); }

/// glibc waits for the child with its own internal waitpid, which no
/// interposer sees: a marked call, so that under `green run` the hub goes
/// on without this thread while the child runs.
GREEN_EXPORT int pclose(FILE *f) { return close_stream(REAL(pclose), f); }

/// freopen or freopen64: f's old fd announced around the call.
static FILE *reopen_stream(FILE *(*real)(const char *, const char *, FILE *), const char *path, const char *mode,
                           FILE *f) {
    int fd = stream_fd(f);
    if (fd >= 0) closing(fd);
    FILE *r = real(path, mode, f);
    int saved = errno;
    if (fd >= 0) closed(fd);
    errno = saved;
    return r;
}

GREEN_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f) {
    return reopen_stream(REAL(freopen), path, mode, f);
}

GREEN_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *f) {
    return reopen_stream(REAL(freopen64), path, mode, f);
}
