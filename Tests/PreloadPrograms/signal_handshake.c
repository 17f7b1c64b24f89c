/* signal_handshake.c — a handler for a signal sent to another thread runs in
 * that thread, on its own, while the sender goes on: here the handler waits
 * until the sender has done its part (haproxy's "show threads" does this:
 * each thread's handler waits for the sender's turn). The receiver is
 * blocked in read() meanwhile; with SA_RESTART its read goes on afterwards
 * and returns the bytes written later, without EINTR. */
#include "check.h"
#include <sched.h>
#include <signal.h>

static int pipe_fds[2];
static volatile int sender_done, handler_ran_in_receiver, handler_finished;
static pthread_t receiver_thread;
static char got[8];
static ssize_t got_n;
static int read_errno;

static void on_usr1(int sig) {
    (void)sig;
    handler_ran_in_receiver = pthread_equal(pthread_self(), receiver_thread);
    for (int i = 0; i < 200000 && !__atomic_load_n(&sender_done, __ATOMIC_SEQ_CST); i++) sched_yield();
    __atomic_store_n(&handler_finished, 1, __ATOMIC_SEQ_CST);
}

static void *receiver(void *arg) {
    errno = 0;
    got_n = read(pipe_fds[0], got, sizeof got - 1); /* blocks until the sender writes */
    read_errno = errno;
    return arg;
}

int main(void) {
    program_start(30);
    CHECK(set_handler(SIGUSR1, on_usr1, SA_RESTART) == 0);
    CHECK(pipe(pipe_fds) == 0);
    CHECK_RC(pthread_create(&receiver_thread, NULL, receiver, NULL), 0);
    sleep_ms(30); /* the receiver is in read() */
    CHECK_RC(pthread_kill(receiver_thread, SIGUSR1), 0);
    __atomic_store_n(&sender_done, 1, __ATOMIC_SEQ_CST); /* the handler waits for this */
    for (int i = 0; i < 5000 && !__atomic_load_n(&handler_finished, __ATOMIC_SEQ_CST); i++) sleep_ms(1);
    CHECK(handler_finished && handler_ran_in_receiver);
    printf("handler for another thread: ran there, after the sender went on: %s\n",
           handler_finished && handler_ran_in_receiver ? "yes" : "no");
    CHECK(write(pipe_fds[1], "late", 4) == 4);
    pthread_join(receiver_thread, NULL);
    CHECK(got_n == 4 && strcmp(got, "late") == 0);
    printf("SA_RESTART: the receiver's read went on and got the later bytes: %s\n",
           got_n == 4 && strcmp(got, "late") == 0 ? "yes" : "no");
    (void)read_errno;
    return check_failures ? 1 : 0;
}
