import Foundation
import Glibc
import XCTest
@testable import Green

// Helpers for PreloadTests: locating libgreen-preload.so, compiling the C
// programs of Tests/PreloadPrograms (and the example server) once per test
// run, running processes natively or under the preload library with a
// watchdog, reading /proc, and a SOCKS5 client.

/// How a child program is run.
enum PreloadMode: String, CaseIterable {
    /// No preload library: the reference behaviour.
    case plain
    /// `LD_PRELOAD=libgreen-preload.so GREEN_THREADS=fiber GREEN_HUBS=1`: pthreads are fibers of one hub.
    case fiber
    /// `LD_PRELOAD=libgreen-preload.so GREEN_THREADS=native`: OS threads, I/O interposed.
    case native
    /// As `fiber`, with `GREEN_HUBS=2`: fiber threads spread over two hubs, run in parallel.
    case hubs

    /// The environment overrides for this mode (nil: remove the variable).
    func environment(library: String) -> [String: String?] {
        switch self {
        case .plain: return ["LD_PRELOAD": nil, "GREEN_THREADS": nil, "GREEN_HUBS": nil]
        case .fiber: return ["LD_PRELOAD": library, "GREEN_THREADS": "fiber", "GREEN_HUBS": "1"]
        case .native: return ["LD_PRELOAD": library, "GREEN_THREADS": "native", "GREEN_HUBS": nil]
        case .hubs: return ["LD_PRELOAD": library, "GREEN_THREADS": "fiber", "GREEN_HUBS": "2"]
        }
    }
}

/// What a finished child program did.
struct ProgramResult: CustomStringConvertible {
    var status: Int32            // exit status, or the signal number when `signaled`
    var signaled: Bool
    var timedOut: Bool           // killed by the watchdog
    var stdout: String
    var stderr: String
    var milliseconds: Double

    var description: String {
        let how = timedOut ? "KILLED after the watchdog timeout" : signaled ? "killed by signal \(status)" : "exit status \(status)"
        return "\(how) after \(Int(milliseconds)) ms\n--- stdout ---\n\(stdout)--- stderr ---\n\(stderr)--------------"
    }
}

enum Preload {
    static let environment = ProcessInfo.processInfo.environment
    static var isCI: Bool { environment["CI"] == "true" }

    /// The package root (Tests/GreenTests/../..).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let programsDirectory = packageRoot.appendingPathComponent("Tests/PreloadPrograms")
    static let examplesDirectory = packageRoot.appendingPathComponent("Examples/ThreadPerConnection")

    /// The build products directory: the one holding the test bundle.
    static let productsDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// Skips (loudly) or fails (under CI=true) with `message`.
    static func unavailable(_ message: String, in test: XCTestCase) throws -> Never {
        if isCI {
            XCTFail(message)
            throw TestError(code: -1)
        }
        print("SKIPPING \(test.name): \(message)")
        throw XCTSkip(message)
    }

    /// The preload library next to the test bundle; skips or fails without it.
    static func library(for test: XCTestCase) throws -> String {
        if let s = environment["GREEN_SANITIZER"], !s.isEmpty {
            throw XCTSkip("preload tests do not run under the \(s) sanitizer (the library is not built in its scratch path)")
        }
        let lib = productsDirectory.appendingPathComponent("libgreen-preload.so").path
        guard FileManager.default.fileExists(atPath: lib) else {
            try unavailable("\(lib) is missing: build it with `swift build` (product green-preload) before `swift test`", in: test)
        }
        return lib
    }

    // MARK: compiling

