// PreloadMachineLoad.swift — how busy the whole machine is, from the "cpu"
// line of /proc/stat, so the preload section can say how much CPU other
// processes took while it measured (the machine may be shared).
import Glibc
import Green

/// CPU time of all cores together, in clock ticks (USER_HZ).
struct MachineCPU {
    /// user + nice + system + irq + softirq.
    var busy = 0
    /// busy + idle + iowait.
    var total = 0

    /// The counters now (zeros if /proc/stat cannot be read).
    static func now() -> MachineCPU {
        guard let line = readSmallFile("/proc/stat").split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else {
            return MachineCPU()
        }
        let v = line.split(separator: " ").dropFirst().map { Int($0) ?? 0 }
        guard v.count >= 7 else { return MachineCPU() }
        // user nice system idle iowait irq softirq
        let busy = v[0] + v[1] + v[2] + v[5] + v[6]
        return MachineCPU(busy: busy, total: busy + v[3] + v[4])
    }

    /// Busy CPU seconds between `earlier` and `self`.
    func busySeconds(since earlier: MachineCPU) -> Double {
        ProcessSnapshot.seconds(ticks: busy - earlier.busy)
    }

    /// Print how busy the machine (all cores) was for `duration`, in
    /// percent, with a warning above `threshold` percent. Used before
    /// measuring, when nothing of ours runs.
    static func checkIdle(for duration: Duration = .seconds(1), threshold: Double = 10) throws {
        let before = now()
        try Green.sleep(for: duration)
        let after = now()
        let total = after.total - before.total
        guard total > 0 else { return }
        let percent = Double(after.busy - before.busy) / Double(total) * 100
        print("machine busy before the run: \(fixed(percent, 0))% of all cores")
        if percent > threshold {
            print("WARNING: other processes are using the CPU; throughput figures will be noisy "
                  + "(see the 'others' column)")
        }
    }
}
