// transfers.c — recvmmsg and sendfile for the Swift tests, which cannot
// name them (see test_support.h). They reach the shim's interposers, as a
// C library's calls in a linked Swift app do.
#define _GNU_SOURCE
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include "test_support.h"

int test_recvmmsg_bytes(int fd, unsigned char *bytes, unsigned n) {
    struct iovec iov[16];
    struct mmsghdr vec[16];
    if (n > 16) n = 16;
    memset(vec, 0, sizeof vec);
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){&bytes[i], 1};
        vec[i].msg_hdr.msg_iov = &iov[i];
        vec[i].msg_hdr.msg_iovlen = 1;
    }
    return recvmmsg(fd, vec, n, 0, NULL);
}

long test_sendfile(int out, int in, long *offset, unsigned long count) {
    off_t o = *offset;
    long r = sendfile(out, in, &o, count);
    *offset = o;
    return r;
}
