// Small helpers shared by the benchmark's C programs (the echo load
// generator and the C epoll servers): sockets and a monotonic clock.
#ifndef BENCH_SUPPORT_H
#define BENCH_SUPPORT_H

#include <stdint.h>

/// A non-blocking TCP listener on 127.0.0.1:port with SO_REUSEADDR (and
/// SO_REUSEPORT when reuse_port is set, for one listener per thread).
/// Exits the process with a message on failure.
int bench_listen(int port, int reuse_port);

/// A non-blocking TCP connect to 127.0.0.1:port already started (EINPROGRESS
/// is fine: the socket becomes writable when connected). -1 with errno set on failure.
int bench_connect_start(int port);

/// Make fd non-blocking. -1 with errno set on failure.
int bench_set_nonblocking(int fd);

/// Turn Nagle's algorithm off on a TCP socket (replies leave at once).
void bench_set_nodelay(int fd);

/// Nanoseconds on CLOCK_MONOTONIC.
uint64_t bench_now_ns(void);

/// Print "PROGRAM: MESSAGE: strerror(errno)" to stderr and exit(1).
void bench_die_errno(const char *program, const char *message) __attribute__((noreturn));

#endif
