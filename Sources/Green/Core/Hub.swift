import CGreenCore
import CGreenShim
import Glibc

/// The per-thread scheduler: a libev loop running in its own fiber, the
/// ready queue, and the thread's root context (the code that was running
/// before Green was used, e.g. `main`). Created lazily on first use; a hub
/// belongs to its thread for the thread's lifetime.
///
/// Fibers and sync primitives belong to one hub. The only ways in from other
/// threads are `post(_:)`, `Fiber.cancel()`, `Green.offload`'s and
/// `Green.await`'s completions, and `Fiber.result`.
///
/// A hub is `Sendable` so that other threads can post to it; everything else
/// it has is for its own thread (checked in debug builds).
// @unchecked: the inbox (and `torndown`) is used only under `inboxLock`; all else only on the hub's thread.
public final class Hub: @unchecked Sendable {
    let sched: OpaquePointer
    let thread: pthread_t
    /// The fiber object standing for the thread's root context.
    let rootFiber: AnyFiber

    /// Installed `Green.onSignal` handlers (kept alive here).
    var signalHandlers: [SignalHandler] = []
    private let inboxLock = PthreadLock()
    private var inbox: [@Sendable () -> Void] = []

    private init(sched: OpaquePointer) {
        self.sched = sched
        self.thread = pthread_self()
        self.rootFiber = AnyFiber(root: green_sched_root(sched))
        rootFiber.hub = self // so cancel() from another thread posts to this hub
    }

    /// This thread's hub, created on first use.
    public static var current: Hub {
        if let s = green_sched_current(), let owner = green_sched_owner(s) {
            return Unmanaged<Hub>.fromOpaque(owner).takeUnretainedValue()
        }
        return create()
    }

    @inline(never)
    private static func create() -> Hub {
        guard let s = green_sched_create() else {
            fatalError("green: cannot create a hub on this thread (errno \(errno))")
        }
        let hub = Hub(sched: s)
        // The hub lives as long as its thread; the scheduler holds it.
        green_sched_set_owner(s, Unmanaged.passRetained(hub).toOpaque(), hubNotified, hubDestroyed)
        installHubABIOnce
        startMonitorFromEnvironmentOnce
        installDumpSignalFromEnvironment()
        return hub
    }

    /// Make sure the running context may park: creates the hub if needed, and
    /// refuses (clearly) a blocking call made on the hub fiber itself.
    @inline(__always)
    static func ensureParkable() {
        if green_parkable_fiber() == nil { ensureParkableSlow() }
    }

    @inline(never)
    private static func ensureParkableSlow() {
        if green_sched_current() == nil { _ = create(); return }
        fatalError("green: a blocking call was made on the hub itself (inside a hub callback); spawn a fiber for it")
    }

    /// Whether the caller runs on this hub's thread.
    var isCurrentThread: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Debug builds only: stop with a clear message unless the caller runs on
    /// this hub's thread (SwiftNIO's `assertInEventLoop`). Compiles to
    /// nothing in release builds.
    @inline(__always)
    func assertOnOwnHub(_ what: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        if !isCurrentThread { wrongHub(what, file: file, line: line) }
        #endif
    }

    #if DEBUG
    @inline(never)
    private func wrongHub(_ what: StaticString, file: StaticString, line: UInt) -> Never {
        fatalError("green: \(what) called on a thread other than the hub's: it belongs to one hub (one thread);"
                   + " cross threads with Hub.post, Green.offload or Green.await", file: file, line: line)
    }
    #endif

    /// Thread-safe: run `body` in a new fiber on this hub. The hub wakes up
    /// even if it is blocked in its loop. (Dropped if the hub's thread has
    /// exited: a hub ends with its thread when no fiber is left on it.) If the hub's thread waits for
    /// nothing else, wrap that wait in `beginExternalWork()` /
    /// `endExternalWork()` so it is not reported as a deadlock.
    public func post(_ body: @escaping @Sendable () -> Void) {
        postInternal { _ = Green.spawn(name: "posted", body) }
    }

