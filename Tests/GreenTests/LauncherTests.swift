import Foundation
import XCTest

/// The `green run` launcher, run as a subprocess: its usage and errors (exact
/// messages and exit statuses), and the environment it hands the program,
/// seen through `/usr/bin/env`.
final class LauncherTests: XCTestCase {
    /// The directory holding the test binary; SwiftPM builds `green` and
    /// `libgreen-preload.so` into the same one.
    let buildDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    /// The built `green` executable; missing means an incomplete build, which
    /// fails under CI and is skipped loudly elsewhere.
    func green() throws -> String {
        let path = buildDirectory.appendingPathComponent("green").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        try skipOrFail("the green executable is not built at \(path): run `swift build --product green` (or a full `swift build`)")
        return path
    }

    /// Fails under `CI=true`, otherwise skips with a visible message.
    func skipOrFail(_ message: String) throws {
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail(message)
            throw TestError(code: -1)
        }
        print("SKIPPING \(name): \(message)")
        throw XCTSkip(message)
    }

    /// A shared library that is harmless to preload into any program: one
    /// this process already maps (libm or libc), by its real path.
    func harmlessLibrary(_ prefix: String = "libm.so") throws -> String {
        // /proc files report size 0, so read to the end rather than by size.
        let data = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() ?? Data()
        let maps = String(decoding: data, as: UTF8.self)
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            if URL(fileURLWithPath: path).lastPathComponent.hasPrefix(prefix) {
                return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            }
        }
        throw XCTSkip("no \(prefix)* mapped in this process to use as a harmless preload")
    }

    /// The variables `green run` sets, parsed from `/usr/bin/env`'s output.
    func greenVariables(_ output: String) -> [String: String] {
        var variables: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals])
            if name == "LD_PRELOAD" || name.hasPrefix("GREEN_") {
                variables[name] = String(line[line.index(after: equals)...])
            }
        }
        return variables
    }

    // MARK: usage and errors

    func testHelpPrintsUsageAndEnvironment() throws {
        let green = try green()
        for flag in ["--help", "-h", "help"] {
            let r = try runLauncher(green, [flag])
            XCTAssertEqual(r.status, 0)
            XCTAssertEqual(r.stdout, launcherHelp + "\n")
            XCTAssertEqual(r.stderr, "")
        }
        let r = try runLauncher(green, ["run", "--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout, launcherHelp + "\n")
    }

    /// Every environment variable the preload library (Shims/, the C core) or
    /// the launcher reads is listed by `green --help`, found in their sources.
    func testHelpListsEveryEnvironmentVariableTheLibraryReads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var read = Set<String>()
        let pattern = try NSRegularExpression(pattern: #"(?:getenv|environmentValue)\("([A-Z0-9_]+)"\)"#)
        for directory in ["Shims", "Sources/CGreenCore", "Sources/GreenLauncher"] {
            let base = root.appendingPathComponent(directory)
            guard let files = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in files where ["c", "h", "swift"].contains(file.pathExtension) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    read.insert((text as NSString).substring(with: m.range(at: 1)))
                }
            }
        }
        // What the library is known to read must be found, or the scan is broken.
        for name in ["GREEN_THREADS", "GREEN_STACK_SIZE", "GREEN_DEBUG", "GREEN_DUMP_SIGNAL", "GREEN_MONITOR_MS",
                     "GREEN_PRELOAD"] {
            XCTAssertTrue(read.contains(name), "the scan of the sources did not find \(name): \(read.sorted())")
        }
        let help = try runLauncher(try green(), ["--help"]).stdout
        for name in read.sorted() {
            XCTAssertTrue(help.contains(name + "=") || help.contains(name + " "), "green --help does not list \(name)")
        }
    }

    func testVersion() throws {
        let r = try runLauncher(try green(), ["version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.hasPrefix("green "), r.stdout)
    }

    func testMissingLibraryExitsWith1() throws {
        let missing = "/nonexistent/green-\(getpid())/libgreen-preload.so"
        let r = try runLauncher(try green(), ["run", "/usr/bin/env"], environment: ["GREEN_PRELOAD": missing])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "green: cannot find the preload library at \(missing); build it with 'swift build -c release' (or set GREEN_PRELOAD)\n")
        XCTAssertEqual(r.stdout, "")
    }

    func testUsageErrorsExitWith2() throws {
        let green = try green()
        let library = try harmlessLibrary()
        let cases: [([String], String)] = [
            ([], "green: no command given"),
            (["launch"], "green: unknown command 'launch'"),
            (["run"], "green: run: no program given"),
            (["run", "--debug"], "green: run: no program given"),
            (["run", "--"], "green: run: no program given"),
            (["run", "--bogus", "/usr/bin/env"], "green: unknown option '--bogus'"),
            (["run", "--debug=yes", "/usr/bin/env"], "green: unknown option '--debug=yes'"),
            (["run", "--threads=green", "/usr/bin/env"], "green: --threads expects fiber or native, not 'green'"),
            (["run", "--threads"], "green: --threads needs a value"),
            (["run", "--stack-size"], "green: --stack-size needs a value"),
            (["run", "--hubs=0", "/usr/bin/env"], "green: --hubs expects a number from 1 to 64, or cpus, not '0'"),
            (["run", "--hubs=many", "/usr/bin/env"], "green: --hubs expects a number from 1 to 64, or cpus, not 'many'"),
        ]
        for (args, message) in cases {
            let r = try runLauncher(green, args, environment: ["GREEN_PRELOAD": library])
            XCTAssertEqual(r.status, 2, "\(args)")
            XCTAssertEqual(r.stderr, message + "\n" + launcherUsage + "\n", "\(args)")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
    }

    func testBadStackSizesExitWith2() throws {
        let green = try green()
        let library = try harmlessLibrary()
        for size in ["0", "", "-1", "+5", "1.5m", "12x", "k", "2g", "1025m", "1073741825", "99999999999999999999", "1mm"] {
            let r = try runLauncher(green, ["run", "--stack-size=\(size)", "/usr/bin/env"], environment: ["GREEN_PRELOAD": library])
            XCTAssertEqual(r.status, 2, size)
            XCTAssertTrue(r.stderr.hasPrefix("green: --stack-size: '\(size)' is not a size"), "\(size): \(r.stderr)")
        }
    }

    func testProgramNotFoundExitsWith127() throws {
        let r = try runLauncher(try green(), ["run", "green-no-such-program"], environment: ["GREEN_PRELOAD": try harmlessLibrary()])
        XCTAssertEqual(r.status, 127)
        XCTAssertEqual(r.stderr, "green: green-no-such-program: command not found\n")
        let path = try runLauncher(try green(), ["run", "/nonexistent/prog"], environment: ["GREEN_PRELOAD": try harmlessLibrary()])
        XCTAssertEqual(path.status, 127)
        XCTAssertEqual(path.stderr, "green: /nonexistent/prog: command not found\n")
    }

    func testNotExecutableExitsWith126() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("green-not-executable-\(getpid())")
        try "echo hi\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let r = try runLauncher(try green(), ["run", file.path], environment: ["GREEN_PRELOAD": try harmlessLibrary()])
        XCTAssertEqual(r.status, 126)
        XCTAssertEqual(r.stderr, "green: \(file.path): permission denied\n")
    }

    // MARK: the program's environment and status

    func testDefaultEnvironment() throws {
        let library = try harmlessLibrary()
        let r = try runLauncher(try green(), ["run", "env"], environment: ["GREEN_PRELOAD": library])
        XCTAssertEqual(r.status, 0, r.stderr)
        let vars = greenVariables(r.stdout)
        XCTAssertEqual(vars["LD_PRELOAD"], library)
        XCTAssertEqual(vars["GREEN_THREADS"], "fiber")
        XCTAssertNil(vars["GREEN_STACK_SIZE"])
        XCTAssertNil(vars["GREEN_HUBS"])
        XCTAssertNil(vars["GREEN_DEBUG"])
    }

    func testOptionsBecomeVariables() throws {
        let green = try green()
        let library = try harmlessLibrary()
        let forms: [[String]] = [
            ["--threads=native", "--stack-size=1m", "--hubs=4", "--debug"],
            ["--threads", "native", "--stack-size", "1M", "--hubs", "4", "--debug"],
            ["--debug", "--hubs=4", "--stack-size", "1024k", "--threads", "native", "--"],
        ]
        for options in forms {
            let r = try runLauncher(green, ["run"] + options + ["/usr/bin/env"], environment: ["GREEN_PRELOAD": library])
            XCTAssertEqual(r.status, 0, r.stderr)
            let vars = greenVariables(r.stdout)
            XCTAssertEqual(vars["LD_PRELOAD"], library, "\(options)")
            XCTAssertEqual(vars["GREEN_THREADS"], "native", "\(options)")
            XCTAssertEqual(vars["GREEN_STACK_SIZE"], "1048576", "\(options)")
            XCTAssertEqual(vars["GREEN_HUBS"], "4", "\(options)")
            XCTAssertEqual(vars["GREEN_DEBUG"], "1", "\(options)")
        }
        for (size, bytes) in [("65536", "65536"), ("64k", "65536"), ("64K", "65536"), ("1g", "1073741824"), ("1G", "1073741824")] {
            let r = try runLauncher(green, ["run", "--stack-size", size, "--threads=fiber", "/usr/bin/env"], environment: ["GREEN_PRELOAD": library])
            XCTAssertEqual(greenVariables(r.stdout)["GREEN_STACK_SIZE"], bytes, size)
            XCTAssertEqual(greenVariables(r.stdout)["GREEN_THREADS"], "fiber", size)
        }
    }

    func testPrependsToExistingPreloadWithoutDuplicates() throws {
        let green = try green()
        let library = try harmlessLibrary()
        let other = try harmlessLibrary("libc.so")
        let cases: [(existing: String, expected: String)] = [
            (other, "\(library):\(other)"),
            ("\(other):\(library)", "\(library):\(other)"),
            ("\(library) \(other)", "\(library):\(other)"),
            ("::\(other)::", "\(library):\(other)"),
            ("", library),
        ]
        for (existing, expected) in cases {
            let r = try runLauncher(green, ["run", "/usr/bin/env"], environment: ["GREEN_PRELOAD": library, "LD_PRELOAD": existing])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(greenVariables(r.stdout)["LD_PRELOAD"], expected, existing)
        }
    }

    func testRelativeLibraryPathBecomesAbsolute() throws {
        let library = URL(fileURLWithPath: try harmlessLibrary())
        let r = try runLauncher(try green(), ["run", "/usr/bin/env"], environment: ["GREEN_PRELOAD": library.lastPathComponent],
                                directory: library.deletingLastPathComponent())
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(greenVariables(r.stdout)["LD_PRELOAD"], library.path)
    }

    func testProgramArgumentsAndStatusPassThrough() throws {
        let green = try green()
        let library = try harmlessLibrary()
        let status = try runLauncher(green, ["run", "--", "sh", "-c", "exit 7"], environment: ["GREEN_PRELOAD": library])
        XCTAssertEqual(status.status, 7)
        XCTAssertEqual(status.stderr, "")
        // From the first non-option on, everything belongs to the program, options too.
        let args = try runLauncher(green, ["run", "sh", "-c", "printf '%s|' \"$@\"", "sh", "--threads=x", "--", "a b"],
                                   environment: ["GREEN_PRELOAD": library])
        XCTAssertEqual(args.status, 0, args.stderr)
        XCTAssertEqual(args.stdout, "--threads=x|--|a b|")
        // After `--`, even a dash-led name is the program.
        let dashed = try runLauncher(green, ["run", "--", "--not-a-program"], environment: ["GREEN_PRELOAD": library])
        XCTAssertEqual(dashed.status, 127)
        XCTAssertEqual(dashed.stderr, "green: --not-a-program: command not found\n")
    }

    /// Without GREEN_PRELOAD, the library next to the real `green` is used:
    /// the real preload library, so this also runs a program under it.
    func testFindsBuiltLibraryNextToExecutable() throws {
        if let sanitizer = ProcessInfo.processInfo.environment["GREEN_SANITIZER"] {
            // A sanitizer build's library needs the sanitizer's runtime loaded first.
            throw XCTSkip("the \(sanitizer)-sanitized preload library cannot be preloaded into plain programs")
        }
        let green = try green()
        let built = buildDirectory.appendingPathComponent("libgreen-preload.so").path
        guard FileManager.default.fileExists(atPath: built) else {
            print("SKIPPING \(name): \(built) is not built (the green-preload product)")
            throw XCTSkip("\(built) is not built")
        }
        let r = try runLauncher(green, ["run", "--threads=native", "/usr/bin/env"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(greenVariables(r.stdout)["LD_PRELOAD"], URL(fileURLWithPath: built).resolvingSymlinksInPath().path)
        XCTAssertEqual(greenVariables(r.stdout)["GREEN_THREADS"], "native")
        let status = try runLauncher(green, ["run", "sh", "-c", "exit 7"])
        XCTAssertEqual(status.status, 7, status.stderr)
    }
}

/// `green --help`'s text, as the launcher prints it.
let launcherUsage = """
    green run [options] [--] PROGRAM [ARGS...]
      --threads=fiber|native   pthreads become fibers (default) or stay OS threads
      --stack-size=SIZE        default stack for threads that do not set one (bytes, or 64k, 1m, …)
      --hubs=N|cpus            run the fiber threads on N hubs, each an OS thread of its own
                               (default cpus: one per CPU the process may run on;
                               1: every thread on the main thread's hub)
      --debug                  the preload library logs what it does to stderr
    green install [--prefix=DIR]   copy green and its library to DIR/bin and DIR/lib/green
                                   (default: /usr/local as root, else $HOME/.local)
    green uninstall [--prefix=DIR] remove exactly what install put there (default: the
                                   prefix this green is installed in)
    green version                  the version, and the paths and build of green and its library
    green --help
    """

/// `green --help`'s text: the usage, then the environment variables.
let launcherHelp = launcherUsage + """


    Environment, read by the preload library at start-up (also without green run,
    with LD_PRELOAD=.../libgreen-preload.so):
      GREEN_THREADS=fiber|native   what --threads sets (default: fiber)
      GREEN_STACK_SIZE=SIZE        what --stack-size sets (default: glibc's, ulimit -s)
      GREEN_HUBS=N|cpus            what --hubs sets (default: cpus)
      GREEN_DEBUG=1                what --debug sets
      GREEN_THREAD_TLS=shared      fiber threads share their hub thread's TLS (thread-local
                                   variables, errno, thread descriptor), as before Green
                                   gave each its own, on one hub unless GREEN_HUBS says
                                   otherwise; a way to tell whether a problem comes
                                   from per-thread TLS
      GREEN_THREAD_BLOCK_CLEAR=1   a thread made on an ended thread's stack clears all of
                                   its reused thread descriptor, not only what code
                                   writes (a way to tell whether a problem comes from that)
      GREEN_DUMP_SIGNAL=SIG        on signal SIG (USR1, USR2, HUP, QUIT or a number), print
                                   every fiber thread: state, what it waits in, for how long.
                                   An OS thread of the library prints it, so it comes out
                                   while a thread spins or the program blocks SIG too
      GREEN_MONITOR_MS=N           blocking monitor: when no thread has let the others run
                                   for N ms, name the one running, print its backtrace
                                   and the fiber dump
      GREEN_PREEMPT=0              no preemption: a thread that runs 10 ms without a call
                                   that waits keeps the CPU until it makes one (gevent's way)
      GREEN_HANDOFF=0              no hand-off: a thread blocked in a call no event loop can
                                   wait for (a file's read or write, fsync, flock) holds up
                                   the other threads of its hub until the call returns
      GREEN_NO_OVERFLOW_HANDLER=1  no SIGSEGV handler naming the thread whose stack overflowed
      GREEN_EXCLUSIVITY_HOOKS=0, GREEN_EXCLUSIVITY_SLOW_PATH=1
                                   Swift code only, for the runtime's tests: how Swift's
                                   exclusivity checks follow fiber switches
    Read by green itself:
      GREEN_PRELOAD=PATH           the preload library (default: libgreen-preload.so next
                                   to the green executable, else in ../lib/green/ from it)
      LD_PRELOAD                   kept, after the library
      HOME                         green install's prefix when not root: $HOME/.local
      PATH                         green install says so when the prefix's bin/ is not on it
    Which tool finds which hang: Sources/Green/Green.docc/DebuggingAStalledHub.md, "Troubleshooting green run".
    """

/// Runs `executable` with `args` and captures its output. The child gets this
/// process's environment without LD_PRELOAD and GREEN_* (so the caller's
/// settings cannot leak in), plus `environment`.
func runLauncher(_ executable: String, _ args: [String], environment: [String: String] = [:],
                 directory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    var env = ProcessInfo.processInfo.environment.filter { $0.key != "LD_PRELOAD" && !$0.key.hasPrefix("GREEN_") }
    for (k, v) in environment { env[k] = v }
    let r = try runProcess(URL(fileURLWithPath: executable), args, environment: env, directory: directory)
    return (r.status, r.stdout, r.stderr)
}
