import CGreenCore

/// Why a park returned: the C core's `green_wake_reason`, as a Swift enum.
/// The C calls return it as an `int`; `WakeReason(_:)` reads one and `raw`
/// gives it back (to `green_wake` or `green_rearm_interrupt`).
enum WakeReason: Equatable {
    /// Woken by what it waited for (`GREEN_WAKE_NORMAL`).
    case normal
    /// The wait's own deadline passed (`GREEN_WAKE_DEADLINE`).
    case deadline
    /// The fiber was cancelled (`GREEN_WAKE_CANCELLED`).
    case cancelled
    /// An enclosing `Green.withTimeout` scope expired (`GREEN_WAKE_TIMEOUT_SCOPE`).
    case timeoutScope
    /// Nothing left could ever wake it (`GREEN_WAKE_DEADLOCK`, gevent's `LoopExit`).
    case deadlock
    /// The fd it waited on was closed by another fiber (`GREEN_WAKE_FD_CLOSED`).
    case fdClosed
    /// A signal handler ran; a blocking call returns `EINTR` (`GREEN_WAKE_SIGNAL`).
    case signal

    /// The reason a C park call returned.
    init(_ raw: Int32) {
        switch UInt32(bitPattern: raw) {
        case GREEN_WAKE_NORMAL.rawValue: self = .normal
        case GREEN_WAKE_DEADLINE.rawValue: self = .deadline
        case GREEN_WAKE_CANCELLED.rawValue: self = .cancelled
        case GREEN_WAKE_TIMEOUT_SCOPE.rawValue: self = .timeoutScope
        case GREEN_WAKE_DEADLOCK.rawValue: self = .deadlock
        case GREEN_WAKE_FD_CLOSED.rawValue: self = .fdClosed
        case GREEN_WAKE_SIGNAL.rawValue: self = .signal
        default: fatalError("green: unknown wake reason \(raw)")
        }
    }

    /// The C value (`green_wake_reason`).
    var raw: Int32 {
        let c: green_wake_reason
        switch self {
        case .normal: c = GREEN_WAKE_NORMAL
        case .deadline: c = GREEN_WAKE_DEADLINE
        case .cancelled: c = GREEN_WAKE_CANCELLED
        case .timeoutScope: c = GREEN_WAKE_TIMEOUT_SCOPE
        case .deadlock: c = GREEN_WAKE_DEADLOCK
        case .fdClosed: c = GREEN_WAKE_FD_CLOSED
        case .signal: c = GREEN_WAKE_SIGNAL
        }
        return Int32(bitPattern: c.rawValue)
    }

    /// Whether a C park's result is `.normal` (the hot path: no enum built).
    @inline(__always)
    static func isNormal(_ raw: Int32) -> Bool { raw == Int32(bitPattern: GREEN_WAKE_NORMAL.rawValue) }

    /// Deliver this interruption again at the current fiber's next park
    /// (a wait that got its result anyway keeps the interruption for later).
    func rearm() { green_rearm_interrupt(raw) }
}

/// Park the current fiber until `wake(_:)`, `deadline`, or (if
/// `interruptible`) its cancellation or an expired timeout scope. The caller
/// made sure it may park (`Hub.ensureParkable()`) and labelled the wait.
@inline(__always)
func parkCurrentFiber(until deadline: Deadline = .never, interruptible: Bool = true) -> WakeReason {
    let raw = green_park_until(deadline.nanoseconds, interruptible ? 0 : Int32(GREEN_PARK_UNINTERRUPTIBLE))
    return WakeReason.isNormal(raw) ? .normal : WakeReason(raw)
}

/// Wake a fiber of this hub parked in `parkCurrentFiber` (reason `.normal`).
@inline(__always)
func wake(_ fiber: OpaquePointer) { green_wake(fiber, WakeReason.normal.raw) }
