import CGreenCore

/// One fiber blocked in `Green.select`, registered with every source it
/// watches; the first source that changes wakes it.
final class SelectWaiter {
    let fiber: OpaquePointer
    var fired = false
    init(fiber: OpaquePointer) { self.fiber = fiber }
}

/// The select waiters of one source (a channel or an event).
struct SelectWaiters {
    private var waiters: [SelectWaiter] = []

    mutating func add(_ w: SelectWaiter) { waiters.append(w) }
    mutating func remove(_ w: SelectWaiter) { waiters.removeAll { $0 === w } }

    /// Something changed: wake every selecting fiber so it re-checks its cases.
    mutating func notifyAll() {
        guard !waiters.isEmpty else { return }
        for w in waiters where !w.fired {
            w.fired = true
            wake(w.fiber)
        }
        waiters.removeAll()
    }
}

/// The handler's result of the case that happened (distinct from "not ready"
/// even when `Result` is itself optional).
struct Selected<Result> {
    let value: Result
}

/// One arm of `Green.select`: a channel receive or send, or an event wait,
/// with the code to run when it is the one that happens. Hub-bound, as its
/// channel or event is (not `Sendable`).
public struct SelectCase<Result> {
    /// Try the operation without parking; nil if it cannot happen now.
    let attempt: () throws -> Selected<Result>?
    let register: (SelectWaiter) -> Void
    let unregister: (SelectWaiter) -> Void
}

extension Green {
    /// Wait for the first of several operations that can proceed and run its
    /// handler (Go's `select`). Cases are tried in order, so earlier cases win
    /// when several are ready. Throws `TimeoutError` past `deadline`.
    ///
    /// ```swift
    /// let got = try Green.select(
    ///     jobs.onReceive { job in "job \(job!)" },
    ///     quit.onSet { "quit" })
    /// ```
    public static func select<R>(until deadline: Deadline = .never, _ cases: SelectCase<R>...) throws -> R {
        try select(until: deadline, cases)
    }

    /// `select` over an array of cases.
    public static func select<R>(until deadline: Deadline = .never, _ cases: [SelectCase<R>]) throws -> R {
        precondition(!cases.isEmpty, "select needs at least one case")
        Hub.ensureParkable()
        while true {
            for c in cases {
                if let r = try c.attempt() { return r.value }
            }
            let waiter = SelectWaiter(fiber: green_fiber_current()!)
            for c in cases { c.register(waiter) }
            labelWait("select")
            let reason = parkCurrentFiber(until: deadline)
            for c in cases { c.unregister(waiter) }
            if reason != .normal && !waiter.fired { try throwWake(reason) }
            if reason != .normal {
                // Woken by a source and interrupted at once: if a case can
                // proceed, take it and keep the interruption for the next wait.
                for c in cases {
                    if let r = try c.attempt() {
                        reason.rearm()
                        return r.value
                    }
                }
                try throwWake(reason)
            }
        }
    }
}

extension Event {
    /// A `select` case that fires when the event is set.
    public func onSet<R>(_ handler: @escaping () throws -> R) -> SelectCase<R> {
        SelectCase(
            attempt: { [self] in isSet ? Selected(value: try handler()) : nil },
            register: { [self] in selectors.add($0) },
            unregister: { [self] in selectors.remove($0) })
    }
}
