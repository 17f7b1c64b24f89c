import Glibc
import Green

/// Reads requests off a socket, strictly: what it does not accept is a 400
/// (or 413/431/501/505), never a guess.
///
/// The head is parsed in place in the socket's read-ahead (`Socket.readParsed`),
/// as bytes: no line is copied out, and the only Strings made are the ones
/// the request hands to the handler.
public struct HTTPParser {
    public var maxHeaderLine = 8192
    public var maxHeaders = 100
    public var maxBody = 16 << 20

    public init() {}

    /// How the body after a head is delimited.
    enum BodyFraming: Equatable { case none, length(Int), chunked }

    /// The next request, or nil when the peer closed between requests.
    public func next(from conn: Socket) throws -> HTTPRequest? {
        let head: (request: HTTPRequest, framing: BodyFraming)?
        var scanner = HeadScanner(maxLine: maxHeaderLine, maxHeaders: maxHeaders)
        do {
            // Bytes come in pieces: find the head's end first, resuming where the
            // last piece ended, and parse it once, when it is all there.
            head = try conn.readParsed(maxLength: maxHeaderLine * (maxHeaders + 1)) { bytes in
                guard let end = try scanner.headLength(in: bytes) else { return nil }
                return try parseHead(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
            }
        } catch let e as SocketError where e.errno == EPIPE {
            throw HTTPError(status: 400, reason: "end of stream in the head")
        } catch let e as SocketError where e.errno == EMSGSIZE {
            throw HTTPError(status: 431, reason: "head too large")
        }
        guard var request = head?.request, let framing = head?.framing else { return nil }
        switch framing {
        case .none: break
        case .length(let n): request.body = n > 0 ? try conn.readExactly(n) : []
        case .chunked: request.body = try readChunked(conn)
        }
        return request
    }

    /// The request and its body framing if `bytes` starts with a whole head
    /// (and how many bytes the head took); nil if more bytes are needed.
    func parseHead(_ bytes: UnsafeRawBufferPointer) throws -> (result: (HTTPRequest, BodyFraming), consumed: Int)? {
        var lines = LineReader(bytes: bytes, maxLine: maxHeaderLine)
        // RFC 9112 §2.2: empty lines before the request line are ignored.
        var requestLine: Range<Int>
        repeat {
            guard let line = try lines.next() else { return nil }
            requestLine = line
        } while requestLine.isEmpty
        let (method, target, version) = try parseRequestLine(bytes[requestLine])

        var headers: [(name: String, value: String)] = []
        var length: Int?
        var chunked = false, otherEncoding = false, close = false, keepAlive = false, hosts = 0
        while true {
            guard let line = try lines.next() else { return nil }
            if line.isEmpty { break }
            guard headers.count < maxHeaders else { throw HTTPError(status: 431, reason: "too many headers") }
            let field = bytes[line]
            guard let colon = field.firstIndex(of: ASCII.colon) else { throw HTTPError(status: 400, reason: "header without a colon") }
            let name = field[..<colon]
            guard !name.isEmpty, name.allSatisfy(ASCII.isToken) else { throw HTTPError(status: 400, reason: "bad header name") }
            let value = ASCII.trimmed(field[(colon + 1)...])
            guard !value.contains(where: { $0 == 0 || $0 == ASCII.cr }) else { throw HTTPError(status: 400, reason: "bad header value") }
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))

            if ASCII.equalsIgnoringCase(name, "content-length".utf8) {
                guard let n = ASCII.decimal(value), length == nil || length == n
                else { throw HTTPError(status: 400, reason: "bad Content-Length") }
                length = n
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding".utf8) {
                if ASCII.equalsIgnoringCase(value, "chunked".utf8) { chunked = true } else { otherEncoding = true }
            } else if ASCII.equalsIgnoringCase(name, "host".utf8) {
                hosts += 1
            } else if ASCII.equalsIgnoringCase(name, "connection".utf8) {
                close = close || ASCII.listContains(value, token: "close")
                keepAlive = keepAlive || ASCII.listContains(value, token: "keep-alive")
            }
        }

