import Foundation

/// One server's result in one echo cell.
struct EchoMeasurement {
    let contender: String
    let size: Int
    let connections: Int
    /// Which of the `--rounds` rounds it was taken in (from 0).
    let round: Int
    let requestsPerSecond: Double
    let p99Microseconds: Double
    /// The server's user + system CPU time per echoed message.
    let cpuMicrosecondsPerRequest: Double
}

/// The echo benchmark (the uvloop/vmbench method): every server runs at once
/// on its own port, pinned to the server CPU (an idle server costs nothing);
/// each cell — message size × connections — loads them one after another
/// with the same C load generator, so noise hits them alike.
struct EchoBenchmark {
    /// The contenders: a name, this package's executable and its arguments
    /// after the port. The first is the ceiling. "Green" reads into one buffer
    /// per connection (Socket.read(into:)); "Green arrays" is the same server
    /// with an array per read (Socket.read()): it shows what those cost.
    static let contenders: [(name: String, executable: String, arguments: [String])] = [
        ("C epoll", "c-epoll-echo", []),
        ("Green", "green-echo", []),
        ("Green arrays", "green-echo", ["--arrays"]),
        ("SwiftNIO", "nio-echo", []),
        ("threads", "thread-echo", []),
    ]

    let options: Options
    let placement = Placement.pinned

    /// Run every cell against every server, `options.rounds` times; every
    /// round's measurement (the report keeps the best, and pairs each round's
    /// Green with that round's C).
    func run() throws -> [EchoMeasurement] {
        var servers: [ServerProcess] = []
        defer { servers.forEach { $0.stop() } }
        for (i, c) in Self.contenders.enumerated() {
            let port = options.portBase + i
            servers.append(try ServerProcess(name: "echo-\(c.executable)\(c.arguments.joined())",
                                             executable: options.executable(c.executable),
                                             arguments: [String(port)] + c.arguments, port: port, cpus: placement.serverCPUs,
                                             logDirectory: options.logDirectory))
        }
        for server in servers { try server.waitUntilListening() }

        var all: [EchoMeasurement] = []
        for size in options.sizes {
            for connections in options.connections {
                for round in 0..<options.rounds {
                    for (server, contender) in rotated(Array(zip(servers, Self.contenders)), by: round) {
                        let m = try measure(server, contender: contender.name, size: size, connections: connections,
                                            round: round)
                        all.append(m)
                        log("echo \(formatBytes(size)) × \(connections): \(contender.name) \(formatCount(m.requestsPerSecond)) req/s")
                    }
                }
            }
        }
        return all
    }

    /// One load-generator run against one server, with the server's CPU time
    /// over the run. Any error the load generator reports ends the benchmark.
    private func measure(_ server: ServerProcess, contender: String, size: Int, connections: Int,
                         round: Int) throws -> EchoMeasurement {
        let argv = [options.executable("echo-load"), String(server.port), String(connections), String(size),
                    String(options.echoSeconds), String(options.echoWarmup)]
        let cpuBefore = try server.cpuSeconds()
        let result = try runClient(argv, cpus: placement.clientCPUs, timeout: options.echoSeconds + options.echoWarmup + 60)
        let cpuAfter = try server.cpuSeconds()
        guard result.status == 0 else {
            throw BenchError("echo-load against \(contender) (\(size) B × \(connections)) failed (exit \(result.status)):\n"
                + result.errors + "\nserver output:\n" + server.logTail())
        }
        let f = keyValues(result.output)
        guard let rps = f["rps"].flatMap(Double.init), let p99 = f["p99_us"].flatMap(Double.init),
              let total = f["total_requests"].flatMap(Double.init), total > 0,
              f["errors"] == "0", f["sent_bytes"] == f["echoed_bytes"] else {
            throw BenchError("echo-load against \(contender) printed no valid result: \(result.output)\(result.errors)")
        }
        return EchoMeasurement(contender: contender, size: size, connections: connections, round: round,
                               requestsPerSecond: rps,
                               p99Microseconds: p99, cpuMicrosecondsPerRequest: (cpuAfter - cpuBefore) * 1e6 / total)
    }
}

/// `items` starting at index `by` (modulo the count): each round starts with
/// another contender, so none always runs first after a pause or last
/// after the others warmed the caches.
func rotated<T>(_ items: [T], by offset: Int) -> [T] {
    guard !items.isEmpty else { return items }
    let k = offset % items.count
    return Array(items[k...] + items[..<k])
}

/// The `key=value` fields of the load generator's result line.
func keyValues(_ line: String) -> [String: String] {
    var fields: [String: String] = [:]
    for token in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
        let parts = token.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    return fields
}

/// A progress line on standard error (the tables go to standard output).
func log(_ message: String) {
    FileHandle.standardError.write(Data(("  " + message + "\n").utf8))
}
