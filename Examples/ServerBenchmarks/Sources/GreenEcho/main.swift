// The Green contender for the echo benchmark: a StreamServer (a fiber per
// connection on one hub, one OS thread) whose handler is plain blocking
// code — read what arrived, write all of it back.
//
//   green-echo PORT [--arrays]
//
// By default the handler reads with Socket.read(into:) into one buffer per
// connection and writes it back with Socket.writeAll: no allocation per
// message. With --arrays it uses Socket.read() and writeAll([UInt8]), which
// return and take a fresh array per call: simpler, and the row shows what
// that costs.
import Glibc
import Green

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 9000 : 9000
let arrays = CommandLine.arguments.contains("--arrays")

/// Echo one connection through one reused buffer until the client closes it.
func echo(_ conn: Socket) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let n = try conn.read(into: buffer)
        if n == 0 { return }
        try conn.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }
}

/// Echo one connection with an array per read.
func echoArrays(_ conn: Socket) throws {
    while true {
        let bytes = try conn.read()
        if bytes.isEmpty { return }
        try conn.writeAll(bytes)
    }
}

let server = StreamServer(listener: try Socket.listen(port: port, backlog: 4096)) { conn in
    do {
        try conn.setOption(TCP_NODELAY, 1, level: Int32(IPPROTO_TCP))
        try arrays ? echoArrays(conn) : echo(conn)
    } catch let e as SocketError where e.errno == ECONNRESET || e.errno == EPIPE {}
}
print("green-echo\(arrays ? " --arrays" : "") on 127.0.0.1:\(port)")
try server.serve()
