// PingPong.swift — section 1: the cost of handing control back and forth
// between two execution contexts. A round trip = each side gives control
// away once. Reported as total time / round trips.
import CGreenCore
import Glibc
import Green
import Synchronization

enum PingPong {
    // Round trips per contender, tuned so each run takes roughly 0.2-0.6 s;
    // every contender runs `repeats` times and the median run is reported.
    static let fiberRounds = 4_000_000
    static let taskRounds = 300_000
    static let threadRounds = 40_000
    static let repeats = 3

    static func run() throws {
        // Warm-up: create the hub, touch the code paths, start executor threads.
        _ = try greenFibers(rounds: 10_000)
        _ = swiftTasks(rounds: 2_000)
        _ = pthreads(rounds: 2_000)

        // Interleave the contenders so slow drift on the machine hits all alike.
        var greenRuns: [FiberResult] = [], floorRuns: [Double] = [], oneSiteRuns: [Double] = [], noFPRuns: [Double] = []
        var taskRuns: [Double] = [], threadRuns: [Double] = []
        for _ in 0..<repeats {
            greenRuns.append(try greenFibers(rounds: fiberRounds))
            floorRuns.append(bareSwitch(rounds: fiberRounds))
            oneSiteRuns.append(bareSwitchOneSite(rounds: fiberRounds))
            if let t = bareSwitchWithoutFP(rounds: fiberRounds) { noFPRuns.append(t) }
            taskRuns.append(swiftTasks(rounds: taskRounds))
            threadRuns.append(pthreads(rounds: threadRounds))
        }
        let green = greenRuns.sorted { $0.seconds < $1.seconds }[repeats / 2]

        let base = green.seconds * 1e9 / Double(fiberRounds)
        var t = Table("1. Ping-pong round trip (two contexts alternating; each side yields once per round trip)",
                      ["contender", "round trips", "median run", "per round trip", "min .. max per round trip", "vs Green"])
        for (name, label, rounds, runs) in [
            ("Green", "Green fibers: Green.yield()", fiberRounds, greenRuns.map(\.seconds)),
            ("Switch", "the bare context switch (floor)", fiberRounds, floorRuns),
            ("Switch", "  the same, one call site", fiberRounds, oneSiteRuns),
            ("Switch", "  one call site, no FP control words", fiberRounds, noFPRuns),
            ("Task", "Swift Tasks: continuation handoff", taskRounds, taskRuns),
            ("Thread", "pthreads: mutex + condvar turn", threadRounds, threadRuns),
        ] where !runs.isEmpty {
            let sorted = runs.sorted()
            let ns = { (secs: Double) in secs * 1e9 / Double(rounds) }
            let median = sorted[sorted.count / 2]
            t.add([label, grouped(rounds), fixed(median, 3) + " s", perOp(ns: ns(median)),
                   perOp(ns: ns(sorted.first!)) + " .. " + perOp(ns: ns(sorted.last!)),
                   ratio(name, ns(median), baseline: base)])
        }
        t.note("Median of \(repeats) runs per contender, interleaved.")
        t.note("Green: \(fixed(Double(green.switches) / Double(fiberRounds), 2)) context switches and "
               + "\(fixed(Double(green.polls) / Double(fiberRounds), 3)) libev polls per round trip (Hub.current counters).")
        t.note("The bare context switch: Green's assembly switch between two contexts and nothing else "
               + "(callee-saved registers, MXCSR and x87 control words); Green.yield() adds the scheduler.")
        t.note("From two call sites (as two fibers at different places in their code) each return into the "
               + "other stack is mispredicted; from one call site the CPU predicts them: the switch alone. "
               + "Without the FP control words (x86_64 only; Green keeps them per fiber, as a thread has its own): "
               + "what keeping them costs.")
        t.note("Tasks run on the default global executor (\(ProcessInfoLite.cpus) CPUs); each handoff resumes an "
               + "UnsafeContinuation parked in a Mutex-protected slot.")
        t.print()
    }

    // MARK: Green fibers

    struct FiberResult {
        var seconds: Double
        var switches: UInt64
        var polls: UInt64
    }

    static func greenFibers(rounds: Int) throws -> FiberResult {
        let hub = Hub.current
        let switches0 = hub.switchCount, polls0 = hub.pollCount
        let secs = try measure {
            let a = Green.spawn(name: "ping") { for _ in 0..<rounds { try Green.yield() } }
            let b = Green.spawn(name: "pong") { for _ in 0..<rounds { try Green.yield() } }
            try a.value
            try b.value
        }
        return FiberResult(seconds: secs, switches: hub.switchCount - switches0, polls: hub.pollCount - polls0)
    }

    // MARK: The bare switch

    static func bareSwitch(rounds: Int) -> Double {
        measure {
            guard green_switch_floor(rounds) == 0 else { fatalError("green-bench: no memory for a stack") }
        }
    }

    static func bareSwitchOneSite(rounds: Int) -> Double {
        measure {
            guard green_switch_floor_one_site(rounds) == 0 else { fatalError("green-bench: no memory for a stack") }
        }
    }

    static func bareSwitchWithoutFP(rounds: Int) -> Double? {
        var ok = true
        let t = measure { ok = green_switch_floor_without_fp(rounds) == 0 }
        return ok ? t : nil
    }

    // MARK: Swift concurrency tasks

    /// A one-slot doorbell between two tasks: `ring()` either resumes the
    /// waiting task or leaves a pending ring that the next `wait()` consumes,
    /// so no wake-up is lost whichever side gets there first.
    final class Doorbell: Sendable {
        private enum State {
            case idle
            case rung
            case waiting(UnsafeContinuation<Void, Never>)
        }
        private let state = Mutex<State>(.idle)

        func ring() {
            let waiter: UnsafeContinuation<Void, Never>? = state.withLock { s in
                switch s {
                case .waiting(let c):
                    s = .idle
                    return c
                case .idle:
                    s = .rung
                    return nil
                case .rung:
                    fatalError("doorbell rung twice without a wait (ping-pong out of step)")
                }
            }
            waiter?.resume()
        }

        func wait() async {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                let resumeNow: Bool = state.withLock { s in
                    switch s {
                    case .rung:
                        s = .idle
                        return true
                    case .idle:
                        s = .waiting(c)
                        return false
                    case .waiting:
                        fatalError("two waiters on one doorbell")
                    }
                }
                if resumeNow { c.resume() }
            }
        }
    }

    static func swiftTasks(rounds: Int) -> Double {
        runAsyncBlocking {
            let ping = Doorbell(), pong = Doorbell()
            let clock = ContinuousClock()
            let start = clock.now
            let other = Task.detached {
                for _ in 0..<rounds {
                    await pong.wait()
                    ping.ring()
                }
            }
            for _ in 0..<rounds {
                pong.ring()
                await ping.wait()
            }
            await other.value
            return seconds(clock.now - start)
        }
    }

    // MARK: pthreads

    final class Turn: @unchecked Sendable {
        let monitor = MonitorLock()
        var turn = 0
    }

    static func pthreads(rounds: Int) -> Double {
        let t = Turn()
        func side(_ me: Int) -> () -> Void {
            return {
                for _ in 0..<rounds {
                    t.monitor.lock()
                    while t.turn != me { t.monitor.wait() }
                    t.turn = 1 - me
                    t.monitor.signal() // only the other side can be waiting
                    t.monitor.unlock()
                }
            }
        }
        return measure {
            let a = startThread(side(0))!
            let b = startThread(side(1))!
            joinThread(a)
            joinThread(b)
        }
    }
}

enum ProcessInfoLite {
    static var cpus: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
