import CGreenCore

/// Thrown when a wait's deadline, or an enclosing `Green.withTimeout` scope, expires.
public struct TimeoutError: Error, CustomStringConvertible {
    /// The address of the timeout scope that expired (0 for a wait's own
    /// deadline), so a scope can tell its own expiry from an enclosing one's.
    /// An address, not the pointer: the error is Sendable and only compared.
    let scopeAddress: UInt

    public init() { scopeAddress = 0 }
    init(scope: OpaquePointer?) { scopeAddress = UInt(bitPattern: scope.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0) }

    /// Whether this error is the expiry of `scope`.
    func isExpiry(of scope: OpaquePointer?) -> Bool { scopeAddress == TimeoutError(scope: scope).scopeAddress }

    /// Whether a `withTimeout` scope (rather than a wait's own deadline) expired.
    public var isFromScope: Bool { scopeAddress != 0 }
    public var description: String { "green: the wait timed out" }
}

/// Errors of the runtime itself.
public enum GreenError: Error, Equatable, CustomStringConvertible {
    /// The wait can never finish: no fiber is ready and no timer, fd watch or
    /// thread-pool job is left that could wake one (gevent's `LoopExit`).
    case deadlock
    /// `Condition.wait` by a fiber that does not hold the condition's lock.
    /// (`Lock.unlock()` by a non-owner is a programmer error: it stops the program.)
    case notLockOwner
    /// A second `lock()` by the lock's owner (`Lock` is not recursive).
    case alreadyLocked
    /// A `BoundedSemaphore` was released more often than acquired.
    case semaphoreOverReleased
    /// The channel was closed.
    case channelClosed
    /// No stack could be allocated for a new fiber (errno attached).
    case outOfStacks(errno: Int32)
    /// The file descriptor being waited on was closed by another fiber.
    case fdClosed

    public var description: String {
        switch self {
        case .deadlock:
            return "green: this wait can never finish: no fiber is ready and nothing (timer, I/O, thread-pool job) is left to wake one"
        case .notLockOwner: return "green: unlock by a fiber that does not own the lock"
        case .alreadyLocked: return "green: lock() by the fiber that already holds it (Lock is not recursive)"
        case .semaphoreOverReleased: return "green: BoundedSemaphore released more times than acquired"
        case .channelClosed: return "green: the channel is closed"
        case .outOfStacks(let e): return "green: cannot allocate a fiber stack (errno \(e))"
        case .fdClosed: return "green: the file descriptor was closed while waiting on it"
        }
    }
}

/// Turn the wake reason a C park call returned into the error the Swift API
/// throws (none for `.normal`).
@inline(__always)
func throwIfInterrupted(_ reason: Int32) throws {
    if WakeReason.isNormal(reason) { return }
    try throwWake(WakeReason(reason))
}

/// The error the Swift API throws for an interrupted park.
@inline(never)
func throwWake(_ reason: WakeReason) throws -> Never {
    switch reason {
    case .deadline: throw TimeoutError()
    case .timeoutScope:
        throw TimeoutError(scope: green_fiber_current().flatMap { green_fiber_expired_timeout($0) })
    case .cancelled: throw CancellationError()
    case .deadlock: throw GreenError.deadlock
    case .fdClosed: throw GreenError.fdClosed
    case .normal, .signal: fatalError("green: a park of the Swift API returned wake reason \(reason)")
    }
}
