// stdio.c — stdio streams over sockets and pipes park fibers too. glibc's
// stdio reads and writes through its own internal calls, which no interposer
// sees, so fdopen() of a socket or pipe on a fiber returns a stream whose I/O
// goes through this shim's read/write instead (fopencookie), with fileno()
// still naming the fd. Other fds (regular files, terminals…) get libc's
// fdopen unchanged.
#include "shim.h"
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

static ssize_t cookie_read(void *cookie, char *buf, size_t size) {
    return read((int)(intptr_t)cookie, buf, size); // the interposed read: parks
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size) {
    ssize_t n = write((int)(intptr_t)cookie, buf, size); // sends everything, parking while full
    return n < 0 ? -1 : n;
}

static int cookie_seek(void *cookie, off64_t *offset, int whence) {
    off64_t r = lseek64((int)(intptr_t)cookie, *offset, whence); // ESPIPE, as for any socket or pipe
    if (r < 0) return -1;
    *offset = r;
    return 0;
}

static int cookie_close(void *cookie) { return close((int)(intptr_t)cookie); } // the interposed close

/// Does `mode` ask for access the fd's flags do not give? (fdopen's EINVAL)
static int mode_conflicts(const char *mode, int flags) {
    int acc = flags & O_ACCMODE;
    int update = strchr(mode, '+') != NULL;
    if (mode[0] == 'r') return update ? acc != O_RDWR : acc == O_WRONLY;
    if (mode[0] == 'w' || mode[0] == 'a') return update ? acc != O_RDWR : acc == O_RDONLY;
    return 1;
}

GREEN_EXPORT FILE *fdopen(int fd, const char *mode) {
    if (!green_on_fiber() || !mode) return REAL(fdopen)(fd, mode);
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))) return REAL(fdopen)(fd, mode);
    int flags = REAL(fcntl)(fd, F_GETFL);
    if (flags < 0) return NULL; // errno EBADF, as fdopen
    if (mode_conflicts(mode, flags)) {
        errno = EINVAL;
        return NULL;
    }
    if (mode[0] == 'a' && !(flags & O_APPEND)) REAL(fcntl)(fd, F_SETFL, flags | O_APPEND);
    if (strchr(mode, 'e')) REAL(fcntl)(fd, F_SETFD, FD_CLOEXEC);
    cookie_io_functions_t io = {cookie_read, cookie_write, cookie_seek, cookie_close};
    FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
    if (f) f->_fileno = fd; // fileno() names the fd, as for fdopen's streams
    return f;
}
