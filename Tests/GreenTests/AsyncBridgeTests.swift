import Foundation
import Synchronization
import XCTest
@testable import Green

final class AsyncBridgeTests: XCTestCase {
    func testFiberAwaitsAsyncFunctionWithoutBlockingTheHub() throws {
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(2)); ticks += 1 } }
        let v = try Green.await { () async throws -> Int in
            try await Task.sleep(for: .milliseconds(60))
            return 5
        }
        ticker.cancel()
        XCTAssertEqual(v, 5)
        XCTAssertGreaterThan(ticks, 5, "the hub ran other fibers while the task ran")
        XCTAssertThrowsError(try Green.await { () async throws -> Int in throw TestError(code: 4) }) {
            XCTAssertEqual($0 as? TestError, TestError(code: 4))
        }
    }

    func testCancellingTheFiberCancelsTheTask() throws {
        let taskSawCancellation = Atomic<Bool>(false)
        let f = Green.spawn {
            try Green.await {
                do { try await Task.sleep(for: .seconds(3600)) } catch { taskSawCancellation.store(true, ordering: .relaxed) ; throw error }
            }
        }
        try Green.yield()
        f.cancel()
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
        // The task learns of it on its own thread; give it a moment (generous bound).
        let deadline = Deadline.after(.seconds(5))
        while !taskSawCancellation.load(ordering: .relaxed) && Deadline.now < deadline { try Green.sleep(for: .milliseconds(1)) }
        XCTAssertTrue(taskSawCancellation.load(ordering: .relaxed))
    }

    func testAsyncCodeAwaitsAFibersResult() throws {
        let hub = Hub.current
        let fiber = Green.spawn { () -> Int in try Green.sleep(for: .milliseconds(20)); return 9 }
        let failing = Green.spawn { () throws -> Int in try Green.sleep(for: .milliseconds(5)); throw TestError(code: 6) }
        let answer = AsyncResult<String>()
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        let a = HubBound(answer) // fibers are Sendable; an AsyncResult is opened on its hub only
        Task {
            let v = try await fiber.result
            var text = "value \(v)"
            do { _ = try await failing.result } catch { text += ", error \((error as? TestError)?.code ?? -1)" }
            hub.postInternal { a.value.set(text) }
        }
        XCTAssertEqual(try answer.get(until: .after(.seconds(10))), "value 9, error 6")
    }

    func testCancellingTheAwaitingTaskCancelsTheFiber() throws {
        let hub = Hub.current
        let fiber = Green.spawn { try Green.sleep(for: .seconds(3600)) }
        let answer = AsyncResult<String>()
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        let a = HubBound(answer)
        let task = Task {
            do { try await fiber.result; hub.postInternal { a.value.set("finished") } }
            catch { hub.postInternal { a.value.set(error is CancellationError ? "cancelled" : "other \(error)") } }
        }
        try Green.sleep(for: .milliseconds(20))
        task.cancel()
        XCTAssertEqual(try answer.get(until: .after(.seconds(10))), "cancelled")
        XCTAssertTrue(fiber.isCancelled)
    }
}
