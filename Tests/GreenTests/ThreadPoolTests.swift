import Foundation
import XCTest
@testable import Green

final class ThreadPoolTests: XCTestCase {
    func testOffloadRunsOnAnotherThreadWhileHubKeepsRunning() throws {
        let hubThread = pthread_self()
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(1)); ticks += 1 } }
        let onOtherThread = try Green.offload { () -> Bool in
            usleep(100_000) // blocks its own thread, not the hub
            return pthread_equal(pthread_self(), hubThread) == 0
        }
        XCTAssertTrue(onOtherThread)
        XCTAssertGreaterThan(ticks, 5, "fibers ran while the offloaded call blocked")
        ticker.cancel()
        try? ticker.join()
    }

    func testOffloadUnderConcurrentUse() throws {
        // 64 fibers each offloading 8 blocking calls; results must all come back right.
        let fibers = (0..<64).map { i in
            Green.spawn { () -> Int in
                var sum = 0
                for j in 0..<8 { sum += try Green.offload { usleep(200); return i * 8 + j } }
                return sum
            }
        }
        let total = try fibers.reduce(0) { $0 + (try $1.value) }
        XCTAssertEqual(total, (0..<512).reduce(0, +))
    }

    func testOffloadOverlaps() throws {
        // 8 calls of 100 ms each on the pool: well under 8 × 100 ms.
        let ms = try elapsedMilliseconds {
            let fibers = (0..<8).map { _ in Green.spawn { try Green.offload { usleep(100_000) } } }
            try Green.joinAll(fibers)
            for f in fibers { try f.value }
        }
        XCTAssertLessThan(ms, 700)
    }

    func testOffloadRethrows() throws {
        XCTAssertThrowsError(try Green.offload { () throws -> Int in throw TestError(code: 5) }) {
            XCTAssertEqual($0 as? TestError, TestError(code: 5))
        }
    }

    func testCancelWhileOffloaded() throws {
        let f = Green.spawn { try Green.offload { usleep(50_000); return 1 } }
        try Green.yield()
        f.cancel()
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
        // The abandoned job completes later without waking anyone; the hub stays sane.
        try Green.sleep(for: .milliseconds(80))
        XCTAssertEqual(try Green.offload { 7 }, 7)
    }

    func testPostFromAnotherThread() throws {
        let hub = Hub.current
        let result = AsyncResult<String>()
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        Thread {
            usleep(10_000)
            hub.post { result.set("posted from \(pthread_equal(pthread_self(), hub.thread) != 0 ? "hub" : "elsewhere")") }
        }.start()
        XCTAssertEqual(try result.get(), "posted from hub")
    }

    func testCancelFromAnotherThread() throws {
        let hub = Hub.current
        let f = Green.spawn { try Green.sleep(for: .seconds(3600)) }
        try Green.yield()
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        Thread { usleep(5_000); f.cancel() }.start() // a fiber handle is Sendable: cancel() is thread-safe
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
    }
}