        let framing: BodyFraming
        if (chunked || otherEncoding) && length != nil {
            throw HTTPError(status: 400, reason: "both Content-Length and Transfer-Encoding")
        } else if otherEncoding {
            throw HTTPError(status: 501, reason: "unsupported transfer encoding")
        } else if chunked {
            framing = .chunked
        } else if let length {
            guard length <= maxBody else { throw HTTPError(status: 413, reason: "body too large") }
            framing = .length(length)
        } else {
            framing = .none
        }
        if version == "HTTP/1.1" && hosts != 1 || hosts > 1 {
            throw HTTPError(status: 400, reason: "an HTTP/1.1 request needs exactly one Host")
        }
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing: close after it.
        let persistent = version == "HTTP/1.0" ? keepAlive && !close && !chunked : !close
        let request = HTTPRequest(method: method, target: target, version: version, headers: headers, keepAlive: persistent)
        return ((request, framing), lines.position)
    }

    /// "METHOD TARGET VERSION", exactly one space apart.
    private func parseRequestLine(_ line: Slice<UnsafeRawBufferPointer>) throws -> (String, String, String) {
        let malformed = HTTPError(status: 400, reason: "malformed request line")
        guard let space1 = line.firstIndex(of: ASCII.space),
              let space2 = line[(space1 + 1)...].firstIndex(of: ASCII.space) else { throw malformed }
        let method = line[..<space1], target = line[(space1 + 1)..<space2], version = line[(space2 + 1)...]
        guard !method.isEmpty, method.allSatisfy(ASCII.isToken),
              target.first == ASCII.slash || target.elementsEqual([ASCII.star]),
              target.allSatisfy(ASCII.isTargetChar),
              !version.contains(ASCII.space) else { throw malformed }
        let versionString: String
        if version.elementsEqual("HTTP/1.1".utf8) {
            versionString = "HTTP/1.1"
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            versionString = "HTTP/1.0"
        } else if version.starts(with: "HTTP/".utf8) {
            throw HTTPError(status: 505, reason: "HTTP version not supported")
        } else {
            throw malformed
        }
        return (String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self), versionString)
    }

    private func readChunked(_ conn: Socket) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            guard let sizeLine = try conn.readLine(maxLength: maxHeaderLine) else { throw HTTPError(status: 400, reason: "end of stream in chunked body") }
            // chunk-size = 1*HEXDIG, then optional ";extensions" (no sign, no blanks before it).
            let hex = sizeLine.utf8.prefix { $0 != 0x3B /* ; */ && $0 != ASCII.space && $0 != ASCII.tab }
            guard !hex.isEmpty, hex.count <= 8, hex.allSatisfy(ASCII.isHexDigit),
                  let size = Int(String(decoding: hex, as: UTF8.self), radix: 16)
            else { throw HTTPError(status: 400, reason: "bad chunk size") }
            if size == 0 {
                try skipTrailers(conn)
                return body
            }
            guard body.count + size <= maxBody else { throw HTTPError(status: 413, reason: "body too large") }
            body += try conn.readExactly(size)
            guard try conn.readLine(maxLength: 2) == "" else { throw HTTPError(status: 400, reason: "chunk not followed by CRLF") }
        }
    }

    /// The trailer fields after the last chunk, up to the empty line (dropped).
    private func skipTrailers(_ conn: Socket) throws {
        for _ in 0...maxHeaders {
            guard let line = try conn.readLine(maxLength: maxHeaderLine) else { throw HTTPError(status: 400, reason: "end of stream in trailers") }
            if line.isEmpty { return }
        }
        throw HTTPError(status: 431, reason: "too many trailer fields")
    }
}

/// Finds where a head ends (the empty line after the request line and its
/// fields) in bytes that arrive in pieces, resuming each time where the
/// last piece's complete lines ended, so a head sent a byte at a time costs
/// one pass, not one per byte. Enforces the line and field limits on the way.
struct HeadScanner {
    let maxLine: Int
    let maxHeaders: Int
    private var position = 0
    private var lines = 0      // non-empty lines so far: the request line, then fields

    init(maxLine: Int, maxHeaders: Int) {
        self.maxLine = maxLine
        self.maxHeaders = maxHeaders
    }

    /// The head's length in bytes (through its empty line), or nil if it has not all arrived.
    mutating func headLength(in bytes: UnsafeRawBufferPointer) throws -> Int? {
        var reader = LineReader(bytes: bytes, maxLine: maxLine, position: position)
        while let line = try reader.next() {
            position = reader.position
            if line.isEmpty {
                if lines > 0 { return position }
                continue // empty lines before the request line are ignored
            }
            lines += 1
            if lines > maxHeaders + 1 { throw HTTPError(status: 431, reason: "too many headers") }
        }
        return nil
    }
}

/// Walks the lines of a buffered head: each ends at LF, an optional CR before
/// it is not part of the line.
struct LineReader {
    let bytes: UnsafeRawBufferPointer
    let maxLine: Int
    /// Where the next line starts (after the last one's LF).
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, maxLine: Int, position: Int = 0) {
        self.bytes = bytes
        self.maxLine = maxLine
        self.position = position
    }

    /// The next line's byte range, or nil if its LF has not arrived yet.
    mutating func next() throws -> Range<Int>? {
        let rest = bytes.count - position
        guard rest > 0, let base = bytes.baseAddress,
              let found = memchr(base + position, Int32(ASCII.lf), rest) else {
            if rest > maxLine { throw HTTPError(status: 431, reason: "header line too long") }
            return nil
        }
        let lf = base.distance(to: UnsafeRawPointer(found))
        let end = lf > position && bytes[lf - 1] == ASCII.cr ? lf - 1 : lf
        guard end - position <= maxLine else { throw HTTPError(status: 431, reason: "header line too long") }
        defer { position = lf + 1 }
        return position..<end
    }
}
