import Foundation
import Glibc
import XCTest
@testable import Green

/// Fault and abuse tests, bounded in count and time: nothing may crash, hang
/// or lose a byte.
final class StressTests: XCTestCase {
    /// Counts scale with GREEN_STRESS_SCALE (the sanitizer runs use 0.1:
    /// ThreadSanitizer makes each operation tens of times slower).
    func scaled(_ n: Int) -> Int {
        let scale = ProcessInfo.processInfo.environment["GREEN_STRESS_SCALE"].flatMap(Double.init) ?? 1
        return max(1, Int(Double(n) * scale))
    }

    /// A small deterministic generator, so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
    }

    func testTenThousandConnectionsChurnWithResetsAndHalfCloses() throws {
        let (lfd, port) = loopbackListener()
        defer { close(lfd) }
        let total = scaled(10_000), concurrency = 200
        let server = Green.spawn(name: "acceptor") {
            let handlers = Group()
            while true {
                let c = accept(lfd, nil, nil)
                if c < 0 { if errno == ECANCELED || errno == EBADF { break } else { continue } }
                try handlers.spawn(name: "echo") {
                    defer { close(c) }
                    var buf = [UInt8](repeating: 0, count: 4096)
                    while true {
                        let n = read(c, &buf, buf.count)
                        if n <= 0 { return }
                        if write(c, buf, n) != n { return }
                    }
                }
            }
            handlers.cancelAll()
            try handlers.join()
        }
        var rng = SplitMix(state: 42)
        var verified = 0, resets = 0, failures: [String] = []
        let slots = Semaphore(value: concurrency)
        let clients = Group()
        for i in 0..<total {
            try slots.acquire()
            let size = Int.random(in: 1...8192, using: &rng)
            let reset = Int.random(in: 0..<10, using: &rng) == 0
            let seed = rng.next()
            try clients.spawn {
                defer { try? slots.release() }
                let conn = connectLoopback(port)
                guard conn.result == 0 else { close(conn.fd); failures.append("connect \(i): errno \(conn.errno)"); return }
                let fd = conn.fd
                var g = SplitMix(state: seed)
                let payload = (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                if reset {
                    // Abortive close mid-conversation: the server side sees ECONNRESET or EOF.
                    _ = write(fd, payload, min(size, 100))
                    var linger = linger(l_onoff: 1, l_linger: 0)
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
                    close(fd)
                    resets += 1
                    return
                }
                defer { close(fd) }
                guard write(fd, payload, size) == size else { failures.append("write \(i)"); return }
                shutdown(fd, Int32(SHUT_WR))          // half-close: the echo still comes back
                var got: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 8192)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n < 0 { failures.append("read \(i): errno \(errno)"); return }
                    if n == 0 { break }
                    got += buf[0..<n]
                }
                if got == payload { verified += 1 } else { failures.append("bytes differ on \(i): \(got.count)/\(size)") }
            }
        }
        try clients.join()
        server.cancel()
        close(lfd)
        try? server.join()
        XCTAssertEqual(failures.prefix(5), [])
        XCTAssertEqual(verified + resets, total)
        XCTAssertGreaterThan(resets, 0)
    }

    func testCancellationStorm() throws {
        let event = Event(), lock = Lock(), sem = Semaphore(value: 0)
        let ch = Channel<Int>(capacity: .rendezvous)       // only receivers wait here
        let sendOnly = Channel<Int>(capacity: .rendezvous) // only senders wait here
        try lock.lock()
        var fds: [Int32] = [0, 0]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        defer { fds.forEach { close($0) } }
        let waits: [() throws -> Void] = [
            { try event.wait() }, { try lock.lock() }, { try sem.acquire() }, { _ = try ch.receive() },
            { try sendOnly.send(1) }, { try Green.sleep(for: .seconds(3600)) },
            { var b: UInt8 = 0; if read(fds[0], &b, 1) < 0 { throw CancellationError() } },
            { _ = try Green.select(ch.onReceive { $0 }, event.onSet { 0 }) },
        ]
        var rng = SplitMix(state: 7)
        let fibers = (0..<scaled(2_000)).map { i in Green.spawn(name: "storm") { try waits[i % waits.count]() } }
        try Green.yield()
        for f in fibers.shuffled(using: &rng) { f.cancel() }
        var cancelled = 0
        for f in fibers {
            do { try f.value } catch is CancellationError { cancelled += 1 } catch { XCTFail("\(error)") }
        }
        XCTAssertEqual(cancelled, fibers.count)
        XCTAssertTrue(fibers.allSatisfy { $0.state == .done })
        XCTAssertFalse(Hub.current.fiberDump().contains { $0.name == "storm" }, "no storm fiber left behind")
        XCTAssertNil(sendOnly.tryReceive(), "no cancelled send delivered anything")
        lock.unlock()
    }

    func testThousandsOfTimers() throws {
        var rng = SplitMix(state: 99)
        var late: [Int] = []
        let fibers = (0..<scaled(5_000)).map { i in
            let ms = Int.random(in: 0...50, using: &rng)
            return Green.spawn {
                let deadline = Deadline.after(.milliseconds(ms))
                try Green.sleep(until: deadline)
                if Deadline.now < deadline { late.append(i) } // woke early: never allowed
            }
        }
        try Green.joinAll(fibers)
        XCTAssertEqual(late, [])
    }

    func testTimeoutAtTheSameInstantAsData() throws {
        // Whichever wins, nothing is lost: a timed-out receive leaves the value queued.
        var delivered = 0, timedOut = 0
        for round in 0..<300 {
            let ch = Channel<Int>()
            let receiver = Green.spawn { () -> Int? in
                do { return try ch.receive(until: .after(.microseconds(500))) } catch is TimeoutError { return nil }
            }
            let sender = Green.spawn { try Green.sleep(for: .microseconds(500)); try ch.send(round) }
            let got = try receiver.value
            try sender.value
            if let got { XCTAssertEqual(got, round); delivered += 1 } else {
                XCTAssertEqual(ch.tryReceive(), round)
                timedOut += 1
            }
        }
        XCTAssertEqual(delivered + timedOut, 300)
    }

    func testShimAgreesWithLibcUnderRandomCalls() throws {
        // Differential fuzz: the same seeded sequence of calls on a fiber and
        // on a thread without a hub (libc directly) must give the same
        // results and errno. The fds are non-blocking for the user, so no
        // call parks and both runs see the same kernel states.
        func run(seed: UInt64) -> [String] {
            var rng = SplitMix(state: seed)
            var log: [String] = []
            var fds: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            var buf = [UInt8](repeating: 0, count: 70_000)
            let candidates: [Int32] = [fds[0], fds[1], -1, 9_999, 1 << 20]
            for _ in 0..<400 {
                let fd = candidates[Int.random(in: 0..<candidates.count, using: &rng)]
                let n = [0, 1, 7, 4096, 65_536, 70_000][Int.random(in: 0..<6, using: &rng)]
                errno = 0
                let op = Int.random(in: 0..<11, using: &rng)
                var r: Int
                switch op {
                case 0: r = read(fd, &buf, n)
                case 1: r = write(fd, buf, n)
                case 2: r = recv(fd, &buf, n, [0, Int32(MSG_PEEK), Int32(MSG_DONTWAIT)][Int.random(in: 0..<3, using: &rng)])
                case 3: r = send(fd, buf, n, Int32(MSG_NOSIGNAL))
                case 4: var p = pollfd(fd: fd, events: Int16(POLLIN | POLLOUT), revents: 0); r = Int(poll(&p, 1, 0)) * 1000 + Int(p.revents)
                case 5: r = Int(fcntl(fd, F_GETFL)) & Int(O_NONBLOCK | O_RDWR)
                case 6: r = read(fd, nil, 0)
                case 7: var iov = [iovec(iov_base: UnsafeMutableRawPointer(mutating: buf), iov_len: n)]; r = writev(fd, &iov, 1)
                case 8: var iov = [iovec(iov_base: &buf, iov_len: n)]; r = readv(fd, &iov, 1)
                case 9: var tv = timeval(tv_sec: 0, tv_usec: 1000); r = Int(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)))
                default: var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0); r = Int(poll(&p, 1, 1)) * 1000 + Int(p.revents)
                }
                // (the pair by its place, not its number: other tests' threads
                // may open and close fds meanwhile)
                let name = fd == fds[0] ? "a" : fd == fds[1] ? "b" : "\(fd)"
                log.append("\(op) fd\(name) n\(n) -> \(r) errno \(r < 0 ? errno : 0)")
            }
            fds.forEach { close($0) }
            return log
        }
        for seed in [1, 2, 3, 4, 5] as [UInt64] {
            let onFiber = try Green.spawn { run(seed: seed) }.value
            let offFiber = ResultBox<[String]>()
            let done = DispatchSemaphore(value: 0)
            Thread { offFiber.value = run(seed: seed); done.signal() }.start()
            done.wait()
            XCTAssertEqual(onFiber, offFiber.value!, "seed \(seed)")
        }
    }

    final class ResultBox<T>: @unchecked Sendable { var value: T? }
}
