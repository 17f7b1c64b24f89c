// PreloadProcess.swift — child processes for the preload section: started
// with posix_spawn, an explicit environment and a pipe on stdout, and every
// wait on them bounded by a deadline. Live children are remembered so that a
// failed run (or Ctrl-C) never leaves a server behind.
import Glibc
import Green

/// A child process whose stdout this process reads through a pipe (stderr is
/// inherited, so its complaints reach the terminal).
final class ChildProcess {
    /// The child's process id.
    let pid: pid_t
    /// What the child is, for messages ("native echo_server", "cc").
    let label: String
    /// Read end of the child's stdout (-1 once closed).
    private var stdoutFD: Int32
    /// Bytes read from stdout but not yet returned as a line.
    private var pending: [UInt8] = []
    /// The wait status once the child has been reaped.
    private(set) var exitStatus: Int32?

    /// Children started and not reaped yet, killed by `killAll()`.
    private static var live: [pid_t: String] = [:]

    /// Start `arguments[0]` (looked up in PATH) with exactly `environment`
    /// ("KEY=value" strings). Throws if the spawn fails.
    init(_ arguments: [String], environment: [String], label: String) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }   // no other child inherits them
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)   // dup2 clears CLOEXEC on the child's stdout
        // The child starts with no signal blocked and default dispositions,
        // whatever this process's hub did to its own (libev watches signals).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cargs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for p in cargs { free(p) }
            for p in cenv { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, arguments[0], &actions, &attr, &cargs, &cenv)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw BenchError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        self.label = label
        stdoutFD = fds[0]
        ChildProcess.live[child] = label
    }

    deinit {
        kill()
        if stdoutFD >= 0 { close(stdoutFD) }
    }

    // MARK: stdout

    /// The next line of the child's stdout (without "\n"); nil at end of
    /// stream. Throws `BenchError` if no full line arrives before `deadline`.
    func readLine(until deadline: Deadline) throws -> String? {
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeFirst(nl + 1)
                return line
            }
            guard try readMore(until: deadline) else {
                if pending.isEmpty { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
        }
    }

    /// Everything the child writes to stdout until it closes it.
    func readAll(until deadline: Deadline) throws -> String {
        while try readMore(until: deadline) {}
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Append what is available on stdout to `pending`, waiting at most
    /// until `deadline`; false at end of stream.
    private func readMore(until deadline: Deadline) throws -> Bool {
        guard stdoutFD >= 0 else { return false }
        while true {
            let left = deadline.remaining
            let ms = Int32(clamping: max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            var p = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, ms)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { throw BenchError("\(label) (pid \(pid)) wrote nothing on stdout within its time limit") }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, 4096) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                close(stdoutFD)
                stdoutFD = -1
                return false
            }
            pending += buf[0..<n]
            return true
        }
    }

    // MARK: ending

    /// Whether the child is still running (reaps it if it has ended).
    var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            reaped(status)
            return false
        }
        return true
    }

    /// Wait for the child to end by itself; if it has not by `deadline`, kill
    /// it and throw. Returns the wait status.
    @discardableResult
    func wait(until deadline: Deadline) throws -> Int32 {
        while isRunning {
            if Deadline.now >= deadline {
                kill()
                throw BenchError("\(label) (pid \(pid)) did not finish within its time limit; killed")
            }
            usleep(5_000)
        }
        return exitStatus!
    }

    /// SIGKILL the child (if it still runs) and reap it, waiting at most 5 s.
    func kill() {
        guard exitStatus == nil else { return }
        Glibc.kill(pid, SIGKILL)
        let limit = Deadline.after(.seconds(5))
        while isRunning && Deadline.now < limit { usleep(2_000) }
        if exitStatus == nil { fputs("green-bench: \(label) (pid \(pid)) survived SIGKILL for 5 s\n", stderr) }
    }

    /// Record the wait status and forget the pid.
    private func reaped(_ status: Int32) {
        exitStatus = status
        ChildProcess.live[pid] = nil
    }

    /// "exited with status 3" / "killed by signal 11".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
    }

    /// SIGKILL every child not reaped yet (used when the run is interrupted).
    static func killAll() {
        for (pid, label) in live {
            Glibc.kill(pid, SIGKILL)
            fputs("green-bench: killed \(label) (pid \(pid))\n", stderr)
        }
        live.removeAll()
    }

    /// On SIGINT or SIGTERM: kill the children, run `cleanup`, exit with 130.
    /// (The handlers stay installed: a cancelled Green handler leaves libev's
    /// in place, which would make the signal do nothing.)
    static func killChildrenOnInterrupt(cleanup: @escaping () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            Green.onSignal(sig) {
                killAll()
                cleanup()
                fputs("green-bench: interrupted\n", stderr)
                exit(130)
            }
        }
    }

    /// This process's environment without LD_PRELOAD and GREEN_* variables,
    /// plus `extra` ("KEY=value"): what a child runs with.
    static func environment(adding extra: [String]) -> [String] {
        var out: [String] = []
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if !s.hasPrefix("LD_PRELOAD=") && !s.hasPrefix("GREEN_") { out.append(s) }
            p += 1
        }
        return out + extra
    }
}

/// An error of the preload section, with its message.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
