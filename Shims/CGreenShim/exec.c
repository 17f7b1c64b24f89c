// exec.c — before another program can see the program's sockets, their
// kernel flags are what the program asked for. The shim makes sockets
// non-blocking in the kernel; a child that inherits one across exec (or
// through posix_spawn, popen, system) would otherwise get EAGAIN from a
// blocking read. O_NONBLOCK belongs to the open file description, which the
// two processes share, so the shim's side switches to per-call non-blocking
// I/O first (fd_share_sockets) and never depends on the flag again.
//
// glibc's exec variants call its internal execve, not this one, so each is
// interposed; fork is handled by an atfork hook (fork_prepare).
#include "shim.h"
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdlib.h>

/// In the process that is about to become another program.
static void before_exec(void) { shim_fd_share_sockets(1, 1); }

const shim_thread_hooks *_Atomic shim_threads;

int shim_child_mask_enter(sigset_t *saved) {
    sigset_t mine;
    const shim_thread_hooks *h = shim_threads;
    if (!h || !h->child_sigmask(&mine)) return 0;
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &mine, saved, 8);
    return 1;
}

void shim_child_mask_leave(const sigset_t *saved) { GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, saved, NULL, 8); }

/// Run `call` with the calling thread's own signal mask, which a new
/// program keeps (the hub's is back if it fails); with `hold`, no signal of
/// the library's (preemption's) is pending for this thread meanwhile: an
/// exec keeps the pending ones for the new program. (A spawned child starts
/// with none: posix_spawn does not hold, which would stop preemption in
/// every hub for as long as the spawn waits for its child.)
#define WITH_CALLERS_MASK(hold, call)                       \
    do {                                                    \
        const shim_thread_hooks *h_ = (hold) ? shim_threads : NULL; \
        if (h_) h_->exec_hold(1);                           \
        sigset_t saved_;                                    \
        int entered_ = shim_child_mask_enter(&saved_);      \
        int r_ = (call);                                    \
        int e_ = errno;                                     \
        if (entered_) shim_child_mask_leave(&saved_);       \
        if (h_) h_->exec_hold(0);                           \
        errno = e_;                                         \
        return r_;                                          \
    } while (0)
#define EXEC_WITH_CALLERS_MASK(call) WITH_CALLERS_MASK(1, call)
#define SPAWN_WITH_CALLERS_MASK(call) WITH_CALLERS_MASK(0, call)

/// In a parent whose child program may get any of its sockets (file
/// actions can dup2 even a close-on-exec one into the child).
static void before_spawn(void) { shim_fd_share_sockets(1, 0); }

void green_shim_fork_prepare(void) { shim_fd_share_sockets(0, 0); }

GREEN_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    before_exec();
    EXEC_WITH_CALLERS_MASK(REAL(execve)(path, argv, envp));
}

GREEN_EXPORT int execv(const char *path, char *const argv[]) {
    before_exec();
    EXEC_WITH_CALLERS_MASK(REAL(execv)(path, argv));
}

GREEN_EXPORT int execvp(const char *file, char *const argv[]) {
    before_exec();
    EXEC_WITH_CALLERS_MASK(REAL(execvp)(file, argv));
}

GREEN_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    before_exec();
    EXEC_WITH_CALLERS_MASK(REAL(execvpe)(file, argv, envp));
}

GREEN_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
    before_exec();
    EXEC_WITH_CALLERS_MASK(REAL(fexecve)(fd, argv, envp));
}

/// Made with the system call, as glibc's is (glibc 2.34 and later; shim.h
/// declares it for older headers).
GREEN_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
    before_exec();
    EXEC_WITH_CALLERS_MASK((int)GREEN_SYSCALL(SYS_execveat, dirfd, path, argv, envp, flags));
}

/// The execl family: collect the variadic arguments (up to the NULL, and for
/// execle the environment after it) into an array, as glibc does.
#define COLLECT_ARGS(first, ap, argv, count)                                  \
    size_t count = 1;                                                         \
    va_start(ap, first);                                                      \
    while (va_arg(ap, char *)) count++;                                       \
    va_end(ap);                                                               \
    char **argv = alloca((count + 1) * sizeof *argv);                         \
    va_start(ap, first);                                                      \
    argv[0] = (char *)first;                                                  \
    for (size_t i = 1; i <= count; i++) argv[i] = va_arg(ap, char *);

GREEN_EXPORT int execl(const char *path, const char *arg, ...) {
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, n)
    va_end(ap);
    return execv(path, argv);
}

GREEN_EXPORT int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, n)
    va_end(ap);
    return execvp(file, argv);
}

GREEN_EXPORT int execle(const char *path, const char *arg, ...) {
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, n)
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}

GREEN_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    before_spawn();
    SPAWN_WITH_CALLERS_MASK(REAL(posix_spawn)(pid, path, actions, attr, argv, envp));
}

GREEN_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    before_spawn();
    SPAWN_WITH_CALLERS_MASK(REAL(posix_spawnp)(pid, file, actions, attr, argv, envp));
}

GREEN_EXPORT FILE *popen(const char *command, const char *type) {
    before_spawn();
    sigset_t saved;
    int entered = shim_child_mask_enter(&saved);
    FILE *f = REAL(popen)(command, type);
    int e = errno;
    if (f) shim_fd_new_file(fileno(f)); // glibc's own pipe2: a new file the shim did not see made
    if (entered) shim_child_mask_leave(&saved);
    errno = e;
    return f;
}
