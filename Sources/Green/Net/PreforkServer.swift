import CGreenCore
import Glibc

extension Green {
    /// `fork()` for a program with fibers: in the child only the calling fiber
    /// goes on, as only the calling thread does when a thread forks. Every
    /// other fiber of the hub (the root context too, unless it is the caller)
    /// is abandoned and never runs again, so nothing runs twice. End the child
    /// with `exit`, never by returning into code that waits for the others.
    /// Returns what `fork` returns (the child's pid, 0 in the child, -1).
    public static func forkProcess() -> pid_t {
        let pid = fork()
        if pid == 0 { green_sched_keep_only_current() }
        return pid
    }
}

/// Multicore with processes (gunicorn's and gevent's prefork): `processes`
/// children, each with its own hub and its own `SO_REUSEPORT` listener on the
/// same port running a `StreamServer`; the kernel spreads connections across
/// them. The parent supervises: a child that dies is started again, and
/// `SIGTERM`/`SIGINT` (or `stop()`) stop every child gracefully — each stops
/// accepting and lets its connections finish for up to `grace` — then `run()`
/// returns.
///
/// ```swift
/// let server = try PreforkServer(processes: 4, port: 8080) { conn in try serveHTTP(conn) }
/// try server.run()   // until SIGTERM
/// ```
///
/// Fork before starting other threads: a child has only the forking thread.
public final class PreforkServer {
    /// The port every child listens on.
    public let port: UInt16
    /// How many children run at once.
    public let processes: Int
    /// Children started again after they died.
    public private(set) var restarts = 0
    /// Called in the parent after child `index` started with `pid`.
    public var childStarted: ((_ index: Int, _ pid: pid_t) -> Void)?
    /// Called in the parent after child `index` (`pid`) ended with a `waitpid` status.
    public var childExited: ((_ index: Int, _ pid: pid_t, _ status: Int32) -> Void)?

    private let host: String
    private let maxConnections: Int?
    private let grace: Duration
    private let handler: (Socket) throws -> Void
    /// Bound, not listening: holds the port for restarted children and gets no connections.
    private let reservation: Socket
    private var pids: [pid_t?]
    private var stopping = false

    /// - Parameters:
    ///   - processes: how many child processes accept connections (each runs its own hub).
    ///   - host: the address to listen on.
    ///   - port: 0 lets the kernel pick one (see `port`).
    ///   - maxConnectionsPerProcess: the `StreamServer` bound of each child.
    ///   - grace: how long a stopping child lets its connections finish.
    ///   - handler: serves one connection, in a child, on a fiber of its own.
    public init(processes: Int, host: String = "127.0.0.1", port: UInt16 = 0, maxConnectionsPerProcess: Int? = nil,
                grace: Duration = .seconds(5), handler: @escaping (Socket) throws -> Void) throws {
        precondition(processes > 0)
        self.processes = processes
        self.host = host
        self.maxConnections = maxConnectionsPerProcess
        self.grace = grace
        self.handler = handler
        reservation = try Socket.bound(host: host, port: port, reusePort: true)
        self.port = reservation.localPort
        pids = Array(repeating: nil, count: processes)
    }

    /// The children running now.
    public var children: [pid_t] { pids.compactMap { $0 } }

    /// Start the children and supervise them until `stop()`, `SIGTERM` or
    /// `SIGINT`; returns once every child has ended.
    public func run() throws {
        let signals = [SIGTERM, SIGINT].map { Green.onSignal($0) { [self] in stop() } }
        defer { signals.forEach { $0.cancel() } }
        let supervisors = (0..<processes).map { i in
            Green.spawn(name: "prefork supervisor \(i)") { [self] in try supervise(i) }
        }
        var failure: Error?
        for s in supervisors {
            do { try s.value } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// Stop gracefully (on the parent's hub): `SIGTERM` to every child, and
    /// `SIGKILL` to those still running `grace` + 1 s later.
    public func stop() {
        guard !stopping else { return }
        stopping = true
        for pid in children { kill(pid, SIGTERM) }
        let deadline = grace + .seconds(1)
        Green.spawn(name: "prefork stop deadline") { [self] in
            try? Green.sleep(for: deadline)
            for pid in children { kill(pid, SIGKILL) }
        }
    }

    /// Keep child `index` running until the server stops.
    private func supervise(_ index: Int) throws {
        var quickDeaths = 0
        while !stopping {
            let started = Deadline.now
            let pid = try startChild(index)
            pids[index] = pid
            childStarted?(index, pid)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            pids[index] = nil
            childExited?(index, pid, status)
            if stopping { break }
            restarts += 1
            // A child that dies at once would be restarted in a hot loop: back off.
            if Deadline.now < started + .seconds(1) {
                quickDeaths += 1
                try Green.sleep(for: .milliseconds(min(100 << min(quickDeaths, 6), 5000)))
            } else {
                quickDeaths = 0
            }
        }
    }

    private func startChild(_ index: Int) throws -> pid_t {
        let pid = Green.forkProcess()
        if pid < 0 { throw SocketError(operation: "fork", errno: errno) }
        if pid == 0 { runChild(index) }
        return pid
    }

    /// The child: serve until SIGTERM/SIGINT, drain, exit.
    private func runChild(_ index: Int) -> Never {
        // The parent's signal handlers came along with the fork; they are not ours.
        for h in Hub.current.signalHandlers { h.cancel() }
        reservation.close()
        do {
            let listener = try Socket.listen(host: host, port: port, reusePort: true)
            let server = StreamServer(listener: listener, maxConnections: maxConnections, handler: handler)
            let drained = Event()
            let grace = self.grace
            let signals = [SIGTERM, SIGINT].map { sig in
                Green.onSignal(sig) {
                    try? server.stop(grace: grace)
                    drained.set()
                }
            }
            try server.serve()
            try drained.wait() // serve returned because stop began: let it finish
            signals.forEach { $0.cancel() }
            exit(0)
        } catch {
            printToStandardError("green: prefork child \(index): \(error)\n")
            exit(1)
        }
    }
}

/// The parent's supervisor fibers and signal handlers run on the hub that
/// calls `run()`; `stop()` belongs there too.
@available(*, unavailable, message: "a PreforkServer belongs to the hub that runs it")
extension PreforkServer: Sendable {}
