/* pipe_ends.c — pipes the program made stay blocking in the kernel (a child
 * may inherit them), so the shim waits for readiness before each call:
 * - a call on the wrong end of a pipe fails at once with EBADF, as natively,
 *   instead of waiting for readiness that never comes (CPython's
 *   test_signal.test_wakeup_write_error writes to a pipe's read end);
 * - a large writev is written in pieces that a writable pipe takes without
 *   blocking, so the reading thread gets to run. */
#include "check.h"
#include <sys/uio.h>

static void *wrong_ends(void *unused) {
    (void)unused;
    int p[2];
    CHECK(pipe(p) == 0);
    char c = 'x';
    struct iovec v = {.iov_base = &c, .iov_len = 1};
    CHECK_ERRNO((int)write(p[0], &c, 1), EBADF);
    CHECK_ERRNO((int)writev(p[0], &v, 1), EBADF);
    CHECK_ERRNO((int)read(p[1], &c, 1), EBADF);
    CHECK_ERRNO((int)readv(p[1], &v, 1), EBADF);
    /* The right ends still work, and a dup keeps the end it copies. */
    int w = dup(p[1]);
    CHECK(write(w, "y", 1) == 1);
    CHECK(read(p[0], &c, 1) == 1 && c == 'y');
    CHECK_ERRNO((int)read(w, &c, 1), EBADF);
    close(w);
    close(p[0]);
    close(p[1]);
    return NULL;
}

#define BIG (256 * 1024)

static void *slow_reader(void *arg) {
    int fd = *(int *)arg;
    static unsigned char got[BIG];
    size_t n = 0;
    while (n < BIG) {
        ssize_t r = read(fd, got + n, 1000);
        if (r <= 0) break;
        n += (size_t)r;
        if (n % 10 == 0) sleep_ms(1);
    }
    int ok = n == BIG;
    for (size_t i = 0; ok && i < BIG; i++) ok = got[i] == (unsigned char)(i * 7);
    return ok ? arg : NULL;
}

static void big_writev(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    static unsigned char data[BIG];
    for (size_t i = 0; i < BIG; i++) data[i] = (unsigned char)(i * 7);
    struct iovec v[3] = {{data, 1000}, {data + 1000, BIG / 2 - 1000}, {data + BIG / 2, BIG / 2}};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, slow_reader, &p[0]), 0);
    CHECK(writev(p[1], v, 3) == BIG);
    void *ok = NULL;
    CHECK_RC(pthread_join(t, &ok), 0);
    CHECK(ok == &p[0]);
    close(p[0]);
    close(p[1]);
    printf("large writev: %d bytes through a pipe to a slow reader, in order\n", BIG);
}

int main(void) {
    program_start(20);
    big_writev();
    wrong_ends(NULL); /* on main */
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, wrong_ends, NULL), 0); /* on another thread */
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("wrong ends: EBADF at once for read, readv, write and writev\n");
    return program_end("pipe_ends");
}
