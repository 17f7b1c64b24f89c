import Foundation
import Glibc

/// One server under test: started (pinned, and killed with this driver if
/// it dies), waited for until it accepts connections, measured through
/// /proc, and stopped — SIGTERM, then SIGKILL if it lingers.
final class ServerProcess {
    let name: String
    let port: Int
    private let process = Process()
    private let logPath: String

    /// Start `executable arguments…` on `cpus`, its output going to a log
    /// file in `logDirectory`. Fails if something already listens on `port`
    /// (a stale server would be measured instead).
    init(name: String, executable: String, arguments: [String], port: Int, cpus: String?, logDirectory: String) throws {
        self.name = name
        self.port = port
        self.logPath = logDirectory + "/" + name.filter { $0.isLetter || $0.isNumber || $0 == "-" } + ".log"
        if canConnect(port: port) { throw BenchError("port \(port) is already in use: cannot start \(name)") }
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw BenchError("\(executable) is missing: build the package first (bash Examples/ServerBenchmarks/run)")
        }
        let argv = Placement.prefix(cpus: cpus) + [executable] + arguments
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The server's process id (setpriv and taskset exec it, keeping the id).
    var pid: Int32 { process.processIdentifier }

    /// Wait until the server accepts connections, at most `timeout` seconds.
    func waitUntilListening(timeout: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { throw BenchError("\(name) exited at start-up:\n\(logTail())") }
            if canConnect(port: port) { return }
            usleep(50_000)
        }
        throw BenchError("\(name) did not listen on port \(port) within \(Int(timeout)) s:\n\(logTail())")
    }

    /// CPU seconds the server has used so far (all threads); fails if it died.
    func cpuSeconds() throws -> Double {
        guard process.isRunning, let s = processCPUSeconds(pid: pid) else {
            throw BenchError("\(name) is no longer running:\n\(logTail())")
        }
        return s
    }

    /// Stop the server: SIGTERM, up to 3 s for it to exit, then SIGKILL.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The last lines the server printed, for error messages.
    func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

/// Whether a TCP connection to 127.0.0.1:port succeeds now.
func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = loopbackAddress(port: port)
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// 127.0.0.1:port.
func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return addr
}
