import CTestSupport
import Foundation
import Glibc
import XCTest
@testable import Green

/// The interposition shim seen from ordinary Glibc calls made on fibers.
final class ShimTests: XCTestCase {
    // MARK: helpers

    func makeSocketPair(type: Int32 = Int32(SOCK_STREAM.rawValue)) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, type, 0, &fds), 0)
        return (fds[0], fds[1])
    }

    /// A connected pair of TCP sockets on loopback (made on a fiber: the shim's own).
    func makeTCPPair() throws -> (Int32, Int32) {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { listener.close() }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(listener.localPort).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(r, 0)
        let server = accept(listener.fd, nil, nil)
        XCTAssertGreaterThanOrEqual(server, 0)
        return (server, client)
    }

    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// posix_spawn /bin/true and wait for it: the shim then gives the
    /// sockets a child could get back their blocking kernel flag.
    func runTrueAsAChild() {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        XCTAssertEqual(posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ), 0)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    func readSome(_ fd: Int32, max: Int = 65536) -> (Int, [UInt8]) {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, max) }
        return (n, n > 0 ? Array(buf[0..<n]) : [])
    }

    // MARK: sleeps

    func testSleepsOverlapOnFibers() throws {
        let ms = try elapsedMilliseconds {
            let fibers = (0..<100).map { i in
                Green.spawn {
                    switch i % 4 {
                    case 0: usleep(200_000)
                    case 1: var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000); nanosleep(&ts, nil)
                    case 2: var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000); clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nil)
                    default: Thread.sleep(forTimeInterval: 0.2) // Foundation, in libFoundation.so
                    }
                }
            }
            try Green.joinAll(fibers)
        }
        XCTAssertGreaterThanOrEqual(ms, 200)
        XCTAssertLessThan(ms, 5_000, "100 × 200 ms sleeps must overlap")
    }

    func testSleepSecondsAndAbsoluteClockNanosleep() throws {
        let f = Green.spawn { () -> (UInt32, Int32) in
            let s = sleep(0)
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var target = now
            target.tv_nsec += 20_000_000
            if target.tv_nsec >= 1_000_000_000 { target.tv_sec += 1; target.tv_nsec -= 1_000_000_000 }
            let r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, nil)
            var after = timespec()
            clock_gettime(CLOCK_REALTIME, &after)
            XCTAssertTrue(after.tv_sec > target.tv_sec || (after.tv_sec == target.tv_sec && after.tv_nsec >= target.tv_nsec))
            return (s, r)
        }
        let (s, r) = try f.value
        XCTAssertEqual(s, 0)
        XCTAssertEqual(r, 0)
    }

    func testSleepBadArgumentsGiveLibcAnswers() throws {
        let f = Green.spawn { () -> [Int32] in
            var bad = timespec(tv_sec: 0, tv_nsec: 1_000_000_000)
            let a = nanosleep(&bad, nil) == -1 ? errno : 0
            let b = clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nil)
            var neg = timespec(tv_sec: -1, tv_nsec: 0)
            let c = nanosleep(&neg, nil) == -1 ? errno : 0
            return [a, b, c]
        }
        XCTAssertEqual(try f.value, [EINVAL, EINVAL, EINVAL])
        // The same calls off any fiber, straight to libc, agree.
        var bad = timespec(tv_sec: 0, tv_nsec: 1_000_000_000)
        XCTAssertEqual(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nil), EINVAL)
    }

    func testCancelledSleepReportsEINTRWithRemaining() throws {
        let f = Green.spawn { () -> (Int32, Int32, Int) in
            var req = timespec(tv_sec: 3600, tv_nsec: 0)
            var rem = timespec()
            let r = nanosleep(&req, &rem)
            return (r, errno, rem.tv_sec)
        }
        try Green.yield()
        f.cancel()
        let (r, e, remaining) = try f.value
        XCTAssertEqual(r, -1)
        XCTAssertEqual(e, EINTR)
        XCTAssertGreaterThan(remaining, 3500)
    }

    // MARK: sockets and pipes

    func testBlockingReadParksUntilWritten() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) }
        var log: [String] = []
        let reader = Green.spawn { () -> [UInt8] in
            log.append("reading")
            let (n, bytes) = self.readSome(a)
            log.append("read \(n)")
            return bytes
        }
        let writer = Green.spawn {
            log.append("writing")
            _ = self.writeAll(b, Array("hello".utf8))
        }
        XCTAssertEqual(try reader.value, Array("hello".utf8))
        try writer.value
        XCTAssertEqual(log, ["reading", "writing", "read 5"])
    }

    func testUsersNonBlockIsHonoured() throws {
        let f = Green.spawn { () -> (Int, Int32, Int32, Int32) in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            let flags = fcntl(a, F_GETFL)
            let before = flags & O_NONBLOCK            // the shim's own O_NONBLOCK is hidden
            _ = fcntl(a, F_SETFL, flags | O_NONBLOCK)
            var buf = [UInt8](repeating: 0, count: 8)
            let n = Glibc.read(a, &buf, 8)             // nothing to read: EAGAIN, no parking
            let e = errno
            return (n, e, before, fcntl(a, F_GETFL) & O_NONBLOCK)
        }
        let (n, e, before, after) = try f.value
        XCTAssertEqual(before, 0)
        XCTAssertEqual(n, -1)
        XCTAssertEqual(e, EAGAIN)
        XCTAssertEqual(after, O_NONBLOCK)
    }

    func testFIONBIOIsHonoured() throws {
        let f = Green.spawn { () -> (Int, Int32) in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            var on: Int32 = 1
            _ = ioctl(a, UInt(FIONBIO), &on)
            var buf = [UInt8](repeating: 0, count: 8)
            let n = Glibc.recv(a, &buf, 8, 0)
            return (n, errno)
        }
        let (n, e) = try f.value
        XCTAssertEqual(n, -1)
        XCTAssertEqual(e, EAGAIN)
    }

    func testSocketReceiveTimeoutExpires() throws {
        let f = Green.spawn { () -> (Int, Int32, Double) in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buf = [UInt8](repeating: 0, count: 8)
            let start = Deadline.now
            let n = Glibc.read(a, &buf, 8)
            let e = errno
            return (n, e, Double(Deadline.now.nanoseconds - start.nanoseconds) / 1e6)
        }
        var ticks = 0
        let ticker = Green.spawn { for _ in 0..<5 { try Green.sleep(for: .milliseconds(1)); ticks += 1 } }
        let (n, e, ms) = try f.value
        try ticker.value
        XCTAssertEqual(n, -1)
        XCTAssertEqual(e, EAGAIN)
        XCTAssertGreaterThanOrEqual(ms, 50)
        XCTAssertEqual(ticks, 5, "other fibers ran while the read waited")
    }

    func testPartialWriteToFullBufferCompletesForBlockingCaller() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) }
        let size = 4 << 20 // far larger than the socket buffer
        let payload = [UInt8](unsafeUninitializedCapacity: size) { buf, count in
            for i in 0..<size { buf[i] = UInt8(truncatingIfNeeded: i &* 7) }
            count = size
        }
        let writer = Green.spawn { self.writeAll(a, payload) }
        let reader = Green.spawn { () -> [UInt8] in
            var got = [UInt8](repeating: 0, count: size)
            var filled = 0
            while filled < size {
                let n = got.withUnsafeMutableBytes { Glibc.read(b, $0.baseAddress! + filled, size - filled) }
                if n <= 0 { break }
                filled += n
            }
            return Array(got[0..<filled])
        }
        XCTAssertEqual(try writer.value, size, "a blocking write returns the full count")
        XCTAssertEqual(try reader.value, payload, "every byte arrives, in order")
        // With the user's O_NONBLOCK, the same write is partial.
        let partial = Green.spawn { () -> Int in
            _ = fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK)
            return self.writeAll(a, payload)
        }
        let n = try partial.value
        XCTAssertGreaterThan(n, 0)
        XCTAssertLessThan(n, size)
    }

    func testEOFAndEPIPE() throws {
        let f = Green.spawn { () -> (Int, Int, Int32) in
            let (a, b) = self.makeSocketPair()
            close(b)
            let (n, _) = self.readSome(a)
            signal(SIGPIPE, SIG_IGN)
            let w = self.writeAll(a, [1, 2, 3])
            let e = errno
            close(a)
            return (n, w, e)
        }
        let (n, w, e) = try f.value
        XCTAssertEqual(n, 0, "EOF")
        XCTAssertEqual(w, -1)
        XCTAssertEqual(e, EPIPE)
    }

    func testConnectionRefused() throws {
        let (listener, port) = loopbackListener()
        close(listener) // nobody listens on the port now
        let f = Green.spawn { () -> (Int32, Int32) in
            let c = connectLoopback(port)
            close(c.fd)
            return (c.result, c.errno)
        }
        let (r, e) = try f.value
        XCTAssertEqual(r, -1)
        XCTAssertEqual(e, ECONNREFUSED)
    }

    func testTCPEchoWithManyClients() throws {
        let (listener, port) = loopbackListener()
        defer { close(listener) }
        let clients = 50
        let server = Green.spawn {
            for _ in 0..<clients {
                let c = accept(listener, nil, nil)
                XCTAssertGreaterThanOrEqual(c, 0)
                Green.spawn {
                    defer { close(c) }
                    while true {
                        let (n, bytes) = self.readSome(c)
                        if n <= 0 { break }
                        XCTAssertEqual(self.writeAll(c, bytes), n)
                    }
                }
            }
        }
        let results = (0..<clients).map { i in
            Green.spawn { () -> Bool in
                let conn = connectLoopback(port)
                XCTAssertEqual(conn.result, 0)
                defer { close(conn.fd) }
                let msg = Array("client \(i) says hello".utf8)
                for _ in 0..<10 {
                    XCTAssertEqual(self.writeAll(conn.fd, msg), msg.count)
                    var got: [UInt8] = []
                    while got.count < msg.count {
                        let (n, bytes) = self.readSome(conn.fd)
                        if n <= 0 { return false }
                        got += bytes
                    }
                    if got != msg { return false }
                }
                return true
            }
        }
        XCTAssertEqual(try results.map { try $0.value }, Array(repeating: true, count: clients))
        try server.value
    }

    /// A fiber that sends on `fd` until a send fails, with that failure's
    /// errno as its value, once it waits for room (the peer reads nothing).
    func blockedUnixWriter(_ fd: Int32) throws -> Fiber<Int32> {
        let writer = Green.spawn { () -> Int32 in
            let chunk = [UInt8](repeating: 1, count: 65536)
            while true {
                let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 { return errno }
            }
        }
        try Green.sleep(for: .milliseconds(100))
        XCTAssertEqual(writer.state, .parked, "the writer waits for room")
        return writer
    }

    /// A fiber blocked sending to a full AF_UNIX socket that another fiber
    /// shuts down for writing gets EPIPE, as a thread does natively (epoll
    /// reports nothing for a Unix socket's send shutdown; the shim's
    /// shutdown makes the writer try again). It waited for ever before.
    func testUnixSocketWriterGetsEPIPEWhenShutDown() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) } // a writer still waiting (the bug) ends with EBADF
        let writer = try blockedUnixWriter(a)
        XCTAssertEqual(shutdown(a, Int32(SHUT_WR)), 0)
        try writer.join(until: .after(.seconds(10)))
        XCTAssertEqual(try writer.value, EPIPE)
    }

    /// The same with the shutdown made by a plain thread (no hub of its own,
    /// and the writer's hub shares with no group): it reaches every hub.
    func testUnixSocketWriterGetsEPIPEWhenAnotherThreadShutsItDown() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) }
        let writer = try blockedUnixWriter(a)
        let other = Thread { _ = shutdown(a, Int32(SHUT_WR)) } // the writer's EPIPE says it worked
        other.start()
        try writer.join(until: .after(.seconds(10)))
        XCTAssertEqual(try writer.value, EPIPE)
    }

    func testErrnoPreservedAcrossSwitches() throws {
        let f = Green.spawn { () -> Int32 in
            _ = Glibc.read(-1, nil, 0)   // EBADF
            let before = errno
            usleep(5_000)                  // parks; others set errno meanwhile
            _ = before
            return errno == before ? before : -1
        }
        let g = Green.spawn { for _ in 0..<5 { errno = ENOENT; usleep(1_000) } }
        XCTAssertEqual(try f.value, EBADF)
        try g.value
    }

    func testCloseWhileAnotherFiberWaits() throws {
        let (a, b) = makeSocketPair()
        defer { close(b) }
        let reader = Green.spawn { () -> (Int, Int32) in
            var buf = [UInt8](repeating: 0, count: 8)
            let n = Glibc.read(a, &buf, 8)
            return (n, errno)
        }
        let closer = Green.spawn {
            try Green.sleep(for: .milliseconds(5))
            close(a)
            // The number may be reused at once; the old waiter must not see it.
            var fds: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
            _ = fds.map { close($0) }
        }
        let (n, e) = try reader.value
        try closer.value
        XCTAssertEqual(n, -1)
        XCTAssertEqual(e, EBADF)
    }

    func testBadArgumentsGiveLibcAnswers() throws {
        let f = Green.spawn { () -> [Int32] in
            var out: [Int32] = []
            out.append(Glibc.read(-1, nil, 1) == -1 ? errno : 0)
            out.append(Glibc.write(9999, nil, 1) == -1 ? errno : 0)
            out.append(connect(-1, nil, 0) == -1 ? errno : 0)
            out.append(accept(12345, nil, nil) == -1 ? errno : 0)
            out.append(poll(nil, 0, 5))                    // no fds: sleeps 5 ms, returns 0
            var p = pollfd(fd: 12345, events: Int16(POLLIN), revents: 0)
            out.append(poll(&p, 1, -1))                    // invalid fd: POLLNVAL at once
            out.append(Int32(p.revents) & Int32(POLLNVAL))
            return out
        }
        XCTAssertEqual(try f.value, [EBADF, EBADF, EBADF, EBADF, 0, 1, Int32(POLLNVAL)])
    }

    func testReadAfterAShortReadStillSeesBytesAlreadyThere() throws {
        // A short read makes the next read wait for readiness first (saving
        // the read that would only say EAGAIN). Bytes that arrived in between
        // must come back at once, from the same fiber and from a peer thread,
        // and end of stream too.
        let (a, b) = makeSocketPair()
        defer { close(a) }
        let f = Green.spawn { () -> [Int] in
            try Green.withTimeout(.seconds(10)) {
                var sizes: [Int] = []
                _ = self.writeAll(b, Array("hello".utf8))
                sizes.append(self.readSome(a).0)              // 5 of 65536: short
                _ = self.writeAll(b, Array("abc".utf8))        // already there for the next read
                sizes.append(self.readSome(a).0)
                let peer = Thread { _ = self.writeAll(b, [1, 2]); close(b) }
                peer.start()
                var total = 0
                while true {                                   // 2 bytes, then end of stream
                    let (n, _) = self.readSome(a)
                    if n <= 0 { sizes.append(total); sizes.append(n); break }
                    total += n
                }
                return sizes
            }
        }
        XCTAssertEqual(try f.value, [5, 3, 2, 0])
    }

    func testBytesThatArriveWhileTheReaderIsBusyElsewhereEndItsNextWait() throws {
        // After a short read of TCP the next read waits before it reads.
        // Bytes that arrive while the reader is parked on something else
        // must end that wait, though the hub polled them when nobody waited
        // on the socket (an edge-triggered poller reports them once, and
        // must keep them: this caught both ways such a poller can lose
        // them), and so must the end of the stream that comes with the
        // last bytes and is reported only with them.
        let f = Green.spawn { () -> [Int] in
            let (a, b) = try self.makeTCPPair()
            defer { close(a); close(b) }
            let readOne = Event(), busy = Event(), readTwo = Event()
            let writer = Green.spawn {
                _ = self.writeAll(b, [1])           // wakes the reader's first wait (its read said EAGAIN)
                try readOne.wait()
                _ = self.writeAll(b, [2, 3])        // while the reader waits on `busy`
                try Green.yield()                   // alone: through the hub, which polls them
                busy.set()
                try readTwo.wait()
                _ = self.writeAll(b, [4, 5, 6])     // bytes and end of stream together
                shutdown(b, Int32(SHUT_WR))
            }
            return try Green.withTimeout(.seconds(10)) {
                var sizes: [Int] = []
                sizes.append(self.readSome(a).0)   // parks (nothing yet), then 1 byte of 65536: short
                readOne.set()
                try busy.wait()
                sizes.append(self.readSome(a).0)   // waits first (short read before): must not miss 2 and 3
                readTwo.set()
                while true {                       // 3 bytes (maybe in parts), then end of stream at once
                    let (n, _) = self.readSome(a)
                    sizes.append(n)
                    if n <= 0 { break }
                }
                try writer.join()
                return sizes
            }
        }
        let sizes = try f.value
        XCTAssertEqual(Array(sizes.prefix(2)), [1, 2])
        XCTAssertEqual(sizes.dropFirst(2).reduce(0, +), 3)
        XCTAssertEqual(sizes.last, 0)
    }

    func testAfterAShortReadZeroLengthReadsAndTinyTimeoutsAnswerAsTheKernel() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) }
        let f = Green.spawn { () -> [Int] in
            var out: [Int] = []
            _ = self.writeAll(b, [1, 2, 3])
            out.append(self.readSome(a).0)                    // 3: short
            out.append(Glibc.read(a, nil, 0))                  // a 0-byte read returns 0 at once
            // A 1 µs SO_RCVTIMEO: bytes already queued still come back.
            var tv = timeval(tv_sec: 0, tv_usec: 1)
            setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = self.writeAll(b, [4, 5])
            out.append(self.readSome(a).0)                    // 2 (short again)
            _ = self.writeAll(b, [6])
            out.append(self.readSome(a).0)                    // 1
            let (n, _) = self.readSome(a)                      // nothing queued: EAGAIN after the timeout
            out.append(n == -1 && errno == EAGAIN ? -11 : n)
            return out
        }
        XCTAssertEqual(try f.value, [3, 0, 2, 1, -11])
    }

    func testFdNumberReusedWithinOneHubTurnIsWatchedAfresh() throws {
        // A fiber woken on fd N closes N (through the shim, or behind its
        // back), gets N again — from socketpair, from pipe, or as an fd
        // received with SCM_RIGHTS — and waits on it, all without going
        // back to the hub in between: the hub must register the new file
        // with the kernel rather than trust what it knew of the old one (it
        // skips that epoll_ctl for a number it already watches).
        for creator in ["socketpair", "pipe", "SCM_RIGHTS"] {
            for behindTheShimsBack in [false, true] {
                // For SCM_RIGHTS: a pipe, and a socket pair to pass its read
                // end over, made before N so that N is the lowest free number.
                var passed: [Int32] = [-1, -1]
                var carrier: (Int32, Int32) = (-1, -1)
                if creator == "SCM_RIGHTS" {
                    XCTAssertEqual(pipe(&passed), 0)
                    carrier = makeSocketPair()
                }
                let (a, b) = makeSocketPair()
                let reader = Green.spawn { () -> [UInt8] in
                    _ = self.readSome(a)                          // parks; woken by the first write
                    if behindTheShimsBack { _ = test_close_behind_shim(a) } else { close(a) }
                    var ends: [Int32] = [-1, -1]
                    switch creator {
                    case "pipe":
                        XCTAssertEqual(pipe(&ends), 0)
                    case "socketpair":
                        (ends[0], ends[1]) = self.makeSocketPair()
                    default:
                        XCTAssertEqual(test_send_fd(carrier.0, passed[0]), 0)
                        ends = [test_recv_fd(carrier.1), passed[1]]
                        close(passed[0])
                    }
                    let (c, d) = (ends[0], ends[1])
                    XCTAssertEqual(c, a, "the lowest free number is reused")
                    defer { close(c); close(d) }
                    let writer = Green.spawn {
                        try Green.sleep(for: .milliseconds(10))
                        _ = self.writeAll(d, Array("again".utf8))
                    }
                    defer { try? writer.value }
                    return try Green.withTimeout(.seconds(10)) { self.readSome(c).1 }
                }
                // Written once the reader waits: its wait (on the hub's kept
                // watcher for the number, left started for the turn) must not
                // be reused for the new file under the same number.
                try Green.sleep(for: .milliseconds(5))
                _ = writeAll(b, [1])
                XCTAssertEqual(try reader.value, Array("again".utf8), "\(creator), behind the shim's back: \(behindTheShimsBack)")
                close(b)
                if creator == "SCM_RIGHTS" { close(carrier.0); close(carrier.1) }
            }
        }
    }

    func testARecordChangedDuringTheFairTurnDecidesTheCall() throws {
        // A fiber that always finds bytes gives the others a turn inside
        // its read (every 64th call). Another fiber then sets O_NONBLOCK and
        // empties the socket: the read must answer as a non-blocking read
        // (EAGAIN), as a thread's would, rather than park on what the
        // socket's record said before the turn.
        let f = Green.spawn { () -> (Int, Int32, Int) in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            _ = self.writeAll(b, [UInt8](repeating: 7, count: 1000))
            var drained = 0
            let other = Green.spawn {
                _ = fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK)
                while case let (n, _) = self.readSome(a), n > 0 { drained += n }
            }
            defer { try? other.value }
            return try Green.withTimeout(.seconds(10)) {
                var reads = 0
                var one: UInt8 = 0
                while Glibc.read(a, &one, 1) == 1 { reads += 1 }
                return (reads, errno, drained)
            }
        }
        let (reads, e, drained) = try f.value
        XCTAssertEqual(e, EAGAIN, "the read after the turn is a non-blocking one")
        XCTAssertEqual(reads + drained, 1000, "every byte read once")
        XCTAssertGreaterThan(drained, 0, "the other fiber ran inside the reader's read")
    }

    func testAWriteThatWaitsThroughAPosixSpawnNeverBlocksTheHub() throws {
        // A fiber's blocking write waits for room on a socket the shim made
        // non-blocking; meanwhile another fiber posix_spawns, which gives
        // the socket back the program's own (blocking) kernel flag, since a
        // child may use it. The write must go on parking for room, not
        // block the hub's thread in the kernel while a slow reader drains.
        let f = Green.spawn { () -> (Int, Int) in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            var signal: [Int32] = [-1, -1]
            XCTAssertEqual(pipe(&signal), 0)
            defer { close(signal[0]); close(signal[1]) }
            var finished: [Int32] = [-1, -1]
            XCTAssertEqual(pipe(&finished), 0)
            defer { close(finished[0]); close(finished[1]) }
            let size = 4 << 20
            // The reader: a thread of its own, draining 64 KiB every 4 ms once
            // told; it says when it is done, before the sockets close.
            let (spawned, readEnd, done) = (signal[0], b, finished[1])
            let reader = Thread {
                defer { _ = Glibc.write(done, "d", 1) }
                var ready = pollfd(fd: spawned, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, 10_000)
                var buf = [UInt8](repeating: 0, count: 65536)
                var total = 0
                while total < size {
                    var readable = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&readable, 1, 10_000)
                    let n = buf.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, 65536) }
                    if n > 0 { total += n } else if n == 0 || errno != EAGAIN { break }
                    usleep(4000)
                }
            }
            reader.start()
            var afterSpawn = false, writeDone = false, turns = 0
            let writer = Green.spawn { () -> Int in
                defer { writeDone = true }
                return self.writeAll(a, [UInt8](repeating: 1, count: size)) // fills the buffer, parks
            }
            let spawner = Green.spawn {
                self.runTrueAsAChild()
                afterSpawn = true
                _ = Glibc.write(signal[1], "s", 1)
            }
            let ticker = Green.spawn {
                while !writeDone {
                    try Green.sleep(for: .milliseconds(5))
                    if afterSpawn && !writeDone { turns += 1 }
                }
            }
            let written = try writer.value
            try spawner.value
            try ticker.value
            _ = self.readSome(finished[0]) // the reader is done with b
            return (written, turns)
        }
        let (written, turns) = try f.value
        XCTAssertEqual(written, 4 << 20, "every byte written")
        XCTAssertGreaterThanOrEqual(turns, 5, "other fibers ran while the write waited for the reader")
    }

    func testArgumentsOnlyReadAndReadvRefuseAnswerAsTheyDo() throws {
        // Reads on a socket go to the kernel as recv with MSG_DONTWAIT, but
        // not for arguments read and readv refuse where recv and recvmsg
        // would not: more than IOV_MAX buffers (EINVAL, not EMSGSIZE), a
        // count past the address space (EFAULT, not a shortened read).
        let f = Green.spawn { () -> [String] in
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            _ = self.writeAll(b, Array("hello".utf8))
            var byte: UInt8 = 0
            let many = [iovec](repeating: iovec(iov_base: &byte, iov_len: 1), count: 1025) // IOV_MAX is 1024 on Linux
            let r1 = many.withUnsafeBufferPointer { readv(a, $0.baseAddress, Int32($0.count)) }
            let e1 = errno
            var buf = [UInt8](repeating: 0, count: 64)
            let r2 = buf.withUnsafeMutableBytes { Glibc.read(a, $0.baseAddress, Int.max) }
            let e2 = errno
            // The 5 bytes are still there (a time limit: a read that took them wrongly waits).
            let r3 = try Green.withTimeout(.seconds(10)) { buf.withUnsafeMutableBytes { Glibc.read(a, $0.baseAddress, 64) } }
            return ["readv \(r1) \(e1 == EINVAL ? "EINVAL" : "\(e1)")", "read \(r2) \(e2 == EFAULT ? "EFAULT" : "\(e2)")",
                    "then read \(r3)"]
        }
        XCTAssertEqual(try f.value, ["readv -1 EINVAL", "read -1 EFAULT", "then read 5"])
    }

    func testTheWrongEndOfAPipeOnAStaleSocketRecordFailsAtOnce() throws {
        // A socket's number closed behind the shim's back and taken by a pipe
        // the shim did not see made: a write on the pipe's read end and a
        // read on its write end fail with EBADF at once, as natively (they
        // never get ready: a wait would be for ever).
        let f = Green.spawn { () -> [String] in
            let (a, b) = self.makeSocketPair()
            let (c, d) = self.makeSocketPair()
            defer { close(b); close(c); close(d) }
            _ = test_close_behind_shim(a)
            _ = test_close_behind_shim(c)
            var p: [Int32] = [-1, -1]
            XCTAssertEqual(test_pipe_behind_shim(&p), 0)
            defer { close(p[0]); close(p[1]) }
            XCTAssertEqual([p[0], p[1]], [a, c], "the pipe took both sockets' numbers")
            // Each call with a time limit of its own: one that waits fails, not hangs.
            var byte: UInt8 = 0
            let (w, we) = try Green.withTimeout(.seconds(5)) { (Glibc.write(p[0], "x", 1), errno) }
            let (r, re) = try Green.withTimeout(.seconds(5)) { (Glibc.read(p[1], &byte, 1), errno) }
            return ["write \(w) \(we == EBADF ? "EBADF" : "\(we)")", "read \(r) \(re == EBADF ? "EBADF" : "\(re)")"]
        }
        XCTAssertEqual(try f.value, ["write -1 EBADF", "read -1 EBADF"])
    }

    func testSendfileAndRecvmmsgOnFibersWaitAsBlockingCallsDo() throws {
        // Sockets made on a fiber are non-blocking underneath: sendfile into
        // a full one and recvmmsg on an empty one said EAGAIN. They must
        // park as the blocking calls wait, while the other fibers run.
        let f = Green.spawn { () -> [String] in
            let bytes = 512 * 1024
            var path = Array("/tmp/green-sendfile-XXXXXX".utf8CString)
            let file = mkstemp(&path)
            XCTAssertGreaterThanOrEqual(file, 0)
            unlink(path)
            defer { close(file) }
            let data = (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            XCTAssertEqual(data.withUnsafeBytes { Glibc.write(file, $0.baseAddress, bytes) }, bytes)
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            let reader = Green.spawn { () -> Bool in
                var got: [UInt8] = []
                while got.count < bytes {
                    let (n, chunk) = self.readSome(a, max: 4096)
                    if n <= 0 { break }
                    got += chunk
                    if got.count % 65536 == 0 { try Green.sleep(for: .milliseconds(1)) }
                }
                return got == data
            }
            var offset = 0
            let sent = test_sendfile(b, file, &offset, UInt(bytes))
            if sent != bytes { shutdown(b, Int32(SHUT_WR)) } // a failed test, not a reader waiting for ever
            let sameBytes = try reader.value

            // recvmmsg waits for all three datagrams, sent 20 ms apart by another fiber.
            let (c, d) = self.makeSocketPair(type: Int32(SOCK_DGRAM.rawValue))
            defer { close(c); close(d) }
            // The sender sends each datagram after the ticker had 10 more
            // turns: recvmmsg, waiting for all three, must let it run.
            var turns = 0
            let ticker = Green.spawn {
                while true {
                    turns += 1
                    try Green.sleep(for: .milliseconds(1))
                }
            }
            defer { ticker.cancel() }
            let sender = Green.spawn {
                for i in 0..<3 {
                    let until = turns + 10
                    while turns < until { try Green.sleep(for: .milliseconds(1)) }
                    var v = UInt8(i)
                    XCTAssertEqual(send(d, &v, 1, 0), 1)
                }
            }
            var values: [UInt8] = [9, 9, 9]
            let received = test_recvmmsg_bytes(c, &values, 3)
            try sender.value
            return ["sendfile \(sent) offset \(offset) same \(sameBytes)",
                    "recvmmsg \(received) \(values) others ran \(turns >= 30)"]
        }
        XCTAssertEqual(try f.value, ["sendfile 524288 offset 524288 same true", "recvmmsg 3 [0, 1, 2] others ran true"])
    }

    func testAnAcceptThatWaitsThroughAPosixSpawnNeverBlocksTheHub() throws {
        // Two fibers wait in accept on one listener the shim made; another
        // fiber posix_spawns (the listener gets its blocking kernel flag
        // back). One connection comes: one acceptor takes it, the other must
        // go on parking, not block the hub's thread in accept until the next.
        let f = Green.spawn { () -> Int in
            let (listener, port) = loopbackListener()
            defer { close(listener) }
            var accepted: [Int32] = []
            let acceptors = (0..<2).map { _ in Green.spawn { accepted.append(accept(listener, nil, nil)) } }
            let spawner = Green.spawn {
                self.runTrueAsAChild()
            }
            try spawner.value
            // The first client now; the second from a thread once this fiber
            // had its 20 turns, or after 2 s (which also ends an accept that
            // blocked the hub: then the turns never came).
            var signal: [Int32] = [-1, -1]
            XCTAssertEqual(pipe(&signal), 0)
            defer { close(signal[0]); close(signal[1]) }
            let turnsDone = signal[0]
            let late = Thread {
                var ready = pollfd(fd: turnsDone, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, 2000)
                let c = connectLoopback(port)
                usleep(100_000)
                close(c.fd)
            }
            late.start()
            let first = connectLoopback(port)
            var turns = 0
            for _ in 0..<20 { try Green.sleep(for: .milliseconds(5)); if accepted.count == 1 { turns += 1 } }
            _ = Glibc.write(signal[1], "t", 1)
            for fiber in acceptors { try fiber.value }
            close(first.fd)
            accepted.forEach { close($0) }
            XCTAssertEqual(accepted.count, 2)
            return turns
        }
        XCTAssertGreaterThanOrEqual(try f.value, 15, "the hub ran other fibers while the second accept waited")
    }

    func testSocketCallsOnAStaleRecordAnswerAsTheKernel() throws {
        // A socket's number closed behind the shim's back and taken by a
        // regular file: send and recv say ENOTSOCK (nothing is written to
        // the file), as they do natively. And recv's length may exceed
        // read's limit: the kernel clamps it.
        let f = Green.spawn { () -> [String] in
            var out: [String] = []
            let (a, b) = self.makeSocketPair()
            _ = self.writeAll(b, Array("hello".utf8))
            var buf = [UInt8](repeating: 0, count: 64)
            out.append("recv \(buf.withUnsafeMutableBytes { Glibc.recv(a, $0.baseAddress, Int.max, 0) })")
            _ = test_close_behind_shim(a)
            let path = NSTemporaryDirectory() + "green-stale-\(getpid())"
            let g = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
            defer { close(g); unlink(path); close(b) }
            XCTAssertEqual(g, a, "the file took the socket's number")
            out.append("send \(Glibc.send(g, "DATA", 4, 0)) \(errno == ENOTSOCK ? "ENOTSOCK" : "\(errno)")")
            out.append("recv \(buf.withUnsafeMutableBytes { Glibc.recv(g, $0.baseAddress, 64, 0) }) \(errno == ENOTSOCK ? "ENOTSOCK" : "\(errno)")")
            var st = stat()
            fstat(g, &st)
            out.append("file \(st.st_size) bytes")
            return out
        }
        XCTAssertEqual(try f.value, ["recv 5", "send -1 ENOTSOCK", "recv -1 ENOTSOCK", "file 0 bytes"])
    }

    func testAnFdReceivedOnANumberClosedBehindTheShimsBackIsANewFile() throws {
        // A pipe's read end passed with SCM_RIGHTS lands on a number whose
        // socket was closed behind the shim's back: reading it must wait
        // for the pipe like any pipe (the hub runs other fibers meanwhile),
        // not treat it as the socket it was and block the hub's thread.
        let f = Green.spawn { () -> (String, Int) in
            var p: [Int32] = [-1, -1]
            XCTAssertEqual(pipe(&p), 0)
            let (s1, s2) = self.makeSocketPair()
            let (a, b) = self.makeSocketPair()
            defer { close(p[1]); close(s1); close(s2); close(b) }
            _ = test_close_behind_shim(a)
            XCTAssertEqual(test_send_fd(s1, p[0]), 0)
            let got = test_recv_fd(s2)
            close(p[0])
            XCTAssertEqual(got, a, "the fd arrived under the closed socket's number")
            defer { close(got) }
            // The byte is written (by a thread of its own) once another
            // fiber of this hub has run three times, or after 2 s: a read
            // that blocked the hub's thread gets it late, with no turns.
            var signal: [Int32] = [-1, -1]
            XCTAssertEqual(pipe(&signal), 0)
            defer { close(signal[0]); close(signal[1]) }
            let (turnsDone, writeEnd) = (signal[0], p[1])
            let writer = Thread {
                var ready = pollfd(fd: turnsDone, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, 2000)
                _ = Glibc.write(writeEnd, "x", 1)
            }
            writer.start()
            var turns = 0
            let other = Green.spawn {
                while turns < 3 { try Green.sleep(for: .milliseconds(5)); turns += 1 }
                _ = Glibc.write(signal[1], "t", 1)
            }
            let (n, bytes) = self.readSome(got)
            let turnsDuringRead = turns
            try? other.value
            return ("\(n) \(String(decoding: bytes, as: UTF8.self))", turnsDuringRead)
        }
        let (read, turns) = try f.value
        XCTAssertEqual(read, "1 x")
        XCTAssertEqual(turns, 3, "another fiber ran while the read waited")
    }

    func testAnIdleKeptWatcherNeitherHidesADeadlockNorMissesBytes() throws {
        // After a fiber's read wait its hub keeps the fd's watcher started
        // (the next wait on the number only attaches). Nobody waiting, it
        // must not count as something that could still wake the root: a
        // wait that can never finish still fails with `.deadlock` (on a
        // thread of its own, so that a hang fails this test, not the run).
        // And bytes that arrive while nobody waits are still read later.
        let box = ResultBox<String>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            let (a, b) = self.makeSocketPair()
            defer { close(a); close(b) }
            var log: [String] = []
            let reader = Green.spawn { () -> [UInt8] in self.readSome(a).1 } // parks on a's watcher
            _ = self.writeAll(b, [1])
            log.append("first \((try? reader.value) ?? [])")
            _ = self.writeAll(b, [2, 3]) // arrives with nobody waiting: the idle watcher fires and stops
            let later = Green.spawn { () -> [UInt8] in
                try Green.sleep(for: .milliseconds(20))
                return self.readSome(a).1
            }
            log.append("later \((try? later.value) ?? [])")
            let third = Green.spawn { () -> [UInt8] in self.readSome(a).1 } // waits again: attaches or restarts
            let writer = Green.spawn { try Green.sleep(for: .milliseconds(20)); _ = self.writeAll(b, [4]) }
            log.append("third \((try? third.value) ?? [])")
            try? writer.value
            do {
                try Event().wait()
                log.append("no deadlock reported")
            } catch {
                log.append("wait: \(error)")
            }
            box.value = log.joined(separator: ", ")
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "the wait that can never finish hung")
        XCTAssertEqual(box.value, "first [1], later [2, 3], third [4], wait: \(GreenError.deadlock)")
    }

    func testPollWatchersNeverTakeStackGarbageForKeptOnes() throws {
        // Each fd of a poll waits with a watcher on the caller's stack, which
        // must be stopped when the wait ends; garbage there must never read
        // as "the hub's kept watcher" (left started between waits). socat
        // under green run died of that: libev's "ev_io_start called with
        // corrupted watcher" once the stale watcher's stack was reused.
        let (a, b) = makeSocketPair(), (c, d) = makeSocketPair()
        defer { close(a); close(b); close(c); close(d) }
        let f = Green.spawn { () -> Int in
            var woken = 0
            for i in 0..<200 {
                let (reader, writer) = i % 2 == 0 ? (a, b) : (c, d)
                let write = Green.spawn { try Green.sleep(for: .milliseconds(1)); _ = self.writeAll(writer, [1]) }
                test_scribble_stack()
                var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: c, events: Int16(POLLIN), revents: 0)]
                if poll(&fds, 2, 5000) == 1 { woken += 1 }
                _ = self.readSome(reader)
                try write.value
            }
            return woken
        }
        XCTAssertEqual(try f.value, 200)
    }

    func testKeptWatchersNeverLeaveLibevAClosedNumber() throws {
        // A kept watcher (fd_waits.c) around closes on another thread: a
        // wait that ended before the hub's poll, a fork child whose loop
        // registers every started watcher anew, a closed file that a dup
        // keeps reporting. None may crash the hub, and a new file under the
        // number is waited on as any other.
        let r = try runHelper(["kept-watchers-and-closes"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "ended before the poll: ok\nfork child: ok\nclosed while a dup lives: ok\n", r.stderr)
    }

    func testCloseElsewhereEndsAWaitThatOnlyReattached() throws {
        // A reader woken with bytes reads and waits again in the same turn of
        // the hub: that wait only attaches to the number's kept watcher. A
        // thread with no hub then closes the number before the hub polls (no
        // hub is told of such a close): the hub's check before its poll must
        // still end the wait with EBADF, not leave it parked for good.
        var p: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&p), 0)
        defer { close(p[1]) }
        let reader = Green.spawn { () -> String in
            var c: UInt8 = 0
            guard read(p[0], &c, 1) == 1 else { return "first read failed: errno \(errno)" } // parks, then 1 byte
            let closer = Green.spawn { // runs once the reader parks again, before the hub polls
                var t = pthread_t()
                pthread_create(&t, nil, { arg in close(Int32(Int(bitPattern: arg))); return nil },
                               UnsafeMutableRawPointer(bitPattern: Int(p[0])))
                pthread_join(t, nil) // blocks the hub's thread: no poll until the close is done
            }
            let n = try Green.withTimeout(.seconds(10)) { read(p[0], &c, 1) } // waits first: the last read was short
            let e = errno
            try closer.value
            return n < 0 ? "errno \(e)" : "read \(n)"
        }
        let writer = Green.spawn { try Green.sleep(for: .milliseconds(5)); var c: UInt8 = 1; _ = write(p[1], &c, 1) }
        try writer.value
        XCTAssertEqual(try reader.value, "errno \(EBADF)")
    }

    func testFdNumberReusedBehindTheShimsBack() throws {
        // A socket made off any fiber is classified as a socket on first use;
        // then its number is closed by a path the shim cannot see and reused
        // by open(): reads must still return the file's bytes.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("green-reuse-\(getpid())").path
        try "file contents".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let box = ResultBox<[Int32]>()
        let done = DispatchSemaphore(value: 0)
        Thread { var fds: [Int32] = [0, 0]; socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds); box.value = fds; done.signal() }.start()
        done.wait()
        let fds = box.value!
        let f = Green.spawn { () -> String in
            _ = self.writeAll(fds[1], [7])
            _ = self.readSome(fds[0])                         // classified as a socket now
            _ = test_close_behind_shim(fds[0])               // closed behind the shim's back
            let file = open(path, O_RDONLY)                   // lowest free number: the same one
            XCTAssertEqual(file, fds[0])
            defer { close(file) }
            let (n, bytes) = self.readSome(file)
            return n > 0 ? String(decoding: bytes, as: UTF8.self) : "read failed: errno \(errno)"
        }
        XCTAssertEqual(try f.value, "file contents")
        close(fds[1])
    }

    // MARK: readiness

    func testPollMixedReadyAndTimeout() throws {
        let (a, b) = makeSocketPair()
        let (c, d) = makeSocketPair()
        defer { [a, b, c, d].forEach { close($0) } }
        let f = Green.spawn { () -> (Int32, Int16, Int16, Int32) in
            var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: c, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: b, events: Int16(POLLOUT), revents: 0)]
            let r1 = poll(&fds, 3, 1000)       // b is writable right away
            let ra = fds[0].revents, rb = fds[2].revents
            var only = [pollfd(fd: a, events: Int16(POLLIN), revents: 0)]
            let r2 = poll(&only, 1, 30)        // nothing arrives: times out
            return (r1, ra, rb, r2)
        }
        let (r1, ra, rb, r2) = try f.value
        XCTAssertEqual(r1, 1)
        XCTAssertEqual(ra, 0)
        XCTAssertEqual(rb, Int16(POLLOUT))
        XCTAssertEqual(r2, 0)
        // A poll parked on two fds wakes for the one that becomes readable.
        let waiter = Green.spawn { () -> (Int32, Int16, Int16) in
            var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: c, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            return (r, fds[0].revents, fds[1].revents)
        }
        Green.spawn { usleep(5_000); _ = self.writeAll(d, [42]) }
        let (r, x, y) = try waiter.value
        XCTAssertEqual(r, 1)
        XCTAssertEqual(x, 0)
        XCTAssertEqual(y, Int16(POLLIN))
    }

    func testSelectAndEpoll() throws {
        let (a, b) = makeSocketPair()
        defer { close(a); close(b) }
        let sel = Green.spawn { () -> (Int32, Bool) in
            var set = fd_set()
            withUnsafeMutableBytes(of: &set) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            let idx = Int(a) / 64, bit = Int(a) % 64
            withUnsafeMutablePointer(to: &set) { p in
                p.withMemoryRebound(to: Int.self, capacity: 16) { $0[idx] |= (1 << bit) }
            }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            let r = select(a + 1, &set, nil, nil, &tv)
            let isSet = withUnsafePointer(to: &set) { p in p.withMemoryRebound(to: Int.self, capacity: 16) { ($0[idx] & (1 << bit)) != 0 } }
            return (r, isSet)
        }
        let ep = Green.spawn { () -> Int32 in
            let epfd = epoll_create1(0)
            defer { close(epfd) }
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: a))
            epoll_ctl(epfd, EPOLL_CTL_ADD, a, &ev)
            var out = [epoll_event](repeating: epoll_event(), count: 4)
            return epoll_wait(epfd, &out, 4, 5000)
        }
        Green.spawn { usleep(5_000); _ = self.writeAll(b, [1]) }
        let (r, isSet) = try sel.value
        XCTAssertEqual(r, 1)
        XCTAssertTrue(isSet)
        XCTAssertEqual(try ep.value, 1)
        // select with a timeout and nothing ready returns 0 after the timeout.
        let timeout = Green.spawn { () -> Int32 in
            var tv = timeval(tv_sec: 0, tv_usec: 20_000)
            return select(0, nil, nil, nil, &tv)
        }
        XCTAssertEqual(try timeout.value, 0)
    }

    // MARK: DNS

    func testGetaddrinfoOnFiberMatchesLibc() throws {
        func lookup(_ name: String) -> [String] {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, "80", &hints, &res) == 0 else { return ["error"] }
            defer { freeaddrinfo(res) }
            var out: [String] = []
            var p = res
            while let ai = p {
                var host = [CChar](repeating: 0, count: 256)
                getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &host, 256, nil, 0, NI_NUMERICHOST)
                out.append("\(ai.pointee.ai_family) \(String(cString: host))")
                p = ai.pointee.ai_next
            }
            return out
        }
        let onRoot = lookup("localhost")
        let fromThread = ResultBox<[String]>()
        let done = DispatchSemaphore(value: 0)
        Thread { fromThread.value = lookup("localhost"); done.signal() }.start()
        done.wait()
        let threadResult = fromThread.value!
        let offFiber = onRoot
        let onFiber = try Green.spawn { lookup("localhost") }.value
        XCTAssertEqual(onFiber, threadResult)
        XCTAssertEqual(offFiber, threadResult)
        XCTAssertFalse(onFiber.isEmpty)
        XCTAssertEqual(try Green.spawn { lookup("no-such-host.invalid") }.value, ["error"])
    }

    func testDNSLookupIsCooperative() throws {
        // A mount namespace with our own /etc/resolv.conf pointing at a slow
        // DNS server that the helper runs on a fiber. Needs root (unshare).
        guard getuid() == 0 else {
            let message = "needs root for `unshare --mount` (a private /etc/resolv.conf)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(message); return }
            print("SKIPPING \(name): \(message)")
            throw XCTSkip(message)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("green-dns-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let resolv = dir.appendingPathComponent("resolv.conf")
        try "nameserver 127.0.0.2\noptions timeout:5 attempts:1\n".write(to: resolv, atomically: true, encoding: .utf8)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let helper = exe.deletingLastPathComponent().appendingPathComponent("GreenTestHelper").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--mount", "sh", "-c", "mount --bind \(resolv.path) /etc/resolv.conf && exec \(helper) dns-slow"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, e)
        XCTAssertTrue(o.contains("resolved slow.green.test to 192.0.2.7"), o + e)
        // 500 ms of resolver delay at 10 ms a tick: the hub kept running.
        let ticks = Int(o.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        XCTAssertGreaterThan(ticks, 20, o)
    }

    final class ResultBox<T>: @unchecked Sendable { var value: T? }

    // MARK: off a fiber

    func testPassthroughOnAThreadWithoutHub() throws {
        var result = (0, Int32(0))
        let done = DispatchSemaphore(value: 0)
        Thread {
            var fds: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
            let flags = fcntl(fds[0], F_GETFL)
            _ = [UInt8](repeating: 7, count: 3).withUnsafeBytes { Glibc.write(fds[1], $0.baseAddress, 3) }
            var buf = [UInt8](repeating: 0, count: 8)
            result = (Glibc.read(fds[0], &buf, 8), flags & O_NONBLOCK)
            usleep(1_000)
            fds.forEach { close($0) }
            done.signal()
        }.start()
        done.wait()
        XCTAssertEqual(result.0, 3)
        XCTAssertEqual(result.1, 0, "the shim leaves fds alone off a fiber")
    }
}
