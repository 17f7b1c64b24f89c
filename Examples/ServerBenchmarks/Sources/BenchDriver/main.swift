// server-bench: issue #5's server benchmarks, all contenders in one run.
// The `run` script next to Package.swift builds everything and calls this;
// see README.md there for what is measured and how.
import Foundation
import Glibc

/// Print to standard output at once (progress goes to standard error).
func say(_ text: String) {
    print(text)
    fflush(stdout)
}

do {
    let options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
    var verdicts: [String] = []
    var errors: [String] = []
    if options.runs("echo") {
        say("## Echo: requests/s, p99 and server CPU per request (\(Placement.pinned.description))\n")
        say("\(formatCount(options.echoSeconds * 1000)) ms per cell after \(formatCount(options.echoWarmup * 1000)) ms of warm-up; "
            + "best of \(options.rounds); every byte checked.\n")
        let loadBefore = loadAverage()
        let echo = try EchoBenchmark(options: options).run()
        say(Report.echo(echo) + "\n")
        say("Load average before / after the echo runs: \(loadBefore) / \(loadAverage())\n")
        verdicts += Report.echoVerdicts(echo)
    }
    if options.runs("http") {
        say("## HTTP plaintext keep-alive: wrk -c\(options.httpConnections) -d\(options.httpSeconds)s --latency, GET /\n")
        say("1 thread, pinned: \(Placement.pinned.description), wrk -t1. 1 thread, unpinned: one server thread "
            + "(event loop), wrk -t1, \(Placement.unpinned.description). All cores: \(Placement.cpuCount) server threads, "
            + "wrk -t\(Placement.cpuCount), \(Placement.unpinned.description).\n")
        let loadBefore = loadAverage()
        let http = try HTTPBenchmark(options: options).run()
        say(Report.http(http) + "\n")
        say("Load average before / after the HTTP runs: \(loadBefore) / \(loadAverage())\n")
        verdicts += Report.httpVerdicts(http)
        errors += Report.httpErrors(http)
    }
    if options.runs("green-run") {
        say("## Existing servers under green run: natively and preloaded (\(Placement.pinned.description))\n")
        say("node: wrk -t1 -c\(options.httpConnections) -d\(options.httpSeconds)s; redis-server: redis-benchmark -q -n 100000 "
            + "-c 50 -t set,get (the rate over both). Best of \(options.rounds); every wrk answer a 200.\n")
        let loadBefore = loadAverage()
        let greenRun = try GreenRunBenchmark(options: options).run()
        say(Report.greenRun(greenRun) + "\n")
        say("Load average before / after the green run runs: \(loadBefore) / \(loadAverage())\n")
        verdicts += Report.greenRunVerdicts(greenRun)
    }
    say("## Targets (issues #5 and #13)\n")
    for v in verdicts { say("- " + v) }
    say(errors.isEmpty ? "- no error, no lost or wrong byte in any run" : errors.map { "- ERROR: " + $0 }.joined(separator: "\n"))
    exit(errors.isEmpty ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("server-bench: \(error)\n".utf8))
    exit(1)
}
