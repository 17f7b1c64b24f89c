import Foundation
import Glibc
import XCTest
@testable import Green

/// Signals as fibers, and waiting for child processes without blocking the hub.
final class ProcessTests: XCTestCase {
    func spawnProcess(_ args: [String]) -> pid_t {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, args[0], nil, nil, &argv, environ), 0)
        return pid
    }

    func testSignalHandlerRunsAsAFiber() throws {
        let hub = Hub.current
        let handled = AsyncResult<String>()
        var count = 0
        let handler = Green.onSignal(SIGUSR1) {
            count += 1
            try? Green.sleep(for: .milliseconds(2)) // a handler may park
            handled.set("handled on \(Fiber.current.name)")
        }
        defer { handler.cancel() }
        hub.beginExternalWork()
        defer { hub.endExternalWork() }
        Thread { usleep(5_000); kill(getpid(), SIGUSR1) }.start()
        XCTAssertEqual(try handled.get(until: .after(.seconds(10))), "handled on signal handler")
        XCTAssertEqual(count, 1)
    }

    func testWaitpidOnFibersOverlaps() throws {
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(5)); ticks += 1 } }
        // 10 children × 200 ms: 2 s if each waitpid blocked the hub.
        let ms = try elapsedMilliseconds {
            let fibers = (0..<10).map { i in
                Green.spawn { () -> Int32 in
                    let pid = self.spawnProcess(["/bin/sh", "-c", "sleep 0.2; exit \(i)"])
                    var status: Int32 = 0
                    XCTAssertEqual(waitpid(pid, &status, 0), pid)
                    return (status >> 8) & 0xff
                }
            }
            XCTAssertEqual(try fibers.map { try $0.value }, Array(0..<10))
        }
        ticker.cancel()
        XCTAssertLessThan(ms, 1_500)
        XCTAssertGreaterThan(ticks, 10, "the hub ran while children were awaited")
    }

    func testWaitForAnyChildAndErrors() throws {
        let f = Green.spawn { () -> (pid_t, pid_t, Int32, pid_t, Int32) in
            let pid = self.spawnProcess(["/bin/sh", "-c", "sleep 0.05; exit 4"])
            var status: Int32 = 0
            let got = Glibc.wait(&status)                 // any child: the polling path
            let none = waitpid(-1, nil, 0)                // no children left
            let e = errno
            return (pid, got, (status >> 8) & 0xff, none, e)
        }
        let (pid, got, code, none, e) = try f.value
        XCTAssertEqual(got, pid)
        XCTAssertEqual(code, 4)
        XCTAssertEqual(none, -1)
        XCTAssertEqual(e, ECHILD)
    }

    func testSystemRunsOffTheHub() throws {
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(5)); ticks += 1 } }
        let status = try Green.spawn { system("sleep 0.2; exit 3") }.value
        ticker.cancel()
        XCTAssertEqual((status >> 8) & 0xff, 3)
        XCTAssertGreaterThan(ticks, 10)
    }
}
