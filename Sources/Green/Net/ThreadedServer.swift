import Glibc

/// Multicore the gevent way: `threads` OS threads, each with its own hub
/// and its own `SO_REUSEPORT` listener on the same port, each running a
/// `StreamServer`. The kernel spreads new connections across them; nothing
/// is shared between the hubs. Thread-safe: `stop()` may be called from any
/// thread; each server is stopped on its own hub.
// @unchecked: `servers` is used only under `lock`, and each server only on its own hub (HubBound).
public final class ThreadedServer: @unchecked Sendable {
    public let port: UInt16
    private var servers: [HubBound<StreamServer>] = []
    private let lock = PthreadLock()
    private let ready = PthreadSemaphore()
    private let finished = PthreadSemaphore()
    private let threads: Int

    /// Start serving on `host:port` (port 0 picks one port for all threads).
    public init(threads: Int, host: String = "127.0.0.1", port: UInt16 = 0, maxConnectionsPerThread: Int? = nil,
                handler: @escaping @Sendable (Socket) throws -> Void) throws {
        precondition(threads > 0)
        self.threads = threads
        // The first listener fixes the port the others share; it moves to the first thread.
        let first = try Socket.listen(host: host, port: port, reusePort: true)
        self.port = first.localPort
        startThread(listener: first, host: host, maxConnections: maxConnectionsPerThread, handler: handler)
        for _ in 1..<threads {
            startThread(listener: nil, host: host, maxConnections: maxConnectionsPerThread, handler: handler)
        }
        for _ in 0..<threads { ready.wait() }
    }

    /// Start one server thread, with `listener` or (nil) a listener of its own.
    private func startThread(listener given: sending Socket?, host: String, maxConnections: Int?,
                             handler: @escaping @Sendable (Socket) throws -> Void) {
        OSThread.detach { [self] in
            let listener = given ?? (try? Socket.listen(host: host, port: port, reusePort: true))
            guard let listener else { ready.signal(); finished.signal(); return }
            let server = StreamServer(listener: listener, maxConnections: maxConnections, handler: handler)
            let hub = Hub.current
            lock.locked { servers.append(HubBound(server, hub: hub)) }
            ready.signal()
            hub.beginExternalWork() // stop() arrives from another thread
            try? server.serve()
            hub.endExternalWork()
            finished.signal()
        }
    }

    /// Stop every thread's server (graceful, as `StreamServer.stop`) and wait for them.
    public func stop(grace: Duration = .seconds(5)) {
        let servers = lock.locked { self.servers }
        for server in servers {
            server.hub.post { try? server.value.stop(grace: grace) }
        }
        for _ in 0..<threads { finished.wait() }
    }
}

enum OSThread {
    /// Run `body` on a new detached OS thread (`sending`: what it captures
    /// moves to that thread).
    static func detach(_ body: sending @escaping () -> Void) {
        final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&tid, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, arg)
        precondition(rc == 0, "green: cannot start a server thread (error \(rc))")
        pthread_detach(tid)
    }
}
