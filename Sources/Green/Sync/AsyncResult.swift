/// A value that arrives later, set once by one fiber and awaited by any
/// number of others (gevent's `AsyncResult`, a future/promise).
public final class AsyncResult<Value> {
    private let waiters = WaitQueue(label: "AsyncResult")
    /// The outcome once set, nil before.
    public private(set) var result: Result<Value, Error>?

    public init() {}

    /// Whether a value or an error has been set.
    public var isReady: Bool { result != nil }

    /// Deliver the value and wake every waiter. Only the first set/fail counts;
    /// returns false for later ones.
    @discardableResult
    public func set(_ value: Value) -> Bool { complete(.success(value)) }

    /// Deliver an error that `get()` rethrows. Only the first set/fail counts.
    @discardableResult
    public func fail(_ error: Error) -> Bool { complete(.failure(error)) }

    private func complete(_ outcome: Result<Value, Error>) -> Bool {
        waiters.assertOnOwnHub()
        guard result == nil else { return false }
        result = outcome
        waiters.wakeAll()
        return true
    }

    /// Park until the result is ready, then return the value or rethrow the error.
    public func get(until deadline: Deadline = .never) throws -> Value {
        waiters.assertOnOwnHub()
        while result == nil { try waiters.park(until: deadline) }
        return try result!.get()
    }
}

/// Hub-bound: a `AsyncResult` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a AsyncResult belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension AsyncResult: Sendable {}
