// fd_passing.c — passing an fd over a Unix socket (SCM_RIGHTS), for the
// shim tests: <sys/socket.h> stays out of the module's header, where it
// would hide Glibc's socket constants from Swift.
#include "test_support.h"
#include <string.h>
#include <sys/socket.h>

/// Pass fd over the Unix socket `sock` (SCM_RIGHTS). 0 or -1.
/// Room for one fd's control message, aligned for its header.
typedef union {
    struct cmsghdr header;
    char bytes[CMSG_SPACE(sizeof(int))];
} one_fd_control;

int test_send_fd(int sock, int fd) {
    char byte = 0;
    one_fd_control space;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = space.bytes, .msg_controllen = sizeof space.bytes};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

/// The fd passed over `sock` with test_send_fd (through recvmsg), or -1.
int test_recv_fd(int sock) {
    char byte;
    one_fd_control space;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = space.bytes, .msg_controllen = sizeof space.bytes};
    if (recvmsg(sock, &m, 0) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}
