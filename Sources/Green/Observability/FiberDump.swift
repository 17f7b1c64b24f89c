import CGreenCore
import Glibc

/// One fiber as `Hub.fiberDump()` shows it.
public struct FiberSnapshot: Sendable, CustomStringConvertible {
    /// 0 for the thread's root context.
    public let id: UInt64
    public let name: String
    public let state: FiberState
    /// What a parked fiber waits for: "sleep", "fd", "poll", "Lock", "Event",
    /// "channel receive", "join", "offload", … ("" when not parked).
    public let waitingOn: String
    /// The fd of an "fd" wait, with "read"/"write".
    public let fd: Int32?
    public let fdEvents: String
    /// How long it has been parked (by the hub's clock, which advances per loop iteration).
    public let parkedFor: Duration

    public var description: String {
        var line = "#\(id) \(name.isEmpty ? "fiber" : name): \(state)"
        if state == .parked {
            line += " on \(waitingOn.isEmpty ? "?" : waitingOn)"
            if let fd { line += " \(fd) (\(fdEvents))" }
            let ms = Double(parkedFor.components.seconds) * 1000 + Double(parkedFor.components.attoseconds) / 1e15
            line += " for \(Int(ms.rounded())) ms"
        }
        return line
    }
}

extension Hub {
    /// Every fiber of this hub — the root context first — with its state and,
    /// if parked, what it waits for and for how long. Hub thread only.
    public func fiberDump() -> [FiberSnapshot] {
        assertOnOwnHub("Hub.fiberDump()")
        var infos = [green_fiber_info](repeating: green_fiber_info(), count: 64)
        var n = green_sched_snapshot(sched, &infos, infos.count)
        if n > infos.count {
            infos = [green_fiber_info](repeating: green_fiber_info(), count: n + 16)
            n = green_sched_snapshot(sched, &infos, infos.count)
        }
        return infos.prefix(min(n, infos.count)).map { info in
            var nameTuple = info.name
            let name = withUnsafeBytes(of: &nameTuple) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let state: FiberState
            switch info.state {
            case GREEN_FIBER_READY: state = .ready
            case GREEN_FIBER_RUNNING: state = .running
            case GREEN_FIBER_PARKED: state = .parked
            default: state = .done
            }
            let events = [info.fd_events & Int32(GREEN_READ) != 0 ? "read" : nil,
                          info.fd_events & Int32(GREEN_WRITE) != 0 ? "write" : nil].compactMap { $0 }
            return FiberSnapshot(
                id: info.id, name: name, state: state,
                waitingOn: info.waiting_on.map { String(cString: $0) } ?? "",
                fd: info.fd >= 0 ? info.fd : nil, fdEvents: events.joined(separator: "+"),
                parkedFor: .nanoseconds(Int64(info.parked_seconds * 1e9)))
        }
    }

    /// The dump as text, one fiber a line.
    public func fiberDumpText() -> String {
        let fibers = fiberDump()
        return "green: \(fibers.count) fiber(s) on this hub\n" + fibers.map { "  \($0)" }.joined(separator: "\n") + "\n"
    }
}

extension Green {
    /// Print this thread's fibers to stderr (see `Hub.fiberDump()`).
    public static func dumpFibers() {
        printToStandardError(Hub.current.fiberDumpText())
    }
}

extension Green {
    /// Print this thread's fiber dump to stderr whenever `signal` arrives
    /// (default `SIGUSR2`), from a fiber of the hub. Also on with
    /// `GREEN_DUMP_SIGNAL=USR2` (or a signal number) in the environment.
    @discardableResult
    public static func dumpFibersOnSignal(_ signal: Int32 = SIGUSR2) -> SignalHandler {
        onSignal(signal) { dumpFibers() }
    }
}

/// `GREEN_DUMP_SIGNAL=USR2` (or a number) installs the dump handler on each new hub.
func installDumpSignalFromEnvironment() {
    guard let raw = getenv("GREEN_DUMP_SIGNAL").map({ String(cString: $0) }), !raw.isEmpty else { return }
    let names: [String: Int32] = ["USR1": SIGUSR1, "USR2": SIGUSR2, "SIGUSR1": SIGUSR1, "SIGUSR2": SIGUSR2,
                                  "QUIT": SIGQUIT, "SIGQUIT": SIGQUIT]
    guard let sig = names[raw.uppercased()] ?? Int32(raw) else {
        printToStandardError("green: GREEN_DUMP_SIGNAL=\(raw) is not a signal name or number\n")
        return
    }
    Green.dumpFibersOnSignal(sig)
}
