/* stdio_sockets.c — a line protocol with stdio over sockets (fdopen, fgets,
 * fprintf), thread per connection: 50 connections, each sending its lines
 * before any is answered. Under the preload the streams' reads and writes
 * park the fiber threads instead of blocking the one OS thread. */
#include "check.h"
#include <sys/socket.h>

enum { CONNECTIONS = 50, LINES = 20 };

/* Echo each line back with a prefix. One stream per direction: glibc's "r+"
 * streams cannot switch from reading to writing on a socket. */
static void *echo(void *arg) {
    int fd = (int)(intptr_t)arg;
    FILE *in = fdopen(fd, "r");
    FILE *out = fdopen(dup(fd), "w");
    CHECK(in && out && fileno(in) == fd);
    char line[128];
    while (fgets(line, sizeof line, in)) {
        fprintf(out, "echo %s", line);
        fflush(out);
    }
    fclose(in);
    fclose(out);
    return NULL;
}

int main(void) {
    program_start(30);
    pthread_t t[CONNECTIONS];
    FILE *to[CONNECTIONS], *from[CONNECTIONS];
    for (int i = 0; i < CONNECTIONS; i++) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        CHECK_RC(pthread_create(&t[i], NULL, echo, (void *)(intptr_t)sv[0]), 0);
        to[i] = fdopen(sv[1], "w");
        from[i] = fdopen(dup(sv[1]), "r");
        CHECK(to[i] && from[i] && fileno(to[i]) == sv[1]);
    }
    for (int i = 0; i < CONNECTIONS; i++) {
        for (int l = 0; l < LINES; l++) fprintf(to[i], "line %d of %d\n", l, i);
        fflush(to[i]);
    }
    int right = 0;
    char got[128], want[128];
    for (int i = 0; i < CONNECTIONS; i++)
        for (int l = 0; l < LINES; l++) {
            snprintf(want, sizeof want, "echo line %d of %d\n", l, i);
            right += fgets(got, sizeof got, from[i]) && strcmp(got, want) == 0;
        }
    for (int i = 0; i < CONNECTIONS; i++) {
        fclose(to[i]);   /* the echo thread sees EOF once both our fds of the pair are closed */
        fclose(from[i]);
        CHECK_RC(pthread_join(t[i], NULL), 0);
    }
    CHECK(right == CONNECTIONS * LINES);
    printf("stdio over sockets: %d of %d lines echoed\n", right, CONNECTIONS * LINES);
    return program_end("stdio_sockets");
}
