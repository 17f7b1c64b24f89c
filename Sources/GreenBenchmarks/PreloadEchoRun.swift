// PreloadEchoRun.swift — one configuration of the echo benchmark: start the
// thread-per-connection echo server (natively or under LD_PRELOAD), load it
// with `EchoLoad`, sample it from /proc at the right moments, kill it.
import Glibc
import Green

/// How the echo server is run.
enum ServerMode: String {
    /// No preload library: one OS thread per connection.
    case native
    /// LD_PRELOAD=libgreen-preload.so, GREEN_THREADS=fiber: one fiber per connection.
    case green
    /// As `green`, with GREEN_HUBS=cpus: the fibers spread over a hub per CPU (issue #12).
    case hubs = "green-hubs"
}

/// Everything measured in one configuration.
struct EchoRun {
    let mode: ServerMode
    let connections: Int
    /// Which repetition of this configuration (1, 2, …).
    var round = 1
    /// Seconds to open every connection (each with one round trip).
    var openSeconds = Double.nan
    var requests = 0
    /// Seconds of the load phase (until the last request finished).
    var loadSeconds = Double.nan
    /// Server CPU seconds (utime + stime) and this process's, over the load phase.
    var serverCPU = Double.nan, clientCPU = Double.nan
    /// CPU seconds the rest of the machine used meanwhile (all busy time
    /// in /proc/stat minus the server's and this process's).
    var otherCPU = Double.nan
    /// The server listening, before any connection.
    var baseline: ProcessSnapshot?
    /// Memory with every connection open and idle, and at the end of the load.
    var idle: ServerMemory?, loaded: ServerMemory?
    var errorCount = 0
    var errors: [String] = []

    var requestsPerSecond: Double { loadSeconds > 0 ? Double(requests) / loadSeconds : .nan }
    /// Server CPU time per request, µs.
    var serverMicrosPerRequest: Double { requests > 0 ? serverCPU / Double(requests) * 1e6 : .nan }
    var clientMicrosPerRequest: Double { requests > 0 ? clientCPU / Double(requests) * 1e6 : .nan }
    /// The larger of the two total-memory samples (VmRSS + kernel stacks).
    var peakTotal: Int? {
        switch (idle, loaded) {
        case let (i?, l?): return max(i.total, l.total)
        case let (i?, nil): return i.total
        case let (nil, l?): return l.total
        default: return nil
        }
    }
    /// The server's OS threads: the larger of the two samples.
    var threads: Int? { [idle?.threads, loaded?.threads].compactMap { $0 }.max() }

    /// Record an error of the configuration as a whole (listed before the
    /// connections' own, which may be many).
    mutating func fail(_ message: String) {
        errorCount += 1
        errors.insert(message, at: 0)
        if errors.count > 10 { errors.removeLast() }
    }

    /// Start the server from `binary` in `mode`, open `connections`
    /// connections, load them for `duration`, close them, kill the server
    /// (`round` only labels the result).
    /// Failures end up in `errors`; this never throws and never leaves the
    /// server running.
    static func measure(binary: String, preload: String, mode: ServerMode, connections: Int,
                        duration: Duration, round: Int) -> EchoRun {
        var run = EchoRun(mode: mode, connections: connections, round: round)
        let extra: [String]
        switch mode {
        case .native: extra = []
        case .green: extra = ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber", "GREEN_HUBS=1"]
        case .hubs: extra = ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber", "GREEN_HUBS=cpus"]
        }
        let server: ChildProcess
        do {
            server = try ChildProcess([binary, "0"], environment: ChildProcess.environment(adding: extra),
                                      label: "\(mode.rawValue) echo_server")
        } catch {
            run.fail("\(error)")
            return run
        }
        defer { server.kill() }
        do {
            let port = try listeningPort(server)
            run.baseline = try ProcessSnapshot.take(server.pid)
            try run.load(server: server, port: port, duration: duration)
        } catch {
            run.fail("\(error)")
        }
        if !server.isRunning {
            run.fail("the server ended during the run: \(ChildProcess.describe(server.exitStatus ?? 0))")
        }
        return run
    }

    /// Wait (10 s at most) for the server's "listening on PORT" line.
    private static func listeningPort(_ server: ChildProcess) throws -> UInt16 {
        guard let line = try server.readLine(until: .after(.seconds(10))) else {
            throw BenchError("\(server.label) closed its stdout without saying where it listens")
        }
        guard line.hasPrefix("listening on "), let port = UInt16(line.dropFirst("listening on ".count)) else {
            throw BenchError("\(server.label) said \"\(line)\", expected \"listening on PORT\"")
        }
        return port
    }

    /// The measured part: open, sample idle, load, sample loaded, close.
    private mutating func load(server: ChildProcess, port: UInt16, duration: Duration) throws {
        let load = EchoLoad(port: port, connections: connections)
        defer {
            load.closeAll(within: .seconds(EchoLoad.ioTimeoutSeconds + 5))
            errorCount += load.errorCount
            for e in load.errors where errors.count < 10 { errors.append(e) }
        }
        openSeconds = try load.openAll(within: .seconds(120))
        try Green.sleep(for: .milliseconds(200))   // every server thread back in read()
        idle = ServerMemory(before: baseline!, now: try ProcessSnapshot.take(server.pid))

        let start = try ProcessSnapshot.take(server.pid)
        let clientStart = ownCPUSeconds()
        let machineStart = MachineCPU.now()
        let (done, elapsed) = try load.run(for: duration)
        let machineEnd = MachineCPU.now()
        let end = try ProcessSnapshot.take(server.pid)
        clientCPU = ownCPUSeconds() - clientStart
        requests = done
        loadSeconds = elapsed
        serverCPU = ProcessSnapshot.seconds(ticks: end.cpuTicks - start.cpuTicks)
        otherCPU = max(0, machineEnd.busySeconds(since: machineStart) - serverCPU - clientCPU)
        loaded = ServerMemory(before: baseline!, now: end)
    }

    /// User + system CPU seconds of this process so far.
    private func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
