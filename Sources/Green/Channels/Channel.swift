import CGreenCore

/// A FIFO channel between fibers of one hub (Go's `chan`, gevent's `Queue`).
///
/// - `.rendezvous`: `send` parks until a receiver takes the element.
/// - `.bounded(n)`: `send` parks while `n` elements are buffered (back-pressure).
/// - `.unbounded`: `send` never parks.
///
/// `close()` wakes everyone: senders throw `GreenError.channelClosed`,
/// receivers drain what is buffered, then get `channelClosed` too (and
/// `for x in channel` ends).
public final class Channel<Element>: Sequence {
    /// How many elements a channel buffers.
    public enum Capacity: Equatable, Sendable {
        case rendezvous
        case bounded(Int)
        case unbounded
    }

    /// A sender parked in a rendezvous send, offering its element.
    private final class Offer {
        let element: Element
        let fiber: OpaquePointer
        var taken = false
        init(element: Element, fiber: OpaquePointer) {
            self.element = element
            self.fiber = fiber
        }
        var senderIsWaiting: Bool { !taken && green_fiber_state_of(fiber) == GREEN_FIBER_PARKED }
    }

    private var buffer = RingBuffer<Element>()
    private var offers = RingBuffer<Offer>()
    private let limit: Int
    private let receivers = WaitQueue(label: "channel receive")
    private let senders = WaitQueue(label: "channel send")
    private var selectors = SelectWaiters()
    /// Whether `close()` was called.
    public private(set) var isClosed = false
    public let capacity: Capacity

    public init(capacity: Capacity = .unbounded) {
        self.capacity = capacity
        switch capacity {
        case .rendezvous: limit = 0
        case .bounded(let n):
            precondition(n > 0, "a bounded channel needs a capacity above zero (use .rendezvous for zero)")
            limit = n
        case .unbounded: limit = Int.max
        }
    }

    /// Elements buffered now (rendezvous channels buffer none).
    public var count: Int { buffer.count }

    // MARK: sending

    /// Send `element`, parking while the channel is full (or, for a
    /// rendezvous channel, until a receiver takes it).
    public func send(_ element: Element, until deadline: Deadline = .never) throws {
        receivers.assertOnOwnHub()
        if limit == 0 { return try sendRendezvous(element, until: deadline) }
        while true {
            if isClosed { throw GreenError.channelClosed }
            if buffer.count < limit {
                buffer.append(element)
                receivers.wakeOne()
                selectors.notifyAll()
                return
            }
            try senders.park(until: deadline)
        }
    }

    /// Send without parking; false if the channel is full (or no receiver is
    /// waiting, for a rendezvous channel). Throws if closed.
    public func trySend(_ element: Element) throws -> Bool {
        receivers.assertOnOwnHub()
        if isClosed { throw GreenError.channelClosed }
        if limit == 0 {
            // A rendezvous succeeds only if a receiver is parked right now;
            // hand the element over through the buffer it will look at first.
            guard receivers.wakeOne() else { return false }
            buffer.append(element)
            return true
        }
        guard buffer.count < limit else { return false }
        buffer.append(element)
        receivers.wakeOne()
        selectors.notifyAll()
        return true
    }

    private func sendRendezvous(_ element: Element, until deadline: Deadline) throws {
        if isClosed { throw GreenError.channelClosed }
        Hub.ensureParkable()
        let offer = Offer(element: element, fiber: green_fiber_current()!)
        offers.append(offer)
        receivers.wakeOne()
        selectors.notifyAll()
        while !offer.taken {
            if isClosed { _ = offers.removeFirst { $0 === offer }; throw GreenError.channelClosed }
            labelWait("channel send")
            let reason = parkCurrentFiber(until: deadline)
            if reason == .normal { continue }
            if offer.taken {
                reason.rearm() // delivered after all: keep the interruption
            } else {
                _ = offers.removeFirst { $0 === offer }
                try throwWake(reason)
            }
        }
    }

    // MARK: receiving

    /// Receive the next element, parking until there is one. Throws
    /// `GreenError.channelClosed` once the channel is closed and drained.
    public func receive(until deadline: Deadline = .never) throws -> Element {
        receivers.assertOnOwnHub()
        while true {
            if let e = tryReceiveNow() { return e }
            if isClosed { throw GreenError.channelClosed }
            // A select waiting to hand over to a rendezvous receiver re-checks now.
            if limit == 0 { selectors.notifyAll() }
            try receivers.park(until: deadline)
        }
    }

    /// Receive without parking; nil if nothing is available.
    public func tryReceive() -> Element? {
        receivers.assertOnOwnHub()
        return tryReceiveNow()
    }

    private func tryReceiveNow() -> Element? {
        if let e = buffer.popFirst() {
            senders.wakeOne()
            selectors.notifyAll()
            return e
        }
        while let offer = offers.popFirst() {
            // Skip senders already woken by their deadline or a cancellation.
            guard offer.senderIsWaiting else { continue }
            offer.taken = true
            wake(offer.fiber)
            return offer.element
        }
        return nil
    }

    /// Close the channel: no more sends; receivers drain the buffer.
    public func close() {
        receivers.assertOnOwnHub()
        guard !isClosed else { return }
        isClosed = true
        receivers.wakeAll()
        senders.wakeAll()
        while let offer = offers.popFirst() { wake(offer.fiber) }
        selectors.notifyAll()
    }

    // MARK: select and iteration

    /// A `select` case receiving from this channel; the handler gets nil
    /// when the channel is closed and drained.
    public func onReceive<R>(_ handler: @escaping (Element?) throws -> R) -> SelectCase<R> {
        SelectCase(
            attempt: { [self] in
                if let e = tryReceiveNow() { return Selected(value: try handler(e)) }
                return isClosed ? Selected(value: try handler(nil)) : nil
            },
            register: { [self] in selectors.add($0) },
            unregister: { [self] in selectors.remove($0) })
    }

    /// A `select` case sending `element` when there is room (or, for a
    /// rendezvous channel, a receiver parked in `receive`; a rendezvous
    /// `onSend` does not pair with another fiber's `onReceive`). Throws if
    /// the channel closes.
    public func onSend<R>(_ element: Element, _ handler: @escaping () throws -> R) -> SelectCase<R> {
        SelectCase(
            attempt: { [self] in try trySend(element) ? Selected(value: try handler()) : nil },
            register: { [self] in selectors.add($0) },
            unregister: { [self] in selectors.remove($0) })
    }

    /// Iterates until the channel is closed and drained. If the iterating
    /// fiber is cancelled or its timeout scope expires, iteration ends and
    /// the interruption is delivered again at the fiber's next wait (an
    /// iterator cannot throw).
    public struct Iterator: IteratorProtocol {
        let channel: Channel
        public mutating func next() -> Element? {
            do {
                return try channel.receive()
            } catch is CancellationError {
                WakeReason.cancelled.rearm()
                return nil
            } catch is TimeoutError {
                WakeReason.timeoutScope.rearm()
                return nil
            } catch {
                return nil // closed (or a deadlock, reported again by the next wait)
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(channel: self) }
}

/// Hub-bound: a channel connects fibers of the hub that first uses it (one
/// thread); other threads reach it through `Hub.post`. Debug builds check
/// this at each entry point.
@available(*, unavailable, message: "a Channel belongs to one hub: use it from that hub's fibers (Hub.post from other threads)")
extension Channel: Sendable {}

/// gevent's name for a channel.
public typealias Queue<Element> = Channel<Element>