    private static let lock = NSLock()
    private static var compiled: [String: String] = [:]
    /// A scratch directory for this test run's binaries.
    static let scratch: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("green-preload-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Compiles `source` (once per test run) and returns the binary's path:
    /// C (`.c`) with `cc OPT -pthread -Wall`, C++ (`.cpp`) with
    /// `g++ -std=c++20 OPT -pthread -Wall`, Rust (`.rs`) with
    /// `rustc -O --edition=2021`. A missing compiler skips the test loudly
    /// (fails it under CI=true); a compiler error fails it.
    static func compile(_ source: URL, optimization: String = "-O1", for test: XCTestCase) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = source.path + optimization
        if let binary = compiled[key] { return binary }
        let language = source.pathExtension
        let compiler: String
        let flags: [String]
        switch language {
        case "cpp":
            guard let cxx = findExecutable("g++") ?? findExecutable("c++") else {
                try unavailable("no C++ compiler (g++) in PATH for \(source.lastPathComponent): install g++ (`bash .ci/deps`)", in: test)
            }
            compiler = cxx
            flags = ["-std=c++20", optimization, "-pthread", "-Wall"]
        case "rs":
            guard let rustc = findExecutable("rustc") else {
                try unavailable("no Rust compiler (rustc) in PATH for \(source.lastPathComponent): install rustc (`bash .ci/deps`)", in: test)
            }
            compiler = rustc
            flags = ["-O", "--edition=2021"]
        default:
            guard let cc = findExecutable("cc") ?? findExecutable("gcc") else {
                try unavailable("no C compiler (cc) in PATH: install gcc (`bash .ci/deps`)", in: test)
            }
            compiler = cc
            // NAME_module.c is a shared library for a program to dlopen.
            let library = source.deletingPathExtension().lastPathComponent.hasSuffix("_module")
            flags = [optimization, "-pthread", "-Wall"] + (library ? ["-shared", "-fPIC"] : [])
        }
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        // C binaries keep their plain names; others say their language (thread_identity.cpp and .rs differ).
        let stem = source.deletingPathExtension().lastPathComponent + (language == "c" ? "" : "-" + language)
        let binary = scratch.appendingPathComponent(stem + optimization).path
        let result = try run(compiler, flags + ["-o", binary, source.path], timeout: 180)
        guard result.status == 0, !result.signaled, !result.timedOut else {
            XCTFail("compiling \(source.lastPathComponent) failed: \(result)")
            throw TestError(code: -2)
        }
        compiled[key] = binary
        return binary
    }

    /// A program of Tests/PreloadPrograms by name: `mutex` is mutex.c; a name
    /// with its extension (`thread_identity.cpp`, `thread_identity.rs`) is that file.
    static func program(_ name: String, for test: XCTestCase) throws -> String {
        let file = ["c", "cpp", "rs"].contains((name as NSString).pathExtension) ? name : name + ".c"
        return try compile(programsDirectory.appendingPathComponent(file), for: test)
    }

    static func findExecutable(_ name: String) -> String? {
        for dir in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// Removes the compiled programs (a later test compiles them again).
    static func removeScratch() {
        lock.lock()
        defer { lock.unlock() }
        compiled.removeAll()
        try? FileManager.default.removeItem(at: scratch)
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true) // later runs write here
    }

    // MARK: running

    /// A child process whose stdout and stderr go to files (no pipes to
    /// drain, nothing lost when it is killed).
    final class Child {
        let process = Process()
        let stdoutPath: String
        let stderrPath: String
        let started = Deadline.now
        private(set) var timedOut = false

        init(_ executable: String, _ arguments: [String], environment overrides: [String: String?]) throws {
            let id = UUID().uuidString
            stdoutPath = Preload.scratch.appendingPathComponent("\(id).out").path
            stderrPath = Preload.scratch.appendingPathComponent("\(id).err").path
            FileManager.default.createFile(atPath: stdoutPath, contents: nil)
            FileManager.default.createFile(atPath: stderrPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            var env = Preload.environment
            for (k, v) in overrides { env[k] = v }
            process.environment = env
            process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try process.run()
        }

        var pid: Int32 { process.processIdentifier }
        var stdout: String { readTextFile(stdoutPath) }
        var stderr: String { readTextFile(stderrPath) }

        /// Waits for the exit; SIGKILLs the child after `timeout` seconds.
        func wait(timeout: Double) -> ProgramResult {
            let pid = self.pid
            let process = self.process
            let killer = DispatchWorkItem { [weak self] in
                if process.isRunning {
                    self?.timedOut = true
                    kill(pid, SIGKILL)
                }
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
            process.waitUntilExit()
            killer.cancel()
            let ms = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e6
            let result = ProgramResult(status: process.terminationStatus,
                                       signaled: process.terminationReason == .uncaughtSignal,
                                       timedOut: timedOut, stdout: stdout, stderr: stderr, milliseconds: ms)
            try? FileManager.default.removeItem(atPath: stdoutPath)
            try? FileManager.default.removeItem(atPath: stderrPath)
            return result
        }

        /// Stops a server: SIGTERM, then SIGKILL if it lingers.
        func stop() -> ProgramResult {
            if process.isRunning { kill(pid, SIGTERM) }
            return wait(timeout: 5)
        }

        /// Waits until stdout has a line starting with `prefix`; returns the rest of it.
        func waitForLine(startingWith prefix: String, timeout: Double) throws -> String? {
            let end = Deadline.after(.milliseconds(Int(timeout * 1000)))
            while Deadline.now.nanoseconds < end.nanoseconds {
                for line in stdout.split(separator: "\n") where line.hasPrefix(prefix) {
                    return String(line.dropFirst(prefix.count))
                }
                if !process.isRunning { return nil }
                try Green.sleep(for: .milliseconds(10))
            }
            return nil
        }
    }

    /// Runs a program to completion (SIGKILL after `timeout` seconds).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String?] = [:],
                    timeout: Double = 30) throws -> ProgramResult {
        try Child(executable, arguments, environment: environment).wait(timeout: timeout)
    }

