import Foundation
import XCTest
@testable import Green

/// PreforkServer, driven in a helper process: children share the port,
/// a killed child is started again, SIGTERM drains in-flight connections.
final class PreforkTests: XCTestCase {
    /// The helper's output so far (it writes to a file we poll).
    private func lines(_ url: URL) -> [String] {
        readTextFile(url.path).split(separator: "\n").map(String.init)
    }

    /// Poll the helper's output until `predicate` holds (10 s at most).
    private func waitFor(_ url: URL, _ what: String, _ predicate: ([String]) -> Bool) throws {
        for _ in 0..<1000 {
            if predicate(lines(url)) { return }
            usleep(10_000)
        }
        XCTFail("timed out waiting for \(what); helper said:\n\(lines(url).joined(separator: "\n"))")
        throw XCTSkip("cannot go on")
    }

    /// One request on a fresh connection: the pid of the child that answered.
    private func ask(_ port: UInt16, _ request: String = "hi") throws -> pid_t {
        let fd = try connectWhenListening(port)
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let msg = Array((request + "\n").utf8)
        XCTAssertEqual(send(fd, msg, msg.count, Int32(MSG_NOSIGNAL)), msg.count)
        var reply: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 && byte != 10 { reply.append(byte) }
        return pid_t(String(decoding: reply, as: UTF8.self)) ?? -1
    }

    /// A connection to the port, retried while no child listens yet ("started"
    /// is said at fork, before the child has its listener). Sends then use
    /// MSG_NOSIGNAL: a SIGPIPE would end the whole test process.
    private func connectWhenListening(_ port: UInt16) throws -> Int32 {
        for _ in 0..<1000 {
            let (fd, rc, err) = connectLoopback(port)
            if rc == 0 { return fd }
            close(fd)
            guard err == ECONNREFUSED else {
                XCTFail("connect: \(String(cString: strerror(err)))")
                throw XCTSkip("cannot go on")
            }
            usleep(10_000)
        }
        XCTFail("no child listened on port \(port) within 10 s")
        throw XCTSkip("cannot go on")
    }

    private func startedPids(_ out: [String]) -> [Int: pid_t] {
        var pids: [Int: pid_t] = [:]
        for l in out where l.hasPrefix("started ") {
            let f = l.split(separator: " ")
            pids[Int(f[1])!] = pid_t(f[2])!
        }
        return pids
    }

    func testChildrenShareThePortRestartAndDrainOnSIGTERM() throws {
        if ProcessInfo.processInfo.environment["GREEN_SANITIZER"] == "thread" {
            throw XCTSkip("ThreadSanitizer does not support fork() in a multithreaded process")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prefork-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let out = dir.appendingPathComponent("out.txt")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let p = Process()
        p.executableURL = exe.deletingLastPathComponent().appendingPathComponent("GreenTestHelper")
        p.arguments = ["prefork"]
        p.standardOutput = try FileHandle(forWritingTo: out)
        // Not our stderr: a helper left behind must not hold the test runner's pipe open.
        let err = dir.appendingPathComponent("err.txt")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: err)
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        p.environment = env
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        try waitFor(out, "two children") { startedPids($0).count == 2 && $0.contains { $0.hasPrefix("port ") } }
        let port = UInt16(lines(out).first { $0.hasPrefix("port ") }!.dropFirst(5))!
        let first = startedPids(lines(out))

        // Both children take connections (40 all to one: odds 2^-39).
        var seen = Set<pid_t>()
        for _ in 0..<40 { seen.insert(try ask(port)) }
        XCTAssertEqual(seen, Set(first.values), "every answer comes from a child, and both answer")

        // A killed child is started again, and the new one serves.
        kill(first[0]!, SIGKILL)
        try waitFor(out, "child 0 restarted") { startedPids($0)[0] != first[0] }
        let replacement = startedPids(lines(out))[0]!
        var answered = false
        for _ in 0..<200 where !answered { answered = try ask(port) == replacement }
        XCTAssertTrue(answered, "the restarted child takes connections")

        // SIGTERM while a request is in flight: it is answered, then all end.
        let fd = try connectWhenListening(port)
        let slow = Array("slow\n".utf8)
        XCTAssertEqual(send(fd, slow, slow.count, Int32(MSG_NOSIGNAL)), slow.count)
        usleep(150_000) // the child has the request and sleeps on it
        kill(p.processIdentifier, SIGTERM)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var reply = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &reply, reply.count)
        XCTAssertGreaterThan(n, 1, "the in-flight request was answered during the drain")
        close(fd)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit)
        XCTAssertEqual(p.terminationStatus, 0)
        let final = lines(out)
        XCTAssertTrue(final.contains("parent done, restarts 1"), final.joined(separator: "\n"))
        let exits = final.filter { $0.hasPrefix("exited ") }
        XCTAssertEqual(exits.count, 3, "the killed child and both at the end")
        XCTAssertEqual(exits.suffix(2).map { $0.split(separator: " ")[3] }, ["0", "0"], "children drained and exited 0")
        for pid in startedPids(final).values { XCTAssertEqual(kill(pid, 0), -1, "child \(pid) is gone") }
    }
}
