// Shim.swift — section 4: the interposition shim. (a) What an interposed call
// costs off a fiber, against calling libc's own function (found with
// dlsym(RTLD_NEXT)); (c, ShimLocks.swift) an uncontended mutex the same way; (b) blocking libpq round trips done one after another,
// on fibers and on threads (needs GREEN_PG_CONNINFO; `.ci/servers start`).
import CLibpq
import Glibc
import Green

enum ShimBench {
    static func run() throws {
        passthrough()
        try lockPairs()
        try libpqRoundTrips()
    }

    // MARK: (a) passthrough overhead

    typealias ReadFn = @convention(c) (Int32, UnsafeMutableRawPointer?, Int) -> Int
    typealias PollFn = @convention(c) (UnsafeMutablePointer<pollfd>?, nfds_t, Int32) -> Int32
    typealias NameInfoFn = @convention(c) (UnsafePointer<sockaddr>?, socklen_t, UnsafeMutablePointer<CChar>?, socklen_t,
                                           UnsafeMutablePointer<CChar>?, socklen_t, Int32) -> Int32

    static func passthrough() {
        let next = UnsafeMutableRawPointer(bitPattern: -1) // RTLD_NEXT: libc, behind our interposers
        let libcRead = unsafeBitCast(dlsym(next, "read"), to: ReadFn.self)
        let libcPoll = unsafeBitCast(dlsym(next, "poll"), to: PollFn.self)
        let shimRead: ReadFn = { Glibc.read($0, $1, $2) }
        let shimPoll: PollFn = { Glibc.poll($0, $1, $2) }
        let libcNameInfo = unsafeBitCast(dlsym(next, "getnameinfo"), to: NameInfoFn.self)
        let shimNameInfo: NameInfoFn = { Glibc.getnameinfo($0, $1, $2, $3, $4, $5, $6) }
        var results: [(String, Double, Double)] = []
        // Off a fiber: a thread that never used Green.
        let t = startThread {
            var fds: [Int32] = [0, 0]
            pipe(&fds)
            var byte: UInt8 = 1
            // A pipe that always has data: write one byte ahead, read one, write one back.
            _ = Glibc.write(fds[1], &byte, 1)
            let n = 1_000_000
            func timeRead(_ f: ReadFn) -> Double {
                measure { for _ in 0..<n { _ = f(fds[0], &byte, 1); _ = libcWrite(fds[1], &byte, 1) } } * 1e9 / Double(n)
            }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            func timePoll(_ f: PollFn) -> Double {
                measure { for _ in 0..<n { _ = f(&p, 1, 0) } } * 1e9 / Double(n)
            }
            // A call libc answers without a syscall (unknown address family):
            // what remains is the shim's own cost.
            var sa = sockaddr()
            sa.sa_family = 255
            let m = 20_000_000
            func timeNameInfo(_ f: NameInfoFn) -> Double {
                measure { for _ in 0..<m { _ = f(&sa, socklen_t(MemoryLayout<sockaddr>.size), nil, 0, nil, 0, 0) } } * 1e9 / Double(m)
            }
            var shimR: [Double] = [], libcR: [Double] = [], shimP: [Double] = [], libcP: [Double] = []
            var shimN: [Double] = [], libcN: [Double] = []
            for _ in 0..<5 { // interleaved, median of 5
                shimR.append(timeRead(shimRead)); libcR.append(timeRead(libcRead))
                shimP.append(timePoll(shimPoll)); libcP.append(timePoll(libcPoll))
                shimN.append(timeNameInfo(shimNameInfo)); libcN.append(timeNameInfo(libcNameInfo))
            }
            results = [("read(pipe, 1 byte) + write back", median(shimR), median(libcR)),
                       ("poll(1 ready fd, timeout 0)", median(shimP), median(libcP)),
                       ("getnameinfo(bad family): no syscall", median(shimN), median(libcN))]
            close(fds[0]); close(fds[1])
        }!
        joinThread(t)
        var table = Table("4a. Interposed call off a fiber vs libc's own function (1,000,000 calls, median of 5)",
                          ["call", "through the shim", "libc directly", "difference per call"])
        for (name, shim, libc) in results {
            table.add([name, perOp(ns: shim), perOp(ns: libc), fixed(shim - libc, 1) + " ns"])
        }
        table.note("read and poll are dominated by the syscall (the difference is noise); getnameinfo with an unknown")
        table.note("family returns without one, so its difference is the shim's own cost: a thread-local load, a compare, a jump.")
        table.print()
    }

    static let libcWrite = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: -1), "write"),
                                         to: (@convention(c) (Int32, UnsafeRawPointer?, Int) -> Int).self)

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

    // MARK: (b) libpq round trips

    static func libpqRoundTrips() throws {
        var table = Table("4b. Blocking libpq round trips: 50 connections × 4 queries of pg_sleep(0.01)",
                          ["contender", "queries", "wall time", "per query", "vs Green"])
        guard let conninfo = getenv("GREEN_PG_CONNINFO").map({ String(cString: $0) }), !conninfo.isEmpty else {
            table.note("skipped: set GREEN_PG_CONNINFO (eval \"$(bash .ci/servers start)\")")
            table.print()
            return
        }
        let clients = 50, perClient = 4
        func session() -> Int {
            let conn = PQconnectdb(conninfo)
            defer { PQfinish(conn) }
            guard PQstatus(conn) == CONNECTION_OK else { return 0 }
            var ok = 0
            for _ in 0..<perClient {
                let res = PQexec(conn, "SELECT pg_sleep(0.01)")
                if PQresultStatus(res) == PGRES_TUPLES_OK { ok += 1 }
                PQclear(res)
            }
            return ok
        }
        var okSeq = 0, okFib = 0
        let seq = measure { for _ in 0..<clients { okSeq += session() } }
        let fib = try measure {
            let fibers = (0..<clients).map { _ in Green.spawn { session() } }
            okFib = try fibers.reduce(0) { $0 + (try $1.value) }
        }
        let okThreads = AtomicCounter()
        let thr = measure {
            let threads = (0..<clients).map { _ in startThread { okThreads.add(session()) }! }
            threads.forEach(joinThread)
        }
        let total = clients * perClient
        for (name, label, t, ok) in [("Sequential", "one after another", seq, okSeq),
                                     ("Green", "Green fibers (libpq unchanged)", fib, okFib),
                                     ("Thread", "one pthread per connection", thr, okThreads.value)] {
            table.add([label, "\(ok)/\(total)", fixed(t * 1000, 0) + " ms", perOp(ns: t * 1e9 / Double(total)),
                       ratio(name, t, baseline: fib)])
        }
        table.note("Each query keeps the server busy 10 ms: sequentially that is \(total * 10) ms at least.")
        table.print()
    }
}

/// A counter threads can add to.
final class AtomicCounter: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var count = 0
    init() { pthread_mutex_init(&mutex, nil) }
    func add(_ n: Int) { pthread_mutex_lock(&mutex); count += n; pthread_mutex_unlock(&mutex) }
    var value: Int { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return count }
}
