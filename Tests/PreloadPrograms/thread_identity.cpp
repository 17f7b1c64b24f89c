// thread_identity.cpp — a C++20 program's threads, each a thread of its own:
//  thread_local   objects with constructors and destructors: constructed on
//                 first use in each thread, destroyed once at that thread's
//                 exit, in that thread, in reverse order of construction;
//  containers     thread_local vectors, strings and maps filled across
//                 sleeps, yields and lock waits hold only their thread's data;
//  mutex          std::mutex and std::condition_variable under contention;
//  stop           std::jthread and std::stop_token: request_stop wakes a wait
//                 of std::condition_variable_any, runs stop callbacks in the
//                 requesting thread, and the jthread destructor stops and joins;
//  futures        std::async(std::launch::async), std::promise, exceptions
//                 through futures, std::shared_future, std::packaged_task
//                 (libstdc++ waits for a future with futex system calls);
//  atomics        std::atomic<int>::wait/notify_one/notify_all, std::latch,
//                 std::barrier, std::counting_semaphore and
//                 std::binary_semaphore (futex system calls too).
// Arguments name the sections to run (default: all, in the order above).
// Self-checking like the C programs (FAIL lines, exit status 1, a watchdog);
// every line printed is deterministic.
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <pthread.h>
#include <semaphore>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

static std::atomic<int> failures{0};

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            std::fflush(stdout);                                                    \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static const char *yes(bool b) { return b ? "yes" : "no"; }

// A pause that lets the other threads run: a yield, a short sleep, or nothing.
static void pause_a_little(int r) {
    switch (r % 3) {
    case 0: std::this_thread::yield(); break;
    case 1: std::this_thread::sleep_for(100us); break;
    default: break;
    }
}

// MARK: thread_local objects

constexpr int THREADS = 8;

static std::atomic<int> constructed{0}, destroyed{0}, wrong_thread{0}, wrong_order{0};
static std::atomic<int> destroyed_slot[THREADS + 1];

struct Tracked {
    int slot = -1;
    std::thread::id owner = std::this_thread::get_id();
    pthread_t powner = pthread_self();
    int order;  // construction order within the thread: 0 = first
    Tracked *self = this;
    explicit Tracked(int order) : order(order) { constructed++; }
    ~Tracked();
};

static thread_local int destroyed_here = 0;  // how many Tracked this thread destroyed so far

Tracked::~Tracked() {
    destroyed++;
    if (slot >= 0 && slot <= THREADS) destroyed_slot[slot]++;
    if (owner != std::this_thread::get_id() || !pthread_equal(powner, pthread_self()) || self != this) wrong_thread++;
    // Reverse order of construction: the second one goes first.
    if ((order == 1 && destroyed_here != 0) || (order == 0 && destroyed_here != 1)) wrong_order++;
    destroyed_here++;
}

static thread_local Tracked first_tracked(0);
static thread_local Tracked second_tracked(1);

static int dynamic_init_calls_ = 0;
static std::mutex dynamic_init_lock;
static int dynamic_init() {
    std::lock_guard<std::mutex> g(dynamic_init_lock);
    return 1000 + dynamic_init_calls_++;
}
static thread_local int dynamically_initialised = dynamic_init();

