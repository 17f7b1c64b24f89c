import CGreenCore
import Glibc

/// The entry points of the runtime: spawning, yielding, sleeping, timeouts.
///
/// ```swift
/// let a = Green.spawn { try fetch("a") }
/// let b = Green.spawn { try fetch("b") }
/// print(try a.value, try b.value)   // both fetched concurrently
/// ```
public enum Green {
    /// Start `body` on a new fiber of this thread's hub. It runs when the
    /// current context next waits (joins, sleeps, does I/O) or yields.
    /// - Parameters:
    ///   - name: shown in fiber dumps and stack-overflow reports.
    ///   - stackSize: usable stack bytes (default 256 KiB; rounded up to 16 KiB).
    ///   - body: the fiber's work; its result or error is the fiber's (`value`, `join`).
    @inlinable @discardableResult
    public static func spawn<Value>(
        name: String = "fiber", stackSize: Int = 0, _ body: @escaping () throws -> Value
    ) -> Fiber<Value> {
        // Inlined into the caller so Fiber<Value>'s type is known there
        // (no generic type lookup per spawn).
        let fiber = Fiber<Value>(name: name, body: body)
        fiber.start(stackSize: stackSize)
        return fiber
    }

    /// Let the other ready fibers run, then continue (gevent's `sleep(0)`).
    /// Throws if this fiber was cancelled or its timeout scope expired.
    @inlinable
    public static func yield() throws {
        // Inlined into the caller: a loop of yields calls the core directly.
        let reason = green_yield()
        if reason != 0 { try throwYieldInterruption(reason) }
    }

    @usableFromInline @inline(never)
    static func throwYieldInterruption(_ reason: Int32) throws {
        try throwIfInterrupted(reason)
    }

    /// Park this fiber for `duration`; other fibers run meanwhile.
    public static func sleep(for duration: Duration) throws {
        try sleep(until: .after(duration))
    }

    /// Park this fiber until `deadline` (never returns early).
    public static func sleep(until deadline: Deadline) throws {
        Hub.ensureParkable()
        try throwIfInterrupted(green_sleep_until(deadline.nanoseconds, 0))
    }

    /// Wait until every fiber is done. Their errors are not rethrown (read
    /// each `value` for that); throws only if this wait itself is
    /// cancelled or times out.
    public static func joinAll(_ fibers: [AnyFiber], until deadline: Deadline = .never) throws {
        for f in fibers { try f.join(until: deadline) }
    }

    /// The fiber running now.
    @available(*, deprecated, renamed: "Fiber.current")
    public static var currentFiber: AnyFiber { AnyFiber.running }

    /// Run `body`; if it is still waiting when `duration` has passed, its
    /// wait throws `TimeoutError` (which propagates out of this call unless
    /// `body` catches it). Scopes nest: the outermost expired scope wins.
    public static func withTimeout<T>(_ duration: Duration, _ body: () throws -> T) throws -> T {
        try withDeadline(.after(duration), body)
    }

    /// Like `withTimeout`, but when *this* scope expires it returns
    /// `fallback()` instead of throwing (gevent's `Timeout(seconds, False)`).
    /// An enclosing scope's expiry still propagates as `TimeoutError`.
    ///
    /// ```swift
    /// let reply = try Green.withTimeout(.seconds(1), orElse: { nil }) { try fetch() }
    /// ```
    public static func withTimeout<T>(_ duration: Duration, orElse fallback: () -> T,
                                      _ body: () throws -> T) throws -> T {
        Hub.ensureParkable()
        let scope = startTimeoutScope(Deadline.after(duration))
        defer { green_timeout_stop(scope) }
        do {
            let result = try body()
            return green_timeout_unreported(scope) ? fallback() : result
        } catch let e as TimeoutError where e.isExpiry(of: scope) {
            return fallback()
        }
    }

    /// `withTimeout` with an absolute deadline.
    public static func withDeadline<T>(_ deadline: Deadline, _ body: () throws -> T) throws -> T {
        Hub.ensureParkable()
        guard deadline != .never else { return try body() }
        let scope = startTimeoutScope(deadline)
        defer { green_timeout_stop(scope) }
        let result = try body()
        // Expired, but nothing reported it (e.g. a `for x in channel` ended
        // on it): the scope still fails, as it would have at the next wait.
        if green_timeout_unreported(scope) { throw TimeoutError() }
        return result
    }
}

/// Start a timeout scope on the current fiber (its hub exists: callers made
/// sure it may park). The scope is a small allocation: if even that fails,
/// stop clearly rather than run the body with no timeout at all.
private func startTimeoutScope(_ deadline: Deadline) -> OpaquePointer {
    guard let scope = green_timeout_start(deadline.nanoseconds) else {
        fatalError("green: cannot start a timeout scope (errno \(errno)): out of memory?")
    }
    return scope
}
