// PreloadEchoLoad.swift — the load generator of the preload section: one
// Green fiber per TCP connection to an echo server, all on this thread's hub.
// The phases are driven by the caller (the main fiber):
//
//   openAll  — connect every connection (a bounded number at a time, so the
//              server's accept backlog never overflows) and make one round
//              trip on each, so the server has accepted and served them all;
//   run      — every connection makes request/response round trips until the
//              time is up;
//   closeAll — half-close every connection, expect the server's EOF, close.
//
// A request is `messageSize` bytes written and the same bytes read back; every
// byte is compared. Every wait is bounded (SO_RCVTIMEO/SO_SNDTIMEO on each
// socket, deadlines on every phase), and every failure is recorded.
import Glibc
import Green

final class EchoLoad {
    /// The server's port on 127.0.0.1.
    let port: UInt16
    /// Connections (and fibers).
    let connections: Int
    /// Bytes per request (and per reply).
    let messageSize: Int
    /// How long one socket read or write may wait before it counts as an error.
    static let ioTimeoutSeconds = 10
    /// Connections being opened at the same time.
    static let openConcurrency = 64

    /// Round trips completed (warm-up ones not included).
    private(set) var requests = 0
    /// Failures seen, and the first few of them in words.
    private(set) var errorCount = 0
    private(set) var errors: [String] = []

    private var fibers: [Fiber<Void>] = []
    private let openPermits = Semaphore(value: EchoLoad.openConcurrency)
    private var openDeadline = Deadline.never
    /// The last moment any fiber waits for the next phase (a safety net:
    /// `closeAll` normally releases them long before).
    private let lastDeadline = Deadline.after(.seconds(600))
    private var stop = false
    private var opened = 0, loaded = 0
    private let allOpened = Event(), go = Event(), allLoaded = Event(), closeNow = Event()

    /// A load of `connections` connections to 127.0.0.1:`port`; nothing
    /// happens until `openAll`.
    init(port: UInt16, connections: Int, messageSize: Int = 1024) {
        self.port = port
        self.connections = connections
        self.messageSize = messageSize
    }

    // MARK: phases (called from the main fiber)

    /// Start the fibers and wait until every connection is open and has made
    /// its first round trip (or failed). Returns the seconds it took; throws
    /// if that takes longer than `limit`.
    func openAll(within limit: Duration) throws -> Double {
        openDeadline = .after(limit)
        let started = ContinuousClock.now
        fibers.reserveCapacity(connections)
        for i in 0..<connections {
            fibers.append(Green.spawn(name: "echo client") { [unowned self] in self.connection(i) })
        }
        do {
            try allOpened.wait(until: openDeadline)
        } catch is TimeoutError {
            throw BenchError("only \(opened) of \(connections) connections were open after \(limit)")
        }
        return seconds(ContinuousClock.now - started)
    }

    /// Let every connection make round trips for `duration`, then wait until
    /// each has finished the one it is in. Returns the requests completed
    /// and the seconds from the start until the last one finished.
    func run(for duration: Duration) throws -> (requests: Int, seconds: Double) {
        let started = ContinuousClock.now
        go.set()
        try Green.sleep(for: duration)
        stop = true
        let limit = Duration.seconds(EchoLoad.ioTimeoutSeconds + 5)
        do {
            try allLoaded.wait(until: .after(limit))
        } catch is TimeoutError {
            throw BenchError("only \(loaded) of \(connections) connections finished their last request within \(limit)")
        }
        return (requests, seconds(ContinuousClock.now - started))
    }

    /// Half-close every connection, wait for the server to close its side,
    /// close; fibers still running after `limit` are cancelled and counted as
    /// errors. Safe to call after a failed phase.
    func closeAll(within limit: Duration) {
        stop = true
        go.set()
        closeNow.set()
        let deadline = Deadline.after(limit)
        for f in fibers {
            do { try f.join(until: deadline) } catch { break }
        }
        let stuck = fibers.filter { $0.state != .done }
        if !stuck.isEmpty {
            record(-1, "\(stuck.count) connection(s) had not closed after \(limit); cancelled")
            for f in stuck { f.cancel() }
            for f in stuck { try? f.join(until: .after(.seconds(2))) }
        }
        fibers = []
    }

    // MARK: one connection (runs on its own fiber)

    /// The whole life of connection `index`: open, warm-up, load, close.
    /// Never throws: failures are recorded and the fiber still takes part in
    /// every phase count, so the main fiber never waits for it in vain.
    private func connection(_ index: Int) {
        let buffers = MessageBuffers(size: messageSize, connection: index)
        var socket: Socket?
        do {
            try openPermits.acquire(until: openDeadline)
            defer { try? openPermits.release() }
            let s = try open()
            socket = s
            try roundTrip(s.fd, buffers, sequence: 0)
        } catch {
            record(index, "open: \(error)")
            socket = nil
        }
        arrive(&opened, allOpened)

        if let s = socket {
            do {
                try go.wait(until: lastDeadline)
                var sequence: UInt64 = 1
                while !stop {
                    try roundTrip(s.fd, buffers, sequence: sequence)
                    sequence += 1
                    requests += 1
                }
            } catch {
                record(index, "request: \(error)")
                socket = nil
            }
        }
        arrive(&loaded, allLoaded)

        if let s = socket {
            do {
                try closeNow.wait(until: lastDeadline)
                try expectServerClose(s)
            } catch {
                record(index, "close: \(error)")
            }
        }
    }

