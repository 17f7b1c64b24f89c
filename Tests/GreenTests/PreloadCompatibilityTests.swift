import XCTest

/// Causes of real programs failing under `green run` (CPython's test suite,
/// Debian's programs), each reduced to a small C program of
/// Tests/PreloadPrograms that checks itself natively and under the preload.
final class PreloadCompatibilityTests: XCTestCase {
    var library = ""

    override func setUpWithError() throws {
        library = try Preload.library(for: self)
    }

    override class func tearDown() {
        Preload.removeScratch()
        super.tearDown()
    }

    /// multiprocessing.Lock: a sem_open semaphore shared by processes. glibc
    /// stores 128 in its "private" word for a shared one; read the other way
    /// round, a waiter parked where no other process could wake it.
    func testProcessSharedSemaphoresWakeAcrossProcesses() throws {
        try checkPreloadProgram("shared_semaphore", library: library, expect: [
            "named: 4 processes, counter 1200 (expected 1200)",
            "ping-pong with a forked child: 300 of 300 answered",
            "ping-pong with a native child: 300 of 300 answered",
            "shared_semaphore: all checks passed",
        ])
    }

    /// A write on a pipe's read end (or a read on its write end) can never
    /// become ready: it must fail with EBADF at once, not park forever.
    func testCallsOnTheWrongEndOfAPipeFailAtOnce() throws {
        try checkPreloadProgram("pipe_ends", library: library, expect: [
            "wrong ends: EBADF at once for read, readv, write and writev",
            "pipe_ends: all checks passed",
        ])
    }
}
