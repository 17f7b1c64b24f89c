// The Green contender for the echo benchmark: a StreamServer (a fiber per
// connection on one hub, one OS thread) whose handler is plain blocking
// code — read what arrived, write all of it back.
//
//   green-echo PORT
import Glibc
import Green

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 9000 : 9000

/// Echo one connection until the client closes it.
func echo(_ conn: Socket) throws {
    try conn.setOption(TCP_NODELAY, 1, level: Int32(IPPROTO_TCP))
    while true {
        let bytes = try conn.read()
        if bytes.isEmpty { return }
        try conn.writeAll(bytes)
    }
}

let server = StreamServer(listener: try Socket.listen(port: port, backlog: 4096)) { conn in
    do { try echo(conn) } catch let e as SocketError where e.errno == ECONNRESET || e.errno == EPIPE {}
}
print("green-echo on 127.0.0.1:\(port)")
try server.serve()
