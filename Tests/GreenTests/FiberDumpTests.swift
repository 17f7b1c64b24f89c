import Glibc
import XCTest
@testable import Green

final class FiberDumpTests: XCTestCase {
    func testDumpShowsStateAndWhatEachFiberWaitsOn() throws {
        let lock = Lock()
        try lock.lock()
        let event = Event()
        var fds: [Int32] = [0, 0]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        defer { fds.forEach { close($0) } }
        let sleeper = Green.spawn(name: "sleeper") { try Green.sleep(for: .seconds(3600)) }
        let locker = Green.spawn(name: "locker") { try lock.lock() }
        let waiter = Green.spawn(name: "waiter") { try event.wait() }
        let reader = Green.spawn(name: "reader") { () -> Int in var b: UInt8 = 0; return read(fds[0], &b, 1) }
        let fresh = Green.spawn(name: "not-started") {}
        try Green.sleep(for: .milliseconds(30))
        _ = fresh
        let dump = Hub.current.fiberDump()
        let byName = Dictionary(uniqueKeysWithValues: dump.map { ($0.name, $0) })
        XCTAssertEqual(dump.first?.name, "root")
        XCTAssertEqual(byName["sleeper"]?.waitingOn, "sleep")
        XCTAssertEqual(byName["locker"]?.waitingOn, "Lock")
        XCTAssertEqual(byName["waiter"]?.waitingOn, "Event")
        XCTAssertEqual(byName["reader"]?.waitingOn, "fd")
        XCTAssertEqual(byName["reader"]?.fd, fds[0])
        XCTAssertEqual(byName["reader"]?.fdEvents, "read")
        XCTAssertEqual(byName["sleeper"]?.state, .parked)
        XCTAssertNil(byName["not-started"], "finished fibers leave the dump")
        XCTAssertGreaterThanOrEqual(byName["sleeper"]!.parkedFor, .milliseconds(10))
        let text = Hub.current.fiberDumpText()
        XCTAssertTrue(text.contains("sleeper: parked on sleep for"), text)
        XCTAssertTrue(text.contains("reader: parked on fd \(fds[0]) (read)"), text)
        for f in [sleeper, locker, waiter] as [AnyFiber] { f.cancel() }
        reader.cancel()
        lock.unlock()
        for f in [sleeper, locker, waiter, reader] as [AnyFiber] { try? f.join() }
        XCTAssertNil(Hub.current.fiberDump().first { $0.name == "sleeper" })
    }

    func testBlockingMonitorNamesTheStallingFiberAndItsBacktrace() throws {
        let r = try runHelper(["monitor"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("has not switched fibers for"), r.stderr)
        XCTAssertTrue(r.stderr.contains("running: cruncher"), r.stderr)
        XCTAssertTrue(r.stderr.contains("backtrace of the stalled hub's thread"), r.stderr)
        XCTAssertTrue(r.stderr.contains("crunchWithoutParking"), r.stderr)
        XCTAssertTrue(r.stdout.contains("reports: 1"), r.stdout + r.stderr)
        let quiet = try runHelper(["monitor-quiet"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertTrue(quiet.stdout.contains("reports: 0"), quiet.stdout + quiet.stderr)
    }

    func testFiberDumpOnSignal() throws {
        let r = try runHelper(["dump-signal"], environment: ["GREEN_DUMP_SIGNAL": "USR2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("fiber(s) on this hub"), r.stderr)
        for i in 0..<3 { XCTAssertTrue(r.stderr.contains("sleeper-\(i): parked on sleep"), r.stderr) }
    }
}
