// A helper process for tests whose outcome is a crash or needs a clean
// process: run as `GreenTestHelper <mode>`.
import CGreenCore
import Glibc
import Green

final class Counter { var value = 0 }

/// Holds a dynamically checked `inout` access across a park.
func incrementAcrossPark(_ x: inout Int) {
    x += 1
    try? Green.sleep(for: .milliseconds(20))
    x += 1
}

/// Recurses until the stack runs out. Not optimizable into a loop: each
/// frame's buffer escapes to an opaque C call and is read after the return.
@inline(never) @_optimize(none)
func recurse(_ depth: Int) -> Int {
    var frame = (depth, depth &+ 1, depth &+ 2, depth &+ 3)
    withUnsafeMutablePointer(to: &frame) { p in _ = memchr(p, 0x7f, 1) }
    return recurse(depth + 1) &+ frame.0 &+ frame.3
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
switch mode {
case "overflow":
    let f = Green.spawn(name: "deep-recursion", stackSize: 64 * 1024) { recurse(0) }
    print(try f.value)
case "overflow-neighbour-survives":
    // Not used by the crash test: a fiber that merely runs deep but within bounds.
    let f = Green.spawn(name: "deep-ok", stackSize: 1 << 20) { () -> Int in
        func down(_ n: Int) -> Int { n == 0 ? 0 : down(n - 1) + 1 }
        return down(5000)
    }
    print(try f.value)
case "exclusivity":
    let counter = Counter()
    let rootOwned = Counter()
    // The root context holds an access of its own while the fibers run.
    func whileHolding(_ x: inout Int) throws {
        let a = Green.spawn { incrementAcrossPark(&counter.value) }
        let b = Green.spawn { incrementAcrossPark(&counter.value) }
        let c = Green.spawn { for _ in 0..<3 { incrementAcrossPark(&Counter().value) } }
        try a.value
        try b.value
        try c.value
        x += 1
    }
    try whileHolding(&rootOwned.value)
    // The value itself is unspecified (the two modifications overlap); what
    // matters is that the overlapping accesses, one per fiber, did not trap.
    print("overlapping accesses finished: \(counter.value > 0)")
case "exclusivity-still-checked":
    // A real conflict inside one fiber must still trap.
    let counter = Counter()
    func twice(_ a: inout Int, _ b: () -> Void) { a += 1; b() }
    let f = Green.spawn { twice(&counter.value) { counter.value += 1 } }
    try f.value
    print("not trapped")
case "kept-watchers-and-closes":
    // The hub keeps a lone waiter's fd watcher started after the wait, until
    // its next poll (fd_waits.c). Closes on other threads around that must
    // leave libev no number that is not open (it asserts on EBADF, which the
    // shim turns into ENOMEM for a hub's own set), and a new file under the
    // number must be waited on as any other.
    func waitOnTheNumberAgain(_ fd: Int32) throws -> Bool {
        var n: [Int32] = [0, 0]
        pipe(&n)
        defer { close(n[0]); close(n[1]) }
        guard n[0] == fd || n[1] == fd else { return false } // the lowest free number came back
        let (r, w) = n[0] == fd ? (n[0], n[1]) : (n[1], n[0])
        if r != fd { return true } // the number came back as a write end: nothing to wait for on it
        let writer = Green.spawn { try Green.sleep(for: .milliseconds(2)); var c: UInt8 = 9; _ = write(w, &c, 1) }
        var c: UInt8 = 0
        let got = try Green.withTimeout(.seconds(10)) { read(r, &c, 1) }
        try writer.value
        return got == 1 && c == 9
    }
    func closeOnAnotherThread(_ fds: [Int32]) {
        var t = pthread_t()
        let box = Unmanaged.passRetained(fds as AnyObject)
        pthread_create(&t, nil, { arg in
            for fd in Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue() as! [Int32] { close(fd) }
            return nil
        }, box.toOpaque())
        pthread_join(t, nil)
    }
    func pollSoon() throws { try Green.sleep(for: .milliseconds(3)) }
    func lonelyRead(_ fd: Int32, after peer: Int32) {
        var c: UInt8 = 1
        _ = write(peer, &c, 1)
        var rev: Int32 = 0
        _ = green_wait_fd(fd, Int32(GREEN_READ), Int64.max, 0, &rev) // no deadline; ends with data
        _ = read(fd, &c, 1)
    }
    // 1. A wait that ends before the hub polls (its deadline passed), then a close elsewhere.
    var p: [Int32] = [0, 0]
    pipe(&p)
    try Green.spawn {
        var rev: Int32 = 0
        _ = green_wait_fd(p[0], Int32(GREEN_READ), green_now_ns() - 1, 0, &rev)
        closeOnAnotherThread([p[0]])
        try pollSoon()
        if try !waitOnTheNumberAgain(p[0]) { print("ended before the poll: the number's next file was not waited on") }
    }.value
    close(p[1])
    print("ended before the poll: ok")
    // 2. A wait that ended with data, a poll, a close elsewhere, then a fork:
    //    the child's loop registers every started watcher anew. (Not under
    //    ThreadSanitizer, which does not support fork in a threaded process.)
    let forks = getenv("GREEN_SANITIZER").map { String(cString: $0) } != "thread"
    var q: [Int32] = [0, 0]
    pipe(&q)
    let status = try Green.spawn { () -> Int32 in
        lonelyRead(q[0], after: q[1])
        try pollSoon()
        closeOnAnotherThread([q[0]])
        try pollSoon()
        if !forks { return 0 }
        let pid = fork()
        if pid == 0 {
            try? pollSoon()
            _exit((try? waitOnTheNumberAgain(q[0])) == true ? 0 : 3)
        }
        var st: Int32 = 0
        while waitpid(pid, &st, WNOHANG) == 0 { try pollSoon() }
        return st
    }.value
    print("fork child: \(status == 0 ? "ok" : "status \(status)")")
    // 3. Two waits that ended with data, closed elsewhere, one file still
    //    open through a dup and written to: epoll keeps reporting it.
    var x: [Int32] = [0, 0], y: [Int32] = [0, 0]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &x)
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &y)
    let keep = dup(x[0])
    try Green.spawn {
        lonelyRead(x[0], after: x[1])
        lonelyRead(y[0], after: y[1])
        try pollSoon()
        closeOnAnotherThread([x[0], y[0]])
        var c: UInt8 = 2
        _ = write(x[1], &c, 1)
        for _ in 0..<5 { try pollSoon() }
        if try !waitOnTheNumberAgain(x[0]) { print("closed while a dup lives: the number's next file was not waited on") }
    }.value
    close(keep)
    print("closed while a dup lives: ok")
