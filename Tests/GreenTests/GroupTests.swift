import XCTest
@testable import Green

final class GroupTests: XCTestCase {
    func testGroupJoinWaitsForAll() throws {
        let g = Group()
        var done = 0
        for i in 0..<20 { try g.spawn { try Green.sleep(for: .milliseconds(i % 5)); done += 1 } }
        XCTAssertEqual(g.count, 20)
        try g.join()
        XCTAssertEqual(done, 20)
        XCTAssertEqual(g.count, 0)
        try g.join() // empty: returns at once
    }

    func testGroupCancelAll() throws {
        let g = Group()
        let fibers = try (0..<5).map { _ in try g.spawn { try Green.sleep(for: .seconds(3600)) } }
        try Green.yield()
        g.cancelAll()
        try g.join()
        for f in fibers { XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) } }
    }

    func testPoolBoundsConcurrency() throws {
        let pool = Pool(size: 4)
        var running = 0, peak = 0, finished = 0
        let ms = try elapsedMilliseconds {
            for _ in 0..<40 {
                try pool.spawn {
                    running += 1; peak = max(peak, running)
                    try Green.sleep(for: .milliseconds(10))
                    running -= 1; finished += 1
                }
            }
            try pool.join()
        }
        XCTAssertEqual(peak, 4)
        XCTAssertEqual(finished, 40)
        XCTAssertEqual(pool.freeCount, 4)
        XCTAssertGreaterThanOrEqual(ms, 100, "40 jobs of 10 ms, 4 at a time, take at least 100 ms")
    }

    func testPoolSlotFreedWhenMemberFails() throws {
        let pool = Pool(size: 1)
        let bad = try pool.spawn { () throws -> Int in throw TestError(code: 1) }
        let good = try pool.spawn { 2 }
        XCTAssertThrowsError(try bad.value)
        XCTAssertEqual(try good.value, 2)
    }
}
