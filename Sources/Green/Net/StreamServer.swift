import Glibc

/// An accept loop that runs each connection's handler in its own fiber
/// (gevent's `StreamServer`), with an optional bound on concurrent
/// connections and a graceful stop.
///
/// ```swift
/// let server = StreamServer(listener: try Socket.listen(port: 8080), maxConnections: 10_000) { conn in
///     while let line = try conn.readLine() { try conn.writeAll(line + "\n") }
/// }
/// server.start()
/// ```
public final class StreamServer {
    public let listener: Socket
    private let handler: (Socket) throws -> Void
    private let slots: Semaphore?
    private let connections = Group()
    private var acceptor: Fiber<Void>?
    private var stopping = false

    /// A server on `listener` that runs `handler` on a fiber of its own for each connection.
    /// - Parameters:
    ///   - listener: a listening socket (``Socket/listen(host:port:backlog:reusePort:)`` or a Unix path).
    ///   - maxConnections: at most this many handlers at once; the
    ///     accept loop waits for a free slot (the kernel's backlog holds the rest).
    ///   - handler: serves one connection; the server closes it when the handler returns or throws.
    public init(listener: Socket, maxConnections: Int? = nil, handler: @escaping (Socket) throws -> Void) {
        self.listener = listener
        self.handler = handler
        self.slots = maxConnections.map { Semaphore(value: $0) }
    }

    /// Connections being handled now.
    public var activeConnections: Int { connections.count }

    /// Accept and serve in a new fiber until `stop`.
    @discardableResult
    public func start() -> Fiber<Void> {
        let f = Green.spawn(name: "StreamServer accept loop") { [self] in try serve() }
        acceptor = f
        return f
    }

    /// Accept and serve on the calling fiber until `stop` (returns then).
    public func serve() throws {
        // The hub first: an accept made before the thread has one would block
        // the thread, and its connection would not be one of the shim's own
        // non-blocking sockets (the short read and write paths, the edge set).
        Hub.ensureParkable()
        while !stopping {
            try slots?.acquire()
            let conn: Socket
            do {
                conn = try listener.accept()
            } catch {
                try? slots?.release()
                if stopping { return }
                if let e = error as? SocketError, [EMFILE, ENFILE, ECONNABORTED, EPROTO].contains(e.errno) {
                    try Green.sleep(for: .milliseconds(10)) // out of fds for a moment, or a dropped peer: keep going
                    continue
                }
                throw error
            }
            let slots = self.slots
            try connections.spawn(name: "connection") { [handler] in
                defer {
                    conn.close()
                    try? slots?.release()
                }
                try handler(conn)
            }
        }
    }

    /// Stop accepting, let in-flight connections finish for up to `grace`,
    /// then cancel the ones still running and wait for them.
    public func stop(grace: Duration = .seconds(5)) throws {
        stopping = true
        acceptor?.cancel()
        listener.close()
        try? acceptor?.join()
        do {
            try connections.join(until: .after(grace))
        } catch is TimeoutError {
            connections.cancelAll()
            try connections.join()
        }
    }
}

/// A server runs on the hub that starts it, with its connections' fibers;
/// from another thread, stop it through `Hub.post` (as `ThreadedServer` does).
@available(*, unavailable, message: "a StreamServer belongs to one hub: stop it from another thread with Hub.post")
extension StreamServer: Sendable {}
