import CGreenCore
import Foundation
import XCTest
@testable import Green

final class FiberTests: XCTestCase {
    func testFibersRunWhenRootWaitsInSpawnOrder() throws {
        var order: [String] = []
        let a = Green.spawn { order.append("a") }
        let b = Green.spawn { order.append("b") }
        XCTAssertEqual(order, [], "spawned fibers wait until the root context waits")
        try a.value
        try b.value
        XCTAssertEqual(order, ["a", "b"])
    }

    func testValueReturnsResultAndRethrowsError() throws {
        let ok = Green.spawn { 41 + 1 }
        let bad = Green.spawn { () throws -> Int in throw TestError(code: 7) }
        XCTAssertEqual(try ok.value, 42)
        XCTAssertThrowsError(try bad.value) { XCTAssertEqual($0 as? TestError, TestError(code: 7)) }
        if case .failure(let e)? = bad.outcome { XCTAssertEqual(e as? TestError, TestError(code: 7)) } else { XCTFail() }
    }

    func testYieldInterleaves() throws {
        var log: [String] = []
        let a = Green.spawn { for i in 0..<3 { log.append("a\(i)"); try Green.yield() } }
        let b = Green.spawn { for i in 0..<3 { log.append("b\(i)"); try Green.yield() } }
        try Green.joinAll([a, b])
        XCTAssertEqual(log, ["a0", "b0", "a1", "b1", "a2", "b2"])
    }

    func testStates() throws {
        let e = Event()
        let f = Green.spawn { try e.wait() }
        XCTAssertEqual(f.state, .ready)
        try Green.yield()
        XCTAssertEqual(f.state, .parked)
        var seen: FiberState?
        let g = Green.spawn { seen = Fiber.current.state }
        try g.join()
        XCTAssertEqual(seen, .running)
        e.set()
        try f.join()
        XCTAssertEqual(f.state, .done)
    }

    func testCurrentFiberAndNames() throws {
        let root = Fiber.current
        XCTAssertEqual(root.name, "root")
        let f = Green.spawn(name: "worker") { Fiber.current.name }
        XCTAssertEqual(try f.value, "worker")
        XCTAssertTrue(Fiber.current === root)
        let g = Green.spawn { ObjectIdentifier(Fiber.current) } // (returning the fiber itself would be a retain cycle)
        XCTAssertEqual(try g.value, ObjectIdentifier(g))
    }

    func testSleepingFibersOverlap() throws {
        // 100 fibers × 200 ms: sequentially 20 s; concurrently about 0.2 s.
        let ms = try elapsedMilliseconds {
            let fibers = (0..<100).map { _ in Green.spawn { try Green.sleep(for: .milliseconds(200)) } }
            try Green.joinAll(fibers)
        }
        XCTAssertGreaterThanOrEqual(ms, 200)
        XCTAssertLessThan(ms, 5_000, "sleeps must overlap")
    }

    func testSleepOrderFollowsDeadlines() throws {
        var order: [Int] = []
        let fibers = [30, 10, 20].map { ms in Green.spawn { try Green.sleep(for: .milliseconds(ms)); order.append(ms) } }
        try Green.joinAll(fibers)
        XCTAssertEqual(order, [10, 20, 30])
    }

    func testSleepNeverReturnsEarly() throws {
        for _ in 0..<20 {
            let deadline = Deadline.after(.milliseconds(3))
            try Green.sleep(until: deadline)
            XCTAssertGreaterThanOrEqual(Deadline.now, deadline)
        }
    }

    func testTenThousandFibers() throws {
        var sum = 0
        let fibers = (0..<10_000).map { i in Green.spawn { try Green.yield(); sum += i; return i } }
        var joined = 0
        for (i, f) in fibers.enumerated() { joined += try f.value; XCTAssertEqual(f.state, .done); _ = i }
        XCTAssertEqual(sum, (0..<10_000).reduce(0, +))
        XCTAssertEqual(joined, sum)
        XCTAssertEqual(Hub.current.liveFibers, 0)
    }

