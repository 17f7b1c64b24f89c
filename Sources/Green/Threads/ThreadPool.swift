import CGreenCore
import Glibc

/// A pool of OS threads for work that cannot be made cooperative (CPU-bound
/// code, regular-file I/O, a C call the shim cannot see). Shared by every hub
/// of the process; threads start on demand up to `maxThreads` and then wait
/// for more work. Size: `GREEN_THREADPOOL_SIZE` (default 16). Thread-safe:
/// any thread may submit.
// @unchecked: every mutable field is used only under `mutex` (and reset in a fork child, which has one thread).
final class ThreadPool: @unchecked Sendable {
    static let shared = ThreadPool(maxThreads: {
        if let s = getenv("GREEN_THREADPOOL_SIZE"), let n = Int(String(cString: s)), n > 0 { return n }
        return 16
    }())

    let maxThreads: Int
    private let mutex = PthreadLock()
    private let wakeup = PthreadCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0

    init(maxThreads: Int) {
        self.maxThreads = maxThreads
        let rc = pthread_atfork(nil, nil, threadPoolAfterForkInChild)
        if rc != 0 { fatalError("green: pthread_atfork failed for the thread pool (error \(rc))") }
    }

    /// After fork() the child has none of the pool's threads (and the mutex
    /// may have been held by one of them): start over empty. Jobs queued in
    /// the parent are the parent's.
    fileprivate func resetInChild() {
        mutex.reinitializeInChild()
        wakeup.reinitializeInChild()
        jobs = []
        head = 0
        threads = 0
        idle = 0
    }

    /// Queue `job` to run on a pool thread.
    func submit(_ job: @escaping @Sendable () -> Void) {
        mutex.lock()
        jobs.append(job)
        // Idle threads that were signalled but have not taken their job yet
        // still count as idle: compare against the queue, not just `idle`.
        let startThread = jobs.count - head > idle && threads < maxThreads
        if startThread { threads += 1 }
        wakeup.signal()
        mutex.unlock()
        if startThread { startWorker() }
    }

    private func startWorker() {
        var tid = pthread_t()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attr, 1 << 20)
        let arg = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, &attr, { arg in
            Unmanaged<ThreadPool>.fromOpaque(arg!).takeRetainedValue().work()
            return nil
        }, arg)
        pthread_attr_destroy(&attr)
        if rc != 0 {
            Unmanaged<ThreadPool>.fromOpaque(arg).release()
            let stranded = mutex.locked {
                threads -= 1
                return threads == 0 && head < jobs.count
            }
            if stranded { fatalError("green: cannot start a thread-pool thread (error \(rc))") }
        }
    }

    private func work() {
        mutex.lock()
        while true {
            while head == jobs.count {
                idle += 1
                wakeup.wait(mutex)
                idle -= 1
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count { jobs.removeAll(keepingCapacity: true); head = 0 }
            mutex.unlock()
            job()
            mutex.lock()
        }
    }
}

private let threadPoolAfterForkInChild: @convention(c) () -> Void = {
    ThreadPool.shared.resetInChild()
}

/// The result of work done away from the hub — a `Green.offload` body on a
/// pool thread, a `Green.await` body in a Swift task — and the fiber parked
/// for it. Created on the hub; `deliver` is called once, from any thread.
// @unchecked: `outcome` is written once off the hub before `deliver` posts to the hub and read on the hub after (the inbox lock orders the two); `delivered` and `waiter` are used on the hub only.
final class PendingResult<T>: @unchecked Sendable {
    private let hub: Hub
    private var outcome: Result<T, Error>?
    private var delivered = false
    private var waiter: OpaquePointer?

    /// On the hub, for the running fiber (which may park: the caller made
    /// sure). Until the result arrives, the hub counts it as external work.
    init(hub: Hub) {
        self.hub = hub
        waiter = green_fiber_current()
        hub.beginExternalWork()
    }

    /// Any thread, once: store the outcome and wake the waiting fiber on its hub.
    func deliver(_ outcome: Result<T, Error>) {
        self.outcome = outcome
        hub.postInternal { [self] in
            hub.endExternalWork()
            delivered = true
            if let waiter { wake(waiter) }
        }
    }

    /// On the hub: park until the outcome is delivered, then return its value
    /// or rethrow its error. If `interruptible` and the fiber is cancelled (or
    /// its timeout scope expires) first, run `abandon` and throw at once; the
    /// outcome is dropped when it arrives.
    func wait(label: StaticString, interruptible: Bool, abandon: () -> Void = {}) throws -> T {
        hub.assertOnOwnHub("PendingResult.wait")
        while !delivered {
            labelWait(label)
            let reason = parkCurrentFiber(interruptible: interruptible)
            if reason == .normal { continue }
            if delivered {
                reason.rearm() // the result is here: interrupt the next wait instead
            } else {
                waiter = nil
                abandon()
                try throwWake(reason)
            }
        }
        return try outcome!.get()
    }
}

extension Green {
    /// Run `body` on a thread-pool thread while this fiber parks; the hub
    /// keeps running other fibers. Returns `body`'s value or rethrows its error.
    /// If this fiber is cancelled (or its timeout scope expires) while waiting,
    /// the wait throws at once and `body`'s eventual result is discarded.
    public static func offload<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try offload(interruptible: true, body)
    }

    /// `offload` whose wait cannot be interrupted (used by the hub ABI).
    /// Returns `body`'s value or throws `body`'s error (typed, so a body that
    /// cannot throw makes a call that cannot throw).
    static func offloadUninterruptibly<T, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) throws(E) -> T {
        // The body's error travels inside the value, so the wait's own error
        // can only be an interrupt, which an uninterruptible wait never gets.
        let outcome: Result<T, E>
        do {
            outcome = try offload(interruptible: false) { () -> Result<T, E> in
                do throws(E) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            fatalError("green: an uninterruptible offload was interrupted: \(error)")
        }
        return try outcome.get()
    }

    private static func offload<T>(interruptible: Bool, _ body: @escaping @Sendable () throws -> T) throws -> T {
        Hub.ensureParkable()
        let pending = PendingResult<T>(hub: Hub.current)
        ThreadPool.shared.submit {
            let outcome: Result<T, Error>
            do { outcome = .success(try body()) } catch { outcome = .failure(error) }
            pending.deliver(outcome)
        }
        return try pending.wait(label: "offload", interruptible: interruptible)
    }
}
