// sigtimedwait and recv on a socket with SO_RCVTIMEO are never restarted:
// a SA_RESTART handler makes them fail with EINTR (signal(7)).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
static void *poke(void *a) { usleep(100000); pthread_kill(*(pthread_t *)a, SIGUSR1); usleep(100000); pthread_kill(*(pthread_t *)a, SIGUSR1); return NULL; }
int main(void) {
    alarm(20); /* a hang fails */
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART; sigaction(SIGUSR1, &sa, NULL);
    sigset_t w; sigemptyset(&w); sigaddset(&w, SIGUSR2); pthread_sigmask(SIG_BLOCK, &w, NULL);
    pthread_t self = pthread_self(), t; pthread_create(&t, NULL, poke, &self);
    struct timespec ts = {1, 0};
    int r = sigtimedwait(&w, NULL, &ts);
    printf("sigtimedwait: %d %s\n", r, r < 0 ? strerror(errno) : "");
    int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = {1, 0}; setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c; ssize_t n = recv(sv[0], &c, 1, 0);
    printf("recv SO_RCVTIMEO: %zd %s\n", n, n < 0 ? strerror(errno) : "");
    pthread_join(t, NULL);
    return 0;
}
