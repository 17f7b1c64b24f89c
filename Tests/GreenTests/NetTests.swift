import Foundation
import Glibc
import XCTest
@testable import Green

final class NetTests: XCTestCase {
    func testEchoServerWithManyClients() throws {
        let server = StreamServer(listener: try Socket.listen()) { conn in
            while let line = try conn.readLine() { try conn.writeAll(line.uppercased() + "\n") }
        }
        server.start()
        let port = server.listener.localPort
        let clients = (0..<100).map { i in
            Green.spawn { () -> [String] in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                var replies: [String] = []
                for j in 0..<3 {
                    try s.writeAll("client \(i) line \(j)\r\n")
                    replies.append(try s.readLine() ?? "EOF")
                }
                return replies
            }
        }
        for (i, c) in clients.enumerated() {
            XCTAssertEqual(try c.value, (0..<3).map { "CLIENT \(i) LINE \($0)" })
        }
        try server.stop()
    }

    func testHalfCloseAndReadExactly() throws {
        let server = StreamServer(listener: try Socket.listen()) { conn in
            var got: [UInt8] = []
            while true {
                let chunk = try conn.read()
                if chunk.isEmpty { break } // the client's half-close
                got += chunk
            }
            try conn.writeAll("got \(got.count) bytes\n")
        }
        server.start()
        let s = try Socket.connect(host: "localhost", port: server.listener.localPort)
        try s.writeAll([UInt8](repeating: 7, count: 100_000))
        try s.shutdown(.write)
        XCTAssertEqual(try s.readLine(), "got 100000 bytes")
        XCTAssertNil(try s.readLine())
        try server.stop()

        let a = try Socket.listen()
        let acceptor = Green.spawn { () -> [UInt8] in
            let c = try a.accept()
            return try c.readExactly(10)
        }
        let writer = try Socket.connect(host: "127.0.0.1", port: a.localPort)
        for piece in [[1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]] as [[UInt8]] {
            try writer.writeAll(piece)
            try Green.sleep(for: .milliseconds(1))
        }
        XCTAssertEqual(try acceptor.value, Array(1...10))
    }

