import Foundation
import Glibc
import XCTest
@testable import Green

/// libgreen-preload.so against unmodified programs: the C programs of
/// Tests/PreloadPrograms (each checks itself and must pass natively too),
/// the thread-per-connection echo server of Examples/ThreadPerConnection with
/// 2,000 concurrent clients, and Debian's microsocks (a SOCKS5 proxy with a
/// pthread per client). Each program runs natively, under the preload in
/// fiber mode and (for the self-checking programs) in native-threads mode.
///
/// The library is looked up next to the test bundle: without it these tests
/// fail under CI=true and skip loudly elsewhere; they skip under the
/// sanitizers (GREEN_SANITIZER), whose scratch paths do not build it.
final class PreloadTests: XCTestCase {
    var library = ""

    override func setUpWithError() throws {
        library = try Preload.library(for: self)
    }

    override class func tearDown() {
        Preload.removeScratch()
        super.tearDown()
    }

    /// Runs `program` in each mode (see `checkPreloadProgram`).
    func check(_ program: String, _ arguments: [String] = [], modes: [PreloadMode] = PreloadMode.allCases,
               status: Int32 = 0, expect: [String], timeout: Double = 30,
               file: StaticString = #filePath, line: UInt = #line) throws {
        try checkPreloadProgram(program, arguments, library: library, modes: modes, status: status, expect: expect,
                                timeout: timeout, file: file, line: line)
    }

    // MARK: the self-checking programs

    func testCondvarProducerConsumerAndTimedWaits() throws {
        try check("condvar", expect: [
            "realtime producer/consumer: 8000 items, sum ok: 1",
            "realtime timed waits: expired, past deadline, woken in time",
            "realtime broadcast: 20 of 20 woken",
            "monotonic producer/consumer: 8000 items, sum ok: 1",
            "monotonic timed waits: expired, past deadline, woken in time",
            "monotonic broadcast: 20 of 20 woken",
            "static initializers: ok",
            "condvar: all checks passed",
        ])
    }

    func testOnceAndKeys() throws {
        try check("once_keys", expect: [
            "once: init ran 1 time(s), 50 of 50 racers saw it finished",
            "keys: 36 destructor calls with each thread's own value, re-set value destroyed 2 times",
            "once_keys: all checks passed",
        ])
    }

    func testMutexKinds() throws {
        try check("mutex", expect: [
            "normal: counter 2400 (expected 2400)",
            "static recursive: locked 3 times, other thread blocked until the last unlock",
            "attr recursive: locked 3 times, other thread blocked until the last unlock",
            "static errorcheck: EDEADLK on relock, EPERM on foreign unlock",
            "attr errorcheck: EDEADLK on relock, EPERM on foreign unlock",
            "trylock EBUSY; timedlock ETIMEDOUT then success",
            "mutex: all checks passed",
        ])
    }

    /// Robust and priority-inheritance mutexes: glibc's code for them wrote
    /// the hub's tid for every fiber thread and waited in the kernel (the
    /// first contention deadlocked the hub); the shim's give each thread's
    /// own id, park, and do the kernel's work for a thread that ends holding
    /// a robust one (EOWNERDEAD for the next locker, also one that waits).
    func testRobustAndPriorityInheritanceMutexes() throws {
        try check("robust_mutexes", expect: [
            "robust: 4 threads counted 4000 under the lock",
            "robust held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust recursive held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust recursive relocked by its owner: lock Success, trylock Success, unlocks until EPERM 3",
            "robust error-checking held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust error-checking relocked by its owner: lock Resource deadlock avoided, trylock Resource deadlock avoided, unlocks until EPERM 1",
            "priority-inheritance: 4 threads counted 4000 under the lock",
            "priority-inheritance held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "priority-inheritance recursive held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "priority-inheritance recursive relocked by its owner: lock Success, trylock Success, unlocks until EPERM 3",
            "priority-inheritance error-checking held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "priority-inheritance error-checking relocked by its owner: lock Resource deadlock avoided, trylock Resource deadlock avoided, unlocks until EPERM 1",
            "robust priority-inheritance: 4 threads counted 4000 under the lock",
            "robust priority-inheritance held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust priority-inheritance recursive held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust priority-inheritance recursive relocked by its owner: lock Success, trylock Success, unlocks until EPERM 3",
            "robust priority-inheritance error-checking held by another thread: trylock Device or resource busy, timedlock Connection timed out, unlock Operation not permitted; lock after it Success",
            "robust priority-inheritance error-checking relocked by its owner: lock Resource deadlock avoided, trylock Resource deadlock avoided, unlocks until EPERM 1",
            "owner ended holding it: lock Owner died, consistent 0 then Invalid argument, a later lock Success",
            "a waiter when the owner ended: Owner died; unlocked inconsistent: unlock 0, lock State not recoverable, trylock State not recoverable",
            "condition wait, the signaller ended holding the mutex: Owner died",
            "process-shared recursive, held by a thread of another process: EBUSY and EPERM yes",
            "robust_mutexes: all checks passed",
        ])
    }