    func testStacksAreReused() throws {
        // Many short-lived fibers in sequence must not grow the process map count.
        for _ in 0..<3 { try Green.spawn { }.join() }
        let before = mapCount()
        for _ in 0..<2_000 { try Green.spawn { }.join() }
        XCTAssertLessThan(mapCount() - before, 10)
    }

    func testCancelWhileSleeping() throws {
        var reached = false
        let f = Green.spawn { try Green.sleep(for: .seconds(3600)); reached = true }
        try Green.yield()
        XCTAssertEqual(f.state, .parked)
        f.cancel()
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
        XCTAssertFalse(reached)
        XCTAssertTrue(f.isCancelled)
    }

    func testCancelBeforeStartNeverRunsBody() throws {
        var ran = false
        let f = Green.spawn { ran = true }
        f.cancel()
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
        XCTAssertFalse(ran)
    }

    func testCancelIsDeliveredOnceAndCleanupMayWait() throws {
        var cleanedUp = false
        let f = Green.spawn {
            do { try Green.sleep(for: .seconds(3600)) } catch is CancellationError {
                try Green.sleep(for: .milliseconds(1)) // a cleanup wait works
                cleanedUp = true
            }
        }
        try Green.yield()
        f.cancel()
        try f.value
        XCTAssertTrue(cleanedUp)
    }

    func testCancelRunningFiberHitsNextWait() throws {
        var steps = 0
        let f = Green.spawn {
            steps += 1
            Fiber.current.cancel()  // pending: no wait yet
            steps += 1
            try Green.yield()       // throws here
            steps += 1
        }
        XCTAssertThrowsError(try f.value)
        XCTAssertEqual(steps, 2)
    }

    func testCancelWhileJoining() throws {
        let blocker = Event()
        let target = Green.spawn { try blocker.wait() }
        let joiner = Green.spawn { try target.join() }
        try Green.yield()
        joiner.cancel()
        XCTAssertThrowsError(try joiner.value) { XCTAssertTrue($0 is CancellationError) }
        blocker.set()
        try target.value
    }

    func testJoinDeadline() throws {
        let f = Green.spawn { try Green.sleep(for: .seconds(3600)) }
        XCTAssertThrowsError(try f.join(until: .after(.milliseconds(20)))) { XCTAssertTrue($0 is TimeoutError) }
        f.cancel()
        XCTAssertThrowsError(try f.value)
    }

    func testWaitThatCanNeverFinishReportsDeadlock() throws {
        let never = Event()
        XCTAssertThrowsError(try never.wait()) { XCTAssertEqual($0 as? GreenError, .deadlock) }
        let stuck = Green.spawn { try never.wait() }
        XCTAssertThrowsError(try stuck.value) { XCTAssertEqual($0 as? GreenError, .deadlock) }
        stuck.cancel()
        XCTAssertThrowsError(try stuck.value) { XCTAssertTrue($0 is CancellationError) }
    }

    func testFiberLocals() throws {
        let local = FiberLocal<Int>(default: -1)
        local.value = 100 // root's own
        let fibers = (0..<5).map { i in
            Green.spawn { () -> Int in
                local.value = i
                try Green.yield()
                return local.value
            }
        }
        XCTAssertEqual(try fibers.map { try $0.value }, [0, 1, 2, 3, 4])
        XCTAssertEqual(local.value, 100)
        XCTAssertEqual(try Green.spawn { local.value }.value, -1)
    }

    func testErrnoIsPerFiber() throws {
        let f = Green.spawn { () -> Int32 in
            errno = 11
            try Green.sleep(for: .milliseconds(5))
            return errno
        }
        let g = Green.spawn { errno = 22; try Green.sleep(for: .milliseconds(1)) }
        XCTAssertEqual(try f.value, 11)
        try g.value
    }