    /// read(into:) hands out read-ahead first, then reads straight into the caller's memory.
    func testReadIntoCallersBuffer() throws {
        let server = StreamServer(listener: try Socket.listen()) { conn in
            try conn.writeAll("header\nbody-part-1")
            try Green.sleep(for: .milliseconds(20))
            try conn.writeAll("|body-part-2")
        }
        server.start()
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        XCTAssertEqual(try s.readLine(), "header")
        var buffer = [UInt8](repeating: 0, count: 8)
        var got: [UInt8] = []
        while true {
            let n = try buffer.withUnsafeMutableBytes { try s.read(into: $0) }
            if n == 0 { break }
            XCTAssertLessThanOrEqual(n, 8)
            got += buffer[0..<n]
        }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "body-part-1|body-part-2")
        XCTAssertEqual(try s.read(into: UnsafeMutableRawBufferPointer(start: nil, count: 0)), 0)
        try server.stop()
    }

    /// A socket's reads are for one fiber at a time: a second reader while
    /// the first waits for a line traps with a message, not corrupted bytes.
    func testSecondReaderWhileTheFirstWaitsTraps() throws {
        let r = try runHelper(["socket-concurrent-reads"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(r.stdout.contains("not trapped"), r.stdout)
        XCTAssertTrue(r.stderr.contains("two fibers read one Socket"), r.stderr)
    }

    /// Length-prefixed records parsed in place, split across reads, larger
    /// than the first buffer, mixed with readLine; then the errors.
    func testReadParsedFrames() throws {
        let big = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        func record(_ payload: [UInt8]) -> [UInt8] {
            withUnsafeBytes(of: UInt32(payload.count).bigEndian, Array.init) + payload
        }
        let server = StreamServer(listener: try Socket.listen()) { conn in
            let stream = record(Array("one".utf8)) + Array("a line\n".utf8) + record(big) + record([]) + [0, 0]
            // Dribble it out in odd pieces so frames straddle reads.
            var i = 0
            for piece in [1, 2, 5, 9, 4096, 30_000, 70_000] where i < stream.count {
                let end = min(stream.count, i + piece)
                try conn.writeAll(Array(stream[i..<end]))
                i = end
                try Green.sleep(for: .milliseconds(2))
            }
            try conn.writeAll(Array(stream[i...]))
        }
        server.start()
        defer { try? server.stop() }
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        /// One record: nil until its length and payload are buffered.
        func parseRecord(_ bytes: UnsafeRawBufferPointer) -> (result: [UInt8], consumed: Int)? {
            guard bytes.count >= 4 else { return nil }
            let n = bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            guard bytes.count >= 4 + n else { return nil }
            return (Array(bytes[4..<(4 + n)]), 4 + n)
        }
        XCTAssertEqual(try s.readParsed(parseRecord), Array("one".utf8))
        XCTAssertEqual(try s.readLine(), "a line")
        XCTAssertEqual(try s.readParsed(parseRecord), big)
        XCTAssertEqual(try s.readParsed(parseRecord), [])
        // Two bytes of a length, then end of stream: EPIPE, not a short record;
        // the two bytes are not lost.
        XCTAssertThrowsError(try s.readParsed(parseRecord)) { XCTAssertEqual(($0 as? SocketError)?.errno, EPIPE) }
        XCTAssertEqual(try s.read(), [0, 0])
        // At a clean end of stream: nil.
        XCTAssertNil(try s.readParsed(parseRecord))

        // More than maxLength buffered and still incomplete: EMSGSIZE.
        let flood = StreamServer(listener: try Socket.listen()) { conn in try conn.writeAll(record(big)) }
        flood.start()
        defer { try? flood.stop() }
        let f = try Socket.connect(host: "127.0.0.1", port: flood.listener.localPort)
        XCTAssertThrowsError(try f.readParsed(maxLength: 1000, parseRecord)) { XCTAssertEqual(($0 as? SocketError)?.errno, EMSGSIZE) }
    }

    func testPeerResetIsAnError() throws {
        let outcome = AsyncResult<String>()
        let server = StreamServer(listener: try Socket.listen()) { conn in
            do {
                while !(try conn.read()).isEmpty {}
                outcome.set("EOF")
            } catch let e as SocketError {
                outcome.set("errno \(e.errno)")
            }
        }
        server.start()
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        try s.writeAll("x")
        try Green.sleep(for: .milliseconds(5))
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        s.close() // abortive: RST
        XCTAssertEqual(try outcome.get(until: .after(.seconds(5))), "errno \(ECONNRESET)")
        try server.stop()
    }

    /// A client that stops reading a large answer half-way, and one that
    /// stops half-way through sending its request, park only their own
    /// handlers: a third client's ping-pongs all finish while both are
    /// stalled, and afterwards every byte of both arrives intact.
    func testSlowReaderAndSlowWriterHoldUpNobodyElse() throws {
        let big = [UInt8]((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) })
        let server = StreamServer(listener: try Socket.listen()) { conn in
            while let line = try conn.readLine() {
                switch line {
                case "big": try conn.writeAll(big)        // parks while the slow reader's buffers are full
                case "ping": try conn.writeAll("pong\n")
                default: try conn.writeAll("got \(line)\n")
                }
            }
        }
        server.start()
        defer { try? server.stop() }
        let port = server.listener.localPort
        let pingerDone = Event()
        let slowReader = Green.spawn { () -> Bool in
            let s = try Socket.connect(host: "127.0.0.1", port: port)
            try s.writeAll("big\n")
            var got = try s.readExactly(65536)                // then stall: the server's writeAll parks
            try pingerDone.wait()
            got += try s.readExactly(big.count - got.count)
            return got == big
        }
        let slowWriter = Green.spawn { () -> String? in
            let s = try Socket.connect(host: "127.0.0.1", port: port)
            try s.writeAll("dribbled ")                        // half a line: the server's readLine parks
            try pingerDone.wait()
            for byte in "line\n".utf8 {
                try s.writeAll([byte])
                try Green.sleep(for: .milliseconds(1))
            }
            return try s.readLine()
        }
        let pinger = Green.spawn { () -> Int in
            let s = try Socket.connect(host: "127.0.0.1", port: port)
            var pongs = 0
            for _ in 0..<50 {
                try s.writeAll("ping\n")
                if try s.readLine() == "pong" { pongs += 1 }
            }
            pingerDone.set()
            return pongs
        }
        XCTAssertEqual(try pinger.value, 50)
        XCTAssertEqual(try slowWriter.value, "got dribbled line")
        XCTAssertTrue(try slowReader.value, "4 MiB, read after a stall, arrive intact")
    }

    func testConcurrencyBound() throws {
        var active = 0, peak = 0
        let release = Event()
        let server = StreamServer(listener: try Socket.listen(), maxConnections: 2) { conn in
            active += 1; peak = max(peak, active)
            defer { active -= 1 }
            try release.wait()
            try conn.writeAll("bye\n")
        }
        server.start()
        let port = server.listener.localPort
        let clients = (0..<5).map { _ in
            Green.spawn { () -> String? in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                return try s.readLine()
            }
        }
        try Green.sleep(for: .milliseconds(30))
        XCTAssertEqual(server.activeConnections, 2, "the third connection waits for a slot")
        release.set()
        XCTAssertEqual(try clients.map { try $0.value }, Array(repeating: "bye", count: 5))
        XCTAssertEqual(peak, 2)
        try server.stop()
    }

    func testGracefulStop() throws {
        var finished: [String] = []
        let server = StreamServer(listener: try Socket.listen()) { conn in
            let what = try conn.readLine() ?? ""
            if what == "quick" { try Green.sleep(for: .milliseconds(20)) } else { try Green.sleep(for: .seconds(3600)) }
            finished.append(what)
            try conn.writeAll("done \(what)\n")
        }
        server.start()
        let port = server.listener.localPort
        let quick = Green.spawn { () -> String? in
            let s = try Socket.connect(host: "127.0.0.1", port: port); try s.writeAll("quick\n"); return try s.readLine()
        }
        let slow = Green.spawn { () -> String? in
            let s = try Socket.connect(host: "127.0.0.1", port: port); try s.writeAll("slow\n"); return try s.readLine()
        }
        try Green.sleep(for: .milliseconds(10))
        try server.stop(grace: .milliseconds(100))
        XCTAssertEqual(try quick.value, "done quick", "in-flight work finished within the grace period")
        XCTAssertNil(try slow.value, "the handler still running after the grace period was cancelled")
        XCTAssertEqual(finished, ["quick"])
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: port)) {
            XCTAssertEqual(($0 as? SocketError)?.errno, ECONNREFUSED)
        }
    }

    func testTimeoutsCancellationAndUnixSockets() throws {
        let listener = try Socket.listen()
        let peer = Green.spawn { try listener.accept() }
        let s = try Socket.connect(host: "127.0.0.1", port: listener.localPort)
        let held = try peer.value
        XCTAssertThrowsError(try Green.withTimeout(.milliseconds(20)) { _ = try s.read() }) { XCTAssertTrue($0 is TimeoutError) }
        let reader = Green.spawn { try s.read() }
        try Green.yield()
        reader.cancel()
        XCTAssertThrowsError(try reader.value) { XCTAssertTrue($0 is CancellationError) }
        held.close()

        let path = NSTemporaryDirectory() + "green-\(getpid()).sock"
        defer { unlink(path) }
        let unix = try Socket.listen(unixPath: path)
        let echo = Green.spawn { () -> Void in
            let c = try unix.accept()
            try c.writeAll(try c.readExactly(5))
        }
        let u = try Socket.connect(unixPath: path)
        try u.writeAll("hello")
        XCTAssertEqual(try u.readExactly(5), Array("hello".utf8))
        try echo.value
    }
}

