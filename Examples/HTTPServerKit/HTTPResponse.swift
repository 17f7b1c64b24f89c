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

    /// A three-digit status, and header names and values without CR, LF or
    /// NUL (which would let a value start a header or a response of its own).
    var isWellFormed: Bool {
        (100...999).contains(status) && headers.allSatisfy { name, value in
            !name.isEmpty && name.utf8.allSatisfy(ASCII.isToken)
                && !value.utf8.contains { $0 == ASCII.cr || $0 == ASCII.lf || $0 == 0 }
        }
    }

    /// Append the response's bytes to `out` (a buffer the connection reuses,
    /// so a response costs no allocation of its own).
    func serialize(into out: inout [UInt8], keepAlive: Bool) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(status, to: &out)
        out.append(ASCII.space)
        out.append(contentsOf: HTTPResponse.reason(status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        for (name, value) in headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(body.count, to: &out)
        out.append(contentsOf: keepAlive ? "\r\n\r\n".utf8 : "\r\nConnection: close\r\n\r\n".utf8)
        out.append(contentsOf: body)
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

/// Append a non-negative number's decimal digits.
func appendDecimal(_ value: Int, to out: inout [UInt8]) {
    precondition(value >= 0, "appendDecimal of a negative number")
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &digits) { buffer in
        var n = value, i = buffer.count
        repeat {
            i -= 1
            buffer[i] = UInt8(truncatingIfNeeded: n % 10) + 0x30
            n /= 10
        } while n > 0
        out.append(contentsOf: buffer[i...])
    }
}
