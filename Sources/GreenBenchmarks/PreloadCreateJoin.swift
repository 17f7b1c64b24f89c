// PreloadCreateJoin.swift — thread create+join cost, natively and under the
// preload library (fiber threads with TLS of their own, and with the main
// thread's TLS shared: GREEN_THREAD_TLS=shared): runs
// Examples/ThreadPerConnection/create_join.c (compiled by the toolchain) in
// each mode, `rounds` times interleaved, and tabulates the medians.
import Glibc
import Green

enum PreloadCreateJoin {
    /// Threads created and joined one at a time.
    static let oneAtATime = 20_000
    /// Threads alive at once, and how many rounds of those (inside one run).
    static let alive = 1_000, aliveRounds = 10
    /// Runs of the program per mode, the modes interleaved (each round in
    /// another order); the table shows each mode's median run.
    static let rounds = 5

    /// What one run of create_join printed.
    struct Result {
        var oneAtATimeNs = Double.nan
        var aliveNs = Double.nan
        var osThreadsWhileAlive = -1
    }

    /// The ways the program is run: without the library; under it with
    /// pthreads as fibers that have TLS of their own (the default), on one
    /// hub and on a hub per CPU; the same with every fiber thread on the main
    /// thread's TLS; under it with OS threads kept (its pass-through cost).
    enum Mode: CaseIterable {
        case native, fiber, fiberHubPerCPU, fiberSharedTLS, preloadNative

        var label: String {
            switch self {
            case .native: return "native"
            case .fiber: return "preload (fibers, TLS per thread)"
            case .fiberHubPerCPU: return "the same, a hub per CPU (green run's default)"
            case .fiberSharedTLS: return "preload, GREEN_THREAD_TLS=shared"
            case .preloadNative: return "preload, GREEN_THREADS=native"
            }
        }

        /// What the child's environment gets besides this process's (minus
        /// LD_PRELOAD and GREEN_*).
        func environment(preload: String) -> [String] {
            switch self {
            case .native: return []
            case .fiber: return ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber", "GREEN_HUBS=1"]
            case .fiberHubPerCPU: return ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber"]
            case .fiberSharedTLS: return ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber", "GREEN_THREAD_TLS=shared", "GREEN_HUBS=1"]
            case .preloadNative: return ["LD_PRELOAD=\(preload)", "GREEN_THREADS=native"]
            }
        }
    }

    /// The order of the modes in round `round` (0-based): rotated and, every
    /// other round, reversed, so no mode always runs first or after the same one.
    static func order<T>(_ all: [T], round: Int) -> [T] {
        let k = round % all.count
        let rotated = Array(all[k...] + all[..<k])
        return round % 2 == 0 ? rotated : rotated.reversed()
    }