final class MulticoreTests: XCTestCase {
    func testThreadedServerSpreadsConnectionsOverHubs() throws {
        let seen = ThreadSet()
        let server = try ThreadedServer(threads: 2) { conn in
            seen.insert(pthread_self())
            while let line = try conn.readLine() { try conn.writeAll(line + "!\n") }
        }
        let clients = (0..<50).map { i in
            Green.spawn { () -> String? in
                let s = try Socket.connect(host: "127.0.0.1", port: server.port)
                try s.writeAll("hi \(i)\n")
                return try s.readLine()
            }
        }
        XCTAssertEqual(try clients.map { try $0.value }, (0..<50).map { "hi \($0)!" })
        server.stop(grace: .seconds(1))
        XCTAssertEqual(seen.count, 2, "SO_REUSEPORT spread 50 connections over both threads' hubs")
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: server.port))
    }

    func testDatagrams() throws {
        let a = try DatagramSocket(), b = try DatagramSocket()
        let receiver = Green.spawn { try b.receive() }
        try Green.yield()
        try a.send(Array("ping".utf8), to: "127.0.0.1", port: b.localPort)
        let (bytes, host, port) = try receiver.value
        XCTAssertEqual(bytes, Array("ping".utf8))
        XCTAssertEqual(host, "127.0.0.1")
        XCTAssertEqual(port, a.localPort)
        let waiting = Green.spawn { try b.receive() }
        try Green.yield()
        waiting.cancel()
        XCTAssertThrowsError(try waiting.value) { XCTAssertTrue($0 is CancellationError) }
    }
}

final class ThreadSet: @unchecked Sendable {
    private let lock = NSLock()
    private var ids = Set<UInt>()
    func insert(_ t: pthread_t) { lock.lock(); ids.insert(UInt(t)); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return ids.count }
}