    /// A switch swaps errno's value for the fiber it resumes (the fiber does
    /// not restore its own): across yields, across the ends of other fibers
    /// (whose stacks are given back on the way in) and for the root context.
    func testErrnoIsPerFiberAcrossYieldsAndEnds() throws {
        let f = Green.spawn { () -> [Int32] in
            errno = 11
            var seen: [Int32] = []
            for _ in 0..<4 {
                try Green.yield()
                seen.append(errno)
            }
            return seen
        }
        let enders = (0..<3).map { i in Green.spawn { errno = Int32(20 + i) } }
        errno = 33
        for e in enders { try e.value }
        XCTAssertEqual(errno, 33)
        XCTAssertEqual(try f.value, [11, 11, 11, 11])
        XCTAssertEqual(errno, 33)
    }

    func testAFinishedFiberRunsTheNextSpawnAsANewFiber() throws {
        // Spawned and joined one at a time, each fiber runs on the one the
        // last finished on (its stack and record, waiting in the C core for
        // reuse): nothing of the last one may show in the next, in Swift or
        // in its C record (name, lock-owner id, errno, cancellation).
        let local = FiberLocal<Int>(default: -1)
        var ids = Set<UInt64>(), ownerIDs = Set<Int32>(), stacks = Set<UInt>()
        for i in 0..<50 {
            let named = i % 4 < 2
            let f = Green.spawn(name: named ? "reused-\(i)" : "fiber") { () -> [String] in
                let me = Fiber.current, core = green_fiber_current()
                var lo: UnsafeMutableRawPointer?, hi: UnsafeMutableRawPointer?
                green_fiber_stack_bounds(core, &lo, &hi)
                stacks.insert(UInt(bitPattern: lo))
                let seen = ["\(errno)", "\(me.isCancelled)", me.name, String(cString: green_fiber_name(core)), "\(local.value)"]
                ids.insert(me.id)
                ownerIDs.insert(green_fiber_owner_id(core))
                errno = 77
                local.value = i
                if i % 2 == 0 { try Green.sleep(for: .seconds(60)) } // cancelled below
                return seen
            }
            if i > 0 { // the last one's fiber, stack and all: it has a stack before its first run
                var lo: UnsafeMutableRawPointer?, hi: UnsafeMutableRawPointer?
                green_fiber_stack_bounds(f.core, &lo, &hi)
                XCTAssertNotNil(lo, "spawn \(i) did not run on a finished fiber")
            }
            if i % 2 == 0 {
                try Green.yield() // it runs and sleeps
                f.cancel()
                XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
            } else {
                XCTAssertEqual(try f.value, ["0", "false", named ? "reused-\(i)" : "fiber", named ? "reused-\(i)" : "", "-1"])
            }
        }
        XCTAssertEqual(ids.count, 50) // a new id each time
        XCTAssertEqual(ownerIDs.count, 50) // and a new owner for locks
        XCTAssertLessThanOrEqual(stacks.count, 2) // ... on the stack the last one finished on
    }

