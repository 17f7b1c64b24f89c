import CGreenCore
import Glibc

/// A FIFO of parked fibers: the building block of every sync primitive.
/// The links live in the fibers themselves, so parking allocates nothing.
///
/// Hub-bound (not `Sendable`): the fibers it links belong to one hub, and so
/// does the queue — the hub that first uses it. Its primitive's entry points
/// call `assertOnOwnHub()`, which checks that in debug builds.
final class WaitQueue {
    private let queue: UnsafeMutablePointer<green_waitq>
    private let label: StaticString
    #if DEBUG
    /// The thread (so the hub) that first used the queue (debug builds only).
    @exclusivity(unchecked) private var ownerThread: pthread_t?
    #endif

    /// `label` says in fiber dumps what a fiber parked here waits for.
    init(label: StaticString) {
        self.label = label
        queue = .allocate(capacity: 1)
        queue.initialize(to: green_waitq(head: nil, tail: nil, label: label.cString))
    }

    /// Debug builds only: stop with a clear message unless the caller runs on
    /// the hub this queue (and so its primitive) belongs to: the first hub
    /// that used it (SwiftNIO's `assertInEventLoop`). Compiles to nothing in
    /// release builds.
    @inline(__always)
    func assertOnOwnHub(file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        checkOwnHub(file: file, line: line)
        #endif
    }

    #if DEBUG
    @inline(never)
    private func checkOwnHub(file: StaticString, line: UInt) {
        // A thread has one hub for its lifetime: the thread stands for it
        // (also before the hub is created).
        let current = pthread_self()
        if let ownerThread {
            if pthread_equal(ownerThread, current) == 0 { wrongHub(file: file, line: line) }
        } else {
            ownerThread = current
        }
    }

    private func wrongHub(file: StaticString, line: UInt) -> Never {
        fatalError("green: a primitive (\(label)) was used on a thread other than its hub's: fibers and their primitives"
                   + " belong to one hub (one thread); cross threads with Hub.post, Green.offload or Green.await",
                   file: file, line: line)
    }
    #endif

    deinit { queue.deallocate() }

    /// Park the current fiber here until woken; throws on deadline, cancellation or timeout scope.
    func park(until deadline: Deadline = .never) throws {
        Hub.ensureParkable()
        try throwIfInterrupted(green_waitq_park(queue, deadline.nanoseconds, 0))
    }

    /// Park without reacting to cancellation or timeout scopes (they stay pending).
    func parkUninterruptibly() {
        Hub.ensureParkable()
        let r = green_waitq_park(queue, Int64.max, Int32(GREEN_PARK_UNINTERRUPTIBLE))
        if !WakeReason.isNormal(r) && WakeReason(r) == .deadlock { fatalError(GreenError.deadlock.description) }
    }

    @discardableResult func wakeOne() -> Bool { green_waitq_wake_one(queue) }
    @discardableResult func wakeAll() -> Int { green_waitq_wake_all(queue) }
    var isEmpty: Bool { green_waitq_is_empty(queue) }
}

extension StaticString {
    /// The literal's static, NUL-terminated bytes, for C labels.
    var cString: UnsafePointer<CChar> {
        UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Label the current fiber's next park, for fiber dumps.
@inline(__always)
func labelWait(_ label: StaticString) { green_set_wait_label(label.cString) }
