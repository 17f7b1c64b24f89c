import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
@testable import Green

/// Foundation's blocking calls, used the way synchronous Swift code uses them,
/// on many fibers of one hub: each waits by parking its fiber, so the waits
/// overlap instead of running one after another.
final class FoundationWaitsTests: XCTestCase {
    final class Box: @unchecked Sendable { var value = 0 }
    final class TextBox: @unchecked Sendable { var value = "" }

    func testRecursiveLockAndConditionLockPark() throws {
        let recursive = NSRecursiveLock()
        let conditionLock = NSConditionLock(condition: 0)
        var order: [String] = []
        let a = Green.spawn {
            recursive.lock(); recursive.lock() // the owner again
            order.append("A holds")
            try Green.sleep(for: .milliseconds(30))
            recursive.unlock(); recursive.unlock()
            // (with a deadline: this toolchain's Foundation traps on the
            // distantFuture that lock(whenCondition:) passes, natively too)
            XCTAssertTrue(conditionLock.lock(whenCondition: 1, before: Date(timeIntervalSinceNow: 30))) // waits for B
            order.append("A saw 1")
            conditionLock.unlock(withCondition: 2)
        }
        let b = Green.spawn {
            try Green.sleep(for: .milliseconds(5))
            recursive.lock() // held by A, parked
            order.append("B holds")
            recursive.unlock()
            conditionLock.lock()
            conditionLock.unlock(withCondition: 1)
            XCTAssertTrue(conditionLock.lock(whenCondition: 2, before: Date(timeIntervalSinceNow: 30)))
            order.append("B saw 2")
            conditionLock.unlock()
        }
        try Green.joinAll([a, b])
        XCTAssertEqual(order, ["A holds", "B holds", "A saw 1", "B saw 2"])
    }

    func testOperationQueueWaitUntilAllOperationsAreFinishedParks() throws {
        let fibers = 8
        let started = Box()
        let ms = try elapsedMilliseconds {
            let all = (0..<fibers).map { _ in
                Green.spawn { () -> Int in
                    let queue = OperationQueue()
                    queue.addOperation { Thread.sleep(forTimeInterval: 0.2) }
                    started.value += 1
                    queue.waitUntilAllOperationsAreFinished()
                    return started.value
                }
            }
            XCTAssertEqual(try all.map { try $0.value }, Array(repeating: fibers, count: fibers),
                           "every fiber was waiting before the first was woken")
        }
        // (Dispatch runs the operations on as many threads as there are CPUs,
        // so the time says little here; the order above proves the overlap.)
        XCTAssertLessThan(ms, Double(fibers) * 200 * 4, "finished")
    }

    func testProcessWaitUntilExitParks() throws {
        let fibers = 8
        let started = Box()
        let ms = try elapsedMilliseconds {
            let all = (0..<fibers).map { _ in
                Green.spawn { () -> [Int32] in
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: "/bin/sleep")
                    p.arguments = ["0.3"]
                    try p.run()
                    started.value += 1
                    p.waitUntilExit()
                    return [Int32(started.value), p.terminationStatus]
                }
            }
            XCTAssertEqual(try all.map { try $0.value }, Array(repeating: [Int32(fibers), 0], count: fibers))
        }
        XCTAssertLessThan(ms, Double(fibers) * 300 / 2, "waits overlap")
    }

    /// Run-loop waits of unequal length on one hub: the short one is not held
    /// up by the long one (fibers take turns at the thread's run loop).
    func testProcessWaitsOfUnequalLengthEndInTheirOwnTime() throws {
        let log = Log()
        func run(_ seconds: String) -> AnyFiber {
            Green.spawn {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/sleep")
                p.arguments = [seconds]
                try p.run()
                p.waitUntilExit()
                log.entries.append(seconds)
            }
        }
        let long = run("1.5"), short = run("0.1")
        try Green.joinAll([long, short])
        XCTAssertEqual(log.entries, ["0.1", "1.5"])
    }

    final class Log: @unchecked Sendable { var entries: [String] = [] }

    /// `Data(contentsOf:)`, `String(contentsOf:)` and `URLSession` with a
    /// semaphore, against a local HTTP server (threads) that answers each
    /// request in 0.3 s: the server sees the fibers' requests at once.
    func testURLLoadingOnFibersOverlaps() throws {
        let server = try SlowHTTPServer(delay: 0.3)
        defer { server.stop() }
        let url = URL(string: "http://127.0.0.1:\(server.port)/hello")!
        let fibers = 12
        let ms = try elapsedMilliseconds {
            let all = (0..<fibers).map { i in
                Green.spawn { () -> String in
                    switch i % 3 {
                    case 0:
                        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
                    case 1:
                        return try String(contentsOf: url, encoding: .utf8)
                    default:
                        let done = DispatchSemaphore(value: 0)
                        let text = TextBox()
                        URLSession.shared.dataTask(with: url) { data, _, _ in
                            text.value = data.map { String(decoding: $0, as: UTF8.self) } ?? ""
                            done.signal()
                        }.resume()
                        done.wait()
                        return text.value
                    }
                }
            }
            XCTAssertEqual(try all.map { try $0.value }, Array(repeating: "hello", count: fibers))
        }
        XCTAssertGreaterThan(server.maxInFlight, 1, "the server saw requests from several fibers at once")
        XCTAssertLessThan(ms, Double(fibers) * 300 / 2, "requests overlap")
    }
}

/// A tiny HTTP/1.1 server on plain threads: each request is answered after
/// `delay` seconds with "hello"; it records how many requests it held at once.
final class SlowHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var inFlight = 0
    private var mostInFlight = 0
    /// The most requests it held at once.
    var maxInFlight: Int { lock.withLock { mostInFlight } }
    private var stopped = false

    init(delay: Double) throws {
        let (fd, port) = loopbackListener()
        guard fd >= 0 else { throw TestError(code: -1) }
        listener = fd
        self.port = port
        Thread { [self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { if lock.withLock({ stopped }) { return }; continue }
                Thread { [self] in serve(c, delay: delay) }.start()
            }
        }.start()
    }

    private func serve(_ c: Int32, delay: Double) {
        defer { close(c) }
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.ends(with: Array("\r\n\r\n".utf8)) {
            let n = read(c, &buffer, buffer.count)
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        lock.withLock { inFlight += 1; mostInFlight = max(mostInFlight, inFlight) }
        Thread.sleep(forTimeInterval: delay)
        lock.withLock { inFlight -= 1 }
        let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        _ = reply.withCString { write(c, $0, strlen($0)) }
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
