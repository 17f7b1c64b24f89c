import CGreenCore

/// A point in time on the monotonic clock (CLOCK_MONOTONIC), used by every
/// waiting API. `Deadline.never` waits forever.
public struct Deadline: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds on CLOCK_MONOTONIC.
    public let nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current time.
    public static var now: Deadline { Deadline(nanoseconds: green_now_ns()) }
    /// No deadline at all.
    public static let never = Deadline(nanoseconds: Int64.max)

    /// `duration` from now.
    public static func after(_ duration: Duration) -> Deadline { now + duration }

    public static func + (lhs: Deadline, rhs: Duration) -> Deadline {
        let ns = rhs.nanosecondsClamped
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(ns)
        if overflow { return ns > 0 ? .never : Deadline(nanoseconds: Int64.min) }
        return Deadline(nanoseconds: sum)
    }

    /// Time left until the deadline (zero or negative once passed).
    public var remaining: Duration { .nanoseconds(nanoseconds == .max ? .max : nanoseconds - green_now_ns()) }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public var description: String { self == .never ? "never" : "Deadline(\(nanoseconds) ns)" }
}

extension Duration {
    /// The duration in nanoseconds, clamped to Int64.
    var nanosecondsClamped: Int64 {
        let (s, atto) = components
        let (ns, o1) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if o1 { return s < 0 ? .min : .max }
        let (sum, o2) = ns.addingReportingOverflow(atto / 1_000_000_000)
        return o2 ? (s < 0 ? .min : .max) : sum
    }
}
