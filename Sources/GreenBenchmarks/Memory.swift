// Memory.swift — section 3: resident memory per idle unit. Each contender is
// measured in a fresh child process (`green-bench --mem <kind>`) so that the
// others' allocations, pools and threads do not pollute the figure. The
// child prints one line of key=value pairs and exits at once.
import Glibc
import Green
import Synchronization

enum Memory {
    enum Kind: String, CaseIterable {
        case fibers, tasks, threads

        var units: Int {
            switch self {
            case .fibers: return 100_000
            case .tasks: return 100_000
            case .threads: return 2_000
            }
        }
    }

    /// What a child measured (bytes).
    struct Sample {
        var units = 0
        var rssBefore = 0, rssAfter = 0
        var kstackBefore = 0, kstackAfter = 0
        var pteBefore = 0, pteAfter = 0
        var settleMs = 0.0

        var rss: Int { rssAfter - rssBefore }
        var kstack: Int { kstackAfter - kstackBefore }
        var pte: Int { pteAfter - pteBefore }
        func perUnit(_ bytes: Int) -> Double { Double(bytes) / Double(units) / 1024 }

        var line: String {
            "units=\(units) rss_before=\(rssBefore) rss_after=\(rssAfter) kstack_before=\(kstackBefore) "
                + "kstack_after=\(kstackAfter) pte_before=\(pteBefore) pte_after=\(pteAfter) settle_ms=\(fixed(settleMs, 1))"
        }

        init() {}

        init?(parsing line: Substring) {
            var kv: [Substring: Substring] = [:]
            for pair in line.split(separator: " ") {
                let p = pair.split(separator: "=", maxSplits: 1)
                if p.count == 2 { kv[p[0]] = p[1] }
            }
            func int(_ k: Substring) -> Int? { kv[k].flatMap { Int($0) } }
            guard let u = int("units"), let rb = int("rss_before"), let ra = int("rss_after"),
                  let kb = int("kstack_before"), let ka = int("kstack_after"),
                  let pb = int("pte_before"), let pa = int("pte_after") else { return nil }
            units = u; rssBefore = rb; rssAfter = ra; kstackBefore = kb; kstackAfter = ka
            pteBefore = pb; pteAfter = pa
            settleMs = kv["settle_ms"].flatMap { Double($0) } ?? 0
        }

        mutating func snapshotBefore() {
            rssBefore = residentBytes(); kstackBefore = kernelStackBytes(); pteBefore = pageTableBytes()
        }

        mutating func snapshotAfter() {
            rssAfter = residentBytes(); kstackAfter = kernelStackBytes(); pteAfter = pageTableBytes()
        }
    }

    // MARK: Parent side

    static func run() {
        var results: [(Kind, Sample?)] = []
        for kind in Kind.allCases {
            results.append((kind, runChild(kind)))
        }
        let green = results.first { $0.0 == .fibers }?.1
        let base = green.map { $0.perUnit($0.rss + $0.kstack) } ?? .nan

        var t = Table("3. Resident memory per idle unit (each measured in its own child process)",
                      ["contender", "units", "RSS delta", "RSS / unit", "kernel stack / unit",
                       "total / unit", "page tables / unit", "vs Green"])
        for (kind, sample) in results {
            let (name, label): (String, String)
            switch kind {
            case .fibers: (name, label) = ("Green", "Green fibers in Green.sleep(1 h)")
            case .tasks: (name, label) = ("Task", "Swift Tasks in Task.sleep(1 h)")
            case .threads: (name, label) = ("Thread", "pthreads blocked on a condvar")
            }
            guard let s = sample else {
                t.add([label, grouped(kind.units), "child failed"])
                continue
            }
            let total = s.perUnit(s.rss + s.kstack)
            t.add([label, grouped(s.units),
                   fixed(Double(s.rss) / 1_048_576, 1) + " MiB",
                   fixed(s.perUnit(s.rss), 2) + " KiB",
                   fixed(s.perUnit(s.kstack), 2) + " KiB",
                   fixed(total, 2) + " KiB",
                   fixed(s.perUnit(s.pte), 2) + " KiB",
                   ratio(name, total, baseline: base)])
        }
        t.note("total = RSS delta (/proc/self/statm) + kernel stack delta (KernelStack in /proc/meminfo, "
               + "system-wide, so other activity on the machine adds noise).")
        t.note("page tables (VmPTE delta, /proc/self/status) are kernel memory too, shown apart and not in the total.")
        t.note("Each child keeps the fiber/task handles in an array (8 bytes per unit, included). Threads: default "
               + "attributes (stack \(SpawnJoin.defaultThreadStackKiB()) KiB reserved, only touched pages count).")
        t.print()
    }

