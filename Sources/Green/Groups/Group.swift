/// A set of fibers managed together (gevent's `Group`): spawn into it, wait
/// for all of them, or cancel them all. Finished fibers leave the group.
public class Group {
    private var members: [ObjectIdentifier: AnyFiber] = [:]
    private let emptied = WaitQueue(label: "Group.join")

    public init() {}

    /// Fibers of the group still running.
    public var count: Int { members.count }

    /// Spawn `body` as a member of the group.
    @discardableResult
    public func spawn<Value>(name: String = "fiber", stackSize: Int = 0,
                             _ body: @escaping () throws -> Value) throws -> Fiber<Value> {
        let fiber = Green.spawn(name: name, stackSize: stackSize, body)
        add(fiber)
        return fiber
    }

    /// Add an already spawned fiber.
    public func add(_ fiber: AnyFiber) {
        emptied.assertOnOwnHub()
        guard !fiber.finished else { return }
        let key = ObjectIdentifier(fiber)
        members[key] = fiber
        fiber.onCompletion { [weak self] in self?.memberFinished(key) }
    }

    func memberFinished(_ key: ObjectIdentifier) {
        members[key] = nil
        if members.isEmpty { emptied.wakeAll() }
    }

    /// Park until every member is done.
    public func join(until deadline: Deadline = .never) throws {
        emptied.assertOnOwnHub()
        while !members.isEmpty { try emptied.park(until: deadline) }
    }

    /// Cancel every member (see `AnyFiber.cancel()`).
    public func cancelAll() {
        emptied.assertOnOwnHub()
        for f in members.values { f.cancel() }
    }
}

/// A group with bounded concurrency (gevent's `Pool`): `spawn` parks while
/// `size` members are running, so at most `size` run at once.
public final class Pool: Group {
    private let slots: Semaphore
    /// The most members that run at once.
    public let size: Int

    public init(size: Int) {
        precondition(size > 0, "a Pool needs a size above zero")
        self.size = size
        slots = Semaphore(value: size)
        super.init()
    }

    /// Free slots now.
    public var freeCount: Int { slots.count }

    /// Park until a slot is free, then spawn `body` in it.
    @discardableResult
    public override func spawn<Value>(name: String = "fiber", stackSize: Int = 0,
                                      _ body: @escaping () throws -> Value) throws -> Fiber<Value> {
        try slots.acquire()
        let fiber = Green.spawn(name: name, stackSize: stackSize, body)
        fiber.onCompletion { [slots] in try? slots.release() }
        add(fiber)
        return fiber
    }
}

/// Hub-bound: a `Group` belongs to the hub that first uses it (one thread),
/// like the fibers it parks; other threads reach it through `Hub.post`.
/// Debug builds check this at each entry point.
@available(*, unavailable, message: "a Group belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Group: Sendable {}
