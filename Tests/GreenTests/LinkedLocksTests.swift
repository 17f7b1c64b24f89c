import Dispatch
import Foundation
import CTestSupport
import Synchronization
import XCTest
@testable import Green

/// Locks and waits that a Swift program already has — pthreads, Foundation,
/// Dispatch, the standard library's Mutex — park the calling fiber in a
/// program that links Green: a lock held across a park by one fiber and
/// wanted by another completes, and waits of many fibers overlap.
final class LinkedLocksTests: XCTestCase {
    /// What each fiber did, in order (fibers of one hub: no lock needed).
    final class Log: @unchecked Sendable { var entries: [String] = [] }

    func testNSLockHeldAcrossAParkIsWaitedForNotDeadlocked() throws {
        let lock = NSLock()
        let log = Log()
        let holder = Green.spawn {
            lock.lock()
            log.entries.append("A locked")
            try Green.sleep(for: .milliseconds(50)) // parks holding the lock
            log.entries.append("A unlocks")
            lock.unlock()
        }
        let wanter = Green.spawn {
            try Green.sleep(for: .milliseconds(5))
            log.entries.append("B wants")
            lock.lock() // natively: pthread_mutex_lock blocks the hub's thread for good
            log.entries.append("B locked")
            lock.unlock()
        }
        try Green.joinAll([holder, wanter])
        XCTAssertEqual(log.entries, ["A locked", "B wants", "A unlocks", "B locked"])
    }