    func testFibersTakeTheirStacksWhenTheyFirstRun() throws {
        /// The lowest address of the running fiber's stack: which stack it runs on.
        func stackAddress() -> UInt {
            var lo: UnsafeMutableRawPointer?, hi: UnsafeMutableRawPointer?
            green_fiber_stack_bounds(green_fiber_current(), &lo, &hi)
            return UInt(bitPattern: lo)
        }
        // 10,000 made before any runs: each takes the stack the one before
        // it just gave back, so they run on a few stacks (each on its own
        // before, 10,000 of them).
        // (The first 16 to finish keep theirs, waiting for the next spawns:
        // scheduler.c's IDLE_FIBERS_KEPT.)
        let quick = (0..<10_000).map { _ in Green.spawn { stackAddress() } }
        var stacks = Set<UInt>()
        for f in quick { stacks.insert(try f.value) }
        XCTAssertLessThanOrEqual(stacks.count, 16 + 4)

        // Fibers that park keep the stack they took: 1,000 alive at once on
        // 1,000 stacks, each finding its locals as it left them.
        let parked = (0..<1_000).map { i in
            Green.spawn { () -> [UInt] in
                let mine = [UInt(i), stackAddress()]
                try Green.yield()
                return mine + [stackAddress()]
            }
        }
        let results = try parked.map { try $0.value }
        XCTAssertTrue(results.map { $0[0] } == (0..<1_000).map(UInt.init))
        XCTAssertEqual(Set(results.map { $0[1] }).count, 1_000)
        XCTAssertTrue(results.allSatisfy { $0[1] == $0[2] && $0[1] != 0 })

        // Twelve stack sizes alive at once (the pool keeps eight size
        // classes; the rest are mapped one by one, at spawn): every fiber
        // gets at least what it asked for, and the pool's count of stacks
        // promised stays right for the spawns after.
        let sizes = (0..<12).map { 64 * 1024 * ($0 + 1) }
        let mixed = (0..<240).map { i in
            Green.spawn(stackSize: sizes[i % 12]) { () -> Int in
                func down(_ n: Int) -> Int { n == 0 ? 0 : down(n - 1) + 1 }
                try Green.yield()
                return down(sizes[i % 12] / 1024) // well within the size asked for
            }
        }
        for (i, f) in mixed.enumerated() { XCTAssertEqual(try f.value, sizes[i % 12] / 1024) }
        for _ in 0..<1_000 { XCTAssertEqual(try Green.spawn { 7 }.value, 7) }
        XCTAssertEqual(Hub.current.liveFibers, 0)

        // The pool counts its promises right: 1,000 fibers alive at once
        // again and again take the 1,000 free stacks of the second part,
        // and no new one is carved (a promise kept after its fiber ran
        // would carve 1,000 more each round).
        let carved = green_sched_stacks_carved(green_sched_current())
        for _ in 0..<5 {
            let round = (0..<1_000).map { _ in Green.spawn { try Green.yield() } }
            for f in round { try f.value }
        }
        XCTAssertEqual(green_sched_stacks_carved(green_sched_current()), carved)
    }

    func testStackSizeOption() throws {
        let f = Green.spawn(stackSize: 1 << 20) { () -> Int in
            func down(_ n: Int) -> Int { n == 0 ? 0 : down(n - 1) + 1 }
            return down(10_000)
        }
        XCTAssertEqual(try f.value, 10_000)
    }

    func testStackOverflowIsReportedByName() throws {
        let r = try runHelper(["overflow"])
        XCTAssertEqual(r.reason, .uncaughtSignal)
        XCTAssertEqual(r.status, SIGSEGV)
        XCTAssertTrue(r.stderr.contains("fiber stack overflow in deep-recursion"), r.stderr)
    }

    func testExclusivityAccessesAcrossParksDoNotTrap() throws {
        XCTAssertTrue(green_exclusivity_hooks_available())
        let ok = try runHelper(["exclusivity"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("overlapping accesses finished: true"), ok.stdout)
        XCTAssertTrue(green_exclusivity_fast_path(), "the TLS probe should find the access-set head")
        let slow = try runHelper(["exclusivity"], environment: ["GREEN_EXCLUSIVITY_SLOW_PATH": "1"])
        XCTAssertEqual(slow.status, 0, slow.stderr)
        // A conflict within one fiber is still caught.
        let conflict = try runHelper(["exclusivity-still-checked"])
        XCTAssertNotEqual(conflict.status, 0)
        XCTAssertTrue(conflict.stderr.contains("Simultaneous accesses"), conflict.stderr)
        // Without the per-fiber contexts the same program traps: the test is real.
        let broken = try runHelper(["exclusivity"], environment: ["GREEN_EXCLUSIVITY_HOOKS": "0"])
        XCTAssertNotEqual(broken.status, 0)
        XCTAssertTrue(broken.stderr.contains("Simultaneous accesses"), broken.stderr)
    }

    func testHubsOfExitedThreadsAreFreed() throws {
        func openFds() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0 }
        func runThreads(_ n: Int) {
            let done = DispatchGroup()
            for _ in 0..<n {
                done.enter()
                Thread {
                    let f = Green.spawn { try Green.sleep(for: .milliseconds(1)) }
                    try? f.value
                    done.leave()
                }.start()
            }
            done.wait()
            usleep(50_000) // let the threads finish exiting
        }
        runThreads(5) // warm-up: the thread pool, Foundation's own fds
        let before = openFds()
        runThreads(50)
        // Each hub owns an epoll fd and an eventfd; 50 leaked hubs would leave 100 open.
        XCTAssertLessThan(openFds() - before, 10)
    }

