import Foundation
import Glibc

/// What a finished client command left.
struct CommandResult {
    let status: Int32
    let output: String
    let errors: String
}

/// Run a client (the echo load generator or wrk) on `cpus` and wait for it,
/// at most `timeout` seconds: past that it is killed and the run fails.
/// Its output goes through temporary files, so a long one cannot block it.
func runClient(_ argv: [String], cpus: String?, timeout: Double) throws -> CommandResult {
    let full = Placement.prefix(cpus: cpus) + argv
    let dir = FileManager.default.temporaryDirectory.path
    let outPath = dir + "/server-bench-\(getpid())-out.txt", errPath = dir + "/server-bench-\(getpid())-err.txt"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { unlink(outPath); unlink(errPath) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: full[0])
    process.arguments = Array(full.dropFirst())
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw BenchError("\(argv.joined(separator: " ")) did not finish within \(Int(timeout)) s: killed")
    }
    return CommandResult(status: process.terminationStatus,
                         output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         errors: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}