    /// Main ends by pthread_exit holding a robust mutex: its waiter gets
    /// EOWNERDEAD (the waiter hung: main's OS thread lives on under green
    /// run, and nothing did the kernel's work for main's list).
    func testMainEndingWithARobustMutexHandsItOn() throws {
        try check("robust_mutexes", ["main_exits"], expect: [
            "main ended holding it: the waiter's lock Owner died",
            "robust_mutexes main_exits: all checks passed",
        ])
    }

    /// A waiter gets a robust, PI or process-shared mutex from a fiber that
    /// unlocks and locks again at once (the unlock lets the woken waiter
    /// run first, as for default mutexes; process-shared waits were only
    /// polled, and robust ones are process-shared to glibc). One hub: on
    /// OS threads that depends on the scheduler.
    func testRobustAndSharedMutexesHandOverToAWaiter() throws {
        try check("robust_mutexes", ["handover"], modes: [.fiber], expect: [
            "robust: a waiter gets it from a thread that locks again at once: yes",
            "priority-inheritance: a waiter gets it from a thread that locks again at once: yes",
            "robust process-shared: a waiter gets it from a thread that locks again at once: yes",
            "default process-shared: a waiter gets it from a thread that locks again at once: yes",
            "robust_mutexes handover: all checks passed",
        ])
    }

    func testRwlock() throws {
        try check("rwlock", expect: [
            "readers: 20 held the lock at once; writer excluded them",
            "timed: rd/wr expire while a writer holds it, then succeed",
            "workload: 400 writes, invariant held",
            "rwlock: all checks passed",
        ])
    }

    func testSemaphores() throws {
        try check("semaphore", expect: [
            "basics: trywait EAGAIN, timedwait ETIMEDOUT, getvalue counts",
            "woken in time: timedwait and wait returned after a post",
            "producer/consumer: 6000 items, sum ok: 1",
            "semaphore: all checks passed",
        ])
    }

    func testThreadAttributesJoinDetachAndYield() throws {
        try check("attributes", expect: [
            "stack: 1.5 MiB used in a 4 MiB attr stack and in a default stack",
            "join: return values and pthread_exit values; self/equal consistent",
            "detached: 30 of 30 detached threads finished",
            "sched_yield: 4000 turns, strictly alternating: 1",
            "attributes: all checks passed",
        ])
    }

    // MARK: native threads, stdio, signals, fork, barriers

    func testNativeThreadSharesMutexCondvarAndSemaphoreWithFibers() throws {
        try check("native_threads", expect: [
            "timer thread woke main (condvar) and a pthread (semaphore) 5 times: from another OS thread",
            "native_threads: all checks passed",
        ])
    }

    func testStdioStreamsOverSockets() throws {
        try check("stdio_sockets", expect: [
            "stdio over sockets: 1000 of 1000 lines echoed",
            "stdio_sockets: all checks passed",
        ])
    }

    func testSignalsInterruptBlockingCallsAndForkKeepsOneThread() throws {
        try check("signals_fork", expect: [
            "accept interrupted by SIGTERM: EINTR, loop stopped",
            "child: alone, returning from the thread",
            "child of a thread exited 0",
            "signals_fork: all checks passed",
        ])
    }

    func testBarriersSpinLocksAndClockWaits() throws {
        try check("barrier_spin", expect: [
            "barrier: 200 rounds of 8 threads in step, one serial thread per round",
            "clock waits: cond and sem time out on CLOCK_MONOTONIC, bad clock EINVAL",
            "barrier_spin: all checks passed",
        ])
    }

    /// A SIGSEGV sent with kill() kills, under the preload too (the overflow
    /// handler passes on what is not a fault).
    func testSentSIGSEGVKillsAsNatively() throws {
        let binary = try Preload.program("segv_sent", for: self)
        for mode in PreloadMode.allCases {
            let r = try Preload.run(binary, [], environment: mode.environment(library: library), timeout: 10)
            XCTAssertTrue(r.signaled && r.status == SIGSEGV, "[\(mode)] \(r)")
        }
    }

