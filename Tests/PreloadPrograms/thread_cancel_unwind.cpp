// thread_cancel_unwind.cpp — pthread_cancel and pthread_exit unwind C++
// frames as glibc does (a forced unwind, abi::__forced_unwind):
//  - the destructors of the RAII locals of every frame between the
//    cancellation point and the thread's start run, innermost first, and
//    interleave with pthread_cleanup_push handlers in push order reversed;
//  - catch (abi::__forced_unwind&) and catch (...) see the unwind and must
//    rethrow it; the unwind goes on;
//  - a thread's thread_local objects are destroyed afterwards, in that thread;
//  - pthread_join returns PTHREAD_CANCELED, or pthread_exit's value;
//  - a C++ exception thrown and caught inside a thread still works.
// Self-checking like the C programs (FAIL lines, exit status 1, a watchdog);
// every line printed is deterministic.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <mutex>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

static std::atomic<int> failures{0};

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            std::fflush(stdout);                                                    \
            failures++;                                                             \
        }                                                                           \
    } while (0)

// The events of one scenario, in order.
static std::mutex events_lock;
static std::string events;

static void record(const std::string &what) {
    std::lock_guard<std::mutex> g(events_lock);
    if (!events.empty()) events += ' ';
    events += what;
}

static std::string take_events() {
    std::lock_guard<std::mutex> g(events_lock);
    std::string e = events;
    events.clear();
    return e;
}

struct Guard {
    std::string name;
    pthread_t owner;
    explicit Guard(std::string n) : name(std::move(n)), owner(pthread_self()) { record("+" + name); }
    ~Guard() {
        record("-" + name);
        if (!pthread_equal(owner, pthread_self())) record("FAIL-wrong-thread");
    }
};

struct Local {  // a thread_local object
    pthread_t owner = pthread_self();
    Local() { record("+tls"); }
    ~Local() { record(pthread_equal(owner, pthread_self()) ? "-tls" : "-tls-FAIL-wrong-thread"); }
    void touch() {}
};
static thread_local Local local;

static void cleanup_handler(void *what) { record(static_cast<const char *>(what)); }

static std::atomic<bool> ready{false};
static void set_ready() { ready.store(true); }
static void wait_ready() {
    for (int i = 0; i < 10000 && !ready.load(); i++) usleep(1000);
    CHECK(ready.load());
    usleep(20000);  // into the cancellation point, most likely (either way it acts there)
}

// 1. Cancelled in sleep(), three frames deep, with a cleanup handler between.
static void innermost() {
    Guard g("inner");
    set_ready();
    for (;;) sleep(600);
}

static void middle() {
    Guard g("middle");
    pthread_cleanup_push(cleanup_handler, (void *)"cleanup");
    innermost();
    pthread_cleanup_pop(0);
}

static void *nested_frames(void *) {
    local.touch();
    Guard g("outer");
    middle();
    record("FAIL-returned");
    return nullptr;
}

// 2. catch (abi::__forced_unwind&) and catch (...) see the unwind and rethrow.
static void *catching(void *) {
    local.touch();
    Guard g("outer");
    try {
        try {
            Guard h("tried");
            set_ready();
            char byte;
            int p[2];
            if (pipe(p) != 0) return nullptr;
            for (;;) (void)!read(p[0], &byte, 1);  // never written: a cancellation point forever
        } catch (abi::__forced_unwind &) {
            record("caught-forced-unwind");
            throw;
        }
    } catch (...) {
        record("caught-all");
        throw;
    }
    return nullptr;
}

// 3. Cancelled in std::this_thread::sleep_for (nanosleep) inside a lambda.
static void *sleeping_lambda(void *) {
    local.touch();
    auto body = [] {
        Guard g("lambda");
        set_ready();
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(600));
    };
    Guard g("outer");
    body();
    return nullptr;
}

// 4. pthread_exit from a deep frame: the same unwinding, with a value.
// Called through a pointer: seeing that pthread_exit never returns, GCC would
// warn of an infinite recursion.
static void (*volatile exit_thread)(void *) = pthread_exit;
static void exit_deep(int depth) {
    Guard g("depth" + std::to_string(depth));
    if (depth < 3) exit_deep(depth + 1);
    else exit_thread(reinterpret_cast<void *>(static_cast<intptr_t>(42)));
}

static void *exiting(void *) {
    local.touch();
    Guard g("outer");
    exit_deep(1);
    record("FAIL-returned");
    return nullptr;
}

// 5. Ordinary C++ exceptions inside a thread, parked between throw and catch.
static void *throwing(void *) {
    local.touch();
    Guard g("outer");
    try {
        Guard h("thrower");
        usleep(1000);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error &e) {
        usleep(1000);
        record(std::string("caught-") + e.what());
    }
    return reinterpret_cast<void *>(static_cast<intptr_t>(5));
}

static void run(const char *what, void *(*body)(void *), bool cancel, void *want_ret, const std::string &want) {
    take_events();
    ready.store(false);
    pthread_t t;
    CHECK(pthread_create(&t, nullptr, body, nullptr) == 0);
    if (cancel) {
        wait_ready();
        int rc = pthread_cancel(t);
        if (rc != 0) {
            std::printf("FAIL %s: pthread_cancel returned %d (%s); thread left behind\n", what, rc, std::strerror(rc));
            failures++;
            return;
        }
    }
    void *ret = nullptr;
    CHECK(pthread_join(t, &ret) == 0);
    CHECK(ret == want_ret);
    std::string got = take_events();
    if (got != want) {
        std::printf("FAIL %s: events \"%s\", expected \"%s\"\n", what, got.c_str(), want.c_str());
        failures++;
    }
    std::printf("%s: %s; join %s\n", what, got.c_str(),
                ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : std::to_string(reinterpret_cast<intptr_t>(ret)).c_str());
}

int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    alarm(60);
    run("cancelled in sleep three frames deep", nested_frames, true, PTHREAD_CANCELED,
        "+tls +outer +middle +inner -inner cleanup -middle -outer -tls");
    run("cancelled in read inside try blocks", catching, true, PTHREAD_CANCELED,
        "+tls +outer +tried -tried caught-forced-unwind caught-all -outer -tls");
    run("cancelled in std::this_thread::sleep_for in a lambda", sleeping_lambda, true, PTHREAD_CANCELED,
        "+tls +outer +lambda -lambda -outer -tls");
    run("pthread_exit three frames deep", exiting, false, reinterpret_cast<void *>(static_cast<intptr_t>(42)),
        "+tls +outer +depth1 +depth2 +depth3 -depth3 -depth2 -depth1 -outer -tls");
    run("exception thrown and caught in a thread", throwing, false, reinterpret_cast<void *>(static_cast<intptr_t>(5)),
        "+tls +outer +thrower -thrower caught-boom -outer -tls");
    if (failures) {
        std::printf("thread_cancel_unwind: %d check(s) FAILED\n", failures.load());
        return 1;
    }
    std::printf("thread_cancel_unwind: all checks passed\n");
    return 0;
}