case "socket-concurrent-reads":
    // Two fibers reading one Socket's lines: the second must trap while the
    // first waits for bytes (as Swift's exclusivity check used to make it).
    var fds: [Int32] = [0, 0]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    let reading = Socket(fd: fds[0])
    let first = Green.spawn { try reading.readLine() }
    let second = Green.spawn { try reading.readLine() }
    _ = try? first.value
    _ = try? second.value
    print("not trapped")
case "prefork":
    // Two children answer each line with their pid ("slow" after 500 ms);
    // the parent reports children starting and ending, and stops on SIGTERM.
    let server = try PreforkServer(processes: 2, grace: .seconds(5)) { conn in
        while let line = try conn.readLine() {
            if line == "slow" { try Green.sleep(for: .milliseconds(500)) }
            try conn.writeAll("\(getpid())\n")
        }
    }
    func say(_ s: String) { print(s); fflush(stdout) }
    server.childStarted = { i, pid in say("started \(i) \(pid)") }
    server.childExited = { i, pid, status in say("exited \(i) \(pid) \(status)") }
    say("port \(server.port)")
    try server.run()
    say("parent done, restarts \(server.restarts)")
case "fork":
    // fork() from a fiber; the child's hub, timers, I/O and thread pool work.
    var hooks: [String] = []
    Green.onFork(prepare: { hooks.append("prepare") }, parent: { hooks.append("parent") }, child: { hooks.append("child") })
    let before = Green.spawn { try Green.sleep(for: .milliseconds(5)); return 1 }
    _ = try before.value
    let forker = Green.spawn { () -> Int32 in
        let pid = fork()
        if pid == 0 {
            var ok = true
            let sleepers = (0..<10).map { _ in Green.spawn { try Green.sleep(for: .milliseconds(20)) } }
            for s in sleepers { do { try s.value } catch { ok = false } }
            var fds: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
            let reader = Green.spawn { () -> UInt8 in var b: UInt8 = 0; _ = read(fds[0], &b, 1); return b }
            Green.spawn { usleep(5_000); var b: UInt8 = 42; _ = write(fds[1], &b, 1) }
            ok = ok && (try? reader.value) == 42
            ok = ok && (try? Green.offload { 6 * 7 }) == 42
            ok = ok && hooks == ["prepare", "child"]
            _exit(ok ? 0 : 1)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 { try Green.sleep(for: .milliseconds(5)) }
        return status
    }
    let status = try forker.value
    // The parent's hub still works after the fork too.
    try Green.sleep(for: .milliseconds(1))
    print("child exit status: \((status >> 8) & 0xff), signalled: \(status & 0x7f); parent hooks: \(hooks)")
case "fork-edge-wait":
    // fork() while a fiber is parked on a TCP read in the hub's edge set:
    // in the child (whose hub keeps its fibers) the hub lets go of the set
    // it shares with the parent and wakes the wait, which reads again and
    // waits in a set of the child's own for the child's bytes; the parent's
    // reader is cancelled first, so that only the child reads them.
    try Green.sleep(for: .milliseconds(1)) // the hub first: sockets made before it are not the shim's own
    let listener = try Socket.listen()
    let client = try Socket.connect(host: "127.0.0.1", port: listener.localPort)
    let server = try listener.accept()
    let reader = Green.spawn { () -> Int in
        var buf = [UInt8](repeating: 0, count: 64)
        return buf.withUnsafeMutableBytes { read(server.fd, $0.baseAddress, 64) } // EAGAIN: waits in the edge set
    }
    try Green.sleep(for: .milliseconds(20)) // the reader is parked
    let forker = Green.spawn { () -> Int32 in
        let pid = fork()
        if pid == 0 {
            alarm(10) // a lost wake-up ends the child (SIGALRM) instead of hanging the test
            try Green.sleep(for: .milliseconds(50)) // the hub polls: it lets go of the parent's set, the reader waits anew
            try client.writeAll([1, 2, 3])
            let n = try? reader.value
            _exit(n == 3 ? 0 : 1)
        }
        reader.cancel()
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 { try Green.sleep(for: .milliseconds(5)) }
        return status
    }
    let status = try forker.value
    let parentRead = (try? reader.value) ?? -2
    print("child exit status: \((status >> 8) & 0xff), signalled: \(status & 0x7f); parent's reader: \(parentRead < 0 ? "cancelled" : "read \(parentRead)")")
case "unlock-by-non-owner":
    // A fiber unlocking a lock another fiber holds: a programmer error.
    let lock = Lock()
    try lock.lock()
    let intruder = Green.spawn(name: "intruder") { lock.unlock() }
    try intruder.join()
    print("not stopped")
case "unlock-unlocked":
    Lock().unlock()
    print("not stopped")
case "wrong-hub":
    // An Event first used on this thread's hub, then set on another thread's
    // hub: debug builds stop the program (release builds do not check).
    let event = Event()
    event.clear() // the first use binds it to this thread's hub
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let event = Unmanaged<Event>.fromOpaque(arg!).takeRetainedValue()
        _ = Hub.current // a hub of its own
        event.set()
        return nil
    }, Unmanaged.passRetained(event).toOpaque())
    precondition(rc == 0)
    pthread_join(tid, nil)
    print("not stopped")
