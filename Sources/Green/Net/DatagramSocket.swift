import Glibc

/// A UDP socket in blocking style: `receive` parks the calling fiber.
public final class DatagramSocket {
    /// The file descriptor (owned).
    public private(set) var fd: Int32

    /// Bind to `host:port` (port 0: the kernel picks; see `localPort`).
    public init(host: String = "127.0.0.1", port: UInt16 = 0) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
        var addr = try DatagramSocket.address(host, port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError(operation: "bind \(host):\(port)", errno: e)
        }
    }

    deinit { close() }

    /// The bound port.
    public var localPort: UInt16 {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// Send one datagram to `host:port` (an IPv4 address).
    public func send(_ bytes: [UInt8], to host: String, port: UInt16) throws {
        var addr = try DatagramSocket.address(host, port)
        let n = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if n < 0 { throw SocketError(operation: "sendto", errno: errno) }
    }

    /// The next datagram (up to `max` bytes) and its sender's address and port.
    public func receive(max: Int = 65536) throws -> (bytes: [UInt8], host: String, port: UInt16) {
        var buf = [UInt8](repeating: 0, count: max)
        var from = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = withUnsafeMutablePointer(to: &from) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, max, 0, $0, &len) }
        }
        if n < 0 {
            let e = errno
            if e == ECANCELED { throw CancellationError() }
            throw SocketError(operation: "recvfrom", errno: e)
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &from.sin_addr, &text, socklen_t(INET_ADDRSTRLEN))
        return (Array(buf[0..<n]), String(cString: text), UInt16(bigEndian: from.sin_port))
    }

    /// Close the socket. Idempotent.
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private static func address(_ host: String, _ port: UInt16) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw SocketError(operation: "address \(host)", errno: EINVAL) }
        return addr
    }
}

/// Used on one hub at a time, as `Socket` is.
@available(*, unavailable, message: "a DatagramSocket is used on one hub at a time: move it (sending), do not share it")
extension DatagramSocket: Sendable {}
