/// A condition variable for fibers, used with a `Lock`: `wait` releases the
/// lock, parks until `signal`/`broadcast`, and reacquires it before
/// returning — also when it throws, so the caller always holds the lock again.
public final class Condition {
    private let waiters = WaitQueue(label: "Condition")
    /// The lock this condition is used with.
    public let lock: Lock

    public init(lock: Lock = Lock()) { self.lock = lock }

    /// Release the lock, park until signalled (or the deadline, or
    /// cancellation), then reacquire the lock. Spurious wake-ups can happen:
    /// check your predicate in a loop.
    public func wait(until deadline: Deadline = .never) throws {
        waiters.assertOnOwnHub()
        let me = AnyFiber.running
        try lock.releaseForWait(by: me)
        defer { lock.lockUninterruptibly(as: me) }
        try waiters.park(until: deadline)
    }

    /// Wake one waiting fiber.
    public func signal() {
        waiters.assertOnOwnHub()
        waiters.wakeOne()
    }

    /// Wake every waiting fiber.
    public func broadcast() {
        waiters.assertOnOwnHub()
        waiters.wakeAll()
    }
}

/// Hub-bound: a `Condition` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a Condition belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Condition: Sendable {}
