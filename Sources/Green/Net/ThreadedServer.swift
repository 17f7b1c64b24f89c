import Glibc

/// Multicore the gevent way: `threads` OS threads, each with its own hub
/// and its own `SO_REUSEPORT` listener on the same port, each running a
/// `StreamServer`. The kernel spreads new connections across them; nothing
/// is shared between the hubs.
public final class ThreadedServer: @unchecked Sendable {
    public let port: UInt16
    private var hubs: [Hub] = []
    private var servers: [StreamServer] = []
    private let lock = PthreadLock()
    private let ready = PthreadSemaphore()
    private let finished = PthreadSemaphore()
    private let threads: Int

    /// Start serving on `host:port` (port 0 picks one port for all threads).
    public init(threads: Int, host: String = "127.0.0.1", port: UInt16 = 0, maxConnectionsPerThread: Int? = nil,
                handler: @escaping @Sendable (Socket) throws -> Void) throws {
        precondition(threads > 0)
        self.threads = threads
        // The first listener fixes the port the others share.
        let first = try Socket.listen(host: host, port: port, reusePort: true)
        self.port = first.localPort
        let firstBox = UncheckedSendable(first)
        for i in 0..<threads {
            OSThread.detach { [self] in
                let listener = i == 0 ? firstBox.value : (try? Socket.listen(host: host, port: self.port, reusePort: true))
                guard let listener else { ready.signal(); finished.signal(); return }
                let server = StreamServer(listener: listener, maxConnections: maxConnectionsPerThread, handler: handler)
                let hub = Hub.current
                lock.locked { hubs.append(hub); servers.append(server) }
                ready.signal()
                hub.beginExternalWork() // stop() arrives from another thread
                try? server.serve()
                hub.endExternalWork()
                finished.signal()
            }
        }
        for _ in 0..<threads { ready.wait() }
    }

    /// Stop every thread's server (graceful, as `StreamServer.stop`) and wait for them.
    public func stop(grace: Duration = .seconds(5)) {
        let pairs = lock.locked { Array(zip(hubs, servers)) }
        for (hub, server) in pairs {
            let s = UncheckedSendable(server)
            hub.post { try? s.value.stop(grace: grace) }
        }
        for _ in 0..<threads { finished.wait() }
    }
}

enum OSThread {
    /// Run `body` on a new detached OS thread.
    static func detach(_ body: @escaping () -> Void) {
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
