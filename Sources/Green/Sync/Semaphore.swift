/// A counting semaphore for fibers: `acquire()` parks while the count is
/// zero, `release()` adds one and wakes a waiter.
public class Semaphore {
    private let waiters = WaitQueue(label: "Semaphore")
    /// Permits available now.
    public private(set) var count: Int

    public init(value: Int) {
        precondition(value >= 0, "Semaphore value must not be negative")
        count = value
    }

    /// Park until a permit is available, then take it.
    public func acquire(until deadline: Deadline = .never) throws {
        waiters.assertOnOwnHub()
        while count == 0 { try waiters.park(until: deadline) }
        count -= 1
    }

    /// Take a permit if one is available; never parks.
    public func tryAcquire() -> Bool {
        waiters.assertOnOwnHub()
        guard count > 0 else { return false }
        count -= 1
        return true
    }

    /// Return a permit and wake one waiter.
    public func release() throws {
        waiters.assertOnOwnHub()
        count += 1
        waiters.wakeOne()
    }

    /// Run `body` holding a permit.
    public func withPermit<T>(_ body: () throws -> T) throws -> T {
        try acquire()
        defer { try? release() }
        return try body()
    }
}

/// A semaphore that refuses to be released above its initial value
/// (`GreenError.semaphoreOverReleased`), catching unbalanced releases.
public final class BoundedSemaphore: Semaphore {
    /// The initial (and maximum) number of permits.
    public let limit: Int

    public override init(value: Int) {
        limit = value
        super.init(value: value)
    }

    public override func release() throws {
        guard count < limit else { throw GreenError.semaphoreOverReleased }
        try super.release()
    }
}

/// Hub-bound: a `Semaphore` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a Semaphore belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Semaphore: Sendable {}