    // MARK: green run, fiber dump

    /// `green run` next to the library: fiber threads on a hub per CPU by
    /// default, on one with --hubs=1, OS threads with --threads=native.
    func testGreenRunStartsTheProgramUnderThePreload() throws {
        let green = URL(fileURLWithPath: library).deletingLastPathComponent().appendingPathComponent("green").path
        guard FileManager.default.isExecutableFile(atPath: green) else {
            try Preload.unavailable("the green launcher is not built next to \(library)", in: self)
        }
        let binary = try Preload.program("sleeps", for: self)
        let clean: [String: String?] = ["LD_PRELOAD": nil, "GREEN_THREADS": nil, "GREEN_PRELOAD": nil, "GREEN_HUBS": nil]
        let fibers = try Preload.run(green, ["run", "--", binary], environment: clean)
        XCTAssertEqual(fibers.status, 0, "\(fibers)")
        // A hub per CPU (the default), and the watcher.
        let hubs = min(Preload.cpusAllowed, 64)
        XCTAssertTrue(fibers.stdout.contains("os threads while sleeping: \(hubs + 1)\n"), "\(fibers)")
        let oneHub = try Preload.run(green, ["run", "--hubs=1", "--", binary], environment: clean)
        XCTAssertEqual(oneHub.status, 0, "\(oneHub)")
        XCTAssertTrue(oneHub.stdout.contains("os threads while sleeping: 2\n"), "\(oneHub)") // one, and the watcher

        let native = try Preload.run(green, ["run", "--threads=native", "--", binary], environment: clean)
        XCTAssertEqual(native.status, 0, "\(native)")
        XCTAssertFalse(native.stdout.contains("os threads while sleeping: 2\n"), "\(native)")
        XCTAssertTrue(native.stdout.contains("100 threads slept 200 ms each: concurrently"), "\(native)")
    }

