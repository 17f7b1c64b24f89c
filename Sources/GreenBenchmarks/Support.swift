// Support.swift — timing, formatting, /proc readers and a tiny pthread helper
// shared by the benchmark sections.
import Glibc

// MARK: - Timing

/// Wall-clock seconds spent in `body` (ContinuousClock = CLOCK_MONOTONIC).
func measure(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return seconds(clock.now - start)
}

func seconds(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return Double(s) + Double(atto) * 1e-18
}

// MARK: - Formatting

/// `String(format:)` without Foundation: fixed decimals.
func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "n/a" }
    var buf = [CChar](repeating: 0, count: 64)
    _ = buf.withUnsafeMutableBufferPointer { p in
        withVaList([value]) { vsnprintf(p.baseAddress, 64, "%.\(decimals)f", $0) }
    }
    let text = String(cString: buf)
    // "-0.00" for a tiny negative delta reads like a bug; show it as zero.
    return text.hasPrefix("-") && text.allSatisfy({ "-0.".contains($0) }) ? String(text.dropFirst()) : text
}

/// 1234567 -> "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = Array(String(n.magnitude))
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}

/// A duration per operation, with a unit that keeps 3-4 significant digits.
func perOp(ns: Double) -> String {
    if ns >= 1_000_000 { return fixed(ns / 1_000_000, 2) + " ms" }
    if ns >= 10_000 { return fixed(ns / 1_000, 1) + " µs" }
    if ns >= 1_000 { return fixed(ns / 1_000, 2) + " µs" }
    return fixed(ns, 1) + " ns"
}

/// "Task/Green = 61.3x" (or "1.00x (baseline)" for Green itself).
func ratio(_ name: String, _ value: Double, baseline: Double) -> String {
    guard baseline > 0, value.isFinite else { return "" }
    if name == "Green" { return "baseline" }
    let r = value / baseline
    return "\(name)/Green = " + fixed(r, r >= 100 ? 0 : (r >= 10 ? 1 : 2)) + "x"
}

/// A plain text table: first column left-aligned, the others right-aligned.
struct Table {
    let title: String
    let headers: [String]
    var rows: [[String]] = []
    var notes: [String] = []

    init(_ title: String, _ headers: [String]) {
        self.title = title
        self.headers = headers
    }

    mutating func add(_ row: [String]) { rows.append(row) }
    mutating func note(_ line: String) { notes.append(line) }

    func render() -> String {
        var widths = headers.map { $0.count }
        for r in rows {
            for (i, cell) in r.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, w) in widths.enumerated() {
                let cell = i < cells.count ? cells[i] : ""
                let pad = String(repeating: " ", count: max(0, w - cell.count))
                parts.append(i == 0 ? cell + pad : pad + cell)
            }
            return "| " + parts.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        var out = "\n## \(title)\n\n" + line(headers) + "\n" + rule + "\n"
        for r in rows { out += line(r) + "\n" }
        for n in notes { out += "  " + n + "\n" }
        return out
    }

    func print() {
        Swift.print(render(), terminator: "")
        fflush(stdout)
    }
}

// MARK: - /proc

/// The whole content of a small file (e.g. under /proc), or "" on error.
func readSmallFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 8192) }
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Resident set size of this process in bytes (/proc/self/statm, field 2).
func residentBytes() -> Int {
    let fields = readSmallFile("/proc/self/statm").split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A "Key:   1234 kB" value from a /proc file, in bytes (-1 if missing).
func procKiB(_ path: String, _ key: String) -> Int {
    for line in readSmallFile(path).split(separator: "\n") where line.hasPrefix(key + ":") {
        let digits = line.dropFirst(key.count + 1).filter { $0.isNumber }
        return (Int(String(digits)) ?? -1) * 1024
    }
    return -1
}

/// System-wide kernel stacks (all threads of all processes), in bytes.
func kernelStackBytes() -> Int { procKiB("/proc/meminfo", "KernelStack") }
/// This process's page tables, in bytes.
func pageTableBytes() -> Int { procKiB("/proc/self/status", "VmPTE") }

/// First line of a command's standard output (for `uname -r`), via the
/// uname(2) syscall where possible.
func kernelRelease() -> String {
    var u = utsname()
    uname(&u)
    return withUnsafeBytes(of: &u.release) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}

// MARK: - pthreads

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// pthread_create with a Swift closure (default attributes). nil on failure
/// (errno-style code in `error`).
func startThread(stackSize: Int = 0, error: UnsafeMutablePointer<Int32>? = nil,
                 _ body: @escaping () -> Void) -> pthread_t? {
    let arg = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    if stackSize > 0 { pthread_attr_setstacksize(&attr, stackSize) }
    var tid = pthread_t()
    let rc = pthread_create(&tid, &attr, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, arg)
    if rc != 0 {
        Unmanaged<ThreadBody>.fromOpaque(arg).release()
        error?.pointee = rc
        return nil
    }
    return tid
}

func joinThread(_ t: pthread_t) { pthread_join(t, nil) }

/// A mutex + condition variable pair, heap-allocated so their addresses
/// never move (Swift may move struct properties of a class around inout).
final class MonitorLock {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func wait() { pthread_cond_wait(cond, mutex) }
    func signal() { pthread_cond_signal(cond) }
    func broadcast() { pthread_cond_broadcast(cond) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

// MARK: - Blocking on async work from synchronous main

/// Run `body` in a detached task and block this (non-task) thread until it
/// finishes. Never call from inside a task.
func runAsyncBlocking<T>(_ body: @escaping @Sendable () async -> T) -> T {
    let slot = BlockingSlot<T>()
    Task.detached {
        let v = await body()
        slot.done.withLock {
            slot.value = v
            slot.done.signal()
        }
    }
    slot.done.lock()
    while slot.value == nil { slot.done.wait() }
    slot.done.unlock()
    return slot.value!
}

private final class BlockingSlot<T>: @unchecked Sendable {
    var value: T?
    let done = MonitorLock()
}
