import Foundation
import XCTest
@testable import Green

/// Runs a program to completion and captures its output. stderr is drained
/// on another thread, so a child that fills one pipe while we read the
/// other cannot deadlock us.
func runProcess(_ executable: URL, _ args: [String], environment: [String: String], directory: URL? = nil)
    throws -> (status: Int32, reason: Process.TerminationReason, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    p.environment = environment
    if let directory { p.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    var e = Data()
    let drained = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        e = err.fileHandleForReading.readDataToEndOfFile()
        drained.signal()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    drained.wait()
    p.waitUntilExit()
    return (p.terminationStatus, p.terminationReason, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A file's text, read with Glibc ("" if unreadable): Foundation's file
/// reading leaks a buffer under LeakSanitizer.
func readTextFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Runs a helper binary (built next to the test bundle) and captures its output.
func runHelper(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, reason: Process.TerminationReason, stdout: String, stderr: String) {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var env = ProcessInfo.processInfo.environment
    // The Swift crash reporter would hold the helper's pipes open after a
    // deliberate crash; these tests read the runtime's own messages.
    env["SWIFT_BACKTRACE"] = "enable=no"
    for (k, v) in environment { env[k] = v }
    return try runProcess(exe.deletingLastPathComponent().appendingPathComponent("GreenTestHelper"), args, environment: env)
}

/// Milliseconds elapsed while running `body` (for overlap checks with generous bounds).
func elapsedMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Deadline.now
    try body()
    return Double(Deadline.now.nanoseconds - start.nanoseconds) / 1e6
}

struct TestError: Error, Equatable { let code: Int }

/// A TCP listener on 127.0.0.1 with a kernel-chosen port.
func loopbackListener() -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    listen(fd, 4096)
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) } }
    return (fd, UInt16(bigEndian: addr.sin_port))
}

/// Connect to 127.0.0.1:port; returns the fd, connect's result and errno.
func connectLoopback(_ port: UInt16) -> (fd: Int32, result: Int32, errno: Int32) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = port.bigEndian
    let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    return (fd, r, errno)
}
