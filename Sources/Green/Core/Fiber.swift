import CGreenCore

/// Where a fiber is in its life.
public enum FiberState: Sendable, Equatable {
    /// Spawned and waiting for its turn (or not started yet).
    case ready
    case running
    /// Waiting: on a timer, an fd, a sync primitive, another fiber.
    case parked
    case done
}

/// A fiber, whatever its result type: identity, name, state, cancellation
/// and joining. `Fiber<Value>` adds the typed result.
public class AnyFiber: @unchecked Sendable, CustomStringConvertible {
    /// The C record; nil once the fiber is done (its stack is recycled).
    var core: OpaquePointer?
    /// The hub the fiber belongs to.
    public let hub: Hub?
    /// A number unique within the hub.
    public let id: UInt64
    /// The name given at spawn (used in stack-overflow reports).
    public let name: String
    var locals: [ObjectIdentifier: Any] = [:]
    var completionHandlers: [() -> Void] = []
    var finished = false

    init(root: OpaquePointer) {
        core = root
        hub = nil
        id = 0
        name = "root"
        green_fiber_set_owner(root, Unmanaged.passUnretained(self).toOpaque())
    }

    init(hub: Hub, core: OpaquePointer, name: String) {
        self.hub = hub
        self.core = core
        self.id = green_fiber_id(core)
        self.name = name
    }

    /// A fiber that ended before it could start.
    init(hub: Hub, endedBeforeStart name: String) {
        self.hub = hub
        self.core = nil
        self.id = 0
        self.name = name
        self.finished = true
    }

    /// The fiber running now. On a thread that never used Green, this is the
    /// thread's root context (and creates its hub).
    public static var current: AnyFiber {
        if let c = green_fiber_current(), let owner = green_fiber_owner(c) {
            return Unmanaged<AnyFiber>.fromOpaque(owner).takeUnretainedValue()
        }
        return Hub.current.rootFiber
    }

    public var state: FiberState {
        guard let core else { return .done }
        switch green_fiber_state_of(core) {
        case GREEN_FIBER_READY: return .ready
        case GREEN_FIBER_RUNNING: return .running
        case GREEN_FIBER_PARKED: return .parked
        default: return .done
        }
    }

    /// Whether `cancel()` was called on this fiber.
    public var isCancelled: Bool {
        guard let core else { return cancelledBeforeEnd }
        return green_fiber_cancel_requested(core)
    }
    var cancelledBeforeEnd = false

    /// Ask the fiber to stop: its current wait (or its next one) throws
    /// `CancellationError`, once. A fiber not yet started never runs its body.
    /// Safe to call from any thread.
    public func cancel() {
        if let hub, !hub.isCurrentThread {
            hub.postInternal { [self] in self.cancel() }
            return
        }
        if let core { green_fiber_cancel(core) }
    }

    /// Wait until the fiber is done (without its result or error).
    public func join(until deadline: Deadline = .never) throws {
        while let core, !finished {
            Hub.ensureParkable()
            try throwIfInterrupted(green_fiber_join(core, deadline.nanoseconds, 0))
        }
    }

    /// Run `handler` on this fiber when it finishes (immediately if it has).
    func onCompletion(_ handler: @escaping () -> Void) {
        if finished { handler() } else { completionHandlers.append(handler) }
    }

    /// Overridden by `Fiber<Value>`: run the body and store its result.
    func runBody() {}

    func finish() {
        if let core { cancelledBeforeEnd = green_fiber_cancel_requested(core) }
        finished = true
        let handlers = completionHandlers
        completionHandlers = []
        for h in handlers { h() }
        locals = [:]
        core = nil
    }

    public var description: String { "Fiber #\(id) \(name) (\(state))" }
}

/// A fiber whose body returns `Value`. Create one with `Green.spawn`.
public final class Fiber<Value>: AnyFiber, @unchecked Sendable {
    private var body: (() throws -> Value)?
    private var outcome: Result<Value, Error>?

    init(hub: Hub, core: OpaquePointer, name: String, body: @escaping () throws -> Value) {
        self.body = body
        super.init(hub: hub, core: core, name: name)
    }

    /// A fiber that failed before it could start (no stack).
    init(hub: Hub, failed error: Error, name: String) {
        self.outcome = .failure(error)
        super.init(hub: hub, endedBeforeStart: name)
    }

    /// Wait for the fiber and return its value, or rethrow its error.
    public var value: Value {
        get throws { try value(until: .never) }
    }

    /// Like `value`, with a deadline (throws `TimeoutError`).
    public func value(until deadline: Deadline) throws -> Value {
        try join(until: deadline)
        return try outcome!.get()
    }

    /// The result if the fiber is done, nil while it runs.
    public var result: Result<Value, Error>? { outcome }

    override func runBody() {
        if let core, green_fiber_cancel_requested(core) {
            outcome = .failure(CancellationError()) // cancelled before it started
        } else {
            do { outcome = .success(try body!()) } catch { outcome = .failure(error) }
        }
        body = nil
        finish()
    }
}

extension Fiber where Value == Void {
    /// The fiber running now (`AnyFiber.current`), spelled as users of
    /// other runtimes expect.
    public static var current: AnyFiber { AnyFiber.current }
}