static void thread_local_objects() {
    std::vector<std::thread> threads;
    std::vector<const void *> addresses(THREADS);
    std::atomic<int> bad{0};
    std::set<int> initial_values;
    std::mutex values_lock;
    for (int i = 0; i < THREADS; i++) {
        threads.emplace_back([i, &addresses, &bad, &initial_values, &values_lock] {
            int v = dynamically_initialised;
            {
                std::lock_guard<std::mutex> g(values_lock);
                initial_values.insert(v);
            }
            first_tracked.slot = i;     // first use: constructed here
            second_tracked.slot = THREADS;  // the second object of every thread
            addresses[i] = &first_tracked;
            for (int r = 0; r < 50; r++) {
                pause_a_little(r);
                if (first_tracked.slot != i || first_tracked.owner != std::this_thread::get_id() ||
                    dynamically_initialised != v)
                    bad++;
                dynamically_initialised = v;
            }
        });
    }
    for (auto &t : threads) t.join();
    std::set<const void *> distinct(addresses.begin(), addresses.end());
    bool each_once = true;
    for (int i = 0; i < THREADS; i++)
        if (destroyed_slot[i].load() != 1) each_once = false;
    CHECK(bad.load() == 0);
    CHECK(distinct.size() == THREADS);
    CHECK(constructed.load() == 2 * THREADS);
    CHECK(destroyed.load() == 2 * THREADS);
    CHECK(each_once);
    CHECK(destroyed_slot[THREADS].load() == THREADS);
    CHECK(wrong_thread.load() == 0);
    CHECK(wrong_order.load() == 0);
    CHECK(initial_values.size() == THREADS);  // the dynamic initialiser ran once per thread
    CHECK(dynamic_init_calls_ == THREADS);
    std::printf("thread_local: %d threads, %d objects constructed, %d destroyed at thread exit, each once, "
                "in its own thread: %s, in reverse order: %s, own values across pauses: %s, dynamic initialiser once "
                "per thread: %s\n",
                THREADS, constructed.load(), destroyed.load(), yes(each_once && wrong_thread.load() == 0),
                yes(wrong_order.load() == 0), yes(bad.load() == 0 && distinct.size() == THREADS),
                yes(initial_values.size() == THREADS && dynamic_init_calls_ == THREADS));
}

// MARK: thread_local containers

static thread_local std::vector<int> tl_vector;
static thread_local std::string tl_string;
static thread_local std::map<int, int> tl_map;

static void thread_local_containers() {
    constexpr int ROUNDS = 200;
    std::mutex shared_lock;
    long shared_total = 0;
    std::vector<long> sums(THREADS);
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int i = 0; i < THREADS; i++) {
        threads.emplace_back([i, &shared_lock, &shared_total, &sums, &bad] {
            if (!tl_vector.empty() || !tl_string.empty() || !tl_map.empty()) bad++;
            for (int r = 0; r < ROUNDS; r++) {
                tl_vector.push_back(i * 1000 + r);
                tl_string += char('a' + i);
                tl_map[r] = i;
                pause_a_little(r);
                {
                    std::lock_guard<std::mutex> g(shared_lock);  // contended: a lock wait
                    shared_total += 1;
                }
            }
            long sum = 0;
            for (int r = 0; r < ROUNDS; r++) {
                if (tl_vector[r] != i * 1000 + r) bad++;
                sum += tl_vector[r];
            }
            if (tl_vector.size() != ROUNDS || tl_string != std::string(ROUNDS, char('a' + i)) ||
                tl_map.size() != ROUNDS)
                bad++;
            for (auto &kv : tl_map)
                if (kv.second != i) bad++;
            sums[i] = sum;
        });
    }
    for (auto &t : threads) t.join();
    bool sums_ok = true;
    for (int i = 0; i < THREADS; i++)
        if (sums[i] != long(i) * 1000 * ROUNDS + long(ROUNDS) * (ROUNDS - 1) / 2) sums_ok = false;
    CHECK(bad.load() == 0);
    CHECK(sums_ok);
    CHECK(shared_total == long(THREADS) * ROUNDS);
    CHECK(tl_vector.empty() && tl_string.empty() && tl_map.empty());  // main's own are untouched
    std::printf("thread_local containers: %d threads x %d entries, each holds only its own: %s; main's empty: %s\n",
                THREADS, ROUNDS, yes(bad.load() == 0 && sums_ok),
                yes(tl_vector.empty() && tl_string.empty() && tl_map.empty()));
}

// MARK: mutex and condition variable

