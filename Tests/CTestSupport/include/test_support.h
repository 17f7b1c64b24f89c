// Declarations the Glibc Swift module does not carry, for the shim tests.
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/// close(2) straight to the kernel, behind the shim's back (as fclose does).
static inline long test_close_behind_shim(int fd) { return syscall(SYS_close, fd); }
