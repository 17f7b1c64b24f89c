/* segv_sent.c — a SIGSEGV sent with kill() (not a fault) ends the process
 * with that signal, as natively, even though the runtime handles SIGSEGV to
 * report fiber stack overflows. */
#include "check.h"
#include <signal.h>

int main(void) {
    program_start(10);
    printf("sending SIGSEGV to myself\n");
    kill(getpid(), SIGSEGV);
    sleep_ms(2000);
    printf("FAIL still alive\n");
    return 1;
}