    /// GREEN_DUMP_SIGNAL=USR2: the library prints every fiber thread and what it waits in.
    func testFiberDumpOnSignal() throws {
        let binary = try Preload.program("dump_target", for: self)
        var env = PreloadMode.fiber.environment(library: library)
        env["GREEN_DUMP_SIGNAL"] = "USR2"
        let child = try Preload.Child(binary, [], environment: env)
        XCTAssertNotNil(try child.waitForLine(startingWith: "ready", timeout: 20), child.stdout)
        kill(child.pid, SIGUSR2)
        let r = child.wait(timeout: 20)
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertTrue(r.stderr.contains("fiber dump: 3 fiber(s)"), "\(r)")
        let lines = r.stderr.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("worker") && $0.contains("on pthread_mutex") }, "\(r)")
        XCTAssertTrue(lines.contains { $0.contains("sleeper") && $0.contains("on sleep") }, "\(r)")
        XCTAssertTrue(lines.contains { $0.contains("main") && $0.contains("on sleep") }, "\(r)")
    }

    // MARK: exit semantics

    func testExitWays() throws {
        let modes = PreloadMode.allCases
        try check("exit_ways", ["return3"], modes: modes, status: 3, expect: ["main: returning 3"])
        try check("exit_ways", ["exit4"], modes: modes, status: 4, expect: ["thread: calling exit(4)"])
        try check("exit_ways", ["pthread_exit"], modes: modes, status: 0,
                  expect: ["main: pthread_exit", "worker 0 done", "worker 1 done", "worker 2 done"])
        // The sleepers sleep 30 s: waiting for them would hit the 20 s watchdog.
        try check("exit_ways", ["exit_sleeping"], modes: modes, status: 5,
                  expect: ["main: exit(5) with 10 threads asleep"], timeout: 20)
        try check("exit_ways", ["return_blocked"], modes: modes, status: 6,
                  expect: ["main: returning 6 with 10 threads blocked"], timeout: 20)

        // Ordering: after pthread_exit in main, the workers still print, in order.
        let binary = try Preload.program("exit_ways", for: self)
        let r = try Preload.run(binary, ["pthread_exit"], environment: PreloadMode.fiber.environment(library: library))
        XCTAssertEqual(r.stdout, "main: pthread_exit\nworker 0 done\nworker 1 done\nworker 2 done\n", "\(r)")
        for mode in modes {
            let s = try Preload.run(binary, ["exit_sleeping"], environment: mode.environment(library: library), timeout: 20)
            XCTAssertFalse(s.stdout.contains("sleeper woke up"), "[\(mode)] \(s)")
        }
    }

    // MARK: sleeps overlap, on one OS thread

    func testHundredSleepingThreadsOverlapOnOneOSThread() throws {
        let binary = try Preload.program("sleeps", for: self)
        for mode in [PreloadMode.plain, .fiber] {
            let r = try Preload.run(binary, [], environment: mode.environment(library: library))
            XCTAssertTrue(!r.signaled && !r.timedOut && r.status == 0, "[\(mode)] \(r)")
            XCTAssertTrue(r.stdout.contains("100 threads slept 200 ms each: concurrently"), "[\(mode)] \(r)")
            let threads = r.stdout.split(separator: "\n").first { $0.hasPrefix("os threads while sleeping: ") }
                .flatMap { Int($0.dropFirst("os threads while sleeping: ".count)) }
            if mode == .fiber {
                // One OS thread runs them all; the library adds its watcher (watcher.c: preemption, hand-off).
                XCTAssertEqual(threads, 2, "under the preload the 100 sleeping threads are fibers of one OS thread: \(r)")
            } else {
                XCTAssertGreaterThan(threads ?? 0, 1, "natively they are OS threads: \(r)")
            }
        }
    }

    // MARK: the thread-per-connection echo server, 2,000 clients

    func testEchoServerServes2000ConcurrentClientsOnOneOSThread() throws {
        let clients = 2000
        let limit = Preload.raiseFileLimit()
        guard limit >= clients + 200 else {
            try Preload.unavailable("RLIMIT_NOFILE hard limit \(limit) is too low for \(clients) client sockets", in: self)
        }
        let binary = try Preload.compile(Preload.examplesDirectory.appendingPathComponent("echo_server.c"),
                                         optimization: "-O2", for: self)
        let server = try Preload.Child(binary, ["0"], environment: PreloadMode.fiber.environment(library: library))
        defer { _ = server.stop() }
        guard let portText = try server.waitForLine(startingWith: "listening on ", timeout: 15),
              let port = UInt16(portText) else {
            XCTFail("echo_server did not say where it listens: \(server.stop())")
            return
        }

        var connected = 0
        let allConnected = Event()
        let proceed = Event()
        // Three messages per client: a small one (proof its server thread
        // serves it), then, once all clients are connected, a medium and a
        // large one (up to 64 KiB). Each is read back exactly.
        let sizes: (Int) -> [Int] = { i in [1 + (i * 37) % 200, 1000 + (i * 7919) % 15000, 65536 - (i * 13) % 4096] }
        let fibers = (0..<clients).map { i in
            Green.spawn(name: "client \(i)") { () throws -> String in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                defer { s.close() }
                let size = sizes(i)
                func roundTrip(_ m: Int) throws -> String? {
                    let message = Preload.payload(client: i, message: m, size: size[m])
                    try s.writeAll(message)
                    let back = try s.readExactly(message.count)
                    return back == message ? nil : "client \(i) message \(m): \(size[m]) bytes came back different"
                }
                if let error = try roundTrip(0) { return error }
                connected += 1
                if connected == clients { allConnected.set() }
                try proceed.wait(until: .after(.seconds(60)))
                for m in 1...2 { if let error = try roundTrip(m) { return error } }
                return "ok"
            }
        }
        var threads = -1, fds = -1
        do {
            try allConnected.wait(until: .after(.seconds(40)))
            // Every client is connected and has been echoed once: the server
            // has a thread per client right now.
            threads = Preload.threadCount(of: server.pid)
            fds = Preload.openFileCount(of: server.pid)
        } catch {
            XCTFail("only \(connected) of \(clients) clients connected and got their first echo: \(error)")
        }
        proceed.set()
        var failures: [String] = []
        for f in fibers {
            do {
                let result = try f.value
                if result != "ok" { failures.append(result) }
            } catch { failures.append("\(f.name): \(error)") }
        }
        XCTAssertEqual(failures.count, 0, "\(failures.count) clients failed, e.g. \(failures.prefix(5))")
        // One OS thread serves them all, next to the library's watcher (preemption, hand-off).
        XCTAssertEqual(threads, 2, "echo_server under the preload with \(clients) clients connected: /proc shows \(threads) threads")
        XCTAssertGreaterThanOrEqual(fds, clients, "the server should hold a socket per client")
        print("echo_server under the preload: \(clients) concurrent clients, Threads: \(threads), open fds: \(fds)")
        let end = server.stop()
        XCTAssertFalse(end.stderr.contains("echo_server:"), "echo_server reported errors: \(end)")
    }

    // MARK: an unmodified Debian binary: microsocks

    func testMicrosocksProxiesConcurrentClientsNativelyAndOnFibers() throws {
        guard let microsocks = Preload.findExecutable("microsocks") else {
            try Preload.unavailable("microsocks is not installed (`apt-get install microsocks`, or `bash .ci/deps --all`)", in: self)
        }
        Preload.raiseFileLimit()
        // The destination: an echo server in this process.
        let echo = StreamServer(listener: try Socket.listen(backlog: 4096)) { conn in
            while true {
                let chunk = try conn.read()
                if chunk.isEmpty { break }
                try conn.writeAll(chunk)
            }
        }
        echo.start()
        defer { try? echo.stop(grace: .seconds(1)) }
        let echoPort = echo.listener.localPort

        var results: [PreloadMode: [String]] = [:]
        for mode in [PreloadMode.plain, .fiber] {
            let (outcome, threads) = try proxyClients(microsocks, mode: mode, echoPort: echoPort, clients: 150)
            results[mode] = outcome
            let failures = outcome.filter { $0 != "ok" }
            XCTAssertEqual(failures.count, 0, "[\(mode)] \(failures.count) SOCKS clients failed, e.g. \(failures.prefix(5))")
            if mode == .fiber {
                // One OS thread, plus at most the preload's small DNS thread
                // pool (microsocks resolves even numeric addresses with
                // getaddrinfo) and its watcher (preemption, hand-off).
                XCTAssertTrue(threads >= 1 && threads <= 10, "microsocks under the preload with 150 clients: Threads: \(threads)")
            } else {
                XCTAssertGreaterThan(threads, 150, "natively microsocks has a thread per client: Threads: \(threads)")
            }
            print("microsocks [\(mode)]: 150 concurrent SOCKS5 clients, Threads: \(threads)")
        }
        XCTAssertEqual(results[.plain], results[.fiber], "the same results natively and under the preload")
    }

    /// Starts microsocks in `mode`, runs `clients` concurrent SOCKS5 clients
    /// through it to the echo server; returns each client's outcome ("ok" or
    /// what went wrong) and the proxy's thread count while all were connected.
    func proxyClients(_ microsocks: String, mode: PreloadMode, echoPort: UInt16, clients: Int) throws -> ([String], Int) {
        let port = Preload.freePort()
        let proxy = try Preload.Child(microsocks, ["-i", "127.0.0.1", "-p", String(port)],
                                      environment: mode.environment(library: library))
        defer { _ = proxy.stop() }
        // Ready when it accepts (the probe is just a client that leaves at once).
        do { try Preload.connectWhenReady(port: port, timeout: 15).close() } catch {
            XCTFail("[\(mode)] microsocks did not start listening on \(port): \(error); \(proxy.stop())")
            return ([], -1)
        }

        var connected = 0
        let allConnected = Event(), proceed = Event()
        let fibers = (0..<clients).map { i in
            Green.spawn(name: "socks client \(i)") { () throws -> String in
                let s = try Socket.connect(host: "127.0.0.1", port: port)
                defer { s.close() }
                try Preload.socks5Connect(s, toLoopbackPort: echoPort)
                let sizes = [1 + i % 100, 2000 + (i * 131) % 30000, 65536 - i]
                func roundTrip(_ m: Int) throws -> String? {
                    let message = Preload.payload(client: i, message: m, size: sizes[m])
                    try s.writeAll(message)
                    let back = try s.readExactly(message.count)
                    return back == message ? nil : "client \(i) message \(m): \(sizes[m]) bytes came back different"
                }
                if let error = try roundTrip(0) { return error }
                connected += 1
                if connected == clients { allConnected.set() }
                try proceed.wait(until: .after(.seconds(40)))
                for m in 1...2 { if let error = try roundTrip(m) { return error } }
                return "ok"
            }
        }
        var threads = -1
        do {
            try allConnected.wait(until: .after(.seconds(30)))
            threads = Preload.threadCount(of: proxy.pid)
        } catch {
            XCTFail("[\(mode)] only \(connected) of \(clients) SOCKS clients got through: \(error)")
        }
        proceed.set()
        let outcome = fibers.map { f -> String in
            do { return try f.value } catch { return "\(f.name): \(error)" }
        }
        return (outcome, threads)
    }
}
