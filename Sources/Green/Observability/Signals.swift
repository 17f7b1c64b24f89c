import CGreenCore
import Glibc

/// A signal handler installed with `Green.onSignal`; `cancel()` removes it.
/// Hub-bound, as the hub it was installed on (not `Sendable`).
public final class SignalHandler {
    private var watch: OpaquePointer?
    fileprivate let handler: () -> Void
    fileprivate let hub: Hub

    fileprivate init(signal: Int32, hub: Hub, handler: @escaping () -> Void) {
        self.handler = handler
        self.hub = hub
        watch = green_signal_watch_start(signal, signalArrived, Unmanaged.passUnretained(self).toOpaque())
    }

    fileprivate var isInstalled: Bool { watch != nil }

    /// Stop handling the signal (hub thread only). The previous disposition
    /// is not restored: libev keeps its own handler installed.
    public func cancel() {
        hub.assertOnOwnHub("SignalHandler.cancel()")
        if let watch { green_signal_watch_stop(watch) }
        watch = nil
        hub.signalHandlers.removeAll { $0 === self }
    }
}

private let signalArrived: @convention(c) (UnsafeMutableRawPointer?) -> Void = { ctx in
    let handler = Unmanaged<SignalHandler>.fromOpaque(ctx!).takeUnretainedValue()
    // Runs on the hub fiber: hand the user's code its own fiber, so it may park.
    let body = handler.handler
    Green.spawn(name: "signal handler") { body() }
}

extension Green {
    /// Run `handler` in a new fiber of this thread's hub each time `signal`
    /// arrives (e.g. `SIGTERM` for a graceful stop). Unlike a raw signal
    /// handler it may do anything a fiber may: park, lock, do I/O.
    /// A handler does not keep waits alive on its own.
    @discardableResult
    public static func onSignal(_ signal: Int32, _ handler: @escaping () -> Void) -> SignalHandler {
        let h = SignalHandler(signal: signal, hub: Hub.current, handler: handler)
        precondition(h.isInstalled, "green: cannot watch signal \(signal)")
        Hub.current.signalHandlers.append(h) // kept alive while installed
        return h
    }
}

// MARK: fork hooks

@available(*, unavailable, message: "a SignalHandler belongs to the hub it was installed on")
extension SignalHandler: Sendable {}

let forkHooksLock = PthreadLock() // internal for tests

/// The hooks `Green.onFork` registered. They run on whichever thread forks.
// @unchecked: `list` is used only under `forkHooksLock`.
private final class ForkHookList: @unchecked Sendable {
    typealias Hook = @Sendable () -> Void
    var list: [(prepare: Hook?, parent: Hook?, child: Hook?)] = []
}
private let forkHooks = ForkHookList()
/// The fork handlers read `forkHooks` under its lock like everyone else: the
/// prepare handler takes the lock and keeps it across `fork()`, the parent
/// handler releases it, and the child (the forking thread's copy, alone in
/// its process) re-initializes it. So no other thread can be in the middle
/// of `onFork`'s append while the list is read or while the child's copy of
/// it is made, and the child never inherits a lock held by a thread it does
/// not have (the rule glibc's atfork handlers live by). The hooks run with
/// the lock held: a hook must not call `Green.onFork` itself.
private let forkHooksInstalled: Void = {
    let rc = pthread_atfork(
        {
            forkHooksLock.lock()
            for h in forkHooks.list.reversed() { h.prepare?() }  // prepare hooks run in reverse, as pthread_atfork's do
        },
        {
            for h in forkHooks.list { h.parent?() }
            forkHooksLock.unlock()
        },
        {
            forkHooksLock.reinitializeInChild()
            for h in forkHooks.list { h.child?() }
        })
    if rc != 0 { fatalError("green: pthread_atfork failed (error \(rc))") }
}()

extension Green {
    /// Run code around `fork()`: `prepare` in the parent before it, `parent`
    /// in the parent after it, `child` in the child (whose hub already has a
    /// fresh event loop and thread pool). Register at start-up; the hooks run
    /// in the forking thread, in signal-unsafe but single-threaded context.
    /// A hook must not call `onFork` (the hooks run under the list's lock).
    /// The hooks are `@Sendable`: they run on whichever thread forks.
    public static func onFork(prepare: (@Sendable () -> Void)? = nil, parent: (@Sendable () -> Void)? = nil,
                              child: (@Sendable () -> Void)? = nil) {
        _ = forkHooksInstalled
        forkHooksLock.locked { forkHooks.list.append((prepare, parent, child)) }
    }
}