case "monitor":
    // A fiber that computes for 400 ms without parking stalls the hub.
    Green.startBlockingMonitor(threshold: .milliseconds(50))
    let ticker = Green.spawn(name: "ticker") { for _ in 0..<3 { try Green.sleep(for: .milliseconds(5)) } }
    let cruncher = Green.spawn(name: "cruncher") { crunchWithoutParking(milliseconds: 400) }
    try cruncher.value
    try ticker.value
    print("reports: \(Green.blockingMonitorReports)")
case "monitor-quiet":
    // Fibers that park all the time never trip the monitor.
    Green.startBlockingMonitor(threshold: .milliseconds(50))
    let sleepers = (0..<10).map { _ in Green.spawn { try Green.sleep(for: .milliseconds(300)) } }
    for f in sleepers { try f.value }
    print("reports: \(Green.blockingMonitorReports)")
case "dump-signal":
    // Run with GREEN_DUMP_SIGNAL=USR2: a SIGUSR2 prints the fiber dump.
    let sleepers = (0..<3).map { i in Green.spawn(name: "sleeper-\(i)") { try Green.sleep(for: .seconds(3600)) } }
    try Green.sleep(for: .milliseconds(10))
    kill(getpid(), SIGUSR2)
    try Green.sleep(for: .milliseconds(50))
    sleepers.forEach { $0.cancel() }
    print("done")
