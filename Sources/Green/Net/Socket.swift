import CGreenCore
import Glibc

/// A socket operation failed with `errno` (e.g. ECONNREFUSED, ECONNRESET).
public struct SocketError: Error, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    public var description: String { "green: \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// A blocking-style socket: every call parks only the calling fiber (the
/// shim turns the kernel's EAGAIN into a wait on the hub). Use
/// `Green.withTimeout` for deadlines; cancellation and timeout scopes throw
/// `CancellationError` / `TimeoutError` from any call.
public final class Socket {
    // Both fields skip Swift's dynamic exclusivity check: each check is a
    // thread-local lookup, and the two cost more than the rest of
    // `read(into:)` and `writeAll` outside their system calls.

    /// The file descriptor (owned: closed by `close()` or on deinit). Every
    /// access is a single load or store.
    @exclusivity(unchecked) public private(set) var fd: Int32
    /// The read-ahead for readLine/readExactly/readParsed. Only `fill` parks
    /// while changing it; `filling` says so, and any other use of it then
    /// traps (the one conflict the exclusivity check used to catch: a second
    /// fiber reading the socket while the first waits for its bytes).
    @exclusivity(unchecked) private var buffer = ReadBuffer()
    @exclusivity(unchecked) private var filling = false

    /// Take ownership of an open socket fd.
    public init(fd: Int32) { self.fd = fd }
    deinit {
        close()
        buffer.release()
    }

    // MARK: making sockets

