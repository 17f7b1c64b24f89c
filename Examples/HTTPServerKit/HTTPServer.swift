import Glibc
import Green

/// A response: status, headers and body (Content-Length is added).
public struct HTTPResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int = 200, headers: [(String, String)] = [("Content-Type", "text/plain")], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: Int = 200, text: String) { self.init(status: status, body: Array(text.utf8)) }

    func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPResponse.reason(status))\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}

/// Serve HTTP/1.1 on one connection in plain blocking style: requests are
/// handled one after another (so pipelined requests get their responses in
/// order), the connection is kept alive unless the client says otherwise,
/// and anything malformed gets an error status and a close.
public func serveHTTP(_ conn: Socket, parser: HTTPParser = HTTPParser(),
                      handler: (HTTPRequest) throws -> HTTPResponse) throws {
    while true {
        let request: HTTPRequest
        do {
            guard let r = try parser.next(from: conn) else { return }
            request = r
        } catch let e as HTTPError {
            try? conn.writeAll(HTTPResponse(status: e.status, text: e.reason + "\n").serialized(keepAlive: false))
            return
        } catch let e as SocketError where e.errno == EMSGSIZE /* line too long */ {
            try? conn.writeAll(HTTPResponse(status: 431, text: "header line too long\n").serialized(keepAlive: false))
            return
        }
        let response: HTTPResponse
        do { response = try handler(request) } catch { response = HTTPResponse(status: 500, text: "internal error\n") }
        try conn.writeAll(response.serialized(keepAlive: request.keepAlive))
        if !request.keepAlive { return }
    }
}
