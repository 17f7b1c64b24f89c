import CGreenCore
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

/// What `body` writes to fd 2 (stderr redirected to a file meanwhile).
func capturingStderr(_ body: () throws -> Void) rethrows -> String {
    let path = NSTemporaryDirectory() + "green-stderr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let file = open(path, O_CREAT | O_TRUNC | O_RDWR, 0o600)
    precondition(file >= 0, "cannot create \(path)")
    defer { unlink(path) }
    fflush(stderr)
    let saved = dup(2)
    dup2(file, 2)
    close(file)
    defer {
        fflush(stderr)
        dup2(saved, 2)
        close(saved)
    }
    try body()
    fflush(stderr)
    return readTextFile(path)
}

extension RuntimeReviewTests {
    // MARK: 5. an error nobody joined or read is printed, once, with the fiber's name

    final class IDBox { var id: UInt64 = 0 }

    func testUnobservedFiberErrorIsPrintedOnce() throws {
        let box = IDBox()
        let text = try capturingStderr {
            Green.spawn(name: "forgotten") { () throws -> Void in
                box.id = Fiber.current.id
                throw TestError(code: 5)
            }
            try Green.sleep(for: .milliseconds(1))
        }
        XCTAssertNotEqual(box.id, 0)
        let line = "green: fiber forgotten (#\(box.id)) failed: TestError(code: 5)\n"
        XCTAssertEqual(text.components(separatedBy: line).count - 1, 1, "printed once: \(text)")
    }

    func testKeptButNeverAskedFiberErrorIsPrintedWhenReleased() throws {
        var id: UInt64 = 0
        let text = try capturingStderr {
            var f: Fiber<Int>? = Green.spawn(name: "kept") { throw TestError(code: 6) }
            id = f!.id
            while f!.state != .done { try Green.yield() }
            f = nil
        }
        XCTAssertEqual(text, "green: fiber kept (#\(id)) failed: TestError(code: 6)\n")
    }

    func testGroupMemberErrorIsPrinted() throws {
        let text = try capturingStderr {
            let group = Group()
            try group.spawn(name: "member") { () throws -> Void in throw TestError(code: 7) }
            try group.join()
        }
        XCTAssertTrue(text.contains("green: fiber member (#"), text)
        XCTAssertTrue(text.contains(") failed: TestError(code: 7)"), text)
    }

    func testJoinedReadOrCancelledFiberErrorsStaySilent() throws {
        let text = try capturingStderr {
            let read = Green.spawn(name: "read") { () throws -> Int in throw TestError(code: 1) }
            XCTAssertThrowsError(try read.value)
            let joined = Green.spawn(name: "joined") { () throws -> Int in throw TestError(code: 2) }
            try joined.join()
            let inspected = Green.spawn(name: "inspected") { () throws -> Int in throw TestError(code: 3) }
            while inspected.outcome == nil { try Green.yield() }
            let all = (0..<3).map { i in Green.spawn(name: "all-\(i)") { () throws -> Void in throw TestError(code: i) } }
            try Green.joinAll(all)
            Green.spawn(name: "cancelled") { try Green.sleep(for: .seconds(60)) }.cancel()
            let group = Group()
            try group.spawn(name: "group-cancelled") { try Green.sleep(for: .seconds(60)) }
            group.cancelAll()
            try group.join()
            Green.spawn(name: "fine") { 42 }
            try Green.sleep(for: .milliseconds(1))
        }
        XCTAssertEqual(text, "")
    }
}

extension RuntimeReviewTests {
    // MARK: 6. Lock.unlock() by a non-owner is a programmer error; one spelling for the current fiber

    func testUnlockByNonOwnerIsAProgrammerError() throws {
        let byOther = try runHelper(["unlock-by-non-owner"])
        XCTAssertEqual(byOther.reason, .uncaughtSignal, byOther.stdout + byOther.stderr)
        XCTAssertFalse(byOther.stdout.contains("not stopped"))
        XCTAssertTrue(byOther.stderr.contains("green: Lock.unlock() by a fiber that does not hold the lock"), byOther.stderr)

        let unlocked = try runHelper(["unlock-unlocked"])
        XCTAssertEqual(unlocked.reason, .uncaughtSignal, unlocked.stdout + unlocked.stderr)
        XCTAssertTrue(unlocked.stderr.contains("green: Lock.unlock() of a lock that is not locked"), unlocked.stderr)
    }

    func testPrimitiveUsedOnAnotherHubStopsDebugBuilds() throws {
        let run = try runHelper(["wrong-hub"])
        #if DEBUG
        XCTAssertEqual(run.reason, .uncaughtSignal, run.stdout + run.stderr)
        XCTAssertFalse(run.stdout.contains("not stopped"))
        XCTAssertTrue(run.stderr.contains("green: a primitive (Event) was used on a thread other than its hub's"), run.stderr)
        #else
        XCTAssertTrue(run.stdout.contains("not stopped"), "release builds do not check hub affinity")
        #endif
    }

    func testWakeReasonsMatchTheCCore() {
        let all: [WakeReason] = [.normal, .deadline, .cancelled, .timeoutScope, .deadlock, .fdClosed, .signal]
        let c: [green_wake_reason] = [GREEN_WAKE_NORMAL, GREEN_WAKE_DEADLINE, GREEN_WAKE_CANCELLED, GREEN_WAKE_TIMEOUT_SCOPE,
                                      GREEN_WAKE_DEADLOCK, GREEN_WAKE_FD_CLOSED, GREEN_WAKE_SIGNAL]
        for (reason, raw) in zip(all, c) {
            XCTAssertEqual(reason.raw, Int32(raw.rawValue))
            XCTAssertEqual(WakeReason(Int32(raw.rawValue)), reason)
        }
        XCTAssertTrue(WakeReason.isNormal(0))
    }

    func testUnlockByOwnerNeedsNoTry() throws {
        let lock = Lock()
        try lock.lock()
        lock.unlock()
        XCTAssertFalse(lock.isLocked)
        XCTAssertEqual(try lock.withLock { 7 }, 7)
        XCTAssertFalse(lock.isLocked)
    }

    func testFiberCurrentIsTheRunningFiber() throws {
        let root = Fiber.current
        XCTAssertEqual(root.name, "root")
        let f = Green.spawn(name: "who") { () -> Bool in Fiber.current.name == "who" && Fiber.current !== root }
        XCTAssertTrue(try f.value)
        XCTAssertTrue(Fiber.current === root)
    }
}
