// PreloadBenchmark.swift — section 5 (issue #4): an unmodified C program,
// natively and under LD_PRELOAD=libgreen-preload.so, side by side in one run.
//
//   swift run -c release --scratch-path .build-bench green-bench preload
//
// 5a/5d: the thread-per-connection echo server
//        (Examples/ThreadPerConnection/echo_server.c) at 100, 1,000 and 10,000
//        concurrent connections, natively, preloaded with one hub and with a
//        hub per CPU (issue #12): requests/s, server CPU per request, resident
//        memory plus kernel stacks, threads. The load comes from this process,
//        one Green fiber per connection.
// 5b:    thread create+join cost (Examples/ThreadPerConnection/create_join.c),
//        natively and as fibers with TLS per thread and shared (issue #10).
// 5c:    the switch round trip between two threads
//        (Examples/ThreadPerConnection/switch_round_trip.c), natively and as
//        fibers with TLS per thread and shared (issue #10).
//
// Every error (a byte not echoed, a timeout, a server that dies) is printed
// and makes the run fail; servers are killed at the end, also on error.
import Glibc
import Green

enum PreloadBench {
    /// Concurrent connections of each configuration: 100, 1,000 and 10,000,
    /// or the comma-separated list in $GREEN_BENCH_CONNECTIONS (for a quick look
    /// at one configuration).
    static let connectionCounts: [Int] = {
        if let list = getenv("GREEN_BENCH_CONNECTIONS").map({ String(cString: $0) }) {
            let counts = list.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
            if !counts.isEmpty { return counts }
        }
        return [100, 1_000, 10_000]
    }()
    /// Length of each load phase.
    static let loadDuration = Duration.seconds(3)
    /// Each configuration runs this many times, native and green alternating
    /// (ABBA: native, green, green, native), and the summary takes each one's
    /// run with the most requests/s: the one the shared machine disturbed least.
    static let rounds = 2

    /// Run the whole section; throws if anything went wrong (after printing
    /// every table it could).
    static func run() throws {
        print("\n# 5. Unmodified C programs, natively and under LD_PRELOAD (issues #4, #10)")
        print("command: swift run -c release --scratch-path .build-bench green-bench preload")
        raiseFileLimit()
        let tools = try PreloadToolchain.prepare()
        ChildProcess.killChildrenOnInterrupt(cleanup: tools.removeWorkDirectory)
        defer {
            ChildProcess.killAll()
            tools.removeWorkDirectory()
        }
        let echoServer = try tools.compile("echo_server")
        let createJoin = try tools.compile("create_join")
        let switchRoundTrip = try tools.compile("switch_round_trip")
        print("compiled with cc -O2 -pthread into \(tools.workDirectory)")
        print("each configuration: open every connection (1 round trip each), then \(seconds(loadDuration)) s of "
              + "1 KiB request/response round trips on every connection; \(rounds) rounds")
        try MachineCPU.checkIdle()
        fflush(stdout)

        var runs: [EchoRun] = []
        for n in connectionCounts {
            for round in 1...rounds {
                let order: [ServerMode] = round % 2 == 1 ? [.native, .green, .hubs] : [.hubs, .green, .native]
                for mode in order {
                    let r = EchoRun.measure(binary: echoServer, preload: tools.preloadLibrary, mode: mode,
                                            connections: n, duration: loadDuration, round: round)
                    printProgress(r)
                    runs.append(r)
                    try Green.sleep(for: .milliseconds(300))   // let the kernel free the last server's thread stacks
                }
            }
        }
        printDetails(runs)
        let threadErrors = PreloadCreateJoin.run(program: createJoin, preload: tools.preloadLibrary)
            + PreloadSwitch.run(program: switchRoundTrip, preload: tools.preloadLibrary)
        printSummary(runs)

        let failed = runs.filter { $0.errorCount > 0 }
        if !failed.isEmpty || !threadErrors.isEmpty {
            for r in failed {
                print("ERROR: \(r.mode.rawValue) server, \(grouped(r.connections)) connections, round \(r.round): "
                      + "\(r.errorCount) error(s):")
                for e in r.errors { print("  \(e)") }
            }
            for e in threadErrors { print("ERROR: \(e)") }
            fflush(stdout)
            throw BenchError("the preload benchmark had errors (above)")
        }
    }

