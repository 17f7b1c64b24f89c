/* pipe_ends.c — a call on the wrong end of a pipe fails at once with EBADF,
 * as natively, instead of waiting for readiness that never comes (CPython's
 * test_signal.test_wakeup_write_error writes to a pipe's read end). */
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

int main(void) {
    program_start(20);
    wrong_ends(NULL); /* on main */
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, wrong_ends, NULL), 0); /* on another thread */
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("wrong ends: EBADF at once for read, readv, write and writev\n");
    return program_end("pipe_ends");
}
