import CGreenCore

/// A FIFO of parked fibers: the building block of every sync primitive.
/// The links live in the fibers themselves, so parking allocates nothing.
final class WaitQueue {
    private let queue: UnsafeMutablePointer<green_waitq>

    /// `label` says in fiber dumps what a fiber parked here waits for.
    init(label: StaticString) {
        queue = .allocate(capacity: 1)
        queue.initialize(to: green_waitq(head: nil, tail: nil, label: label.cString))
    }

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
        if r == Int32(GREEN_WAKE_DEADLOCK.rawValue) { fatalError(GreenError.deadlock.description) }
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
