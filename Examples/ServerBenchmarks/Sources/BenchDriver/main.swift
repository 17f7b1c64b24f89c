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

/// One benchmark: its title and method, then its table between two readings
/// of the load average (the machine is shared: the reader judges the noise).
func section<T>(_ title: String, _ method: String, runs name: String, _ run: () throws -> T,
                report: (T) -> String) throws -> T {
    say(title)
    say(method)
    let loadBefore = loadAverage()
    let result = try run()
    say(report(result) + "\n")
    say("Load average before / after the \(name) runs: \(loadBefore) / \(loadAverage())\n")
    return result
}

do {
    let options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
    var verdicts: [String] = []
    var errors: [String] = []
    if options.runs("echo") {
        let echo = try section(
            "## Echo: requests/s, p99 and server CPU per request (\(Placement.pinned.description))\n",
            "\(formatCount(options.echoSeconds * 1000)) ms per cell after \(formatCount(options.echoWarmup * 1000)) ms of warm-up; "
                + "best of \(options.rounds), and Green against C round by round; every byte checked.\n",
            runs: "echo", { try EchoBenchmark(options: options).run() }, report: Report.echo)
        verdicts += Report.echoVerdicts(echo)
    }
    if options.runs("http") {
        let http = try section(
            "## HTTP plaintext keep-alive: wrk -c\(options.httpConnections) -d\(options.httpSeconds)s --latency, GET /\n",
            "1 thread, pinned: \(Placement.pinned.description), wrk -t1. 1 thread, unpinned: one server thread "
                + "(event loop), wrk -t1, \(Placement.unpinned.description). All cores: \(Placement.cpuCount) server threads, "
                + "wrk -t\(Placement.cpuCount), \(Placement.unpinned.description).\n",
            runs: "HTTP", { try HTTPBenchmark(options: options).run() }, report: Report.http)
        verdicts += Report.httpVerdicts(http)
        errors += Report.httpErrors(http)
    }
    if options.runs("green-run") {
        let greenRun = try section(
            "## Existing servers under green run: natively and preloaded (\(Placement.pinned.description))\n",
            "node: wrk -t1 -c\(options.httpConnections) -d\(options.httpSeconds)s; redis-server: redis-benchmark -q -n 100000 "
                + "-c 50 -t set,get (the rate over both). Best of \(options.rounds); every wrk answer a 200.\n",
            runs: "green run", { try GreenRunBenchmark(options: options).run() }, report: Report.greenRun)
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