static void mutex_and_condition_variable() {
    constexpr int INCREMENTS = 2000;
    std::mutex m;
    std::condition_variable cv;
    long count = 0;
    int notified_at_thousands = 0;
    std::thread waiter([&] {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return count == long(THREADS) * INCREMENTS; });
    });
    std::vector<std::thread> threads;
    for (int i = 0; i < THREADS; i++) {
        threads.emplace_back([&, i] {
            for (int r = 0; r < INCREMENTS; r++) {
                {
                    std::lock_guard<std::mutex> g(m);
                    count++;
                    if (count % 1000 == 0) {
                        notified_at_thousands++;
                        cv.notify_all();
                    }
                }
                if ((r + i) % 97 == 0) std::this_thread::yield();
                if ((r + i) % 499 == 0) std::this_thread::sleep_for(50us);
            }
        });
    }
    for (auto &t : threads) t.join();
    waiter.join();
    CHECK(count == long(THREADS) * INCREMENTS);
    CHECK(notified_at_thousands == THREADS * INCREMENTS / 1000);

    // A bounded queue: 4 producers, 4 consumers, capacity 8.
    constexpr int PRODUCERS = 4, ITEMS = 500, CAPACITY = 8;
    std::mutex qm;
    std::condition_variable not_full, not_empty;
    std::vector<int> queue;
    int produced_done = 0;
    long consumed_sum = 0;
    int consumed = 0;
    bool overfull = false;
    std::vector<std::thread> workers;
    for (int p = 0; p < PRODUCERS; p++) {
        workers.emplace_back([&, p] {
            for (int k = 0; k < ITEMS; k++) {
                std::unique_lock<std::mutex> l(qm);
                not_full.wait(l, [&] { return queue.size() < CAPACITY; });
                queue.push_back(p * ITEMS + k);
                if (queue.size() > CAPACITY) overfull = true;
                not_empty.notify_one();
            }
            std::lock_guard<std::mutex> g(qm);
            produced_done++;
            not_empty.notify_all();
        });
    }
    for (int c = 0; c < PRODUCERS; c++) {
        workers.emplace_back([&] {
            for (;;) {
                std::unique_lock<std::mutex> l(qm);
                not_empty.wait(l, [&] { return !queue.empty() || produced_done == PRODUCERS; });
                if (queue.empty()) return;
                int v = queue.back();
                queue.pop_back();
                consumed_sum += v;
                consumed++;
                not_full.notify_one();
            }
        });
    }
    for (auto &t : workers) t.join();
    long n = long(PRODUCERS) * ITEMS;
    CHECK(consumed == n);
    CHECK(consumed_sum == n * (n - 1) / 2);
    CHECK(!overfull);
    std::printf("std::mutex: %d threads x %d increments = %ld, waiter woken at the end: yes; bounded queue: %d items "
                "through %d producers and %d consumers, sum ok: %s\n",
                THREADS, INCREMENTS, count, consumed, PRODUCERS, PRODUCERS,
                yes(consumed == n && consumed_sum == n * (n - 1) / 2 && !overfull));
}

// MARK: jthread and stop_token

static void jthread_and_stop_token() {
    std::mutex m;
    std::condition_variable_any cv;
    std::atomic<bool> waiting{false};
    std::atomic<int> wait_result{-1};
    std::thread::id callback_thread;
    std::atomic<int> callbacks{0};
    std::atomic<bool> stop_returned{false};
    const auto main_id = std::this_thread::get_id();
    std::thread::id worker_id;
    {
        std::jthread worker([&](std::stop_token st) {
            worker_id = std::this_thread::get_id();
            std::stop_callback cb(st, [&] {
                callback_thread = std::this_thread::get_id();
                callbacks++;
            });
            std::unique_lock<std::mutex> l(m);
            waiting = true;
            bool woke = cv.wait(l, st, [] { return false; });  // only a stop ends it
            wait_result = woke ? 1 : 0;
            l.unlock();
            // cb stays registered until request_stop has returned: the wait's own
            // callback may wake this thread (on another CPU) before request_stop
            // reaches cb, and a callback destroyed before it ran never runs.
            while (!stop_returned.load()) std::this_thread::sleep_for(1ms);
        });
        for (int i = 0; i < 10000 && !waiting.load(); i++) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(10ms);  // into the wait, most likely
        CHECK(worker.request_stop());
        stop_returned = true;
        worker.join();
    }
    CHECK(wait_result.load() == 0);
    CHECK(callbacks.load() == 1);
    CHECK(callback_thread == main_id);
    CHECK(worker_id != main_id);

    // The destructor requests the stop and joins; stop_requested is seen.
    std::atomic<int> laps{0};
    std::atomic<bool> saw_stop{false};
    {
        std::jthread looper([&](std::stop_token st) {
            while (!st.stop_requested()) {
                laps++;
                std::this_thread::sleep_for(1ms);
            }
            saw_stop = true;
        });
        while (laps.load() < 3) std::this_thread::sleep_for(1ms);
    }
    CHECK(saw_stop.load());
    std::printf("std::jthread: request_stop woke condition_variable_any::wait (returned false): %s, stop callback ran "
                "once in the requesting thread: %s, destructor stopped and joined a loop: %s\n",
                yes(wait_result.load() == 0), yes(callbacks.load() == 1 && callback_thread == main_id),
                yes(saw_stop.load()));
}

