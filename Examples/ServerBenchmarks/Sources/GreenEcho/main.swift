// The Green contender for the echo benchmark: a StreamServer (a fiber per
// connection on one hub, one OS thread) whose handler is plain blocking
// code — read what arrived, write all of it back.
//
//   green-echo PORT [--raw]
//
// By default the handler uses Socket.read() and Socket.writeAll(_:), as an
// application would. With --raw it calls read(2) and send(2) on the
// socket's fd with one buffer per connection: the same fibers and shim, less
// Socket's per-read 64 KiB array (allocated and zero-filled on every read).
import Glibc
import Green

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 9000 : 9000
let raw = CommandLine.arguments.contains("--raw")

/// A read(2) or send(2) failure in the --raw handler.
struct RawSocketError: Error { let errno: Int32 }

/// Echo one connection with Socket's API until the client closes it.
func echo(_ conn: Socket) throws {
    while true {
        let bytes = try conn.read()
        if bytes.isEmpty { return }
        try conn.writeAll(bytes)
    }
}

/// Echo one connection with read(2)/send(2) through the shim (each call
/// parks only this fiber) and a buffer reused for every read.
func echoRaw(_ conn: Socket) throws {
    let size = 65536
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let n = read(conn.fd, buffer, size)
        if n < 0 { throw RawSocketError(errno: errno) }
        if n == 0 { return }
        var sent = 0
        while sent < n {
            let w = send(conn.fd, buffer + sent, n - sent, Int32(MSG_NOSIGNAL))
            if w < 0 { throw RawSocketError(errno: errno) }
            sent += w
        }
    }
}

let server = StreamServer(listener: try Socket.listen(port: port, backlog: 4096)) { conn in
    do {
        try conn.setOption(TCP_NODELAY, 1, level: Int32(IPPROTO_TCP))
        try raw ? echoRaw(conn) : echo(conn)
    } catch let e as SocketError where e.errno == ECONNRESET || e.errno == EPIPE {
    } catch let e as RawSocketError where e.errno == ECONNRESET || e.errno == EPIPE {}
}
print("green-echo\(raw ? " --raw" : "") on 127.0.0.1:\(port)")
try server.serve()
