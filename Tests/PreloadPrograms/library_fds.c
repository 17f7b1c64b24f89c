/* library_fds.c — the library's own fds stay out of the program's way: a
 * program started with stdin and stdout closed gets 0 and 1 from its first
 * open()s (CPython's test_subprocess.test_pass_fds_redirected), no fd it did
 * not open is inherited across exec, and a daemon-style loop closing every
 * fd above 2 leaves the program working (threads, sleeps). */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define REPORT_FD 7

/* Every open fd that the program did not open itself is close-on-exec. */
static int foreign_fds_inheritable(void) {
    DIR *d = opendir("/proc/self/fd");
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) || fd == REPORT_FD) continue;
        char path[64], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        if (strncmp(link, "anon_inode:", 11) == 0 && !(fcntl(fd, F_GETFD) & FD_CLOEXEC)) bad++;
    }
    closedir(d);
    return bad;
}

static void *nothing(void *arg) { sleep_ms(5); return arg; }

/* fds from 512 up that fstat finds open, as CPython's fd_status.py looks
 * for them: none, since the program opened no such number (the library's
 * own live up there, and must look closed to the program). */
static int fstat_open_count(void) {
    int n = 0;
    struct stat st;
    for (int fd = 512; fd < 1024; fd++) n += fstat(fd, &st) == 0 || fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Runs with fds 0 and 1 closed; reports on REPORT_FD. */
static int child(void) {
    char line[256];
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    int inheritable = foreign_fds_inheritable();
    int seen = fstat_open_count();
    for (int fd = 3; fd < 1024; fd++)
        if (fd != REPORT_FD) close(fd);
    /* dup2 onto every high number, as a daemon might: the library's own
     * refuse (EBUSY) rather than be replaced; the others take it. */
    int src = open("/dev/null", O_RDONLY);
    for (int fd = 512; fd < 1024; fd++)
        if (fd != src && dup2(src, fd) == fd) close(fd);
    close(src);
    sleep_ms(5); /* a sleep and a thread still work after the close-all and the dup2s */
    pthread_t t;
    int ok = pthread_create(&t, NULL, nothing, &line) == 0;
    void *back = NULL;
    ok = ok && pthread_join(t, &back) == 0 && back == &line;
    int n = snprintf(line, sizeof line, "first opens %d %d, inheritable foreign fds %d, fstat sees %d, after close-all %s\n",
                     a, b, inheritable, seen, ok ? "ok" : "broken");
    return write(REPORT_FD, line, (size_t)n) == n ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "child") == 0) return child();
    program_start(30);
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        dup2(p[1], REPORT_FD);
        close(0);
        close(1);
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(3);
    }
    close(p[1]);
    char buf[256] = {0};
    ssize_t got = 0, r;
    while ((r = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += r;
    int st = 0;
    waitpid(kid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s", buf);
    CHECK(strcmp(buf, "first opens 0 1, inheritable foreign fds 0, fstat sees 0, after close-all ok\n") == 0);
    /* A fork child's hub makes its fds anew: out of the way too. */
    int lowest = open("/dev/null", O_RDONLY);
    close(lowest);
    kid = fork();
    if (kid == 0) {
        sleep_ms(5); /* the child's hub runs, and libev remakes its fds */
        int fd = open("/dev/null", O_RDONLY);
        _exit(fd == lowest && foreign_fds_inheritable() == 0 ? 0 : 1);
    }
    waitpid(kid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("fork child: its first open gets the lowest free number\n");
    /* The same close-all with stdio open, as a daemon does after fork. */
    for (int fd = 3; fd < 1024; fd++) close(fd);
    sleep_ms(5);
    pthread_t t;
    void *back = NULL;
    CHECK_RC(pthread_create(&t, NULL, nothing, buf), 0);
    CHECK_RC(pthread_join(t, &back), 0);
    CHECK(back == buf);
    printf("close-all with stdio open: sleeps and threads still work\n");
    return program_end("library_fds");
}
