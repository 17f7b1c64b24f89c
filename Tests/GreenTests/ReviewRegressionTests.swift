import Foundation
import XCTest
@testable import Green

/// Cases found in review: each failed before its fix.
final class ReviewRegressionTests: XCTestCase {
    func testCancelDuringSelectThatAlsoCompletesIsNotLost() throws {
        let ch = Channel<Int>()
        let s = Green.spawn { () -> String in
            let got = try Green.select(ch.onReceive { "got \($0!)" })
            do { try Green.sleep(for: .milliseconds(100)) } catch is CancellationError { return got + ", then cancelled" }
            return got + ", not cancelled"
        }
        try Green.yield()           // s parks in select
        s.cancel()                  // wakes it with the cancellation…
        try ch.send(1)              // …and the receive can complete too
        XCTAssertEqual(try s.value, "got 1, then cancelled")
    }

    func testRendezvousSelectSendIsWokenByALaterReceive() throws {
        let ch = Channel<Int>(capacity: .rendezvous)
        let sender = Green.spawn { try Green.select(until: .after(.seconds(5)), ch.onSend(7) { "sent" }) }
        try Green.yield()           // the select parks first
        XCTAssertEqual(try ch.receive(until: .after(.seconds(5))), 7)
        XCTAssertEqual(try sender.value, "sent")
    }

    func testForInOverChannelDoesNotSwallowTheTimeoutScope() throws {
        let ch = Channel<Int>()
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(20)) { for _ in ch {} }) {
            XCTAssertTrue($0 is TimeoutError)
        }
        let f = Green.spawn { () -> String in
            for _ in ch {}
            do { try Green.sleep(for: .seconds(3600)) } catch is CancellationError { return "cancelled at the next wait" }
            return "lost"
        }
        try Green.yield()
        f.cancel()
        XCTAssertEqual(try f.value, "cancelled at the next wait")
    }

    func testEventSetThenClearStillReleasesWaiters() throws {
        let e = Event()
        let waiters = (0..<3).map { _ in Green.spawn { try e.wait(until: .after(.seconds(5))) } }
        try Green.yield()
        e.set()
        e.clear()                   // a pulse: the waiters present at set() are released
        for w in waiters { try w.value }
        XCTAssertFalse(e.isSet)
    }

    func testHugeStackSizeFailsCleanly() throws {
        let f = Green.spawn(stackSize: 1 << 59) { 1 }
        XCTAssertThrowsError(try f.value) { XCTAssertEqual($0 as? GreenError, .outOfStacks(errno: EINVAL)) }
    }

    func testCancellingTheRootFromAnotherThread() throws {
        let hub = Hub.current
        let root = Fiber.current
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        Thread { usleep(5_000); root.cancel() }.start() // a fiber handle is Sendable: cancel() is thread-safe
        XCTAssertThrowsError(try Event().wait(until: .after(.seconds(10)))) { XCTAssertTrue($0 is CancellationError) }
    }
}