    /// Count one fiber into a phase; the last one sets the phase's event.
    private func arrive(_ count: inout Int, _ done: Event) {
        count += 1
        if count == connections { done.set() }
    }

    /// Connect a TCP socket to the server, with I/O timeouts and TCP_NODELAY.
    private func open() throws -> Socket {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EchoError.system("socket", errno) }
        let s = Socket(fd: fd)
        var timeout = timeval(tv_sec: EchoLoad.ioTimeoutSeconds, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw EchoError.system("setsockopt", errno)
            }
        }
        try s.setOption(Int32(TCP_NODELAY), 1, level: Int32(IPPROTO_TCP))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian   // 127.0.0.1
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let e = errno
            // With SO_SNDTIMEO, a connect that times out reports EINPROGRESS.
            throw e == EINPROGRESS ? EchoError.timedOut("connect") : EchoError.system("connect", e)
        }
        return s
    }

    /// Write the request, read the reply, compare every byte.
    private func roundTrip(_ fd: Int32, _ b: MessageBuffers, sequence: UInt64) throws {
        b.stamp(sequence)
        var done = 0
        while done < messageSize {
            let n = send(fd, b.request.baseAddress! + done, messageSize - done, Int32(MSG_NOSIGNAL))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw e == EAGAIN ? EchoError.timedOut("send") : EchoError.system("send", e)
            }
            done += n
        }
        done = 0
        while done < messageSize {
            let n = recv(fd, b.reply.baseAddress! + done, messageSize - done, 0)
            if n == 0 { throw EchoError.endOfStream(received: done, of: messageSize) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw e == EAGAIN ? EchoError.timedOut("recv") : EchoError.system("recv", e)
            }
            done += n
        }
        if memcmp(b.request.baseAddress!, b.reply.baseAddress!, messageSize) != 0 {
            let at = (0..<messageSize).first { b.request[$0] != b.reply[$0] }!
            throw EchoError.mismatch(sequence: sequence, offset: at, sent: b.request[at], received: b.reply[at])
        }
    }

    /// Half-close, then the server must close too (read returns 0) without
    /// sending anything more.
    private func expectServerClose(_ s: Socket) throws {
        try s.shutdown(.write)
        var byte: UInt8 = 0
        while true {
            let n = recv(s.fd, &byte, 1, 0)
            if n == 0 { break }
            if n > 0 { throw EchoError.unexpectedData }
            let e = errno
            if e == EINTR { continue }
            throw e == EAGAIN ? EchoError.timedOut("recv of EOF") : EchoError.system("recv of EOF", e)
        }
        s.close()
    }

    /// Count a failure; keep the first ten messages.
    private func record(_ index: Int, _ message: String) {
        errorCount += 1
        if errors.count < 10 { errors.append(index >= 0 ? "connection #\(index): \(message)" : message) }
    }
}

/// The request and reply buffers of one connection. The request holds the
/// connection number (bytes 0–7), the request's sequence number (8–15) and a
/// pattern particular to the connection, so a reply from the wrong
/// connection or request, or a reordered byte, never compares equal.
final class MessageBuffers {
    let request: UnsafeMutableRawBufferPointer
    let reply: UnsafeMutableRawBufferPointer

    /// Buffers of `size` (≥ 16) bytes for connection `connection`.
    init(size: Int, connection: Int) {
        request = .allocate(byteCount: size, alignment: 8)
        reply = .allocate(byteCount: size, alignment: 8)
        for i in 0..<size { request[i] = UInt8(truncatingIfNeeded: connection &* 131 &+ i &* 7 &+ i >> 8) }
        request.storeBytes(of: UInt64(connection).littleEndian, toByteOffset: 0, as: UInt64.self)
        reply.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        request.deallocate()
        reply.deallocate()
    }

    /// Put the request's sequence number in bytes 8–15.
    func stamp(_ sequence: UInt64) {
        request.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
    }
}

/// How one echo round trip or close failed.
enum EchoError: Error, CustomStringConvertible {
    case system(String, Int32)
    case timedOut(String)
    case endOfStream(received: Int, of: Int)
    case mismatch(sequence: UInt64, offset: Int, sent: UInt8, received: UInt8)
    case unexpectedData

    var description: String {
        switch self {
        case let .system(call, e): return "\(call) failed: \(String(cString: strerror(e))) (errno \(e))"
        case let .timedOut(call): return "\(call) timed out after \(EchoLoad.ioTimeoutSeconds) s"
        case let .endOfStream(received, total): return "server closed the connection after \(received) of \(total) reply bytes"
        case let .mismatch(seq, offset, sent, received):
            return "request \(seq): reply byte \(offset) is \(received), sent \(sent)"
        case .unexpectedData: return "server sent data after the last reply"
        }
    }
}