case "dns-slow":
    // Run inside a mount namespace whose /etc/resolv.conf names 127.0.0.2
    // (see ShimTests): a DNS server fiber answers after 500 ms, while a
    // ticker fiber counts; getaddrinfo on a third fiber must not stall them.
    try slowDNSLookup()
default:
    fputs("usage: GreenTestHelper overflow|exclusivity|exclusivity-still-checked|dns-slow\n", stderr)
    exit(2)
}

/// A tiny DNS server on a fiber: answers every A query with 192.0.2.7 after
/// `delay`, and other queries with no answer.
func serveDNS(on fd: Int32, delay: Duration) throws {
    while true {
        var query = [UInt8](repeating: 0, count: 512)
        var peer = sockaddr_storage()
        var peerLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = withUnsafeMutablePointer(to: &peer) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &query, 512, 0, $0, &peerLen) }
        }
        guard n >= 12 else { continue }
        try Green.sleep(for: delay) // a slow resolver
        // The question ends after the name's labels, then type and class.
        var end = 12
        while end < n && query[end] != 0 { end += Int(query[end]) + 1 }
        end += 5
        guard end <= n else { continue }
        let qtype = Int(query[end - 4]) << 8 | Int(query[end - 3])
        var reply = Array(query[0..<end])
        reply[2] = 0x81; reply[3] = 0x80                 // response, recursion available, NOERROR
        reply[6] = 0; reply[7] = qtype == 1 ? 1 : 0     // answers
        reply[8] = 0; reply[9] = 0; reply[10] = 0; reply[11] = 0
        if qtype == 1 {
            reply += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]
        }
        _ = withUnsafePointer(to: &peer) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, peerLen) }
        }
    }
}

func slowDNSLookup() throws {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(53).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.2")
    let bound = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { fputs("bind 127.0.0.2:53 failed: errno \(errno)\n", stderr); exit(3) }
    let server = Green.spawn { try serveDNS(on: fd, delay: .milliseconds(500)) }
    var ticks = 0
    let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(10)); ticks += 1 } }
    let lookup = Green.spawn { () -> String in
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo("slow.green.test", "80", &hints, &res)
        guard rc == 0, let ai = res else { return "getaddrinfo failed: \(rc)" }
        defer { freeaddrinfo(res) }
        var host = [CChar](repeating: 0, count: 64)
        getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &host, 64, nil, 0, NI_NUMERICHOST)
        return String(cString: host)
    }
    let address = try lookup.value
    let ticksDuringLookup = ticks
    server.cancel()
    ticker.cancel()
    print("resolved slow.green.test to \(address); ticks during the lookup: \(ticksDuringLookup)")
}

/// CPU-bound work that never parks (what the blocking monitor is for).
@inline(never)
func crunchWithoutParking(milliseconds: Int64) {
    let end = Deadline.now.nanoseconds + milliseconds * 1_000_000
    var x: UInt64 = 1
    while Deadline.now.nanoseconds < end { x = x &* 6364136223846793005 &+ 1 }
    if x == 42 { print("") }
}