    /// Re-execute this binary as `--mem <kind>` and parse its result line.
    static func runChild(_ kind: Kind) -> Sample? {
        let exe = selfExecutable()
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])

        let args = [exe, "--mem", kind.rawValue]
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, &cargs, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            fputs("green-bench: cannot start child: \(String(cString: strerror(rc)))\n", stderr)
            return nil
        }
        var output: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, 4096) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += buf[0..<n]
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        let sample = text.split(separator: "\n").first { $0.hasPrefix("units=") }.flatMap { Sample(parsing: $0) }
        if sample == nil {
            fputs("green-bench: child `--mem \(kind.rawValue)` gave no result (status \(status)); output:\n\(text)\n", stderr)
        }
        return sample
    }

    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, Int(PATH_MAX))
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Child side

    /// Runs in the child: measure, print one line, exit without cleanup.
    static func child(_ name: String) -> Never {
        guard let kind = Kind(rawValue: name) else {
            fputs("green-bench: unknown --mem kind \(name) (fibers, tasks, threads)\n", stderr)
            exit(2)
        }
        var s: Sample
        do {
            switch kind {
            case .fibers: s = try sleepingFibers(kind.units)
            case .tasks: s = sleepingTasks(kind.units)
            case .threads: s = blockedThreads(kind.units)
            }
        } catch {
            fputs("green-bench: --mem \(name) failed: \(error)\n", stderr)
            exit(1)
        }
        print(s.line)
        fflush(stdout)
        exit(0)
    }

    final class Counter { var value = 0 }

    static func sleepingFibers(_ n: Int) throws -> Sample {
        // Create the hub and one stack slab first: per-hub fixed costs are
        // not per-fiber costs.
        try Green.spawn { try Green.sleep(for: .milliseconds(1)) }.value
        var s = Sample()
        s.units = n
        var handles: [Fiber<Void>] = []
        handles.reserveCapacity(n)
        s.snapshotBefore()
        let started = Counter()
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n {
            handles.append(Green.spawn {
                started.value += 1
                try Green.sleep(for: .seconds(3600))
            })
        }
        // Main sleeping lets every ready fiber run up to its own park.
        while started.value < n { try Green.sleep(for: .milliseconds(10)) }
        s.settleMs = seconds(clock.now - t0) * 1000
        try Green.sleep(for: .milliseconds(50))
        let parked = handles.filter { $0.state == .parked }.count
        guard parked == n, Hub.current.liveFibers >= n else {
            fputs("green-bench: only \(parked) of \(n) fibers parked (liveFibers \(Hub.current.liveFibers))\n", stderr)
            exit(1)
        }
        s.snapshotAfter()
        withExtendedLifetime(handles) {}
        return s
    }

    static let startedTasks = Atomic<Int>(0)

    static func sleepingTasks(_ n: Int) -> Sample {
        // Start the global executor's worker threads first.
        runAsyncBlocking {
            await withTaskGroup(of: Void.self) { g in
                for _ in 0..<64 { g.addTask { try? await Task.sleep(for: .milliseconds(1)) } }
            }
        }
        var s = Sample()
        s.units = n
        var handles: [Task<Void, Never>] = []
        handles.reserveCapacity(n)
        s.snapshotBefore()
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n {
            handles.append(Task.detached {
                startedTasks.add(1, ordering: .relaxed)
                try? await Task.sleep(for: .seconds(3600))
            })
        }
        while startedTasks.load(ordering: .relaxed) < n { usleep(5_000) }
        s.settleMs = seconds(clock.now - t0) * 1000
        usleep(100_000) // the last ones get from the increment into their suspension
        s.snapshotAfter()
        withExtendedLifetime(handles) {}
        return s
    }

    final class Gate: @unchecked Sendable {
        let started = MonitorLock()
        var count = 0
        let release = MonitorLock()
    }

    static func blockedThreads(_ n: Int) -> Sample {
        // One thread first, so glibc's per-process thread setup is not counted.
        if let t = startThread({}) { joinThread(t) }
        var s = Sample()
        s.units = n
        var handles: [pthread_t] = []
        handles.reserveCapacity(n)
        let gate = Gate()
        s.snapshotBefore()
        let clock = ContinuousClock()
        let t0 = clock.now
        for i in 0..<n {
            var err: Int32 = 0
            guard let t = startThread(error: &err, {
                gate.started.withLock {
                    gate.count += 1
                    gate.started.signal()
                }
                gate.release.lock()
                while true { gate.release.wait() } // never released: the process exits
            }) else {
                fputs("green-bench: pthread_create #\(i) failed: \(String(cString: strerror(err)))\n", stderr)
                exit(1)
            }
            handles.append(t)
        }
        gate.started.lock()
        while gate.count < n { gate.started.wait() }
        gate.started.unlock()
        s.settleMs = seconds(clock.now - t0) * 1000
        usleep(100_000) // the last ones get from the count into pthread_cond_wait
        s.snapshotAfter()
        return s
    }
}
