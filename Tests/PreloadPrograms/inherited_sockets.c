/* inherited_sockets.c — a socket handed to another program (fork+exec, or
 * posix_spawn with a dup2 file action) is blocking there, as the program
 * made it: a blocking read in the child waits for bytes instead of failing
 * with EAGAIN. And the parent keeps using a socket that now shares a
 * blocking file description, without blocking its other threads. */
#include "check.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

/* The child program: fd is blocking, a read waits for "ping", answer "pong". */
static int child(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK)) return 10;
    char buf[8] = {0};
    ssize_t n = read(fd, buf, 4);
    if (n != 4 || memcmp(buf, "ping", 4) != 0) return 11; /* EAGAIN here was the bug */
    return write(fd, "pong", 4) == 4 ? 0 : 12;
}

static void *late_ping(void *arg) {
    sleep_ms(50);
    CHECK(write(*(int *)arg, "ping", 4) == 4);
    return NULL;
}

static int ticks;
static void *ticker(void *unused) {
    (void)unused;
    for (int i = 0; i < 5; i++) { sleep_ms(10); __atomic_add_fetch(&ticks, 1, __ATOMIC_SEQ_CST); }
    return NULL;
}

/* Pings once the ticker is done: a read that blocked the hub would never
 * get the ping (the ticker could not tick), where a time bound flakes. */
static void *ping_after_ticks(void *arg) {
    while (__atomic_load_n(&ticks, __ATOMIC_SEQ_CST) < 5) sleep_ms(1);
    CHECK(write(*(int *)arg, "ping", 4) == 4);
    return NULL;
}

/* Runs the child through `how`, pings it late, and checks the answer. */
static void round_trip(const char *self, const char *how, int keep_preload) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
    char *argv[] = {(char *)self, "child", fdarg, NULL};
    char *const *env = environ;
    char *plain[] = {NULL};
    if (!keep_preload) env = plain;
    pid_t kid;
    if (strcmp(how, "fork+exec") == 0) {
        kid = fork();
        if (kid == 0) {
            execve(self, argv, env);
            _exit(13);
        }
    } else {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
        char *spawned[] = {(char *)self, "child", "3", NULL};
        CHECK_RC(posix_spawn(&kid, self, &fa, NULL, spawned, env), 0);
        posix_spawn_file_actions_destroy(&fa);
    }
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, late_ping, &sv[0]), 0);
    char buf[8] = {0};
    CHECK(read(sv[0], buf, 4) == 4 && memcmp(buf, "pong", 4) == 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    int st = 0;
    waitpid(kid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("child exit %d\n", WEXITSTATUS(st));

    /* The parent reads its copy of the child's end (now blocking in the
     * kernel) while a ticker thread keeps running; the bytes come late. */
    __atomic_store_n(&ticks, 0, __ATOMIC_SEQ_CST);
    pthread_t tick;
    CHECK_RC(pthread_create(&tick, NULL, ticker, NULL), 0);
    CHECK_RC(pthread_create(&t, NULL, ping_after_ticks, &sv[0]), 0);
    CHECK(read(sv[1], buf, 4) == 4 && memcmp(buf, "ping", 4) == 0);
    CHECK(__atomic_load_n(&ticks, __ATOMIC_SEQ_CST) == 5); /* it ran while the read waited */
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_RC(pthread_join(tick, NULL), 0);
    int fl = fcntl(sv[0], F_GETFL);
    CHECK(fl >= 0 && !(fl & O_NONBLOCK)); /* as the program made it */
    close(sv[0]);
    close(sv[1]);
    printf("%s, %s child: blocking there, and here\n", how, keep_preload ? "preloaded" : "plain");
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0) return child(atoi(argv[2]));
    program_start(30);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    round_trip(self, "fork+exec", 0);
    round_trip(self, "fork+exec", 1);
    round_trip(self, "posix_spawn", 0);
    round_trip(self, "posix_spawn", 1);
    return program_end("inherited_sockets");
}
