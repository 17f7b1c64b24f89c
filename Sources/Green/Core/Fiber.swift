import CGreenCore
import Glibc

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
///
/// Fibers live on one thread and switch only at explicit parks, so their
/// bookkeeping fields skip Swift's dynamic exclusivity checks
/// (`@exclusivity(unchecked)`): each check is a thread-local lookup, and they
/// dominated the cost of a spawn.
///
/// A fiber belongs to its hub. The handle is `Sendable` so that other threads
/// (and async tasks) can cancel it and await it: from another thread use only
/// `cancel()`, `name`, `id`, `hub` and `Fiber.result`; everything else —
/// joining, `value`, `outcome`, `state` — is for its hub's thread (checked in
/// debug builds).
// @unchecked: off its hub only immutable fields are read and cancel()/result post to the hub.
public class AnyFiber: @unchecked Sendable, CustomStringConvertible {
    /// The C record; nil before the fiber starts and once it is done (its
    /// stack is recycled).
    @exclusivity(unchecked) var core: OpaquePointer?
    /// The hub the fiber belongs to. (Strong: a weak reference would cost
    /// atomic side-table traffic on every spawn; the root fiber's reference
    /// back to its hub is cut when the hub is torn down.)
    @exclusivity(unchecked) public internal(set) var hub: Hub?
    /// A number unique within the hub (0 for a root context).
    @exclusivity(unchecked) public private(set) var id: UInt64 = 0
    /// The name given at spawn (used in stack-overflow reports).
    public let name: String
    /// The body's result in a `FiberResultBox<Value>`, nil for a `Void`
    /// fiber. Type-erased so that nothing on a fiber's life path needs a
    /// generic type lookup (a `Result<Value, Error>?` field would cost one
    /// in every deinit), and a class reference because destroying one is a
    /// null check, where an `Any?` went through Optional's generic destroy.
    @exclusivity(unchecked) var outcomeValue: AnyObject?
    @exclusivity(unchecked) var outcomeError: Error?
    /// Whether someone joined the fiber or read its error: an error nobody
    /// saw is reported on stderr when the fiber's record goes away.
    @exclusivity(unchecked) var outcomeObserved = false
    /// FiberLocal values; nil until the first is set (most fibers never do).
    @exclusivity(unchecked) var locals: [ObjectIdentifier: Any]?
    /// Handlers to run when the fiber ends; nil until the first (an empty
    /// array would cost a release in every fiber's deinit).
    @exclusivity(unchecked) var completionHandlers: [() -> Void]?
    @exclusivity(unchecked) var finished = false
    @exclusivity(unchecked) var cancelledBeforeEnd = false

    init(root: OpaquePointer) {
        core = root
        hub = nil
        name = "root"
        green_fiber_set_owner(root, Unmanaged.passUnretained(self).toOpaque())
    }

    @usableFromInline
    init(name: String) {
        self.hub = Hub.current
        self.name = name
    }

    /// Give the fiber a stack and put it in the ready queue. On failure the
    /// fiber ends at once with `GreenError.outOfStacks`.
    @usableFromInline
    func start(stackSize: Int) {
        // The C core calls fiberEntry(arg) on the new stack; arg is a
        // retained reference, released when the body has run.
        let arg = Unmanaged.passRetained(self).toOpaque()
        guard let core = green_fiber_spawn(stackSize < 0 ? 0 : stackSize, fiberEntry, arg) else {
            let err = errno
            Unmanaged<AnyFiber>.fromOpaque(arg).release()
            dropBody()
            outcomeError = GreenError.outOfStacks(errno: err)
            finished = true
            return
        }
        self.core = core
        self.id = green_fiber_id(core)
        green_fiber_set_owner(core, arg)
        if name != "fiber" { name.withCString { green_fiber_set_name(core, $0) } }
    }

    /// The fiber running now. On a thread that never used Green, this is the
    /// thread's root context (and creates its hub).
    @available(*, deprecated, renamed: "Fiber.current")
    public static var current: AnyFiber { running }

    /// The fiber running now (`Fiber.current`, for the runtime's own use).
    static var running: AnyFiber {
        if let c = green_fiber_current(), let owner = green_fiber_owner(c) {
            return Unmanaged<AnyFiber>.fromOpaque(owner).takeUnretainedValue()
        }
        return Hub.current.rootFiber
    }

    /// Where the fiber is in its life (on its hub's thread).
    public var state: FiberState {
        assertOnOwnHub("AnyFiber.state")
        guard let core else { return finished ? .done : .ready }
        switch green_fiber_state_of(core) {
        case GREEN_FIBER_READY: return .ready
        case GREEN_FIBER_RUNNING: return .running
        case GREEN_FIBER_PARKED: return .parked
        default: return .done
        }
    }

    /// Whether `cancel()` was called on this fiber.
    public var isCancelled: Bool {
        assertOnOwnHub("AnyFiber.isCancelled")
        guard let core else { return cancelledBeforeEnd }
        return green_fiber_cancel_requested(core)
    }

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