// MARK: futures

static void futures() {
    constexpr int TASKS = 16;
    std::vector<std::future<long>> results;
    std::set<std::thread::id> ids;
    std::mutex ids_lock;
    for (int i = 0; i < TASKS; i++) {
        results.push_back(std::async(std::launch::async, [i, &ids, &ids_lock] {
            {
                std::lock_guard<std::mutex> g(ids_lock);
                ids.insert(std::this_thread::get_id());
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100 * (i % 4)));
            return long(i) * i;
        }));
    }
    long sum = 0;
    for (auto &f : results) sum += f.get();
    CHECK(sum == long(TASKS - 1) * TASKS * (2 * TASKS - 1) / 6);
    CHECK(!ids.count(std::this_thread::get_id()));

    // promise -> future, the value set after a pause; get() parks main.
    std::promise<std::string> promise;
    std::future<std::string> future = promise.get_future();
    std::thread setter([&] {
        std::this_thread::sleep_for(20ms);
        promise.set_value("from the setter");
    });
    std::string value = future.get();
    setter.join();
    CHECK(value == "from the setter");

    // An exception travels through the future.
    std::promise<int> failing;
    std::future<int> failed = failing.get_future();
    std::thread thrower([&] {
        std::this_thread::sleep_for(5ms);
        try {
            throw std::runtime_error("task failed");
        } catch (...) {
            failing.set_exception(std::current_exception());
        }
    });
    std::string error;
    try {
        (void)failed.get();
    } catch (const std::runtime_error &e) {
        error = e.what();
    }
    thrower.join();
    CHECK(error == "task failed");

    // One shared_future, four waiting threads.
    std::promise<int> start;
    std::shared_future<int> shared = start.get_future().share();
    std::atomic<int> seen_sum{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 4; i++) waiters.emplace_back([&] { seen_sum += shared.get(); });
    std::this_thread::sleep_for(10ms);
    start.set_value(25);
    for (auto &t : waiters) t.join();
    CHECK(seen_sum.load() == 100);

    // A packaged_task run by another thread.
    std::packaged_task<int(int, int)> task([](int a, int b) {
        std::this_thread::sleep_for(5ms);
        return a * b;
    });
    std::future<int> product = task.get_future();
    std::thread runner(std::move(task), 6, 7);
    int p = product.get();
    runner.join();
    CHECK(p == 42);
    std::printf("futures: %d std::async tasks on other threads sum %ld, promise \"%s\", exception \"%s\", "
                "shared_future seen by 4 threads sum %d, packaged_task %d\n",
                TASKS, sum, value.c_str(), error.c_str(), seen_sum.load(), p);
}

// MARK: atomics, latch, barrier, semaphores

