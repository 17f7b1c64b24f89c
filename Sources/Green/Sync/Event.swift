/// A flag fibers can wait for (gevent's `Event`): `wait()` parks until
/// someone calls `set()`; once set, waits return at once until `clear()`.
public final class Event {
    private let waiters = WaitQueue(label: "Event")
    var selectors = SelectWaiters()
    /// Whether the event is set.
    public private(set) var isSet = false
    /// Counts set() calls, so waiters woken by a set() return even if the
    /// event was cleared again before they ran (as gevent's Event does).
    private var generation = 0

    public init() {}

    /// Set the flag and wake every waiter.
    public func set() {
        waiters.assertOnOwnHub()
        guard !isSet else { return }
        isSet = true
        generation &+= 1
        waiters.wakeAll()
        selectors.notifyAll()
    }

    /// Reset the flag; later waits park again.
    public func clear() {
        waiters.assertOnOwnHub()
        isSet = false
    }

    /// Park until the event is set (returns at once if it is).
    /// Throws `TimeoutError` past `deadline`, `CancellationError` if cancelled.
    public func wait(until deadline: Deadline = .never) throws {
        waiters.assertOnOwnHub()
        let seen = generation
        while !isSet && generation == seen { try waiters.park(until: deadline) }
    }

    /// `wait(until:)` with a relative timeout.
    public func wait(timeout: Duration) throws { try wait(until: .after(timeout)) }
}

/// Hub-bound: a `Event` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a Event belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Event: Sendable {}
