import Foundation
import XCTest
@testable import Green

/// Review findings of issue #14 in the Swift runtime: each test failed before its fix.
final class RuntimeReviewTests: XCTestCase {

    // MARK: 1. OS-thread locks at stable addresses; fork hooks read under their lock

    func testPthreadLockExcludesAcrossThreads() {
        let lock = PthreadLock()
        let address = lock.mutex
        final class Box: @unchecked Sendable { var n = 0 }
        let box = Box()
        let done = PthreadSemaphore()
        for _ in 0..<4 {
            OSThread.detach {
                for _ in 0..<10_000 { lock.locked { box.n += 1 } }
                done.signal()
            }
        }
        for _ in 0..<4 { done.wait() }
        XCTAssertEqual(lock.locked { box.n }, 40_000)
        XCTAssertEqual(lock.mutex, address, "the mutex never moves")
    }

    /// The fork handlers used to walk `forkHooks` without its lock, so a
    /// thread registering a hook during a fork could tear the list under them.
    func testForkHooksRunUnderTheHooksLock() throws {
        final class Probe: @unchecked Sendable {
            var active = false
            var heldInPrepare = false
            var heldInParent = false
        }
        let probe = Probe()
        /// Whether the lock is held (by anyone, this thread included: it is not recursive).
        func isHeld() -> Bool {
            let rc = pthread_mutex_trylock(forkHooksLock.mutex)
            if rc == 0 { pthread_mutex_unlock(forkHooksLock.mutex) }
            return rc == EBUSY
        }
        Green.onFork(
            prepare: { if probe.active { probe.heldInPrepare = isHeld() } },
            parent: { if probe.active { probe.heldInParent = isHeld() } },
            child: { if probe.active { _exit(isHeld() ? 3 : 0) } })
        probe.active = true
        let pid = fork()
        if pid == 0 { _exit(4) } // not reached: the child hook exits
        probe.active = false
        XCTAssertGreaterThan(pid, 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertEqual((status >> 8) & 0xff, 0, "the child's copy of the lock starts free")
        XCTAssertTrue(probe.heldInPrepare, "prepare hooks run holding the hooks lock")
        XCTAssertTrue(probe.heldInParent, "parent hooks run holding the hooks lock")
        XCTAssertFalse(isHeld(), "released after the fork")
        Green.onFork() // and registering still works
    }

    // MARK: 2. the thread pool's uninterruptible offload propagates the body's error

    func testUninterruptibleOffloadRethrowsTheBodysError() throws {
        let f = Green.spawn { () -> Int in
            try Green.offloadUninterruptibly { () throws(TestError) -> Int in throw TestError(code: 14) }
        }
        XCTAssertThrowsError(try f.value) { XCTAssertEqual($0 as? TestError, TestError(code: 14)) }
        let untyped = Green.spawn { () -> Int in
            try Green.offloadUninterruptibly { () throws -> Int in throw TestError(code: 15) }
        }
        XCTAssertThrowsError(try untyped.value) { XCTAssertEqual($0 as? TestError, TestError(code: 15)) }
        // A body that cannot throw makes a call that needs no `try`.
        let g = Green.spawn { Green.offloadUninterruptibly { 6 * 7 } }
        XCTAssertEqual(try g.value, 42)
    }
}

extension RuntimeReviewTests {
    // MARK: 4. listen(unixPath:) replaces only a socket file

    func testUnixListenLeavesANonSocketFileAlone() throws {
        let dir = NSTemporaryDirectory() + "green-unix-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(dir, 0o700), 0)
        defer { rmdir(dir) }
        let path = dir + "/data"
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(write(fd, "keep me", 7), 7)
        close(fd)

        XCTAssertThrowsError(try Socket.listen(unixPath: path)) {
            XCTAssertEqual(($0 as? SocketError)?.errno, EADDRINUSE)
        }
        XCTAssertEqual(readTextFile(path), "keep me", "the regular file survives")

        // A socket left by an earlier listener is still replaced.
        unlink(path)
        let first = try Socket.listen(unixPath: path)
        first.close()
        let second = try Socket.listen(unixPath: path)
        let client = Green.spawn { () -> [UInt8] in
            let c = try Socket.connect(unixPath: path)
            return try c.read()
        }
        let conn = try second.accept()
        try conn.writeAll("hi")
        conn.close()
        XCTAssertEqual(try client.value, Array("hi".utf8))
    }
}