    // MARK: /proc and limits

    /// The CPUs this process may run on (its affinity mask): the preload
    /// library's default number of hubs.
    /// (Glibc does not export sched_getaffinity to Swift: the mask is read
    /// from the "Cpus_allowed:" line of /proc/self/status, hex words.)
    static var cpusAllowed: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 1 }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            let n = line.dropFirst("Cpus_allowed:".count).compactMap { $0.hexDigitValue?.nonzeroBitCount }.reduce(0, +)
            return max(n, 1)
        }
        return 1
    }

    /// The "Threads:" count of /proc/PID/status (-1 if unreadable).
    static func threadCount(of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) ?? -1
        }
        return -1
    }

    /// How many descriptors /proc/PID/fd lists.
    static func openFileCount(of pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Raises this process's RLIMIT_NOFILE soft limit to the hard limit; returns the new soft limit.
    @discardableResult
    static func raiseFileLimit() -> Int {
        var rl = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        }
        return Int(clamping: rl.rlim_cur)
    }

    /// A loopback port that was free a moment ago (for programs that need a port number).
    static func freePort() -> UInt16 {
        let l = loopbackListener()
        close(l.fd)
        return l.port
    }

    /// Connects to 127.0.0.1:port, retrying while it is refused (a server starting up).
    static func connectWhenReady(port: UInt16, timeout: Double) throws -> Socket {
        let end = Deadline.after(.milliseconds(Int(timeout * 1000)))
        while true {
            do { return try Socket.connect(host: "127.0.0.1", port: port) } catch let e as SocketError where e.errno == ECONNREFUSED {
                if Deadline.now.nanoseconds >= end.nanoseconds { throw e }
                try Green.sleep(for: .milliseconds(20))
            }
        }
    }

    // MARK: data

    /// Deterministic, position-dependent bytes for client `client`, message `message`.
    static func payload(client: Int, message: Int, size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var x = UInt32(truncatingIfNeeded: client &* 2_654_435_761 &+ message &* 40_503 &+ 1)
        for i in 0..<size {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5   // xorshift32
            out[i] = UInt8(truncatingIfNeeded: x)
        }
        return out
    }

    // MARK: SOCKS5

    /// SOCKS5 greeting (no authentication) and CONNECT to 127.0.0.1:port
    /// through the proxy connection `s`. Throws a description of what went wrong.
    static func socks5Connect(_ s: Socket, toLoopbackPort port: UInt16) throws {
        try s.writeAll([5, 1, 0])                          // version 5, one method: no auth
        let choice = try s.readExactly(2)
        guard choice == [5, 0] else { throw SocksError(step: "method selection", reply: choice) }
        try s.writeAll([5, 1, 0, 1, 127, 0, 0, 1, UInt8(port >> 8), UInt8(port & 0xff)])   // CONNECT IPv4
        let reply = try s.readExactly(10)                  // VER REP RSV ATYP=1 ADDR(4) PORT(2)
        guard reply[0] == 5, reply[1] == 0, reply[3] == 1 else { throw SocksError(step: "connect", reply: reply) }
    }

    struct SocksError: Error, CustomStringConvertible {
        let step: String
        let reply: [UInt8]
        var description: String { "SOCKS5 \(step) refused: reply \(reply)" }
    }
}

extension XCTestCase {
    /// Runs the self-checking C program `program` of Tests/PreloadPrograms in
    /// each mode and checks its exit status, that its stdout contains every
    /// line of `expect`, and that no check printed FAIL.
    func checkPreloadProgram(_ program: String, _ arguments: [String] = [], library: String,
                             modes: [PreloadMode] = PreloadMode.allCases, status: Int32 = 0, expect: [String],
                             timeout: Double = 30, file: StaticString = #filePath, line: UInt = #line) throws {
        let binary = try Preload.program(program, for: self)
        for mode in modes {
            let r = try Preload.run(binary, arguments, environment: mode.environment(library: library), timeout: timeout)
            let what = "\(([program] + arguments).joined(separator: " ")) [\(mode.rawValue)]"
            XCTAssertTrue(!r.signaled && !r.timedOut && r.status == status,
                          "\(what): expected exit status \(status), got \(r)", file: file, line: line)
            let lines = Set(r.stdout.split(separator: "\n").map(String.init))
            for e in expect where !lines.contains(e) {
                XCTFail("\(what): missing output line \"\(e)\"; \(r)", file: file, line: line)
            }
            XCTAssertFalse(r.stdout.contains("FAIL"), "\(what): a check failed: \(r)", file: file, line: line)
        }
    }
}
