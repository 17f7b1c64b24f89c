import Green
import HTTPServerKit
import XCTest

/// The HTTP/1.1 example server, driven with raw bytes.
final class HTTPTests: XCTestCase {
    func startServer() throws -> StreamServer {
        let server = StreamServer(listener: try Socket.listen()) { conn in
            try serveHTTP(conn) { request in
                if request.method == "POST" { return HTTPResponse(body: request.body) }
                if request.target == "/probe" { return HTTPResponse(text: "probe=\(request.header("x-PROBE") ?? "none")") }
                return HTTPResponse(text: "hello \(request.target)")
            }
        }
        server.start()
        return server
    }

    /// Read one response: status code, headers, body.
    func readResponse(_ s: Socket) throws -> (status: Int, body: String, close: Bool)? {
        guard let statusLine = try s.readLine() else { return nil }
        let status = Int(statusLine.split(separator: " ")[1])!
        var length = 0, close = false
        while let line = try s.readLine(), !line.isEmpty {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts[0].lowercased() == "content-length" { length = Int(parts[1])! }
            if parts[0].lowercased() == "connection" { close = parts[1].lowercased() == "close" }
        }
        return (status, String(decoding: try s.readExactly(length), as: UTF8.self), close)
    }

    func testKeepAliveAndPipelining() throws {
        let server = try startServer()
        defer { try? server.stop() }
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        try s.writeAll("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try readResponse(s)?.body, "hello /a")
        // Three requests in one write: answered in order on the same connection.
        try s.writeAll("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try (0..<3).map { _ in try readResponse(s)?.body }, ["hello /1", "hello /2", "hello /3"])
        // Connection: close ends it after the response.
        try s.writeAll("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let last = try readResponse(s)
        XCTAssertEqual(last?.body, "hello /last")
        XCTAssertEqual(last?.close, true)
        XCTAssertNil(try s.readLine())
    }

    func testBodies() throws {
        let server = try startServer()
        defer { try? server.stop() }
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        try s.writeAll("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(try readResponse(s)?.body, "hello world")
        try s.writeAll("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n")
        XCTAssertEqual(try readResponse(s)?.body, "hello world")
        // HTTP/1.0 closes unless asked to keep alive.
        try s.writeAll("GET /old HTTP/1.0\r\n\r\n")
        XCTAssertEqual(try readResponse(s)?.close, true)
    }

    func testMalformedRequestsGetErrorsAndAClose() throws {
        let server = try startServer()
        defer { try? server.stop() }
        let cases: [(String, Int)] = [
            ("GARBAGE\r\n\r\n", 400),
            ("GET /x HTTP/2.0\r\n\r\n", 505),
            ("GET x HTTP/1.1\r\n\r\n", 400),
            ("GET /x HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
            ("GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
            ("POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
            ("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
            ("POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            ("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),      // no sign
            ("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n", 400),
            ("GET /x HTTP/1.1\r\n\r\n", 400),                                          // no Host
            ("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),                    // two Hosts
        ]
        for (raw, status) in cases {
            let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
            try s.writeAll(raw)
            let r = try readResponse(s)
            XCTAssertEqual(r?.status, status, raw)
            XCTAssertEqual(r?.close, true, raw)
            XCTAssertNil(try s.readLine(), "closed after an error: \(raw)")
        }
    }

    /// What the byte-level head parser accepts beyond the plain case.
    func testHeadParsingLeniencyTheRFCAllows() throws {
        let server = try startServer()
        defer { try? server.stop() }
        let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        // Bare LF line ends, and an empty line before the request line (RFC 9112 §2.2).
        try s.writeAll("\r\nGET /lf HTTP/1.1\nHost: x\n\n")
        XCTAssertEqual(try readResponse(s)?.body, "hello /lf")
        // A head dribbled one byte at a time; header names match in any case,
        // values lose their surrounding blanks.
        for byte in "GET /probe HTTP/1.1\r\nHost: x\r\nX-Probe: \t yes \r\n\r\n".utf8 {
            try s.writeAll([byte])
        }
        XCTAssertEqual(try readResponse(s)?.body, "probe=yes")
        // Connection is a list: "close" anywhere in it closes.
        try s.writeAll("GET /bye HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n")
        XCTAssertEqual(try readResponse(s)?.close, true)
        XCTAssertNil(try s.readLine())
        // HTTP/1.0 stays open with keep-alive in the list.
        let old = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
        try old.writeAll("GET /a HTTP/1.0\r\nConnection: Keep-Alive, foo\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
        XCTAssertEqual(try readResponse(old)?.close, false)
        XCTAssertEqual(try readResponse(old)?.close, true)
    }

    func testLimitsAndTruncatedHeads() throws {
        let server = try startServer()
        defer { try? server.stop() }
        let longLine = "GET /x HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        let manyHeaders = "GET /x HTTP/1.1\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        let cases: [(String, Int)] = [
            (longLine, 431),
            (manyHeaders, 431),
            ("GET /x HTTP/1.1\r\n folded: v\r\n\r\n", 400),       // obs-fold is refused
            ("GET /x HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),           // a bare CR in a value
            ("GET  /x HTTP/1.1\r\n\r\n", 400),                      // two spaces
            ("GET /x\u{7F} HTTP/1.1\r\n\r\n", 400),                 // a control byte in the target
            ("GET /x HTTP/1.1\r\nHost: x\r\n", 400),                // end of stream inside the head
        ]
        for (raw, status) in cases {
            let s = try Socket.connect(host: "127.0.0.1", port: server.listener.localPort)
            try s.writeAll(raw)
            try s.shutdown(.write)
            let r = try readResponse(s)
            XCTAssertEqual(r?.status, status, String(raw.prefix(60)))
            XCTAssertEqual(r?.close, true)
        }
    }

    /// A request refused early while its client is still sending a large
    /// body: the server drains before closing, so the client can finish
    /// sending and still reads the error (a close with unread bytes would
    /// reset the connection instead).
    func testErrorResponseSurvivesAClientStillSending() throws {
        let listener = try Socket.listen()
        // Small buffers (accepted sockets inherit the listener's), so the
        // client is still sending long after the server has answered.
        try listener.setOption(SO_RCVBUF, 65536)
        let server = StreamServer(listener: listener) { conn in try serveHTTP(conn) { _ in HTTPResponse(text: "ok") } }
        server.start()
        defer { try? server.stop() }
        let s = try Socket.connect(host: "127.0.0.1", port: listener.localPort)
        try s.setOption(SO_SNDBUF, 65536)
        let head = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"     // 501 at once
        try s.writeAll(head)
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<8 { try s.writeAll(chunk) }
        try s.shutdown(.write)
        let r = try readResponse(s)
        XCTAssertEqual(r?.status, 501)
        XCTAssertEqual(r?.close, true)
        XCTAssertNil(try s.readLine())
    }

    /// Framing RFC 9112 calls faulty, and responses a handler gets wrong.
    func testFaultyFramingAndMalformedResponses() throws {
        let server = StreamServer(listener: try Socket.listen()) { conn in
            try serveHTTP(conn) { request in
                switch request.target {
                case "/forged": return HTTPResponse(headers: [("X-Evil", "a\r\nSet-Cookie: stolen")], body: [])
                case "/status": return HTTPResponse(status: -7, text: "?")
                default: return HTTPResponse(body: request.body)
                }
            }
        }
        server.start()
        defer { try? server.stop() }
        let port = server.listener.localPort
        // HTTP/1.0 with Transfer-Encoding: the body is read, then the connection closes.
        let old = try Socket.connect(host: "127.0.0.1", port: port)
        try old.writeAll("POST /e HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        let r = try readResponse(old)
        XCTAssertEqual(r?.body, "hi")
        XCTAssertEqual(r?.close, true)
        // End of stream inside the trailers.
        let t = try Socket.connect(host: "127.0.0.1", port: port)
        try t.writeAll("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n")
        try t.shutdown(.write)
        XCTAssertEqual(try readResponse(t)?.status, 400)
        // A CR LF in a handler's header value, or a status that is not three digits: 500, nothing forged.
        for target in ["/forged", "/status"] {
            let s = try Socket.connect(host: "127.0.0.1", port: port)
            try s.writeAll("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(try s.readLine(), "HTTP/1.1 500 Internal Server Error", target)
            var fields: [String] = []
            while let line = try s.readLine(), !line.isEmpty { fields.append(line) }
            XCTAssertFalse(fields.contains { $0.hasPrefix("Set-Cookie") }, "\(fields)")
        }
    }
}
