import Foundation

/// One server's wrk result in one mode.
struct HTTPMeasurement {
    let contender: String
    let mode: HTTPBenchmark.Mode
    let requestsPerSecond: Double
    let p99Microseconds: Double
    let non2xx: Int
    let socketErrors: Int
    /// The server's user + system CPU time per request.
    let cpuMicrosecondsPerRequest: Double
}

/// HTTP/1.1 plaintext keep-alive: wrk against each server's GET /, first
/// with one server thread (one event loop) pinned to one CPU and wrk on the
/// other, then one server thread with nothing pinned (Hummingbird's route
/// handlers run on Swift's global executor, whose threads may then use the
/// other CPU too), then as many server threads as CPUs, nothing pinned.
struct HTTPBenchmark {
    /// One server thread pinned or not, or all cores.
    enum Mode: String, CaseIterable {
        case oneThread = "1 thread, pinned"
        case oneThreadUnpinned = "1 thread, unpinned"
        case allCores = "all cores"

        /// Whether the server has one thread (one event loop).
        var isSingleThread: Bool { self != .allCores }
    }

    let options: Options

    /// The contenders: a name and the command for `port` and `threads`. The first is the ceiling.
    var contenders: [(name: String, command: (Int, Int) -> [String])] {
        [
            ("C epoll", { [options.executable("c-epoll-http"), String($0), String($1)] }),
            ("Green", { [options.greenHTTPServer, String($0), String($1)] }),
            ("Hummingbird", { [options.executable("hummingbird-hello"), String($0), String($1)] }),
        ]
    }

    /// Every mode, every contender, the best of `options.rounds` each.
    func run() throws -> [HTTPMeasurement] {
        try run(mode: .oneThread, threads: 1, placement: .pinned)
            + run(mode: .oneThreadUnpinned, threads: 1, placement: .unpinned)
            + run(mode: .allCores, threads: Placement.cpuCount, placement: .unpinned)
    }

    /// Start every server for one mode, check each answers correctly, then
    /// load them in turn.
    private func run(mode: Mode, threads: Int, placement: Placement) throws -> [HTTPMeasurement] {
        var servers: [ServerProcess] = []
        defer { servers.forEach { $0.stop() } }
        for (i, c) in contenders.enumerated() {
            let port = options.portBase + 10 + i
            let argv = c.command(port, threads)
            servers.append(try ServerProcess(name: "http-\(c.name)", executable: argv[0], arguments: Array(argv.dropFirst()),
                                             port: port, cpus: placement.serverCPUs, logDirectory: options.logDirectory))
        }
        for (server, c) in zip(servers, contenders) {
            try server.waitUntilListening()
            try checkHelloWorld(port: server.port, server: c.name)
        }
        var best: [String: HTTPMeasurement] = [:]
        for round in 0..<options.rounds {
            for (server, c) in rotated(Array(zip(servers, contenders)), by: round) {
                let m = try measure(server, contender: c.name, mode: mode, clientThreads: threads, placement: placement)
                if m.requestsPerSecond > best[c.name]?.requestsPerSecond ?? -1 { best[c.name] = m }
                log("http \(mode.rawValue): \(c.name) \(formatCount(m.requestsPerSecond)) req/s")
            }
        }
        return contenders.compactMap { best[$0.name] }
    }

    /// One wrk run against one server, with the server's CPU time over it.
    private func measure(_ server: ServerProcess, contender: String, mode: Mode, clientThreads: Int,
                         placement: Placement) throws -> HTTPMeasurement {
        let argv = ["/usr/bin/wrk", "-t\(clientThreads)", "-c\(options.httpConnections)", "-d\(options.httpSeconds)s",
                    "--latency", "http://127.0.0.1:\(server.port)/"]
        let cpuBefore = try server.cpuSeconds()
        let result = try runClient(argv, cpus: placement.clientCPUs, timeout: Double(options.httpSeconds) + 60)
        let cpuAfter = try server.cpuSeconds()
        guard result.status == 0 else {
            throw BenchError("wrk against \(contender) failed (exit \(result.status)):\n\(result.output)\(result.errors)")
        }
        let r = try WrkReport.parse(result.output)
        guard r.requests > 0 else { throw BenchError("wrk against \(contender): no request completed") }
        return HTTPMeasurement(contender: contender, mode: mode, requestsPerSecond: r.requestsPerSecond,
                               p99Microseconds: r.p99Microseconds, non2xx: r.non2xx, socketErrors: r.socketErrors,
                               cpuMicrosecondsPerRequest: (cpuAfter - cpuBefore) * 1e6 / Double(r.requests))
    }
}
