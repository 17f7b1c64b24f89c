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
        let me = AnyFiber.running
        try lock.releaseForWait(by: me)
        defer { lock.lockUninterruptibly(as: me) }
        try waiters.park(until: deadline)
    }

    /// Wake one waiting fiber.
    public func signal() { waiters.wakeOne() }

    /// Wake every waiting fiber.
    public func broadcast() { waiters.wakeAll() }
}
