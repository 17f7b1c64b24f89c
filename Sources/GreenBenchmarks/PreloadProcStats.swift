// PreloadProcStats.swift — what the preload section reads about a server
// process from /proc, and how it counts the server's memory: resident memory
// plus the kernel stacks of its threads (which VmRSS does not include).
import Glibc

/// One look at a process: /proc/PID/status and /proc/PID/stat, plus the
/// system-wide kernel stack total at the same moment.
struct ProcessSnapshot {
    /// Resident memory (VmRSS), bytes.
    var rss = 0
    /// OS threads ("Threads:").
    var threads = 0
    /// User + system CPU time, in clock ticks (utime + stime of /proc/PID/stat).
    var cpuTicks = 0
    /// KernelStack of /proc/meminfo: every thread of every process, bytes.
    var systemKernelStack = 0

    /// Read it now; throws if the process is gone (its /proc files are empty).
    static func take(_ pid: pid_t) throws -> ProcessSnapshot {
        var s = ProcessSnapshot()
        s.systemKernelStack = kernelStackBytes()
        let status = readSmallFile("/proc/\(pid)/status")
        for line in status.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") { s.rss = (Int(line.dropFirst(6).filter(\.isNumber)) ?? 0) * 1024 }
            if line.hasPrefix("Threads:") { s.threads = Int(line.dropFirst(8).filter(\.isNumber)) ?? 0 }
        }
        s.cpuTicks = cpuTicks(pid)
        guard s.rss > 0, s.threads > 0, s.cpuTicks >= 0 else {
            throw BenchError("process \(pid) has gone (no /proc/\(pid)/status)")
        }
        return s
    }

    /// utime + stime from /proc/PID/stat, in ticks (-1 if unreadable). The
    /// command name may hold spaces and parentheses, so fields are counted
    /// after its last ")": state is field 3, utime 14, stime 15.
    static func cpuTicks(_ pid: pid_t) -> Int {
        let stat = readSmallFile("/proc/\(pid)/stat")
        guard let close = stat.lastIndex(of: ")") else { return -1 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return -1 }
        return user + system
    }

    /// CPU seconds from a tick count.
    static func seconds(ticks: Int) -> Double { Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) }
}

/// A server's memory at one moment: VmRSS plus its threads' kernel stacks,
/// the latter measured or estimated (see `init`).
struct ServerMemory {
    /// What one thread's kernel stack takes on x86_64 and aarch64 (THREAD_SIZE).
    static let kernelStackPerThread = 16 * 1024

    let rss: Int
    let threads: Int
    /// Kernel stacks of all the server's threads, bytes.
    let kernelStack: Int
    /// threads × 16 KiB, whatever was used.
    let estimatedKernelStack: Int
    /// The system-wide KernelStack change since `before`, bytes (may be noise).
    let measuredDelta: Int
    /// True if `kernelStack` comes from the measured delta, false if from the estimate.
    let measured: Bool

    var total: Int { rss + kernelStack }

    /// The server's memory in `now`, given `before` (taken when the server
    /// listened and had no connection yet). Kernel stacks are measured as the
    /// change of the system-wide KernelStack, plus 16 KiB for each thread the
    /// server already had (no delta can see those). The measured figure is
    /// used if the server gained at least 10 threads and the delta is within
    /// half to twice the 16 KiB-per-new-thread estimate; otherwise (a fiber
    /// server gains no threads, so its delta is only other processes' noise)
    /// the estimate threads × 16 KiB is used.
    init(before: ProcessSnapshot, now: ProcessSnapshot) {
        rss = now.rss
        threads = now.threads
        let per = ServerMemory.kernelStackPerThread
        estimatedKernelStack = now.threads * per
        measuredDelta = now.systemKernelStack - before.systemKernelStack
        let newThreads = now.threads - before.threads
        let expectedDelta = newThreads * per
        let plausible = newThreads >= 10 && measuredDelta * 2 >= expectedDelta && measuredDelta <= expectedDelta * 2
        measured = plausible
        kernelStack = plausible ? measuredDelta + before.threads * per : estimatedKernelStack
    }

    /// "measured" or "estimate", for the tables.
    var source: String { measured ? "measured" : "estimate" }
}

/// Bytes as MiB with one decimal.
func mib(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) }
