import XCTest
@testable import Green

final class ChannelTests: XCTestCase {
    func testUnboundedFIFO() throws {
        let c = Channel<Int>()
        for i in 0..<100 { try c.send(i) }
        XCTAssertEqual(c.count, 100)
        let received = try (0..<100).map { _ in try c.receive() }
        XCTAssertEqual(received, Array(0..<100))
        XCTAssertNil(c.tryReceive())
    }

    func testBoundedBackPressure() throws {
        let c = Channel<Int>(capacity: .bounded(2))
        var sent = 0
        let producer = Green.spawn { for i in 0..<10 { try c.send(i); sent += 1 } }
        try Green.yield()
        XCTAssertEqual(sent, 2, "the producer parks once two are buffered")
        XCTAssertEqual(producer.state, .parked)
        var got: [Int] = []
        for _ in 0..<10 { got.append(try c.receive()) }
        try producer.value
        XCTAssertEqual(got, Array(0..<10))
        XCTAssertTrue(try c.trySend(1))
        XCTAssertTrue(try c.trySend(2))
        XCTAssertFalse(try c.trySend(3))
    }

    func testRendezvousHandsOverDirectly() throws {
        let c = Channel<String>(capacity: .rendezvous)
        var log: [String] = []
        let sender = Green.spawn { try c.send("x"); log.append("sent") }
        try Green.yield()
        XCTAssertEqual(sender.state, .parked, "a rendezvous send waits for a receiver")
        XCTAssertEqual(c.count, 0)
        log.append("receiving")
        XCTAssertEqual(try c.receive(), "x")
        try sender.value
        XCTAssertEqual(log, ["receiving", "sent"])
        XCTAssertFalse(try c.trySend("nobody waiting"))
        let receiver = Green.spawn { try c.receive() }
        try Green.yield()
        XCTAssertTrue(try c.trySend("to a parked receiver"))
        XCTAssertEqual(try receiver.value, "to a parked receiver")
    }

    func testRendezvousSenderTimeoutWithdrawsOffer() throws {
        let c = Channel<Int>(capacity: .rendezvous)
        XCTAssertThrowsError(try c.send(1, until: .after(.milliseconds(2)))) { XCTAssertTrue($0 is TimeoutError) }
        XCTAssertNil(c.tryReceive(), "the timed-out element must not be delivered")
    }

    func testCloseWakesReceiversAndSenders() throws {
        let r = Channel<Int>(capacity: .rendezvous)
        let receivers = (0..<3).map { _ in Green.spawn { try r.receive() } }
        let b = Channel<Int>(capacity: .bounded(1))
        try b.send(0)
        let senders = (0..<3).map { i in Green.spawn { try b.send(i) } }
        let rs = Channel<Int>(capacity: .rendezvous)
        let rendezvousSender = Green.spawn { try rs.send(5) }
        try Green.yield()
        r.close(); b.close(); rs.close()
        for f in receivers + senders + [rendezvousSender] as [AnyFiber] { try f.join() }
        for f in receivers { XCTAssertThrowsError(try f.value) { XCTAssertEqual($0 as? GreenError, .channelClosed) } }
        for f in senders { XCTAssertThrowsError(try f.value) { XCTAssertEqual($0 as? GreenError, .channelClosed) } }
        XCTAssertThrowsError(try rendezvousSender.value) { XCTAssertEqual($0 as? GreenError, .channelClosed) }
        // Buffered elements survive close and drain first.
        XCTAssertEqual(try b.receive(), 0)
        XCTAssertThrowsError(try b.receive()) { XCTAssertEqual($0 as? GreenError, .channelClosed) }
        XCTAssertThrowsError(try b.send(1)) { XCTAssertEqual($0 as? GreenError, .channelClosed) }
    }

    func testForInIteratesUntilClosed() throws {
        let c = Channel<Int>(capacity: .bounded(4))
        Green.spawn { for i in 1...10 { try c.send(i) }; c.close() }
        var sum = 0
        for x in c { sum += x }
        XCTAssertEqual(sum, 55)
    }

    func testCancelWhileReceivingAndSending() throws {
        let c = Channel<Int>(capacity: .rendezvous)
        let rx = Green.spawn { try c.receive() }
        let c2 = Channel<Int>(capacity: .rendezvous)
        let tx = Green.spawn { try c2.send(1) }
        try Green.yield()
        rx.cancel(); tx.cancel()
        XCTAssertThrowsError(try rx.value) { XCTAssertTrue($0 is CancellationError) }
        XCTAssertThrowsError(try tx.value) { XCTAssertTrue($0 is CancellationError) }
        XCTAssertNil(c2.tryReceive(), "a cancelled rendezvous send delivers nothing")
    }

    func testManyProducersManyConsumersNoLoss() throws {
        let c = Channel<Int>(capacity: .bounded(8))
        let producers = (0..<10).map { p in Green.spawn { for i in 0..<100 { try c.send(p * 1000 + i) } } }
        let consumers = (0..<5).map { _ in Green.spawn { () -> [Int] in var got: [Int] = []; for x in c { got.append(x) }; return got } }
        try Green.joinAll(producers)
        c.close()
        let all = try consumers.flatMap { try $0.value }.sorted()
        XCTAssertEqual(all, (0..<10).flatMap { p in (0..<100).map { p * 1000 + $0 } }.sorted())
    }

    func testSelectFirstReady() throws {
        let a = Channel<Int>(), b = Channel<String>()
        let quit = Event()
        Green.spawn { try Green.sleep(for: .milliseconds(5)); try b.send("hi") }
        let r = try Green.select(a.onReceive { "a:\($0!)" }, b.onReceive { "b:\($0!)" }, quit.onSet { "quit" })
        XCTAssertEqual(r, "b:hi")
        try a.send(1)
        XCTAssertEqual(try Green.select(a.onReceive { "a:\($0!)" }, quit.onSet { "quit" }), "a:1")
        quit.set()
        XCTAssertEqual(try Green.select(a.onReceive { "a:\($0!)" }, quit.onSet { "quit" }), "quit")
        a.close()
        XCTAssertEqual(try Green.select(a.onReceive { $0 == nil ? "closed" : "value" }), "closed")
    }

    func testSelectSend() throws {
        let full = Channel<Int>(capacity: .bounded(1))
        try full.send(0)
        let roomy = Channel<Int>(capacity: .bounded(1))
        let r = try Green.select(full.onSend(1) { "full" }, roomy.onSend(2) { "roomy" })
        XCTAssertEqual(r, "roomy")
        XCTAssertEqual(try roomy.receive(), 2)
        // A select waiting to send proceeds once a receiver makes room.
        Green.spawn { try Green.sleep(for: .milliseconds(2)); _ = try full.receive() }
        XCTAssertEqual(try Green.select(full.onSend(7) { "sent" }), "sent")
        XCTAssertEqual(try full.receive(), 7)
    }

    func testSelectCancelled() throws {
        let c = Channel<Int>()
        let f = Green.spawn { try Green.select(c.onReceive { $0 }) }
        try Green.yield()
        f.cancel()
        XCTAssertThrowsError(try f.value) { XCTAssertTrue($0 is CancellationError) }
        try c.send(3)
        XCTAssertEqual(c.tryReceive(), 3, "the cancelled select took nothing")
    }
}
