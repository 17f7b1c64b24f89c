import Foundation
import XCTest
@testable import Green

/// Runs a helper binary (built next to the test bundle) and captures its output.
func runHelper(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, reason: Process.TerminationReason, stdout: String, stderr: String) {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let helper = exe.deletingLastPathComponent().appendingPathComponent("GreenTestHelper")
    let p = Process()
    p.executableURL = helper
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    // The Swift crash reporter would hold the helper's pipes open after a
    // deliberate crash; these tests read the runtime's own messages.
    env["SWIFT_BACKTRACE"] = "enable=no"
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, p.terminationReason, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Milliseconds elapsed while running `body` (for overlap checks with generous bounds).
func elapsedMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Deadline.now
    try body()
    return Double(Deadline.now.nanoseconds - start.nanoseconds) / 1e6
}

struct TestError: Error, Equatable { let code: Int }
