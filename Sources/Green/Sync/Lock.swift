/// A mutual-exclusion lock for fibers. Not recursive, and owner-checked:
/// only the fiber holding it may unlock it. Waiting fibers park (the hub
/// keeps running others); a fiber that already holds it gets
/// `GreenError.alreadyLocked` instead of deadlocking itself.
public final class Lock {
    private let waiters = WaitQueue(label: "Lock")
    private var owner: AnyFiber?

    public init() {}

    /// Whether some fiber holds the lock.
    public var isLocked: Bool { owner != nil }

    /// Park until the lock is free, then take it.
    public func lock(until deadline: Deadline = .never) throws {
        let me = AnyFiber.current
        if owner === me { throw GreenError.alreadyLocked }
        while owner != nil { try waiters.park(until: deadline) }
        owner = me
    }

    /// Take the lock if it is free; never parks.
    public func tryLock() -> Bool {
        guard owner == nil else { return false }
        owner = AnyFiber.current
        return true
    }

    /// Release the lock and wake one waiter. Throws `GreenError.notLockOwner`
    /// if the calling fiber does not hold it.
    public func unlock() throws {
        guard owner === AnyFiber.current else { throw GreenError.notLockOwner }
        owner = nil
        waiters.wakeOne()
    }

    /// Run `body` holding the lock.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try lock()
        defer { try! unlock() } // we are the owner: cannot fail
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