    func testForkLeavesAWorkingHubInTheChild() throws {
        if ProcessInfo.processInfo.environment["GREEN_SANITIZER"] == "thread" {
            // ThreadSanitizer does not support fork() in a multithreaded
            // process (the child keeps its view of threads that are gone);
            // fork is tested in the normal run and under AddressSanitizer.
            throw XCTSkip("fork is not supported under ThreadSanitizer")
        }
        let r = try runHelper(["fork"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("child exit status: 0, signalled: 0; parent hooks: [\"prepare\", \"parent\"]"), r.stdout + r.stderr)
    }

    func testForkChildsFiberParkedInTheEdgeSetWaitsOnInItsOwn() throws {
        if ProcessInfo.processInfo.environment["GREEN_SANITIZER"] == "thread" {
            throw XCTSkip("fork is not supported under ThreadSanitizer") // as above
        }
        // A linked program's fork child keeps its hub's fibers: one parked on
        // a TCP read in the hub's edge-triggered set (one kernel object with
        // the parent's) is woken when the child's hub lets go of that set,
        // reads again, waits in a set of the child's own, and gets its bytes.
        let r = try runHelper(["fork-edge-wait"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("child exit status: 0, signalled: 0; parent's reader: cancelled"), r.stdout + r.stderr)
    }

    func testHubABIIsInstalled() throws {
        _ = Hub.current
        let abi = try XCTUnwrap(green_hub_abi_get())
        XCTAssertEqual(abi.pointee.version, GREEN_HUB_ABI_VERSION)
        XCTAssertNotNil(green_parkable_fiber(), "the root context may park")
        // The C path: sleep through the table from a fiber.
        let f = Green.spawn { () -> Int32 in abi.pointee.sleep_until(green_now_ns() + 2_000_000, 0) }
        XCTAssertEqual(try f.value, 0)
        // run_blocking runs on another thread while this hub keeps going.
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(1)); ticks += 1 } }
        let blocking = Green.spawn { () -> Int32 in
            abi.pointee.run_blocking({ _ in usleep(50_000) }, nil)
        }
        XCTAssertEqual(try blocking.value, 0)
        XCTAssertGreaterThan(ticks, 0, "the hub ran other fibers during run_blocking")
        ticker.cancel()
        try? ticker.join()
    }

    func testThreadsHaveTheirOwnHubs() throws {
        // Four OS threads, each with its own hub running 50 sleeping fibers.
        let results = ResultsBox()
        let done = DispatchGroup()
        for i in 0..<4 {
            done.enter()
            Thread {
                let fibers = (0..<50).map { j in Green.spawn { try Green.sleep(for: .milliseconds(5)); return j } }
                let sum = (try? fibers.reduce(0) { $0 + (try $1.value) }) ?? -1
                results.set(i, sum)
                done.leave()
            }.start()
        }
        done.wait()
        XCTAssertEqual(results.values, Array(repeating: (0..<50).reduce(0, +), count: 4))
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage = [Int](repeating: 0, count: 4)
    func set(_ i: Int, _ v: Int) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return storage }
}

func mapCount() -> Int {
    (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8))?.split(separator: "\n").count ?? 0
}
