import Glibc
import Green

/// Serve HTTP/1.1 on one connection in plain blocking style: requests are
/// handled one after another (so pipelined requests get their responses in
/// order), the connection is kept alive unless the client says otherwise,
/// and anything malformed gets an error status and a close.
public func serveHTTP(_ conn: Socket, parser: HTTPParser = HTTPParser(),
                      handler: (HTTPRequest) throws -> HTTPResponse) throws {
    var out: [UInt8] = []   // one output buffer for the connection's responses
    out.reserveCapacity(1024)
    /// Send one response; an error response also ends the connection.
    func send(_ response: HTTPResponse, keepAlive: Bool) throws {
        out.removeAll(keepingCapacity: true)
        // A handler's bad status or a CR/LF in its headers would forge the response.
        let safe = response.isWellFormed ? response : HTTPResponse(status: 500, text: "internal error: malformed response\n")
        safe.serialize(into: &out, keepAlive: keepAlive)
        try conn.writeAll(out)
    }
    while true {
        let request: HTTPRequest
        do {
            guard let r = try parser.next(from: conn) else { return }
            request = r
        } catch let e as HTTPError {
            try? send(HTTPResponse(status: e.status, text: e.reason + "\n"), keepAlive: false)
            lingeringClose(conn)
            return
        } catch let e as SocketError where e.errno == EMSGSIZE /* a chunk-size line too long */ {
            try? send(HTTPResponse(status: 431, text: "header line too long\n"), keepAlive: false)
            lingeringClose(conn)
            return
        }
        let response: HTTPResponse
        do { response = try handler(request) } catch { response = HTTPResponse(status: 500, text: "internal error\n") }
        try send(response, keepAlive: request.keepAlive)
        if !request.keepAlive {
            lingeringClose(conn)
            return
        }
    }
}

/// After the last response (an error, or `Connection: close`), before the
/// close: stop sending, then read and drop what the client still sends (its
/// body, more pipelined requests) until it closes or `linger` passes. Closing with unread bytes makes the kernel
/// reset the connection, and a reset can destroy the response before the
/// client has read it.
func lingeringClose(_ conn: Socket, linger: Duration = .seconds(2)) {
    try? conn.shutdown(.write)
    withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 16) { scratch in
        _ = try? Green.withTimeout(linger) {
            while try conn.read(into: scratch) > 0 {}
        }
    }
}
