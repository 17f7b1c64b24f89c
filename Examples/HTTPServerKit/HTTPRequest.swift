import Green

/// One parsed HTTP/1.1 request.
public struct HTTPRequest: Equatable {
    public var method: String
    public var target: String
    public var version: String          // "HTTP/1.1" or "HTTP/1.0"
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.body == b.body
            && a.headers.map { "\($0.name):\($0.value)" } == b.headers.map { "\($0.name):\($0.value)" }
    }

    /// The first value of a header (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Whether the connection stays open after the response.
    public var keepAlive: Bool {
        let connection = header("Connection")?.lowercased()
        if version == "HTTP/1.0" { return connection == "keep-alive" }
        return connection != "close"
    }
}

/// Why a request was refused (answered with `status` and the connection closed).
public struct HTTPError: Error, Equatable {
    public let status: Int
    public let reason: String
}

/// Reads requests off a socket, strictly: what it does not accept is a 400
/// (or 413/431/501), never a guess.
public struct HTTPParser {
    public var maxHeaderLine = 8192
    public var maxHeaders = 100
    public var maxBody = 16 << 20

    public init() {}

    /// The next request, or nil when the peer closed between requests.
    public func next(from conn: Socket) throws -> HTTPRequest? {
        guard let requestLine = try conn.readLine(maxLength: maxHeaderLine) else { return nil }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(\.isTokenChar), parts[1].first == "/" || parts[1] == "*"
        else { throw HTTPError(status: 400, reason: "malformed request line") }
        let version = String(parts[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw HTTPError(status: 505, reason: "HTTP version not supported") }
        var headers: [(name: String, value: String)] = []
        while true {
            guard let line = try conn.readLine(maxLength: maxHeaderLine) else { throw HTTPError(status: 400, reason: "end of stream in headers") }
            if line.isEmpty { break }
            guard headers.count < maxHeaders else { throw HTTPError(status: 431, reason: "too many headers") }
            guard let colon = line.firstIndex(of: ":") else { throw HTTPError(status: 400, reason: "header without a colon") }
            let name = line[..<colon]
            guard !name.isEmpty, name.allSatisfy(\.isTokenChar) else { throw HTTPError(status: 400, reason: "bad header name") }
            let value = line[line.index(after: colon)...].trimmingSpaces
            headers.append((String(name), value))
        }
        var request = HTTPRequest(method: String(parts[0]), target: String(parts[1]), version: version, headers: headers, body: [])
        let lengths = headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        let encoding = request.header("Transfer-Encoding")?.lowercased()
        if encoding != nil && !lengths.isEmpty { throw HTTPError(status: 400, reason: "both Content-Length and Transfer-Encoding") }
        if let encoding {
            guard encoding == "chunked" else { throw HTTPError(status: 501, reason: "unsupported transfer encoding") }
            request.body = try readChunked(conn)
        } else if let first = lengths.first {
            guard Set(lengths).count == 1, let n = Int(first), n >= 0, first.allSatisfy(\.isASCIIDigit)
            else { throw HTTPError(status: 400, reason: "bad Content-Length") }
            guard n <= maxBody else { throw HTTPError(status: 413, reason: "body too large") }
            request.body = n > 0 ? try conn.readExactly(n) : []
        }
        return request
    }

    private func readChunked(_ conn: Socket) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            guard let sizeLine = try conn.readLine(maxLength: maxHeaderLine) else { throw HTTPError(status: 400, reason: "end of stream in chunked body") }
            let hex = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces } ?? ""
            guard !hex.isEmpty, hex.count <= 8, let size = Int(hex, radix: 16) else { throw HTTPError(status: 400, reason: "bad chunk size") }
            if size == 0 {
                // Trailers, up to the empty line.
                while let t = try conn.readLine(maxLength: maxHeaderLine), !t.isEmpty {}
                return body
            }
            guard body.count + size <= maxBody else { throw HTTPError(status: 413, reason: "body too large") }
            body += try conn.readExactly(size)
            guard try conn.readLine(maxLength: 2) == "" else { throw HTTPError(status: 400, reason: "chunk not followed by CRLF") }
        }
    }
}

extension Character {
    /// RFC 9110 token characters.
    var isTokenChar: Bool {
        guard let a = asciiValue, a > 32, a < 127 else { return false }
        return !"\"(),/:;<=>?@[\\]{}".contains(self)
    }
    var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
