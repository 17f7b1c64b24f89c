import Foundation

/// The 1-, 5- and 15-minute load averages as /proc/loadavg gives them
/// ("0.34 0.77 4.41"): a reading above the CPU count means other work shared
/// the machine and the numbers are noisy.
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
