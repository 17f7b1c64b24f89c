import CGreenCore

// Bridges between fibers and Swift concurrency, both ways. A fiber must never
// park from inside an async task, and an async task must never block its
// thread on a fiber; these two calls do the waiting the right way round.

extension Green {
    /// From a fiber, wait for an `async` function without blocking the hub:
    /// the body runs as a Swift `Task` while this fiber parks and the hub
    /// runs others. Returns its value or rethrows its error.
    ///
    /// Cancelling the fiber (or its timeout scope expiring) cancels the task
    /// and throws at once; the task's eventual result is dropped.
    public static func await<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        Hub.ensureParkable()
        let pending = PendingResult<T>(hub: Hub.current)
        let task = Task {
            let outcome: Result<T, Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            pending.deliver(outcome)
        }
        // Cancellation crosses the bridge: an interrupted wait cancels the task.
        return try pending.wait(label: "async task", interruptible: true, abandon: { task.cancel() })
    }
}

extension Fiber where Value: Sendable {
    /// From async code, await the fiber's value (or its error) without
    /// blocking a thread. Cancelling the awaiting task cancels the fiber.
    /// The fiber's hub must be running (its thread waiting in Green).
    /// (`Value` is `Sendable`: the fiber's hub and the task share it.)
    public var result: Value {
        get async throws {
            guard let hub else { return try value(until: .now) }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, Error>) in
                    let posted = hub.postInternal { [self] in
                        onCompletion { [self] in continuation.resume(with: finishedOutcome()) }
                    }
                    // The hub's thread has exited, so the fiber is long done.
                    if !posted { continuation.resume(with: finishedOutcome()) }
                }
            } onCancel: { [self] in
                cancel()
            }
        }
    }
}