    /// Thread-safe: run `work` on the hub fiber itself; it must not park.
    /// Returns false (and drops it) if the hub's thread has exited.
    @discardableResult
    func postInternal(_ work: @escaping @Sendable () -> Void) -> Bool {
        inboxLock.lock()
        defer { inboxLock.unlock() }
        guard !torndown else { return false }
        inbox.append(work)
        green_sched_notify(sched)
        return true
    }

    /// Set (under the inbox lock) when the thread exits and the scheduler is freed.
    private var torndown = false

    fileprivate func tearDown() {
        inboxLock.locked {
            torndown = true
            inbox.removeAll()
        }
        rootFiber.core = nil
        rootFiber.hub = nil // break the hub ↔ root fiber cycle
    }

    fileprivate func drainInbox() {
        let work = inboxLock.locked {
            let work = inbox
            inbox.removeAll(keepingCapacity: true)
            return work
        }
        for w in work { w() }
    }

    /// Hub thread only: declare that something outside the hub (another
    /// thread, a `post`) will wake a fiber, so waits meanwhile are not
    /// reported as `GreenError.deadlock`. Balance with `endExternalWork()`.
    public func beginExternalWork() {
        assertOnOwnHub("Hub.beginExternalWork()")
        green_sched_retain_external(sched)
    }
    /// Hub thread only: the end of `beginExternalWork()`.
    public func endExternalWork() {
        assertOnOwnHub("Hub.endExternalWork()")
        green_sched_release_external(sched)
    }

    /// Number of context switches this hub has made.
    public var switchCount: UInt64 { green_sched_switch_count(sched) }
    /// Number of times the hub polled libev.
    public var pollCount: UInt64 { green_sched_poll_count(sched) }
    /// Fibers spawned on this hub and not yet finished.
    public var liveFibers: Int { Int(green_sched_live_fibers(sched)) }
}

private let hubNotified: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
    Unmanaged<Hub>.fromOpaque(owner!).takeUnretainedValue().drainInbox()
}

/// The hub's thread exited with no fiber alive: the scheduler is being freed.
private let hubDestroyed: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
    let hub = Unmanaged<Hub>.fromOpaque(owner!)
    hub.takeUnretainedValue().tearDown()
    hub.release()
}

/// Fill in the hub ABI the interposition shim uses, once per process.
private let installHubABIOnce: Void = {
    green_hub_abi_install(green_hub_abi_make(runBlockingForC))
    precondition(green_shim_ready() != 0, "green: the interposition shim did not load")
}()

private let runBlockingForC: @convention(c) (
    (@convention(c) (UnsafeMutableRawPointer?) -> Void)?, UnsafeMutableRawPointer?
) -> Int32 = { fn, arg in
    guard let fn else { return -1 }
    // The C caller's argument, as an address: it waits (parked) while a pool
    // thread runs fn(arg), so the memory has one user at a time.
    let address = UInt(bitPattern: arg)
    Green.offloadUninterruptibly { fn(UnsafeMutableRawPointer(bitPattern: address)) }
    return 0
}

/// A value of a hub-bound (non-`Sendable`) type that may be handed across
/// threads but used only on `hub`'s thread (SwiftNIO's `NIOLoopBound`): e.g.
/// posted back to its hub in a `Hub.post` closure.
// @unchecked: `value` is read only on `hub`'s thread (checked by a precondition, in release builds too).
struct HubBound<Value>: @unchecked Sendable {
    let hub: Hub
    private let unsafeValue: Value

    /// Bind `value` to the running hub (call it on that hub's thread).
    init(_ value: Value, hub: Hub = .current) {
        self.hub = hub
        self.unsafeValue = value
        hub.assertOnOwnHub("HubBound.init")
    }

    /// The value (on `hub`'s thread only).
    var value: Value {
        precondition(hub.isCurrentThread, "green: a hub-bound value was opened on a thread other than its hub's")
        return unsafeValue
    }
}