    /// RLIMIT_NOFILE up to its hard limit: 10,000 connections need 10,000 fds
    /// here (the servers inherit the limit, and raise their own too).
    static func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(RLIMIT_NOFILE_VALUE, &limit)
        let needed = rlim_t(connectionCounts.max()! + 100)
        if limit.rlim_cur < needed {
            print("warning: RLIMIT_NOFILE is \(limit.rlim_cur) (hard limit); \(needed) are needed for the largest configuration")
        }
    }

    /// RLIMIT_NOFILE as the type getrlimit takes on Glibc.
    static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }

    /// One line per finished configuration, so a long run shows progress.
    static func printProgress(_ r: EchoRun) {
        let status = r.errorCount == 0 ? "ok" : "\(r.errorCount) ERROR(S): \(r.errors.first ?? "")"
        print("  \(r.mode.rawValue.padding(10)) \(grouped(r.connections).leftPadding(6)) connections, round \(r.round): "
              + "\(grouped(Int(r.requestsPerSecond.isFinite ? r.requestsPerSecond : 0))) req/s, "
              + "total memory \(r.peakTotal.map(mib) ?? "?") MiB, \(r.threads.map(String.init) ?? "?") threads — \(status)")
        fflush(stdout)
    }

    /// Table 5a: every measurement of every configuration.
    static func printDetails(_ runs: [EchoRun]) {
        var t = Table("5a. Thread-per-connection echo server (C, unmodified): native threads vs LD_PRELOAD fibers",
                      ["server", "conns", "round", "open s", "requests", "req/s", "srv CPU µs/req", "srv CPU",
                       "client CPU µs/req", "others", "RSS idle", "RSS load", "threads", "kstack Δ", "kstack est.",
                       "kstack used", "total idle", "total load", "errors"])
        for r in runs {
            let i = r.idle, l = r.loaded
            t.add([r.mode.rawValue, grouped(r.connections), "\(r.round)", fixed(r.openSeconds, 2), grouped(r.requests),
                   grouped(Int(r.requestsPerSecond.isFinite ? r.requestsPerSecond : 0)),
                   fixed(r.serverMicrosPerRequest, 1),
                   fixed(r.serverCPU / r.loadSeconds * 100, 0) + "%",
                   fixed(r.clientMicrosPerRequest, 1),
                   fixed(r.otherCPU / r.loadSeconds * 100, 0) + "%",
                   i.map { mib($0.rss) } ?? "-", l.map { mib($0.rss) } ?? "-",
                   r.threads.map(String.init) ?? "-",
                   i.map { mib($0.measuredDelta) } ?? "-", i.map { mib($0.estimatedKernelStack) } ?? "-",
                   i.map { $0.source } ?? "-",
                   i.map { mib($0.total) } ?? "-", l.map { mib($0.total) } ?? "-",
                   "\(r.errorCount)"])
        }
        t.note("Memory in MiB. RSS = the server's VmRSS; idle = every connection open (after one round trip) and idle;")
        t.note("load = at the end of the load phase. kstack Δ = change of KernelStack in /proc/meminfo (system-wide) since")
        t.note("the server listened with no connection; kstack est. = threads × 16 KiB. 'kstack used' says which one the")
        t.note("totals use: the measured Δ (+16 KiB per thread the server had before) when the server gained ≥ 10 threads")
        t.note("and Δ is within 0.5–2× of the estimate for them, else the estimate. total = RSS + kernel stacks.")
        t.note("srv CPU = the server's utime+stime over the load phase (/proc/PID/stat), per request and as % of one core.")
        t.note("The load generator is this process: one thread, one Green fiber per connection (client CPU µs/req); on")
        t.note("\(ProcessInfoLite.cpus) cores it can saturate before the server does, so compare srv CPU µs/req too.")
        t.note("others = CPU the rest of the machine used during the load phase (/proc/stat busy time minus server and")
        t.note("client), in % of one core: well above 0, other processes disturbed that run.")
        t.print()
    }

    /// Table 5d: the side-by-side summary, and whether issue #4's and #12's targets are met.
    static func printSummary(_ runs: [EchoRun]) {
        var t = Table("5d. Summary: echo server natively, preloaded with 1 hub and with a hub per CPU (ratio = x / native)",
                      ["connections", "native req/s", "1 hub req/s", "ratio", "hubs req/s", "ratio",
                       "native MiB", "1 hub MiB", "ratio", "hubs MiB", "ratio",
                       "threads n/1/hubs", "native CPU µs/req", "1 hub", "hubs"])
        for n in connectionCounts {
            guard let native = best(runs, n, .native), let green = best(runs, n, .green),
                  let hubs = best(runs, n, .hubs) else { continue }
            func rps(_ r: EchoRun) -> String { grouped(Int(r.requestsPerSecond.isFinite ? r.requestsPerSecond : 0)) }
            func mem(_ r: EchoRun) -> Double { r.peakTotal.map(Double.init) ?? .nan }
            t.add([grouped(n), rps(native), rps(green), ratioText(green.requestsPerSecond, native.requestsPerSecond),
                   rps(hubs), ratioText(hubs.requestsPerSecond, native.requestsPerSecond),
                   fixed(mem(native) / 1_048_576, 1), fixed(mem(green) / 1_048_576, 1), ratioText(mem(green), mem(native)),
                   fixed(mem(hubs) / 1_048_576, 1), ratioText(mem(hubs), mem(native)),
                   [native, green, hubs].map { $0.threads.map(String.init) ?? "-" }.joined(separator: "/"),
                   fixed(native.serverMicrosPerRequest, 1), fixed(green.serverMicrosPerRequest, 1),
                   fixed(hubs.serverMicrosPerRequest, 1)])
        }
        t.note("Each row takes, for each server, its round with the most req/s of the \(rounds) in 5a.")
        t.note("MiB = the server's VmRSS + its threads' kernel stacks, the larger of the idle and end-of-load samples (5a).")
        t.note("threads = OS threads of the server process (/proc/PID/status). CPU µs/req = the server's CPU per request.")
        t.note("hubs = GREEN_HUBS=cpus: \(ProcessInfoLite.cpus) hubs here; the load generator shares those cores.")
        for line in verdict(runs, .green) + verdict(runs, .hubs) { t.note(line) }
        t.print()
    }

    /// The run of `mode` at `n` connections with the most requests/s: the
    /// one the machine's other load disturbed least.
    static func best(_ runs: [EchoRun], _ n: Int, _ mode: ServerMode) -> EchoRun? {
        func rate(_ r: EchoRun) -> Double { r.requestsPerSecond.isFinite ? r.requestsPerSecond : -1 }
        return runs.filter { $0.connections == n && $0.mode == mode }.max { rate($0) < rate($1) }
    }

    /// The targets at the largest connection count, in words: issue #4's
    /// for one hub, issue #12's for a hub per CPU.
    static func verdict(_ runs: [EchoRun], _ mode: ServerMode) -> [String] {
        let n = connectionCounts.max()!
        guard let native = best(runs, n, .native), let green = best(runs, n, mode),
              let nm = native.peakTotal, let gm = green.peakTotal,
              native.requestsPerSecond.isFinite, green.requestsPerSecond.isFinite else {
            return ["Targets of \(mode.rawValue) at \(grouped(n)) connections: cannot tell (a configuration failed)."]
        }
        let memoryRatio = Double(gm) / Double(nm)
        let speedRatio = green.requestsPerSecond / native.requestsPerSecond
        let caveat = native.errorCount == 0 && green.errorCount == 0 ? "." : " (but the run had errors: see below)."
        return [
            "\(mode.rawValue) at \(grouped(n)) connections, memory under half of native's: x/native = \(fixed(memoryRatio, 3)) — "
                + (memoryRatio < 0.5 ? "MET" : "NOT MET") + caveat,
            "\(mode.rawValue) at \(grouped(n)) connections, at least native's throughput: x/native = \(fixed(speedRatio, 2)) — "
                + (speedRatio >= 1.0 ? "MET" : "NOT MET") + caveat,
        ]
    }
}

extension String {
    /// The string padded with spaces on the right to `width` characters.
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    /// The string padded with spaces on the left to `width` characters.
    func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