    /// Wait until the fiber is done (without its result or error). A fiber
    /// that failed and was joined (or whose `value` or `outcome` was read)
    /// is the caller's business; one whose error nobody saw has it printed
    /// to stderr when its last reference goes (see `deinit`).
    public func join(until deadline: Deadline = .never) throws {
        assertOnOwnHub("AnyFiber.join")
        while let core, !finished {
            Hub.ensureParkable()
            try throwIfInterrupted(green_fiber_join(core, deadline.nanoseconds, 0))
        }
        if finished { outcomeObserved = true }
    }

    /// The fiber's error, if it failed, now counted as seen.
    func observedError() -> Error? {
        outcomeObserved = true
        return outcomeError
    }

    /// gevent prints the traceback of a greenlet that dies with an error;
    /// here an error that nobody joined or read is printed, once, when the
    /// fiber's record is released: at once for a fiber whose handle was
    /// dropped (fire and forget, a `Group` member), or when the last handle
    /// goes for one kept but never asked. Cancellation is not a failure.
    deinit {
        // Only a nil check here: a look at the error's type costs a metadata
        // lookup that every fiber's end would pay.
        if outcomeError != nil && !outcomeObserved { reportUnobservedError() }
    }

    @inline(never)
    private func reportUnobservedError() {
        guard let error = outcomeError, !(error is CancellationError) else { return }
        printToStandardError("green: fiber \(name) (#\(id)) failed: \(error)\n")
    }

    /// Run `handler` on this fiber when it finishes (immediately if it has).
    func onCompletion(_ handler: @escaping () -> Void) {
        assertOnOwnHub("AnyFiber.onCompletion")
        if finished {
            handler()
        } else if completionHandlers == nil {
            completionHandlers = [handler]
        } else {
            completionHandlers!.append(handler)
        }
    }

    /// Called on the fiber's own stack by the C core.
    fileprivate func run() {
        if let core, green_fiber_cancel_requested(core) {
            dropBody()
            outcomeError = CancellationError() // cancelled before it started: the body never runs
        } else {
            runBody() // which releases the body
        }
        if let core { cancelledBeforeEnd = green_fiber_cancel_requested(core) }
        finished = true
        if let handlers = completionHandlers {
            completionHandlers = nil
            for h in handlers { h() }
        }
        if locals != nil { locals = nil } // most fibers set none: skip the release call
        core = nil
    }

    /// Run the body, release it, and store its outcome (overridden by `Fiber<Value>`).
    func runBody() {}
    /// Release the body and what it captured (overridden by `Fiber<Value>`).
    func dropBody() {}

    public var description: String { "Fiber #\(id) \(name) (\(state))" }

    /// Debug builds only: stop unless the caller runs on the fiber's hub.
    @inline(__always)
    final func assertOnOwnHub(_ what: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        hub?.assertOnOwnHub(what, file: file, line: line)
        #endif
    }
}

/// A fiber whose body returns `Value`. Create one with `Green.spawn`.
// @unchecked: as AnyFiber's (a subclass restates it); `body` is used only on the fiber's own stack.
public final class Fiber<Value>: AnyFiber, @unchecked Sendable {
    @exclusivity(unchecked) private var body: (() throws -> Value)?

    @usableFromInline
    init(name: String, body: @escaping () throws -> Value) {
        self.body = body
        super.init(name: name)
    }

    /// Wait for the fiber and return its value, or rethrow its error.
    public var value: Value {
        get throws { try value(until: .never) }
    }

    /// Like `value`, with a deadline (throws `TimeoutError`).
    public func value(until deadline: Deadline) throws -> Value {
        try join(until: deadline)
        if let error = observedError() { throw error }
        return finishedValue
    }

    /// The outcome if the fiber is done, nil while it runs.
    public var outcome: Result<Value, Error>? {
        assertOnOwnHub("Fiber.outcome")
        guard finished else { return nil }
        return finishedOutcome()
    }

    /// The outcome of a finished fiber, now counted as seen.
    func finishedOutcome() -> Result<Value, Error> {
        if let error = observedError() { return .failure(error) }
        return .success(finishedValue)
    }

    override func runBody() {
        // Moved out (a load and a store, which the optimizer makes a move;
        // Optional.take() would cost a generic metadata lookup here), so no
        // retain and release of what it captured around the call.
        guard let body else { return }
        self.body = nil
        do {
            // A Void result is not boxed: `value` makes one when asked.
            if Value.self == Void.self { _ = try body() } else { outcomeValue = FiberResultBox(try body()) }
        } catch { outcomeError = error }
    }

    /// The body's result (only for a fiber that finished without error).
    private var finishedValue: Value {
        // Value is Void here: a bit cast of () (both empty), not a dynamic cast.
        if Value.self == Void.self { return unsafeBitCast((), to: Value.self) }
        return unsafeDowncast(outcomeValue!, to: FiberResultBox<Value>.self).value
    }

    override func dropBody() { body = nil }
}

/// A finished fiber's result, boxed (see `AnyFiber.outcomeValue`).
final class FiberResultBox<Value> {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension Fiber where Value == Void {
    /// The fiber running now, whatever its result type. On a thread that
    /// never used Green, this is the thread's root context (named "root"),
    /// and asking creates the thread's hub.
    public static var current: AnyFiber { AnyFiber.running }
}

/// Entry point of every fiber, called by the C core on the new stack.
let fiberEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { arg in
    Unmanaged<AnyFiber>.fromOpaque(arg!).takeRetainedValue().run()
}
