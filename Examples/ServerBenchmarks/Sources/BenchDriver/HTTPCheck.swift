import Glibc

/// Send one `GET /` to 127.0.0.1:port and check that the answer is a 200
/// with the body "Hello, World!" (wrk counts statuses but reads no bodies,
/// so each server is checked once before it is loaded). 5 s at most.
func checkHelloWorld(port: Int, server: String) throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = loopbackAddress(port: port)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw BenchError("\(server): cannot connect to port \(port)") }
    let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
        throw BenchError("\(server): cannot send a request")
    }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break } // end of stream (or the 5 s timeout)
        response += chunk[0..<n]
        // The C ceiling keeps every connection open: stop once the body is in.
        if String(decoding: response, as: UTF8.self).hasSuffix("Hello, World!") { break }
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 200"), text.hasSuffix("\r\n\r\nHello, World!") else {
        throw BenchError("\(server) answered GET / with something other than 200 \"Hello, World!\":\n\(text)")
    }
}
