// fd_options.c — the calls that read or change an fd's flags and options
// keep the program's view intact: its own O_NONBLOCK (fcntl, FIONBIO) is
// recorded and reported back while the shim keeps sockets non-blocking
// underneath, and socket timeouts are recorded for the parked calls.
#include "shim.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, uintptr_t arg) {
    fd_info *e;
    if (shim_fd_is_internal(fd)) { errno = EBADF; return -1; } // not the program's fd
    switch (cmd) {
    case F_GETFL: {
        int r = real(fd, F_GETFL);
        e = shim_fd_find(fd);
        // A socket the shim made shows the program its own O_NONBLOCK, also
        // once shared with another process (the kernel's may still be set).
        if (r >= 0 && e && (FD_KIND(e) == FD_MANAGED || FD_KIND(e) == FD_SOCKET))
            r = (r & ~O_NONBLOCK) | (FD_LOAD(e, user_nonblock) ? O_NONBLOCK : 0);
        return r;
    }
    case F_SETFL: {
        int flags = (int)arg;
        e = shim_fd_get(fd);
        int r;
        if (e && FD_KIND(e) == FD_MANAGED) r = real(fd, F_SETFL, flags | O_NONBLOCK);
        else r = real(fd, F_SETFL, flags);
        if (r == 0 && e && FD_KIND(e) != FD_UNKNOWN) FD_STORE(e, user_nonblock, (flags & O_NONBLOCK) != 0);
        return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = real(fd, cmd, (int)arg);
        if (r >= 0) shim_fd_copy(fd, r);
        return r;
    }
    case F_SETLKW:
    case F_OFD_SETLKW: // waits for another process's lock
        return SHIM_BLOCKING_CALL(real(fd, cmd, arg));
    default:
        return real(fd, cmd, arg);
    }
}

GREEN_EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    uintptr_t arg = va_arg(ap, uintptr_t);
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

GREEN_EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    uintptr_t arg = va_arg(ap, uintptr_t);
    va_end(ap);
    return fcntl_common(REAL(fcntl64) ? REAL(fcntl64) : REAL(fcntl), fd, cmd, arg);
}

GREEN_EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (request == FIONBIO && arg) {
        fd_info *e = shim_fd_get(fd);
        if (e && FD_KIND(e) == FD_MANAGED) {
            if (REAL(fcntl)(fd, F_GETFL) < 0) return -1; // EBADF as libc would say
            int on; // read as the kernel reads it: EFAULT, not a crash
            if (shim_copy_in(&on, arg, sizeof on) != 0) return -1;
            FD_STORE(e, user_nonblock, on != 0);
            return 0; // the fd stays non-blocking underneath
        }
        int r = REAL(ioctl)(fd, request, arg);
        if (r == 0 && e && FD_KIND(e) != FD_UNKNOWN) FD_STORE(e, user_nonblock, *(int *)arg != 0);
        return r;
    }
    return REAL(ioctl)(fd, request, arg);
}

#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif
#ifndef SO_RCVTIMEO_OLD
#define SO_RCVTIMEO_OLD 20
#define SO_SNDTIMEO_OLD 21
#endif

GREEN_EXPORT int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    int r = REAL(setsockopt)(fd, level, name, value, len);
    if (r == 0 && level == IPPROTO_TCP && name == TCP_ULP) {
        // A protocol over TCP (kernel TLS) can end a read short with a
        // record still queued: its short reads no longer say "empty" (io.c).
        fd_info *e = shim_fd_find(fd);
        if (e) FD_STORE(e, tcp, 2);
    }
    if (r != 0 || level != SOL_SOCKET || !value) return r;
    int rcv = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
    int snd = name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW;
    if (!rcv && !snd) return r;
    int64_t ns;
    if (name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW) {
        const int64_t *tv = value; // struct __kernel_sock_timeval { s64 sec, usec }
        ns = green_add_sat(green_mul_sat(tv[0], GREEN_NS_PER_SEC), green_mul_sat(tv[1], 1000));
    } else {
        ns = green_timeval_ns(value);
    }
    fd_info *e = shim_fd_classify(fd);
    if (e) {
        if (rcv) FD_STORE(e, rcv_timeout, ns);
        else FD_STORE(e, snd_timeout, ns);
    }
    return r;
}
