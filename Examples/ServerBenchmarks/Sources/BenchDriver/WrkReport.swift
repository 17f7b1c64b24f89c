/// What one wrk run reported (wrk … --latency).
struct WrkReport {
    var requests = 0
    var requestsPerSecond = 0.0
    var p99Microseconds = 0.0
    /// "Non-2xx or 3xx responses" (absent from the output when zero).
    var non2xx = 0
    /// connect + read + write + timeout socket errors.
    var socketErrors = 0

    /// Parse wrk's text output; throws if the lines every run prints are missing.
    static func parse(_ text: String) throws -> WrkReport {
        var r = WrkReport()
        var sawRequests = false, sawRate = false, sawP99 = false
        for raw in text.split(separator: "\n") {
            let line = raw.trimmed(" \t")
            let words = line.split(separator: " ").map(String.init)
            if line.hasSuffix("read"), words.count > 2, words[1] == "requests", let n = Int(words[0]) {
                r.requests = n
                sawRequests = true
            } else if line.hasPrefix("Requests/sec:"), let v = words.last.flatMap(Double.init) {
                r.requestsPerSecond = v
                sawRate = true
            } else if words.first == "99%", words.count == 2, let us = microseconds(words[1]) {
                r.p99Microseconds = us
                sawP99 = true
            } else if line.hasPrefix("Non-2xx or 3xx responses:"), let n = words.last.flatMap(Int.init) {
                r.non2xx = n
            } else if line.hasPrefix("Socket errors:") {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                r.socketErrors = words.compactMap { Int($0.trimmed(",")) }.reduce(0, +)
            }
        }
        guard sawRequests, sawRate, sawP99 else { throw BenchError("unexpected wrk output:\n\(text)") }
        return r
    }

    /// wrk's duration text ("812.00us", "1.25ms", "2.00s", "1.00m") in microseconds.
    static func microseconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("us", 1), ("ms", 1e3), ("s", 1e6), ("m", 60e6), ("h", 3600e6)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let v = Double(text.dropLast(suffix.count)) { return v * scale }
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without the given characters at either end.
    func trimmed(_ set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
