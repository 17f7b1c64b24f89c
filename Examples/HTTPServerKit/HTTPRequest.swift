/// One parsed HTTP/1.1 request.
public struct HTTPRequest: Equatable {
    public var method: String
    public var target: String
    public var version: String          // "HTTP/1.1" or "HTTP/1.0"
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool

    /// A request built by hand (e.g. to call a handler in a test); `keepAlive`
    /// follows the version and any `Connection` header, as the parser decides it.
    public init(method: String, target: String, version: String = "HTTP/1.1",
                headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        let connection = headers.filter { ASCII.equalsIgnoringCase($0.name, "connection") }.map(\.value)
        keepAlive = version == "HTTP/1.0"
            ? connection.contains { ASCII.listContains($0.utf8, token: "keep-alive") }
            : !connection.contains { ASCII.listContains($0.utf8, token: "close") }
    }

    /// Built by the parser, which has already worked out `keepAlive`.
    init(method: String, target: String, version: String, headers: [(name: String, value: String)], keepAlive: Bool) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = []
        self.keepAlive = keepAlive
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.body == b.body
            && a.keepAlive == b.keepAlive
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first value of a header (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { ASCII.equalsIgnoringCase($0.name, name) }?.value
    }
}

/// Why a request was refused (answered with `status` and the connection closed).
public struct HTTPError: Error, Equatable {
    public let status: Int
    public let reason: String

    /// An error answered with `status` and `reason` as the body.
    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }
}
