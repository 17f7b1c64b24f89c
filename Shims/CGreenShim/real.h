// real.h — libc's own functions, found with dlsym(RTLD_NEXT, …) once.
#ifndef GREEN_SHIM_REAL_H
#define GREEN_SHIM_REAL_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "green_export.h"

GREEN_HIDDEN_BEGIN

#define GREEN_REAL_FUNCTIONS(X) \
    X(int, socket, (int, int, int)) \
    X(int, socketpair, (int, int, int, int *)) \
    X(int, pipe, (int *)) \
    X(int, pipe2, (int *, int)) \
    X(int, accept, (int, struct sockaddr *, socklen_t *)) \
    X(int, accept4, (int, struct sockaddr *, socklen_t *, int)) \
    X(int, connect, (int, const struct sockaddr *, socklen_t)) \
    X(int, shutdown, (int, int)) \
    X(ssize_t, read, (int, void *, size_t)) \
    X(ssize_t, readv, (int, const struct iovec *, int)) \
    X(ssize_t, recv, (int, void *, size_t, int)) \
    X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *)) \
    X(ssize_t, recvmsg, (int, struct msghdr *, int)) \
    X(ssize_t, write, (int, const void *, size_t)) \
    X(ssize_t, writev, (int, const struct iovec *, int)) \
    X(ssize_t, send, (int, const void *, size_t, int)) \
    X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t)) \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int)) \
    X(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *)) \
    X(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int)) \
    X(ssize_t, sendfile, (int, int, off_t *, size_t)) \
    X(ssize_t, splice, (int, loff_t *, int, loff_t *, size_t, unsigned int)) \
    X(ssize_t, pread, (int, void *, size_t, off_t)) \
    X(ssize_t, pread64, (int, void *, size_t, off64_t)) \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t)) \
    X(ssize_t, pwrite64, (int, const void *, size_t, off64_t)) \
    X(ssize_t, preadv, (int, const struct iovec *, int, off_t)) \
    X(ssize_t, preadv64, (int, const struct iovec *, int, off64_t)) \
    X(ssize_t, pwritev, (int, const struct iovec *, int, off_t)) \
    X(ssize_t, pwritev64, (int, const struct iovec *, int, off64_t)) \
    X(ssize_t, preadv2, (int, const struct iovec *, int, off_t, int)) \
    X(ssize_t, pwritev2, (int, const struct iovec *, int, off_t, int)) \
    X(int, fsync, (int)) \
    X(int, fdatasync, (int)) \
    X(int, syncfs, (int)) \
    X(void, sync, (void)) \
    X(int, sync_file_range, (int, off64_t, off64_t, unsigned int)) \
    X(int, flock, (int, int)) \
    X(int, lockf, (int, int, off_t)) \
    X(int, lockf64, (int, int, off64_t)) \
    X(int, close, (int)) \
    X(int, dup, (int)) \
    X(int, dup2, (int, int)) \
    X(int, dup3, (int, int, int)) \
    X(int, fclose, (FILE *)) \
    X(int, pclose, (FILE *)) \
    X(FILE *, freopen, (const char *, const char *, FILE *)) \
    X(FILE *, freopen64, (const char *, const char *, FILE *)) \
    X(int, fcntl, (int, int, ...)) \
    X(int, fcntl64, (int, int, ...)) \
    X(int, ioctl, (int, unsigned long, ...)) \
    X(int, setsockopt, (int, int, int, const void *, socklen_t)) \
    X(int, poll, (struct pollfd *, nfds_t, int)) \
    X(int, ppoll, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *)) \
    X(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *)) \
    X(int, pselect, (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *)) \
    X(int, epoll_wait, (int, struct epoll_event *, int, int)) \
    X(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *)) \
    X(int, epoll_pwait2, (int, struct epoll_event *, int, const struct timespec *, const sigset_t *)) \
    X(unsigned int, sleep, (unsigned int)) \
    X(int, usleep, (useconds_t)) \
    X(int, nanosleep, (const struct timespec *, struct timespec *)) \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *)) \
    X(int, getaddrinfo, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(int, getnameinfo, (const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int)) \
    X(int, gethostbyname_r, (const char *, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(int, gethostbyname2_r, (const char *, int, struct hostent *, char *, size_t, struct hostent **, int *)) \
    X(struct hostent *, gethostbyname, (const char *)) \
    X(pid_t, waitpid, (pid_t, int *, int)) \
    X(pid_t, wait4, (pid_t, int *, int, struct rusage *)) \
    X(pid_t, wait, (int *)) \
    X(int, system, (const char *)) \
    X(struct hostent *, gethostbyname2, (const char *, int)) \
    X(FILE *, fdopen, (int, const char *)) \
    X(int, epoll_create, (int)) \
    X(int, epoll_ctl, (int, int, int, struct epoll_event *)) \
    X(int, epoll_create1, (int)) \
    X(int, eventfd, (unsigned int, int)) \
    X(int, fstat, (int, struct stat *)) \
    X(int, fstat64, (int, struct stat64 *)) \
    X(int, sigwait, (const sigset_t *, int *)) \
    X(int, sigwaitinfo, (const sigset_t *, siginfo_t *)) \
    X(int, sigtimedwait, (const sigset_t *, siginfo_t *, const struct timespec *)) \
    X(int, execve, (const char *, char *const[], char *const[])) \
    X(int, execv, (const char *, char *const[])) \
    X(int, execvp, (const char *, char *const[])) \
    X(int, execvpe, (const char *, char *const[], char *const[])) \
    X(int, fexecve, (int, char *const[], char *const[])) \
    X(int, posix_spawn, (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, \
                         char *const[], char *const[])) \
    X(int, posix_spawnp, (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, \
                          char *const[], char *const[])) \
    X(FILE *, popen, (const char *, const char *)) \
    X(int, pthread_mutex_init, (pthread_mutex_t *, const pthread_mutexattr_t *)) \
    X(int, pthread_mutex_destroy, (pthread_mutex_t *)) \
    X(int, pthread_mutex_lock, (pthread_mutex_t *)) \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *)) \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *)) \
    X(int, pthread_mutex_consistent, (pthread_mutex_t *)) \
    X(int, pthread_setcanceltype, (int, int *)) \
    X(void, pthread_testcancel, (void))

#define GREEN_DECLARE_REAL(ret, name, args) extern ret(*green_real_##name) args;
GREEN_REAL_FUNCTIONS(GREEN_DECLARE_REAL)
#undef GREEN_DECLARE_REAL

/// Before fork: sockets become shared with the child (exec.c).
void green_shim_fork_prepare(void);

/// Resolve every real function (idempotent, thread-safe).
void green_shim_resolve(void);

/// The next definition of `name` after this library (libdispatch's,
/// Foundation's), found on first use and kept in `*slot`: such a library may
/// be loaded long after this one. Says so on stderr and aborts when there is
/// none (the caller was reached from that library, so there must be).
void *shim_next_function(void *_Atomic *slot, const char *name);

/// libc's `name`, resolved on first use.
#define REAL(name) (__builtin_expect(green_real_##name != 0, 1) ? green_real_##name : (green_shim_resolve(), green_real_##name))

GREEN_HIDDEN_END

#endif
