// The thread-per-connection contender for the echo benchmark: plain Glibc
// blocking sockets, one OS thread per connection, no Green and no event
// loop — the code Green lets one write, run on kernel threads instead.
//
//   thread-echo PORT
import Glibc

let port = CommandLine.arguments.count > 1 ? UInt16(CommandLine.arguments[1]) ?? 9000 : 9000

/// Print the failed call with errno's message and exit.
func die(_ what: String) -> Never {
    fputs("thread-echo: \(what): \(String(cString: strerror(errno)))\n", stderr)
    exit(1)
}

/// A blocking TCP listener on 127.0.0.1:port.
func listenLoopback(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    if fd < 0 { die("socket") }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 { die("bind") }
    if listen(fd, 4096) != 0 { die("listen") }
    return fd
}

/// Echo one connection on the calling thread until the client closes it.
func echo(_ fd: Int32) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    let size = 65536
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate(); close(fd) }
    while true {
        let n = read(fd, buffer, size)
        if n <= 0 { return }
        var sent = 0
        while sent < n {
            let w = send(fd, buffer + sent, n - sent, Int32(MSG_NOSIGNAL))
            if w <= 0 { return }
            sent += w
        }
    }
}

/// Run `body` on a new detached thread with a 256 KiB stack.
func spawnThread(_ body: @escaping () -> Void) {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    pthread_attr_setstacksize(&attr, 256 * 1024)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(&thread, &attr, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, arg)
    if rc != 0 { errno = rc; die("pthread_create") }
}

let listener = listenLoopback(port: port)
print("thread-echo on 127.0.0.1:\(port)")
fflush(stdout)
while true {
    let fd = accept(listener, nil, nil)
    if fd < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        die("accept")
    }
    spawnThread { echo(fd) }
}
