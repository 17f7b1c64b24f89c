import Foundation

/// One program's result under one load, natively or under `green run`.
struct GreenRunMeasurement {
    let program: String
    /// "native" or "green run".
    let contender: String
    let requestsPerSecond: Double
    /// The server's user + system CPU time per request.
    let cpuMicrosecondsPerRequest: Double
}

/// Issue #13's `green run` rows: existing servers that run their own event
/// loop — node's HTTP server (libuv, with V8's worker threads) and
/// redis-server (ae) — natively and under `green run` (preloaded, fibers on
/// one hub: the server is pinned to one CPU, and `green run` makes a hub per
/// CPU of its affinity mask), each loaded from the other CPU. Both
/// contenders run in the same round, order rotated each round, best kept.
struct GreenRunBenchmark {
    let options: Options

    /// node's HTTP server: 200 "Hello, World!" with a Content-Length, keep-alive.
    static let nodeHello = """
        const port = Number(process.argv[1]);
        require('http').createServer((req, res) => {
          res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': '13'});
          res.end('Hello, World!');
        }).listen(port, '127.0.0.1');
        """

    /// A program, how to start it on a port and how to load it.
    struct Program {
        let name: String
        let command: (Int) -> [String]
        /// Load the server on `port`: (requests completed, requests/s).
        let load: (Int) throws -> (requests: Double, perSecond: Double)
    }

    var programs: [Program] {
        [
            Program(name: "node HTTP, wrk -t1 -c\(options.httpConnections)",
                    command: { ["/usr/bin/node", "-e", Self.nodeHello, String($0)] },
                    load: { try wrk(port: $0) }),
            Program(name: "redis-server, redis-benchmark -c 50 SET+GET",
                    command: { ["/usr/bin/redis-server", "--port", String($0), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--protected-mode", "no"] },
                    load: { try redisBenchmark(port: $0) }),
        ]
    }

    /// Every program, natively and preloaded, the best of `options.rounds` each.
    func run() throws -> [GreenRunMeasurement] {
        var all: [GreenRunMeasurement] = []
        for (i, program) in programs.enumerated() {
            let contenders: [(name: String, prefix: [String])] = [("native", []), ("green run", [options.green, "run", "--"])]
            var best: [String: GreenRunMeasurement] = [:]
            for round in 0..<options.rounds {
                for (k, c) in rotated(Array(contenders.enumerated()), by: round) {
                    // A fresh server each time: redis keeps the keys it was given.
                    let port = options.portBase + 40 + 2 * i + k
                    let argv = c.prefix + program.command(port)
                    let server = try ServerProcess(name: "green-run-\(program.name.split(separator: " ")[0])-\(k)",
                                                   executable: argv[0], arguments: Array(argv.dropFirst()), port: port,
                                                   cpus: Placement.pinned.serverCPUs, logDirectory: options.logDirectory)
                    defer { server.stop() }
                    try server.waitUntilListening()
                    let cpuBefore = try server.cpuSeconds()
                    let (requests, perSecond) = try program.load(port)
                    let cpuAfter = try server.cpuSeconds()
                    let m = GreenRunMeasurement(program: program.name, contender: c.name, requestsPerSecond: perSecond,
                                                cpuMicrosecondsPerRequest: (cpuAfter - cpuBefore) * 1e6 / requests)
                    if m.requestsPerSecond > best[c.name]?.requestsPerSecond ?? -1 { best[c.name] = m }
                    log("green run \(program.name): \(c.name) \(formatCount(perSecond)) req/s")
                }
            }
            all += contenders.compactMap { best[$0.name] }
        }
        return all
    }

    /// wrk against node's server; every answer must be a 200.
    private func wrk(port: Int) throws -> (requests: Double, perSecond: Double) {
        let argv = ["/usr/bin/wrk", "-t1", "-c\(options.httpConnections)", "-d\(options.httpSeconds)s", "--latency",
                    "http://127.0.0.1:\(port)/"]
        let result = try runClient(argv, cpus: Placement.pinned.clientCPUs, timeout: Double(options.httpSeconds) + 60)
        guard result.status == 0 else { throw BenchError("wrk against node failed (exit \(result.status)):\n\(result.output)\(result.errors)") }
        let r = try WrkReport.parse(result.output)
        guard r.requests > 0, r.non2xx == 0, r.socketErrors == 0 else {
            throw BenchError("wrk against node: \(r.requests) requests, \(r.non2xx) non-2xx, \(r.socketErrors) socket errors")
        }
        return (Double(r.requests), r.requestsPerSecond)
    }

    /// redis-benchmark's SET then GET, 100,000 each from 50 connections:
    /// the requests of both, and their rate over both runs.
    private func redisBenchmark(port: Int) throws -> (requests: Double, perSecond: Double) {
        let n = 100_000
        let argv = ["/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", String(port), "-q", "-n", String(n), "-c", "50",
                    "-t", "set,get"]
        let result = try runClient(argv, cpus: Placement.pinned.clientCPUs, timeout: 120)
        guard result.status == 0 else { throw BenchError("redis-benchmark failed (exit \(result.status)):\n\(result.output)\(result.errors)") }
        // Progress lines end in \r; each test ends with "SET: 64935.07 requests per second, …".
        var seconds = 0.0, tests = 0
        for line in result.output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = line.split(separator: " ")
            guard words.count >= 4, words[0] == "SET:" || words[0] == "GET:", words[2] == "requests",
                  let rate = Double(words[1]), rate > 0 else { continue }
            seconds += Double(n) / rate
            tests += 1
        }
        guard tests == 2 else { throw BenchError("redis-benchmark: no SET and GET results in:\n\(result.output)") }
        return (Double(2 * n), Double(2 * n) / seconds)
    }
}
