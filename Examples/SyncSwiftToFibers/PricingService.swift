// A stand-in for a remote service: a tiny HTTP/1.1 server on plain threads
// that answers GET /price/N with a price after a fixed delay. It runs in a
// process of its own (this program with --serve), which prints its port.
import Foundation

enum PricingService {
    /// Starts `self --serve` and reads the port it listens on.
    static func start() throws -> (port: UInt16, terminate: () -> Void) {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["--serve"]
        let out = Pipe()
        child.standardOutput = out
        try child.run()
        var line = ""
        while !line.hasSuffix("\n") {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line += String(decoding: byte, as: UTF8.self)
        }
        guard let port = UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return (port, { child.terminate(); child.waitUntilExit() })
    }

    /// The service itself: never returns.
    static func serve(answerAfter delay: Double) -> Never {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                precondition(bind(fd, $0, len) == 0 && listen(fd, 1024) == 0, "cannot listen on loopback")
                getsockname(fd, $0, &len)
            }
        }
        print(UInt16(bigEndian: addr.sin_port))
        fflush(stdout)
        while true {
            let c = accept(fd, nil, nil)
            if c >= 0 { Thread { answer(c, after: delay) }.start() }
        }
    }

    private static func answer(_ c: Int32, after delay: Double) {
        defer { close(c) }
        var request = [UInt8](repeating: 0, count: 4096)
        var got = 0
        while got < request.count {
            let n = read(c, &request[got], request.count - got)
            if n <= 0 { return }
            got += n
            if String(decoding: request[0..<got], as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let line = String(decoding: request[0..<got], as: UTF8.self).split(separator: " ").dropFirst().first ?? ""
        let item = Int(line.split(separator: "/").last ?? "") ?? 0
        Thread.sleep(forTimeInterval: delay)
        let body = "\(100 + item)"
        let reply = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = reply.withCString { write(c, $0, strlen($0)) }
    }
}

/// The process's OS threads now, from /proc/self/status.
func currentThreads() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }) else { return 0 }
    return Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
}

/// The most OS threads seen since the last reset, sampled every 10 ms by a thread of its own.
private let threadSampler = ThreadSampler()
func resetPeakThreads() { threadSampler.reset() }
func peakThreads() -> Int { threadSampler.peak }

private final class ThreadSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var highest = 0
    init() {
        Thread { [self] in
            while true {
                let n = currentThreads()
                lock.withLock { highest = max(highest, n) }
                usleep(10_000)
            }
        }.start()
    }
    func reset() { lock.withLock { highest = currentThreads() } }
    var peak: Int { lock.withLock { highest } }
}
