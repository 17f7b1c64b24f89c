import Foundation

/// 123456.7 → "123,457".
func formatCount(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var out = ""
    for (i, c) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}

/// A ratio as "0.87×".
func formatRatio(_ value: Double) -> String { String(format: "%.2f×", value) }

/// A latency in microseconds as "0.42 ms" or "12.3 ms".
func formatLatency(_ microseconds: Double) -> String {
    let ms = microseconds / 1000
    return ms < 10 ? String(format: "%.2f ms", ms) : String(format: "%.1f ms", ms)
}

/// A CPU time per request in microseconds as "7.9 µs".
func formatMicros(_ microseconds: Double) -> String { String(format: "%.1f µs", microseconds) }

/// A message size: 1024 → "1 KiB".
func formatBytes(_ bytes: Int) -> String {
    bytes % 1024 == 0 ? "\(bytes / 1024) KiB" : "\(bytes) B"
}

/// The middle value (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let v = values.sorted()
    guard !v.isEmpty else { return .nan }
    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

/// The spread of some ratios as "0.91–1.07×".
func formatRange(_ values: [Double]) -> String {
    guard let lo = values.min(), let hi = values.max() else { return "" }
    return String(format: "%.2f–%.2f×", lo, hi)
}