    func testRecursiveAndErrorCheckingMutexesAreOwnedPerFiber() throws {
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_RECURSIVE))
        let recursive = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(recursive, &attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ERRORCHECK))
        let checked = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(checked, &attr)
        pthread_mutexattr_destroy(&attr)
        defer {
            pthread_mutex_destroy(recursive); recursive.deallocate()
            pthread_mutex_destroy(checked); checked.deallocate()
        }

        XCTAssertEqual(pthread_mutex_lock(recursive), 0)
        XCTAssertEqual(pthread_mutex_lock(recursive), 0, "the owner takes a recursive mutex again")
        XCTAssertEqual(pthread_mutex_lock(checked), 0)
        XCTAssertEqual(pthread_mutex_lock(checked), EDEADLK, "the owner relocking an error-checking mutex")
        // Another fiber of the same OS thread is another owner.
        let other = try Green.spawn { () -> [Int32] in
            [pthread_mutex_trylock(recursive), pthread_mutex_trylock(checked), pthread_mutex_unlock(checked),
             pthread_mutex_unlock(recursive)]
        }.value
        XCTAssertEqual(other, [EBUSY, EBUSY, EPERM, EPERM])
        XCTAssertEqual(pthread_mutex_unlock(recursive), 0)
        XCTAssertEqual(pthread_mutex_unlock(recursive), 0)
        XCTAssertEqual(pthread_mutex_unlock(checked), 0)
        XCTAssertEqual(pthread_mutex_unlock(checked), EPERM, "unlocked already")
        XCTAssertEqual(try Green.spawn { pthread_mutex_trylock(recursive) }.value, 0, "free again")
        XCTAssertEqual(pthread_mutex_trylock(recursive), EBUSY, "held by the fiber that ended")
    }

    func testNSConditionWaitParksTheFiber() throws {
        let condition = NSCondition()
        var ready = false
        let log = Log()
        let waiter = Green.spawn {
            condition.lock()
            while !ready { condition.wait() } // natively: blocks the only thread, the signaller never runs
            log.entries.append("woken")
            condition.unlock()
        }
        let signaller = Green.spawn {
            try Green.sleep(for: .milliseconds(20))
            condition.lock()
            ready = true
            log.entries.append("signal")
            condition.signal()
            condition.unlock()
        }
        try Green.joinAll([waiter, signaller])
        XCTAssertEqual(log.entries, ["signal", "woken"])
    }

    /// 20 fibers each wait for a semaphore that a Dispatch queue signals
    /// 200 ms later: the waits overlap (one after another takes 4 s).
    func testDispatchSemaphoreWaitsOfManyFibersOverlap() throws {
        let fibers = 20
        let started = Counter()
        let ms = try elapsedMilliseconds {
            let all = (0..<fibers).map { _ in
                Green.spawn {
                    let semaphore = DispatchSemaphore(value: 0)
                    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(200)) { semaphore.signal() }
                    started.value += 1
                    semaphore.wait()
                    return started.value
                }
            }
            XCTAssertEqual(try all.map { try $0.value }, Array(repeating: fibers, count: fibers),
                           "every fiber was waiting before the first was woken")
        }
        XCTAssertLessThan(ms, Double(fibers) * 200 / 2, "waits overlap")
    }

    func testDispatchGroupWaitAndQueueSyncPark() throws {
        let fibers = 10
        let started = Counter()
        let ms = try elapsedMilliseconds {
            let all = (0..<fibers).map { i in
                Green.spawn {
                    let group = DispatchGroup()
                    group.enter()
                    Thread { usleep(200_000); group.leave() }.start() // a real thread works
                    let queue = DispatchQueue(label: "drained-by-another-thread-\(i)")
                    queue.async { usleep(100_000) } // busy when sync arrives
                    started.value += 1
                    group.wait()
                    let order = queue.sync { started.value }
                    return order
                }
            }
            XCTAssertEqual(try all.map { try $0.value }, Array(repeating: fibers, count: fibers))
        }
        XCTAssertLessThan(ms, Double(fibers) * 300 / 2, "waits overlap")
    }

    func testSynchronizationMutexHeldAcrossAParkIsWaitedFor() throws {
        let box = LogMutex()
        let holder = Green.spawn {
            try box.mutex.withLock { log in
                log.append("A locked")
                try Green.sleep(for: .milliseconds(50))
                log.append("A unlocks")
            }
        }
        let wanter = Green.spawn {
            try Green.sleep(for: .milliseconds(5))
            box.mutex.withLock { $0.append("B locked") }
        }
        try Green.joinAll([holder, wanter])
        XCTAssertEqual(box.mutex.withLock { $0 }, ["A locked", "A unlocks", "B locked"])
    }

    /// Mutual exclusion over fibers of three hubs and two plain threads on the
    /// same locks, with parks while holding them: every increment counts.
    func testMutualExclusionAcrossHubsAndThreads() throws {
        let rounds = 300
        let shared = SharedCounters()
        let done = DispatchSemaphore(value: 0)
        // Synchronization.Mutex's contended path runs in the standard library,
        // which is not instrumented: ThreadSanitizer misses its atomics and
        // reports the data it guards (natively as well), so it sits out there.
        let withMutex = ProcessInfo.processInfo.environment["GREEN_SANITIZER"] != "thread"
        @Sendable func work(parks: Bool) throws {
            for i in 0..<rounds {
                shared.nsLock.lock()
                let seen = shared.viaNSLock
                if parks && i % 16 == 0 { try Green.sleep(for: .milliseconds(1)) } else { sched_yield() }
                shared.viaNSLock = seen + 1
                shared.nsLock.unlock()

                pthread_mutex_lock(shared.mutex)
                let before = shared.viaPthread
                if parks && i % 16 == 8 { try Green.yield() }
                shared.viaPthread = before + 1
                pthread_mutex_unlock(shared.mutex)

                if withMutex { shared.mutex2.withLock { $0 += 1 } }
            }
        }
        let hubThreads = 2, fibersPerHub = 4, plainThreads = 2
        for _ in 0..<hubThreads {
            Thread {
                let fibers = (0..<fibersPerHub).map { _ in Green.spawn { try work(parks: true) } }
                try? Green.joinAll(fibers)
                done.signal()
            }.start()
        }
        for _ in 0..<plainThreads {
            Thread { try? work(parks: false); done.signal() }.start()
        }
        let mine = (0..<fibersPerHub).map { _ in Green.spawn { try work(parks: true) } }
        try Green.joinAll(mine)
        for _ in 0..<(hubThreads + plainThreads) { done.wait() } // parks this root fiber too
        let expected = rounds * (fibersPerHub * (hubThreads + 1) + plainThreads)
        XCTAssertEqual(shared.viaNSLock, expected)
        XCTAssertEqual(shared.viaPthread, expected)
        XCTAssertEqual(shared.mutex2.withLock { $0 }, withMutex ? expected : 0)
    }

    /// A fiber that locks again right after unlocking (a loop around a
    /// locked section that parks) does not keep the lock from a waiting fiber.
    func testAWaitingFiberGetsTheLockFromALoopingOne() throws {
        let lock = NSLock()
        let rounds = Counter()
        let looper = Green.spawn {
            for _ in 0..<50 {
                lock.lock()
                try Green.sleep(for: .milliseconds(1))
                rounds.value += 1
                lock.unlock()
            }
        }
        let waiter = Green.spawn { () -> Int in
            try Green.sleep(for: .milliseconds(3))
            lock.lock()
            defer { lock.unlock() }
            return rounds.value
        }
        let roundsBefore = try waiter.value
        try looper.value
        XCTAssertLessThan(roundsBefore, 10, "the waiter got the lock after \(roundsBefore) of 50 rounds")
    }

    /// libdispatch marks a lock word it failed to trylock with
    /// FUTEX_OWNER_DIED and counts on FUTEX_UNLOCK_PI to clear it; the owner
    /// still unlocks, from a plain thread and from a fiber, and a fiber
    /// waiting for a thread's PI lock gets it when the thread lets go.
    func testPriorityInheritanceWordsAsLibdispatchUsesThem() throws {
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { word.deallocate() }
        let ownerDied = UInt32(FUTEX_OWNER_DIED)
        // A plain thread.
        let fromThread = ResultBox<[Int32]>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            word.pointee = test_kernel_tid() | ownerDied
            fromThread.value = [test_futex_unlock_pi(word), Int32(bitPattern: word.pointee)]
            done.signal()
        }.start()
        done.wait()
        XCTAssertEqual(fromThread.value, [0, 0], "unlocked, the marker cleared")
        // A fiber (its thread's tid is in the word).
        word.pointee = test_kernel_tid() | ownerDied
        XCTAssertEqual(try Green.spawn { test_futex_unlock_pi(word) }.value, 0)
        XCTAssertEqual(word.pointee, 0)
        // Not the owner: EPERM, as the kernel says.
        word.pointee = 1 // pid 1's tid, never ours
        XCTAssertEqual(try Green.spawn { test_futex_unlock_pi(word) }.value, EPERM)
        word.pointee = 0

        // A thread holds the lock; a fiber waits for it (parked, the hub runs on).
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread {
            XCTAssertEqual(test_futex_lock_pi(word), 0)
            held.signal()
            release.wait()
            XCTAssertEqual(test_futex_unlock_pi(word), 0)
        }.start()
        held.wait()
        let log = Log()
        let waiter = Green.spawn { () -> Int32 in
            XCTAssertEqual(test_futex_trylock_pi(word), EAGAIN, "held by the thread")
            let r = test_futex_lock_pi(word)
            log.entries.append("fiber locked")
            return r
        }
        let other = Green.spawn {
            try Green.sleep(for: .milliseconds(20))
            log.entries.append("hub ran on")
            release.signal()
        }
        XCTAssertEqual(try waiter.value, 0)
        try other.value
        XCTAssertEqual(log.entries, ["hub ran on", "fiber locked"])
        XCTAssertEqual(word.pointee & UInt32(FUTEX_TID_MASK), test_kernel_tid(), "the fiber's thread owns it")
        XCTAssertEqual(test_futex_unlock_pi(word), 0)
        XCTAssertEqual(word.pointee, 0)
    }

    /// A block's own nested sync stays on its fiber, as natively on its
    /// thread: a recursive lock it holds is still its own there.
    func testNestedDispatchSyncStaysOnTheFiber() throws {
        let outer = DispatchQueue(label: "outer"), inner = DispatchQueue(label: "inner")
        let lock = NSRecursiveLock()
        let result = try Green.spawn { () -> [String] in
            var seen: [String] = []
            outer.sync {
                lock.lock()
                seen.append("outer")
                inner.sync {
                    lock.lock() // natively fine: the same thread; on a worker it would wait for ever
                    seen.append("inner")
                    lock.unlock()
                }
                lock.unlock()
            }
            return seen
        }.value
        XCTAssertEqual(result, ["outer", "inner"])
    }

    final class ResultBox<T>: @unchecked Sendable { var value: T? }
    final class Counter: @unchecked Sendable { var value = 0 }
    final class LogMutex: Sendable { let mutex = Mutex<[String]>([]) }

    final class SharedCounters: @unchecked Sendable {
        let nsLock = NSLock()
        let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
            let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            pthread_mutex_init(m, nil)
            return m
        }()
        let mutex2 = Mutex(0)
        var viaNSLock = 0
        var viaPthread = 0
        deinit {
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
        }
    }

    /// A sem_post from a signal handler that interrupted the code holding the
    /// semaphore's futex bucket cannot take the bucket: its wake is noted for
    /// the hub in a ring of 64 slots. More such wakes than slots must still
    /// all arrive (the hub then wakes every waiter, and each rechecks).
    func testWakesDeferredPastTheRingAreNotLost() throws {
        let waiters = 100
        // Semaphores whose words share one bucket, picked from a large buffer.
        let stride = MemoryLayout<sem_t>.stride
        let slots = 8 << 20 / stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: slots * stride, alignment: 32)
        defer { buffer.deallocate() }
        func word(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
            (buffer + slot * stride).assumingMemoryBound(to: UInt32.self)
        }
        let bucket = gfutex_test_bucket_index(word(0))
        let sems = (0..<slots).filter { gfutex_test_bucket_index(word($0)) == bucket }.prefix(waiters)
            .map { OpaquePointer(word($0)) }.map { UnsafeMutablePointer<sem_t>($0) }
        XCTAssertEqual(sems.count, waiters, "enough words in one bucket")
        for s in sems { XCTAssertEqual(sem_init(s, 0, 0), 0) }

        let woken = Counter()
        let fibers = sems.map { s in
            Green.spawn {
                XCTAssertEqual(sem_wait(s), 0)
                woken.value += 1
            }
        }
        try Green.sleep(for: .milliseconds(10)) // every fiber is parked on its semaphore
        XCTAssertEqual(woken.value, 0)
        gfutex_test_hold_bucket(word(0))
        for s in sems { XCTAssertEqual(sem_post(s), 0) } // each wake is deferred: the bucket is held
        gfutex_test_release_bucket(word(0))
        for f in fibers { try f.join(until: .after(.seconds(10))) }
        XCTAssertEqual(woken.value, waiters, "every deferred wake arrived")
    }
}
