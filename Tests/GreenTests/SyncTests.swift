import XCTest
@testable import Green

final class SyncTests: XCTestCase {
    func testEventWakesAllWaiters() throws {
        let e = Event()
        var woken = 0
        let fibers = (0..<5).map { _ in Green.spawn { try e.wait(); woken += 1 } }
        try Green.yield()
        XCTAssertEqual(woken, 0)
        e.set()
        try Green.joinAll(fibers)
        XCTAssertEqual(woken, 5)
        XCTAssertTrue(e.isSet)
        try e.wait() // set: returns at once
        e.clear()
        XCTAssertFalse(e.isSet)
    }

    func testAsyncResultValueAndError() throws {
        let r = AsyncResult<String>()
        let readers = (0..<3).map { _ in Green.spawn { try r.get() } }
        Green.spawn { try Green.sleep(for: .milliseconds(2)); r.set("hello") }
        XCTAssertEqual(try readers.map { try $0.value }, ["hello", "hello", "hello"])
        XCTAssertFalse(r.set("again"), "only the first set counts")
        let failing = AsyncResult<Int>()
        Green.spawn { failing.fail(TestError(code: 3)) }
        XCTAssertThrowsError(try failing.get()) { XCTAssertEqual($0 as? TestError, TestError(code: 3)) }
    }

    func testLockMutualExclusionAcrossParks() throws {
        let lock = Lock()
        var inside = 0, maxInside = 0, total = 0
        let fibers = (0..<10).map { _ in
            Green.spawn {
                for _ in 0..<3 {
                    try lock.withLock {
                        inside += 1; maxInside = max(maxInside, inside)
                        try Green.sleep(for: .milliseconds(1))
                        total += 1; inside -= 1
                    }
                }
            }
        }
        try Green.joinAll(fibers)
        for f in fibers { try f.value }
        XCTAssertEqual(maxInside, 1)
        XCTAssertEqual(total, 30)
    }

    func testLockIsOwnerChecked() throws {
        let lock = Lock()
        try lock.lock()
        XCTAssertThrowsError(try lock.lock()) { XCTAssertEqual($0 as? GreenError, .alreadyLocked) }
        // (An unlock by another fiber is a precondition failure: see
        // RuntimeReviewTests.testUnlockByNonOwnerIsAProgrammerError.)
        XCTAssertFalse(try Green.spawn { lock.tryLock() }.value)
        lock.unlock()
        XCTAssertFalse(lock.isLocked)
    }

    func testCancelWhileWaitingForLock() throws {
        let lock = Lock()
        try lock.lock()
        let waiter = Green.spawn { try lock.lock() }
        try Green.yield()
        waiter.cancel()
        XCTAssertThrowsError(try waiter.value) { XCTAssertTrue($0 is CancellationError) }
        lock.unlock()
        // The cancelled waiter left the queue: the next one gets the lock.
        XCTAssertTrue(try Green.spawn { try lock.lock(); lock.unlock(); return true }.value)
    }

    func testSemaphoreBoundsConcurrency() throws {
        let sem = Semaphore(value: 3)
        var running = 0, peak = 0
        let fibers = (0..<12).map { _ in
            Green.spawn {
                try sem.withPermit {
                    running += 1; peak = max(peak, running)
                    try Green.sleep(for: .milliseconds(2))
                    running -= 1
                }
            }
        }
        try Green.joinAll(fibers)
        XCTAssertEqual(peak, 3)
        XCTAssertEqual(sem.count, 3)
        XCTAssertTrue(sem.tryAcquire())
        XCTAssertEqual(sem.count, 2)
    }

    func testSemaphoreCancelledWaiterDoesNotSwallowRelease() throws {
        let sem = Semaphore(value: 0)
        let a = Green.spawn { try sem.acquire() }
        let b = Green.spawn { try sem.acquire(); return "b got it" }
        try Green.yield()
        a.cancel()
        try sem.release()
        XCTAssertEqual(try b.value, "b got it")
        XCTAssertThrowsError(try a.value)
    }

    func testBoundedSemaphoreRefusesOverRelease() throws {
        let sem = BoundedSemaphore(value: 1)
        try sem.acquire()
        try sem.release()
        XCTAssertThrowsError(try sem.release()) { XCTAssertEqual($0 as? GreenError, .semaphoreOverReleased) }
    }

    func testConditionProducerConsumer() throws {
        let cond = Condition()
        var items: [Int] = []
        var consumed: [Int] = []
        let consumer = Green.spawn {
            try cond.lock.withLock {
                while consumed.count < 5 {
                    while items.isEmpty { try cond.wait() }
                    consumed.append(items.removeFirst())
                }
            }
        }
        let producer = Green.spawn {
            for i in 0..<5 {
                try cond.lock.withLock { items.append(i); cond.signal() }
                try Green.sleep(for: .milliseconds(1))
            }
        }
        try producer.value
        try consumer.value
        XCTAssertEqual(consumed, [0, 1, 2, 3, 4])
    }

    func testConditionWaitTimesOutHoldingTheLockAgain() throws {
        let cond = Condition()
        try cond.lock.lock()
        XCTAssertThrowsError(try cond.wait(until: .after(.milliseconds(2)))) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertTrue(cond.lock.isLocked)
        cond.lock.unlock()
    }

    func testConditionBroadcastAndCancel() throws {
        let cond = Condition()
        var woken = 0
        let fibers = (0..<4).map { _ in Green.spawn { try cond.lock.withLock { try cond.wait(); woken += 1 } } }
        try Green.yield()
        fibers[0].cancel()
        try cond.lock.withLock { cond.broadcast() }
        try Green.joinAll(fibers)
        XCTAssertEqual(woken, 3)
        XCTAssertThrowsError(try fibers[0].value) { XCTAssertTrue($0 is CancellationError) }
    }

    func testCancelWhileWaitingOnEachPrimitive() throws {
        let event = Event()
        let sem = Semaphore(value: 0)
        let result = AsyncResult<Int>()
        let fibers = [
            Green.spawn { try event.wait() },
            Green.spawn { try sem.acquire() },
            Green.spawn { _ = try result.get() },
            Green.spawn { try Green.sleep(for: .seconds(3600)) },
        ]
        try Green.yield()
        for f in fibers { XCTAssertEqual(f.state, .parked); f.cancel() }
        for f in fibers { XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) } }
    }
}
