import XCTest
@testable import Green

final class TimeoutTests: XCTestCase {
    func testScopeFiresWhileParked() throws {
        var after = false
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(20)) {
            try Green.sleep(for: .seconds(3600))
            after = true
        }) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertFalse(after)
    }

    func testScopeThatDoesNotFire() throws {
        let v = try Green.withTimeout(.seconds(10)) { () -> Int in
            try Green.sleep(for: .milliseconds(1))
            return 5
        }
        XCTAssertEqual(v, 5)
        // The stopped scope must not fire later.
        try Green.sleep(for: .milliseconds(20))
    }

    func testScopeExpiredWhileRunningHitsNextWait() throws {
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(5)) {
            let until = Deadline.after(.milliseconds(30))
            while Deadline.now < until {} // busy: cannot be interrupted
            try Green.yield()             // the expired scope is delivered here
            XCTFail("yield should have thrown")
        }) { XCTAssertTrue($0 is TimeoutError) }
    }

    func testNestedScopesOuterWins() throws {
        var innerCaught = false
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(10)) {
            do {
                try Green.withTimeout(.seconds(10)) { try Green.sleep(for: .seconds(3600)) }
            } catch is TimeoutError {
                innerCaught = true
                throw TimeoutError()
            }
        }) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertTrue(innerCaught)
    }

    func testInnerScopeFiresOuterContinues() throws {
        let r = try Green.withTimeout(.seconds(10)) { () -> String in
            do {
                try Green.withTimeout(.milliseconds(5)) { try Green.sleep(for: .seconds(3600)) }
                return "no"
            } catch is TimeoutError {
                try Green.sleep(for: .milliseconds(1)) // outer scope still fine
                return "inner fired"
            }
        }
        XCTAssertEqual(r, "inner fired")
    }

    func testTimeoutScopeInterruptsEachWaitKind() throws {
        let event = Event()
        let lock = Lock()
        let sem = Semaphore(value: 0)
        let chan = Channel<Int>(capacity: .rendezvous)
        let full = Channel<Int>(capacity: .bounded(1))
        try full.send(0)
        let result = AsyncResult<Int>()
        let blocker = Green.spawn { try Green.sleep(for: .seconds(3600)) }
        let holder = Green.spawn { try lock.lock(); try Green.sleep(for: .seconds(3600)) }
        try Green.yield()
        let waits: [(String, () throws -> Void)] = [
            ("event", { try event.wait() }),
            ("lock", { try lock.lock() }),
            ("semaphore", { try sem.acquire() }),
            ("receive", { _ = try chan.receive() }),
            ("rendezvous send", { try chan.send(1) }),
            ("bounded send", { try full.send(1) }),
            ("async result", { _ = try result.get() }),
            ("join", { try blocker.join() }),
            ("select", { _ = try Green.select(chan.onReceive { _ in 1 }, event.onSet { 2 }) }),
            ("sleep", { try Green.sleep(for: .seconds(3600)) }),
        ]
        for (name, wait) in waits {
            XCTAssertThrowsError(try Green.withTimeout(.milliseconds(2)) { try wait() }, name) {
                XCTAssertTrue($0 is TimeoutError, name)
            }
        }
        blocker.cancel()
        holder.cancel()
        try? Green.joinAll([blocker, holder])
    }

    func testDeadlinesOnWaitingAPIs() throws {
        let soon = { Deadline.after(.milliseconds(2)) }
        XCTAssertThrowsError(try Event().wait(until: soon())) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertThrowsError(try Semaphore(value: 0).acquire(until: soon())) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertThrowsError(try Channel<Int>().receive(until: soon())) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertThrowsError(try AsyncResult<Int>().get(until: soon())) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertThrowsError(try Green.select(until: soon(), Event().onSet { 1 })) { XCTAssertTrue($0 is TimeoutError) }
        // A deadline already past still returns what is ready.
        let e = Event(); e.set()
        try e.wait(until: Deadline(nanoseconds: 0))
    }

    func testTimeoutAndDataAtTheSameTime() throws {
        // Data that is ready wins over a deadline that has also passed.
        let c = Channel<Int>()
        try c.send(9)
        XCTAssertEqual(try c.receive(until: Deadline(nanoseconds: 0)), 9)
    }

    func testOrElseCatchesOnlyItsOwnScope() throws {
        // Its own expiry: the fallback.
        let own = try Green.withTimeout(.milliseconds(5), orElse: { "fallback" }) { () -> String in
            try Green.sleep(for: .seconds(3600))
            return "finished"
        }
        XCTAssertEqual(own, "fallback")
        // Finishing in time: the body's value.
        XCTAssertEqual(try Green.withTimeout(.seconds(10), orElse: { 0 }) { 7 }, 7)
        // An enclosing scope's expiry passes through an inner orElse scope.
        var innerFallback = false
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(10)) {
            _ = try Green.withTimeout(.seconds(10), orElse: { innerFallback = true }) {
                try Green.sleep(for: .seconds(3600))
            }
        }) { XCTAssertTrue(($0 as? TimeoutError)?.isFromScope == true) }
        XCTAssertFalse(innerFallback)
        // A wait's own deadline is not a scope's.
        XCTAssertThrowsError(try Event().wait(until: .after(.milliseconds(1)))) {
            XCTAssertEqual(($0 as? TimeoutError)?.isFromScope, false)
        }
    }
}