    /// Connect over TCP to `host:port` (names resolved with getaddrinfo on the
    /// thread pool), trying each address in turn.
    public static func connect(host: String, port: UInt16) throws -> Socket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0 else { throw SocketError(operation: "resolve \(host)", errno: rc == EAI_SYSTEM ? Glibc.errno : EHOSTUNREACH) }
        defer { freeaddrinfo(res) }
        var lastError = SocketError(operation: "connect \(host):\(port)", errno: EHOSTUNREACH)
        var p = res
        while let ai = p {
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return Socket(fd: fd) }
                let e = Glibc.errno
                Glibc.close(fd)
                try rethrowInterruption(e)
                lastError = SocketError(operation: "connect \(host):\(port)", errno: e)
            }
            p = ai.pointee.ai_next
        }
        throw lastError
    }

    /// Connect to a Unix-domain stream socket.
    public static func connect(unixPath path: String) throws -> Socket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: Glibc.errno) }
        let s = Socket(fd: fd)
        try withUnixAddress(path) { addr, len in
            if Glibc.connect(fd, addr, len) != 0 { try s.fail("connect \(path)") }
        }
        return s
    }

    /// A TCP listener on `host:port` (port 0: the kernel picks; see `localPort`).
    /// `reusePort` sets SO_REUSEPORT, for one listener per thread or process.
    public static func listen(host: String = "127.0.0.1", port: UInt16 = 0, backlog: Int32 = 1024,
                              reusePort: Bool = false) throws -> Socket {
        let s = try bound(host: host, port: port, reusePort: reusePort)
        if Glibc.listen(s.fd, backlog) != 0 { try s.fail("listen") }
        return s
    }

    /// A TCP socket bound to `host:port` but not listening: it holds the port
    /// (with `reusePort`, for listeners that share it) and gets no connections.
    static func bound(host: String, port: UInt16, reusePort: Bool) throws -> Socket {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw SocketError(operation: "listen on \(host)", errno: EINVAL) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: Glibc.errno) }
        let s = Socket(fd: fd)
        try s.setOption(SO_REUSEADDR, 1)
        if reusePort { try s.setOption(SO_REUSEPORT, 1) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { try s.fail("bind \(host):\(port)") }
        return s
    }

    /// A Unix-domain stream listener at `path`. A socket file already there
    /// (left by an earlier listener) is replaced; any other file is left
    /// alone and the call throws `EADDRINUSE`, as `bind` would.
    public static func listen(unixPath path: String, backlog: Int32 = 1024) throws -> Socket {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw SocketError(operation: "bind \(path) (not a socket, left alone)", errno: EADDRINUSE)
            }
            if unlink(path) != 0 && Glibc.errno != ENOENT { throw SocketError(operation: "unlink \(path)", errno: Glibc.errno) }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: Glibc.errno) }
        let s = Socket(fd: fd)
        try withUnixAddress(path) { addr, len in
            if bind(fd, addr, len) != 0 { try s.fail("bind \(path)") }
        }
        if Glibc.listen(fd, backlog) != 0 { try s.fail("listen") }
        return s
    }

    /// Wait for the next connection.
    public func accept() throws -> Socket {
        let c = Glibc.accept(fd, nil, nil)
        if c < 0 { try fail("accept") }
        return Socket(fd: c)
    }

    /// The local port (for a listener on port 0).
    public var localPort: UInt16 {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    // MARK: reading

    /// Up to `max` bytes as soon as any are available; empty at end of stream.
    public func read(max: Int = 65536) throws -> [UInt8] {
        checkNotFilling()
        if !buffer.isEmpty { return buffer.take(max) }
        var n = 0
        // Uninitialized storage: zero-filling 64 KiB per call cost a fifth of an echo server's CPU.
        let out = [UInt8](unsafeUninitializedCapacity: max) { bytes, count in
            n = Glibc.read(fd, bytes.baseAddress, max)
            count = Swift.max(n, 0)
        }
        if n < 0 { try fail("read") }
        return out
    }

    /// Read into the caller's memory, as soon as any bytes are available (read-ahead
    /// from `readLine`/`readExactly`/`readParsed` first). Returns the count; 0 at end
    /// of stream. With one buffer per connection this allocates nothing per call.
    public func read(into target: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = target.baseAddress, target.count > 0 else { return 0 }
        checkNotFilling()
        if !buffer.isEmpty {
            let n = Swift.min(target.count, buffer.count)
            base.copyMemory(from: buffer.bytes.baseAddress!, byteCount: n)
            buffer.consume(n)
            return n
        }
        let n = Glibc.read(fd, base, target.count)
        if n < 0 { try fail("read") }
        return n
    }

    /// Exactly `count` bytes; throws `SocketError` with EPIPE if the peer closes
    /// first (EINVAL for a negative count).
    public func readExactly(_ count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw SocketError(operation: "readExactly(\(count))", errno: EINVAL) }
        checkNotFilling()
        while buffer.count < count {
            // Grow with what arrives, not all at once: `count` may come from the peer.
            if try readMore(atLeast: Swift.min(count - buffer.count, 1 << 20)) == 0 {
                throw SocketError(operation: "readExactly(\(count)): end of stream after \(buffer.count) bytes", errno: EPIPE)
            }
        }
        return buffer.take(count)
    }

    /// The next line without its "\n" (or "\r\n"); nil at end of stream.
    /// A last line without a newline is returned as is.
    public func readLine(maxLength: Int = 1 << 20) throws -> String? {
        checkNotFilling()
        var scanned = 0
        while true {
            let bytes = buffer.bytes
            if let nl = bytes[scanned...].firstIndex(of: 10) {
                let cr = nl > 0 && bytes[nl - 1] == 13 ? 1 : 0
                if nl - cr > maxLength { throw SocketError(operation: "readLine: line longer than \(maxLength)", errno: EMSGSIZE) }
                let line = String(decoding: bytes[0..<(nl - cr)], as: UTF8.self)
                buffer.consume(nl + 1)
                return line
            }
            scanned = bytes.count
            if bytes.count > maxLength { throw SocketError(operation: "readLine: line longer than \(maxLength)", errno: EMSGSIZE) }
            if try readMore() == 0 {
                guard !buffer.isEmpty else { return nil }
                let last = String(decoding: buffer.bytes, as: UTF8.self)
                buffer.consume(buffer.count)
                return last
            }
        }
    }

    /// Parse straight out of the read-ahead, for protocols with their own
    /// framing (an HTTP head, a length-prefixed record) without copying
    /// lines out first. `parse` sees every byte buffered so far: it returns
    /// nil to ask for more, or its result and how many bytes it used (which
    /// are then consumed). The bytes are only valid during the call.
    ///
    /// Returns nil when the stream ends before any byte. Throws `SocketError`
    /// with EPIPE when it ends inside a frame, and with EMSGSIZE when more
    /// than `maxLength` bytes are buffered and `parse` still wants more.
    public func readParsed<Result>(maxLength: Int = 1 << 20,
                                   _ parse: (UnsafeRawBufferPointer) throws -> (result: Result, consumed: Int)?) throws -> Result? {
        checkNotFilling()
        while true {
            if !buffer.isEmpty, let (result, consumed) = try parse(buffer.bytes) {
                buffer.consume(consumed)
                return result
            }
            if buffer.count > maxLength { throw SocketError(operation: "readParsed: frame longer than \(maxLength)", errno: EMSGSIZE) }
            if try readMore() == 0 {
                if buffer.isEmpty { return nil }
                throw SocketError(operation: "readParsed: end of stream after \(buffer.count) bytes", errno: EPIPE)
            }
        }
    }

    /// One read onto the read-ahead; the count, 0 at end of stream.
    private func readMore(atLeast: Int = 4096) throws -> Int {
        checkNotFilling()
        filling = true
        let n = buffer.fill(from: fd, atLeast: atLeast)
        filling = false
        if n < 0 { try fail("read") }
        return n
    }

    /// Trap if another fiber is parked filling the read-ahead: the reads of
    /// one socket are for one fiber at a time.
    @inline(__always)
    private func checkNotFilling() {
        if _slowPath(filling) { concurrentReads() }
    }

    @inline(never)
    private func concurrentReads() -> Never {
        fatalError("green: two fibers read one Socket (fd \(fd)) at once; another is waiting for bytes on it")
    }

    // MARK: writing

    /// Write every byte (parking while the peer is slow).
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var sent = 0
        while sent < bytes.count {
            let n = send(fd, base + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            if n < 0 { try fail("write") }
            sent += n
        }
    }

    /// Write every byte of an array.
    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    /// Write a string as UTF-8.
    public func writeAll(_ text: String) throws {
        var text = text
        try text.withUTF8 { try writeAll(UnsafeRawBufferPointer($0)) }
    }

    // MARK: the rest

    public enum ShutdownHow { case read, write, both }

    /// Half-close: `.write` sends end-of-stream, reading still works.
    public func shutdown(_ how: ShutdownHow) throws {
        let h: Int32 = how == .read ? Int32(SHUT_RD) : how == .write ? Int32(SHUT_WR) : Int32(SHUT_RDWR)
        if Glibc.shutdown(fd, h) != 0 { try fail("shutdown") }
    }

    /// Set an integer socket option (e.g. `SO_KEEPALIVE`, or `TCP_NODELAY` with level `IPPROTO_TCP`).
    public func setOption(_ name: Int32, _ value: Int32, level: Int32 = SOL_SOCKET) throws {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 { try fail("setsockopt") }
    }

    /// Close the socket (fibers waiting on it get EBADF). Idempotent.
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Throw the error for the errno the last call left.
    private func fail(_ operation: String) throws -> Never {
        let e = Glibc.errno
        try rethrowInterruption(e)
        throw SocketError(operation: operation, errno: e)
    }
}

/// The shim reports a cancelled or timed-out wait as ECANCELED / ETIMEDOUT;
/// in Swift those are CancellationError and TimeoutError.
private func rethrowInterruption(_ e: Int32) throws {
    if e == ECANCELED { throw CancellationError() }
    if e == ETIMEDOUT, let f = green_fiber_current(), let scope = green_fiber_expired_timeout(f) {
        throw TimeoutError(scope: scope)
    }
}

private func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SocketError(operation: "unix path too long", errno: ENAMETOOLONG) }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    try withUnsafePointer(to: &addr) {
        try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A socket is used by one fiber at a time, on that fiber's hub. It may move
/// to another thread (`sending`, as `ThreadedServer` hands its first
/// listener over) but is not shared between threads.
@available(*, unavailable, message: "a Socket is used on one hub at a time: move it (sending), do not share it")
extension Socket: Sendable {}
