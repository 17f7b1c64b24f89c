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
        let hub = Hub.current
        let job = OffloadJob<T> { fatalError("unused") }
        job.waiter = green_fiber_current()
        hub.beginExternalWork()
        let sendableJob = UncheckedSendable(job)
        let task = Task {
            let outcome: Result<T, Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            sendableJob.value.outcome = outcome
            hub.postInternal {
                hub.endExternalWork()
                let job = sendableJob.value
                job.delivered = true
                if let waiter = job.waiter { green_wake(waiter, 0) }
            }
        }
        while !job.delivered {
            labelWait("async task")
            let reason = green_park_until(Int64.max, 0)
            if reason == 0 { continue }
            if job.delivered {
                green_rearm_interrupt(reason)
            } else {
                job.waiter = nil
                task.cancel() // cancellation crosses the bridge
                try throwWake(reason)
            }
        }
        return try job.outcome!.get()
    }
}

extension Fiber {
    /// From async code, await the fiber's value (or its error) without
    /// blocking a thread. Cancelling the awaiting task cancels the fiber.
    /// The fiber's hub must be running (its thread waiting in Green).
    public var result: Value {
        get async throws {
            guard let hub else { return try value(until: .now) }
            let sendableSelf = UncheckedSendable(self)
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, Error>) in
                    let resume = UncheckedSendable(continuation)
                    let posted = hub.postInternal {
                        let fiber = sendableSelf.value
                        fiber.onCompletion {
                            if let error = fiber.observedError() {
                                resume.value.resume(throwing: error)
                            } else {
                                resume.value.resume(returning: fiber.outcomeValue as! Value)
                            }
                        }
                    }
                    if !posted { // the hub's thread has exited, so the fiber is long done
                        let fiber = sendableSelf.value
                        if let error = fiber.observedError() { continuation.resume(throwing: error) }
                        else { continuation.resume(returning: fiber.outcomeValue as! Value) }
                    }
                }
            } onCancel: {
                sendableSelf.value.cancel()
            }
        }
    }
}