    /// The median of `values` (NaN for none; NaNs are ignored).
    static func median(_ values: [Double]) -> Double {
        let v = values.filter { $0.isFinite }.sorted()
        guard !v.isEmpty else { return .nan }
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    /// "min .. max" of `values` with `format`.
    static func range(_ values: [Double], _ format: (Double) -> String) -> String {
        let v = values.filter { $0.isFinite }
        guard let lo = v.min(), let hi = v.max() else { return "-" }
        return format(lo) + " .. " + format(hi)
    }

    /// Run the program in every mode and print the table. Returns the errors
    /// (a failed run, output that cannot be parsed).
    static func run(program: String, preload: String) -> [String] {
        var results: [Mode: [Result]] = [:]
        var errors: [String] = []
        for round in 0..<rounds {
            for mode in order(Mode.allCases, round: round) {
                do { results[mode, default: []].append(try runOnce(program: program, preload: preload, mode: mode)) } catch {
                    errors.append("create_join (\(mode.label)), round \(round + 1): \(error)")
                }
            }
        }
        func one(_ m: Mode) -> Double { median((results[m] ?? []).map(\.oneAtATimeNs)) }
        func many(_ m: Mode) -> Double { median((results[m] ?? []).map(\.aliveNs)) }
        func osThreads(_ m: Mode) -> String { (results[m] ?? []).last.map { "\($0.osThreadsWhileAlive)" } ?? "-" }

        var t = Table("5b. Thread create+join, a plain C program (create_join.c), natively and under LD_PRELOAD",
                      ["what", "native", "green, TLS per thread", "native/green", "the same, a hub per CPU",
                       "native/green", "green, TLS shared", "native/green", "TLS per thread − shared",
                       "preload, threads native"])
        for (what, f) in [("\(grouped(oneAtATime)) threads, one at a time", one),
                          ("\(grouped(alive)) alive at once, then joined (×\(aliveRounds))", many)] {
            t.add([what, perOp(ns: f(.native)), perOp(ns: f(.fiber)), ratioText(f(.native), f(.fiber)),
                   perOp(ns: f(.fiberHubPerCPU)), ratioText(f(.native), f(.fiberHubPerCPU)),
                   perOp(ns: f(.fiberSharedTLS)), ratioText(f(.native), f(.fiberSharedTLS)),
                   signedNs(f(.fiber) - f(.fiberSharedTLS)) + " (" + ratioText(f(.fiber), f(.fiberSharedTLS)) + ")",
                   perOp(ns: f(.preloadNative))])
        }
        t.add(["OS threads while \(grouped(alive)) are alive", osThreads(.native), osThreads(.fiber), "",
               osThreads(.fiberHubPerCPU), "", osThreads(.fiberSharedTLS), "", "", osThreads(.preloadNative)])
        for mode in Mode.allCases {
            let rs = results[mode] ?? []
            t.note("\(mode.label): one at a time \(range(rs.map(\.oneAtATimeNs), perOp)), "
                   + "alive at once \(range(rs.map(\.aliveNs), perOp)) over \(rs.count) runs")
        }
        t.note("Time per create+join pair, the median of \(rounds) runs per mode (interleaved, ranges above); the")
        t.note("alive-at-once figure includes waking every thread from a condvar. native/green: above 1, the preloaded")
        t.note("program is faster. TLS per thread (the default since 6fc582c): each fiber thread gets a static TLS block")
        t.note("and a glibc thread descriptor of its own; GREEN_THREAD_TLS=shared: they all use the main thread's.")
        t.note("The last column is the library with GREEN_THREADS=native: every pthread call passes through to glibc.")
        t.note("A hub per CPU: a new thread starts on the least loaded hub, usually another than its creator's, so a")
        t.note("thread made and joined at once costs two wake-ups of another OS thread (the other hub's, then the joiner's).")
        for line in verdict(native: (one(.native), many(.native)), green: (one(.fiber), many(.fiber))) { t.note(line) }
        for e in errors { t.note("ERROR: \(e)") }
        t.print()
        return errors
    }

    /// Issue #10's create+join target in words: with TLS per thread, still at
    /// least 20× cheaper than a native thread.
    static func verdict(native: (Double, Double), green: (Double, Double)) -> [String] {
        let r1 = native.0 / green.0, r2 = native.1 / green.1
        guard r1.isFinite, r2.isFinite else { return ["Target (#10) create+join ≥ 20× cheaper than native: cannot tell."] }
        return ["Target (#10), create+join with TLS per thread ≥ 20× cheaper than native: one at a time "
                + "\(fixed(r1, 1))×, \(grouped(alive)) alive \(fixed(r2, 1))× — " + (min(r1, r2) >= 20 ? "MET" : "NOT MET")]
    }

    /// One run of create_join in `mode`, parsed.
    static func runOnce(program: String, preload: String, mode: Mode) throws -> Result {
        let child = try ChildProcess([program, "\(oneAtATime)", "\(alive)", "\(aliveRounds)"],
                                     environment: ChildProcess.environment(adding: mode.environment(preload: preload)),
                                     label: "create_join (\(mode.label))")
        let output = try child.readAll(until: .after(.seconds(120)))
        let status = try child.wait(until: .after(.seconds(10)))
        guard status == 0 else { throw BenchError("\(ChildProcess.describe(status)); output: \(output)") }
        var r = Result()
        for line in output.split(separator: "\n") {
            let kv = keyValues(line)
            if line.hasPrefix("one_at_a_time ") { r.oneAtATimeNs = kv["ns_per_create_join"].flatMap(Double.init) ?? .nan }
            if line.hasPrefix("alive_at_once ") {
                r.aliveNs = kv["ns_per_create_join"].flatMap(Double.init) ?? .nan
                r.osThreadsWhileAlive = kv["os_threads_while_alive"].flatMap { Int($0) } ?? -1
            }
        }
        guard r.oneAtATimeNs.isFinite, r.aliveNs.isFinite else { throw BenchError("unexpected output: \(output)") }
        return r
    }

    /// "a=1 b=2" → ["a": "1", "b": "2"] (words without "=" are skipped).
    static func keyValues(_ line: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for word in line.split(separator: " ") {
            let p = word.split(separator: "=", maxSplits: 1)
            if p.count == 2 { out[String(p[0])] = String(p[1]) }
        }
        return out
    }
}

/// `value / base` as "0.42x" (empty if either is missing).
func ratioText(_ value: Double, _ base: Double) -> String {
    guard value.isFinite, base.isFinite, base > 0 else { return "" }
    let r = value / base
    return fixed(r, r >= 100 ? 0 : (r >= 10 ? 1 : (r >= 0.01 ? 2 : 4))) + "x"
}

/// A time difference with its sign: "+12.3 ns", "−1.20 µs".
func signedNs(_ ns: Double) -> String {
    guard ns.isFinite else { return "n/a" }
    return (ns < 0 ? "−" : "+") + perOp(ns: abs(ns))
}