static void atomic_waits() {
    // notify_all wakes every waiter.
    std::atomic<int> flag{0};
    std::atomic<int> woke{0};
    std::atomic<int> about_to_wait{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < THREADS; i++) {
        waiters.emplace_back([&] {
            about_to_wait++;
            flag.wait(0);
            woke++;
        });
    }
    while (about_to_wait.load() < THREADS) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);  // past their spinning, into the futex wait, most likely
    CHECK(woke.load() == 0);
    flag = 1;
    flag.notify_all();
    for (auto &t : waiters) t.join();
    CHECK(woke.load() == THREADS);

    // Ping-pong with notify_one: turn 0 = ping's, 1 = pong's.
    constexpr int ROUNDS = 1000;
    std::atomic<int> turn{0};
    int pings = 0, pongs = 0;
    std::thread pong([&] {
        for (int r = 0; r < ROUNDS; r++) {
            turn.wait(0);
            pongs++;
            turn = 0;
            turn.notify_one();
        }
    });
    for (int r = 0; r < ROUNDS; r++) {
        turn.wait(1);
        pings++;
        turn = 1;
        turn.notify_one();
    }
    pong.join();
    CHECK(pings == ROUNDS && pongs == ROUNDS);
    std::printf("std::atomic wait: notify_all woke %d of %d waiters; notify_one ping-pong %d rounds\n", woke.load(),
                THREADS, pongs);

    // latch: every thread arrives, then all go on.
    std::latch arrived(THREADS);
    std::atomic<int> past{0}, early{0};
    std::vector<std::thread> latchers;
    std::atomic<int> counted{0};
    for (int i = 0; i < THREADS; i++) {
        latchers.emplace_back([&, i] {
            std::this_thread::sleep_for(std::chrono::microseconds(200 * i));
            counted++;
            arrived.arrive_and_wait();
            if (counted.load() != THREADS) early++;
            past++;
        });
    }
    for (auto &t : latchers) t.join();
    CHECK(past.load() == THREADS && early.load() == 0);

    // barrier with a completion function, 5 phases.
    constexpr int PHASES = 5;
    std::atomic<int> completions{0};
    std::vector<int> phase_of(THREADS, 0);
    std::atomic<int> out_of_step{0};
    std::barrier sync(THREADS, [&]() noexcept { completions++; });
    std::vector<std::thread> phasers;
    for (int i = 0; i < THREADS; i++) {
        phasers.emplace_back([&, i] {
            for (int ph = 0; ph < PHASES; ph++) {
                if (completions.load() != ph) out_of_step++;
                if ((i + ph) % 3 == 0) std::this_thread::sleep_for(100us);
                sync.arrive_and_wait();
            }
        });
    }
    for (auto &t : phasers) t.join();
    CHECK(completions.load() == PHASES && out_of_step.load() == 0);

    // counting_semaphore: at most 3 holders at once.
    std::counting_semaphore<3> slots(3);
    std::atomic<int> inside{0}, most{0}, entries{0};
    std::vector<std::thread> holders;
    for (int i = 0; i < THREADS; i++) {
        holders.emplace_back([&] {
            for (int r = 0; r < 20; r++) {
                slots.acquire();
                int now = ++inside;
                int m = most.load();
                while (now > m && !most.compare_exchange_weak(m, now)) {}
                entries++;
                std::this_thread::sleep_for(100us);
                inside--;
                slots.release();
            }
        });
    }
    for (auto &t : holders) t.join();
    CHECK(entries.load() == THREADS * 20 && most.load() <= 3);

    // binary_semaphore hand-off.
    std::binary_semaphore to_worker(0), to_main(0);
    int handoffs = 0;
    std::thread worker([&] {
        for (int r = 0; r < 200; r++) {
            to_worker.acquire();
            handoffs++;
            to_main.release();
        }
    });
    for (int r = 0; r < 200; r++) {
        to_worker.release();
        to_main.acquire();
    }
    worker.join();
    CHECK(handoffs == 200);
    std::printf("std::latch: %d threads released together: %s; std::barrier: %d phases in step: %s; "
                "counting_semaphore<3>: %d entries, never more than 3 inside: %s; binary_semaphore: %d hand-offs\n",
                THREADS, yes(past.load() == THREADS && early.load() == 0), completions.load(),
                yes(out_of_step.load() == 0), entries.load(), yes(most.load() <= 3), handoffs);
}

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    alarm(30);  // the watchdog: SIGALRM's default action ends a hang
    const std::vector<std::pair<std::string, std::function<void()>>> sections = {
        {"thread_local", thread_local_objects},
        {"containers", thread_local_containers},
        {"mutex", mutex_and_condition_variable},
        {"stop", jthread_and_stop_token},
        {"futures", futures},
        {"atomics", atomic_waits},
    };
    std::set<std::string> wanted(argv + 1, argv + argc);
    for (auto &w : wanted) {
        bool known = false;
        for (auto &s : sections) known = known || s.first == w;
        if (!known) {
            std::printf("FAIL unknown section %s\n", w.c_str());
            return 2;
        }
    }
    for (auto &s : sections)
        if (wanted.empty() || wanted.count(s.first)) s.second();
    if (failures) {
        std::printf("thread_identity: %d check(s) FAILED\n", failures.load());
        return 1;
    }
    std::printf("thread_identity: all checks passed\n");
    return 0;
}
