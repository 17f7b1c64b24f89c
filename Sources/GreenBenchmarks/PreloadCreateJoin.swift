// PreloadCreateJoin.swift — thread create+join cost, natively and under the
// preload library: runs Examples/ThreadPerConnection/create_join.c (compiled
// by the toolchain) in each mode and tabulates its two figures.
import Glibc
import Green

enum PreloadCreateJoin {
    /// Threads created and joined one at a time.
    static let oneAtATime = 20_000
    /// Threads alive at once, and how many rounds of those.
    static let alive = 1_000, rounds = 10

    /// What one run of create_join printed.
    struct Result {
        var oneAtATimeNs = Double.nan
        var aliveNs = Double.nan
        var osThreadsWhileAlive = -1
    }

    /// The three ways the program is run: without the library, under it with
    /// pthreads as fibers, under it with OS threads kept (its pass-through cost).
    enum Mode: CaseIterable {
        case native, fiber, preloadNative

        var label: String {
            switch self {
            case .native: return "native"
            case .fiber: return "preload (fibers)"
            case .preloadNative: return "preload, GREEN_THREADS=native"
            }
        }
    }

    /// Run the program in every mode and print the table. Returns the errors
    /// (a failed run, output that cannot be parsed).
    static func run(program: String, preload: String) -> [String] {
        var results: [Mode: Result] = [:]
        var errors: [String] = []
        for mode in Mode.allCases {
            do { results[mode] = try runOnce(program: program, preload: preload, mode: mode) } catch {
                errors.append("create_join (\(mode.label)): \(error)")
            }
        }
        let native = results[.native] ?? Result()
        let fiber = results[.fiber] ?? Result()
        let pass = results[.preloadNative] ?? Result()
        var t = Table("5b. Thread create+join, a plain C program (create_join.c), natively and under LD_PRELOAD",
                      ["what", "native", "green (fibers)", "speed-up (native/green)", "preload, threads native"])
        t.add(["\(grouped(oneAtATime)) threads, one at a time", perOp(ns: native.oneAtATimeNs), perOp(ns: fiber.oneAtATimeNs),
               ratioText(native.oneAtATimeNs, fiber.oneAtATimeNs), perOp(ns: pass.oneAtATimeNs)])
        t.add(["\(grouped(alive)) alive at once, then joined (×\(rounds))", perOp(ns: native.aliveNs),
               perOp(ns: fiber.aliveNs), ratioText(native.aliveNs, fiber.aliveNs), perOp(ns: pass.aliveNs)])
        t.add(["OS threads while \(grouped(alive)) are alive", "\(native.osThreadsWhileAlive)",
               "\(fiber.osThreadsWhileAlive)", "", "\(pass.osThreadsWhileAlive)"])
        t.note("Time per create+join pair (the alive-at-once figure includes waking every thread from a condvar).")
        t.note("speed-up = native time / green time: above 1, the preloaded program is faster. The last column is the library with")
        t.note("GREEN_THREADS=native: every pthread call passes through to glibc (the interposition's own cost).")
        for e in errors { t.note("ERROR: \(e)") }
        t.print()
        return errors
    }

    /// One run of create_join in `mode`, parsed.
    static func runOnce(program: String, preload: String, mode: Mode) throws -> Result {
        let extra: [String]
        switch mode {
        case .native: extra = []
        case .fiber: extra = ["LD_PRELOAD=\(preload)", "GREEN_THREADS=fiber"]
        case .preloadNative: extra = ["LD_PRELOAD=\(preload)", "GREEN_THREADS=native"]
        }
        let child = try ChildProcess([program, "\(oneAtATime)", "\(alive)", "\(rounds)"],
                                     environment: ChildProcess.environment(adding: extra),
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
