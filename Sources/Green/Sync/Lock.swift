/// A mutual-exclusion lock for fibers. Not recursive, and owner-checked:
/// only the fiber holding it may unlock it (anything else is a programmer
/// error and stops the program). Waiting fibers park (the hub keeps running
/// others); a fiber that already holds it gets `GreenError.alreadyLocked`
/// instead of deadlocking itself.
public final class Lock {
    private let waiters = WaitQueue(label: "Lock")
    private var owner: AnyFiber?

    public init() {}

    /// Whether some fiber holds the lock.
    public var isLocked: Bool { owner != nil }

    /// Park until the lock is free, then take it.
    public func lock(until deadline: Deadline = .never) throws {
        waiters.assertOnOwnHub()
        let me = AnyFiber.running
        if owner === me { throw GreenError.alreadyLocked }
        while owner != nil { try waiters.park(until: deadline) }
        owner = me
    }

    /// Take the lock if it is free; never parks.
    public func tryLock() -> Bool {
        waiters.assertOnOwnHub()
        guard owner == nil else { return false }
        owner = AnyFiber.running
        return true
    }

    /// Release the lock and wake one waiter. Only the fiber holding the lock
    /// may call it: unlocking a lock held by another fiber, or one that is
    /// not locked, is a precondition failure (as unlocking a mutex you do not
    /// own is undefined for pthreads), not an error to handle.
    public func unlock() {
        waiters.assertOnOwnHub()
        guard owner === AnyFiber.running else {
            // fatalError, not precondition: the message is kept in release builds too.
            fatalError(owner == nil ? "green: Lock.unlock() of a lock that is not locked"
                                    : "green: Lock.unlock() by a fiber that does not hold the lock")
        }
        owner = nil
        waiters.wakeOne()
    }

    /// Run `body` holding the lock.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try lock()
        defer { unlock() }
        return try body()
    }

    /// Reacquire after a condition wait, ignoring cancellation (it stays pending).
    func lockUninterruptibly(as me: AnyFiber) {
        while owner != nil { waiters.parkUninterruptibly() }
        owner = me
    }

    func releaseForWait(by me: AnyFiber) throws {
        guard owner === me else { throw GreenError.notLockOwner }
        owner = nil
        waiters.wakeOne()
    }
}

/// Hub-bound: a `Lock` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a Lock belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Lock: Sendable {}
