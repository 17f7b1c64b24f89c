// Declarations the Glibc Swift module does not carry, for the shim tests.
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/// libc's own syscall(), behind the shim's interposer (which routes the
/// numbers it knows to their interposers).
static inline long (*test_libc_syscall(void))(long, ...) {
    return (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
}

/// close(2) straight to the kernel, behind the shim's back (as fclose does).
static inline long test_close_behind_shim(int fd) { return test_libc_syscall()(SYS_close, fd); }

/// syscall(SYS_futex, …) for priority-inheritance locks, as libdispatch and
/// Swift's Synchronization.Mutex call it (through the interposer). 0 or an errno.
static inline int test_futex_pi(uint32_t *word, int op) {
    return syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, 0, NULL) == 0 ? 0 : errno;
}
static inline int test_futex_lock_pi(uint32_t *word) { return test_futex_pi(word, FUTEX_LOCK_PI); }
static inline int test_futex_trylock_pi(uint32_t *word) { return test_futex_pi(word, FUTEX_TRYLOCK_PI); }
static inline int test_futex_unlock_pi(uint32_t *word) { return test_futex_pi(word, FUTEX_UNLOCK_PI); }
/// Fill 16 KiB of stack below the caller with 0xff bytes: the calls made
/// next from the same frame find garbage in any local they leave unset.
__attribute__((noinline)) static void test_scribble_stack(void) {
    volatile unsigned char junk[16384];
    for (unsigned i = 0; i < sizeof junk; i++) junk[i] = 0xff;
}

/// The calling OS thread's kernel tid.
static inline uint32_t test_kernel_tid(void) { return (uint32_t)test_libc_syscall()(SYS_gettid); }

/// The green futex's test hooks (hidden in the shim, which the tests link
/// statically): a word's bucket, and holding a bucket the way code that a
/// signal handler interrupted holds it, so the handler's wakes are deferred.
int gfutex_test_bucket_index(const uint32_t *word);
void gfutex_test_hold_bucket(const uint32_t *word);
void gfutex_test_release_bucket(const uint32_t *word);

/// A pipe made behind the shim's back (libc's raw syscall): the shim never
/// sees its numbers taken. 0 or -1.
static inline long test_pipe_behind_shim(int fds[2]) { return test_libc_syscall()(SYS_pipe2, fds, 0); }

/// Pass fd over the Unix socket `sock` (SCM_RIGHTS). 0 or -1.
int test_send_fd(int sock, int fd);
/// The fd passed over `sock` with test_send_fd (through recvmsg), or -1.
int test_recv_fd(int sock);

/// recvmmsg of up to `n` (at most 16) one-byte datagrams into bytes[0..n),
/// no flags or timeout: the count, or -1. (mmsghdr is a _GNU_SOURCE type
/// that Swift's Glibc module lacks.)
int test_recvmmsg_bytes(int fd, unsigned char *bytes, unsigned n);
/// sendfile(out, in, offset, count) (not in Swift's Glibc module either).
long test_sendfile(int out, int in, long *offset, unsigned long count);
