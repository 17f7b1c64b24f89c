import Foundation
import Glibc
import XCTest
@testable import Green

/// Finding hangs under the preload library: the fiber dump (GREEN_DUMP_SIGNAL)
/// and the blocking monitor (GREEN_MONITOR_MS), both printed by the library's
/// own monitor thread, for the hangs where the hub never runs again — a fiber
/// thread that spins without making any call (Tests/PreloadPrograms/spin_dump.c)
/// — and where the program blocks every signal on its one OS thread. Plus the
/// dump's safety: taken over and over while threads come and go, it never
/// crashes the program (dump_churn.c).
///
/// No wall-clock thresholds: a hung child is waited on (for its output, with
/// a generous deadline) and then killed.
final class DiagnosisTests: XCTestCase {
    var library = ""

    override func setUpWithError() throws {
        library = try Preload.library(for: self)
        // Another test class may have removed the scratch directory at its end.
        try? FileManager.default.createDirectory(at: Preload.scratch, withIntermediateDirectories: true)
    }

    /// Waits until the child's stderr contains every one of `needles` (or it
    /// exits, or `timeout` passes); returns whether it did.
    func waitForStderr(_ child: Preload.Child, containing needles: [String], timeout: Double = 30) throws -> Bool {
        let end = Deadline.after(.milliseconds(Int(timeout * 1000)))
        while Deadline.now.nanoseconds < end.nanoseconds {
            let text = child.stderr
            if needles.allSatisfy({ text.contains($0) }) { return true }
            if !child.process.isRunning { return needles.allSatisfy { child.stderr.contains($0) } }
            try Green.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Starts spin_dump in fiber mode with `environment`; returns once its spinner spins.
    func startSpinner(_ arguments: [String], environment extra: [String: String]) throws -> Preload.Child {
        let binary = try Preload.program("spin_dump", for: self)
        var env = PreloadMode.fiber.environment(library: library)
        for (k, v) in extra { env[k] = v }
        let child = try Preload.Child(binary, arguments, environment: env)
        guard try child.waitForLine(startingWith: "spinning", timeout: 30) != nil else {
            kill(child.pid, SIGKILL)
            XCTFail("spin_dump did not start spinning: \(child.wait(timeout: 10))")
            throw TestError(code: -3)
        }
        return child
    }

    /// The dump lines of `stderr`: the spinner runs, main waits for it, the setter's sleep never ends.
    func assertDumpShowsTheSpinner(_ r: ProgramResult, file: StaticString = #filePath, line: UInt = #line) {
        let lines = r.stderr.split(separator: "\n")
        XCTAssertTrue(r.stderr.contains("fiber dump: 3 fiber(s)"), "\(r)", file: file, line: line)
        XCTAssertTrue(lines.contains { $0.contains("#0 main") && $0.contains("parked") && $0.contains("on pthread_join") },
                      "\(r)", file: file, line: line)
        XCTAssertTrue(lines.contains { $0.contains(" spinner ") && $0.hasSuffix("running") }, "\(r)", file: file, line: line)
        XCTAssertTrue(lines.contains { $0.contains(" setter ") && $0.contains("on sleep") }, "\(r)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("running now: spinner (fiber #"), "\(r)", file: file, line: line)
    }

    // MARK: the program itself

    /// spin_dump is a correct program: natively (and with OS threads under
    /// the preload) the setter ends the spin after 200 ms.
    func testSpinDumpFinishesWithOSThreads() throws {
        try checkPreloadProgram("spin_dump", library: library, modes: [.plain, .native],
                                expect: ["spinning", "spin_dump: all checks passed"])
        try checkPreloadProgram("spin_dump", ["block"], library: library, modes: [.plain, .native],
                                expect: ["spinning", "spin_dump: all checks passed"])
    }

    // MARK: the fiber dump, printed by the monitor thread

    /// A fiber thread spins: the hub never runs again, yet the dump comes out
    /// (the signal's handler only wakes the monitor thread, which prints it).
    func testDumpSignalPrintsWhileAFiberThreadSpins() throws {
        let child = try startSpinner([], environment: ["GREEN_DUMP_SIGNAL": "USR2"])
        kill(child.pid, SIGUSR2)
        let printed = try waitForStderr(child, containing: ["fiber dump:", "running now:"])
        kill(child.pid, SIGKILL)
        let r = child.wait(timeout: 10)
        XCTAssertTrue(printed, "no fiber dump after SIGUSR2: \(r)")
        XCTAssertTrue(r.signaled && r.status == SIGKILL, "it spins until killed: \(r)")
        assertDumpShowsTheSpinner(r)
    }

    /// The program blocked every signal (but the watchdog's) on its one OS
    /// thread: the kernel hands the dump signal to the monitor thread instead.
    func testDumpSignalPrintsWhenTheProgramBlocksIt() throws {
        let child = try startSpinner(["block"], environment: ["GREEN_DUMP_SIGNAL": "USR2"])
        kill(child.pid, SIGUSR2)
        let printed = try waitForStderr(child, containing: ["fiber dump:", "running now:"])
        kill(child.pid, SIGKILL)
        let r = child.wait(timeout: 10)
        XCTAssertTrue(printed, "no fiber dump after SIGUSR2: \(r)")
        assertDumpShowsTheSpinner(r)
    }

    /// Every signal prints one dump, and the program is undisturbed by them.
    func testDumpSignalRepeatsAndThenTheProgramGoesOn() throws {
        let binary = try Preload.program("dump_target", for: self)
        var env = PreloadMode.fiber.environment(library: library)
        env["GREEN_DUMP_SIGNAL"] = "SIGUSR1"
        let child = try Preload.Child(binary, [], environment: env)
        XCTAssertNotNil(try child.waitForLine(startingWith: "ready", timeout: 30), child.stdout)
        kill(child.pid, SIGUSR1)
        XCTAssertTrue(try waitForStderr(child, containing: ["fiber dump:"]), child.stderr)
        kill(child.pid, SIGUSR1)
        let r = child.wait(timeout: 30)
        XCTAssertTrue(!r.signaled && r.status == 0, "\(r)")
        XCTAssertTrue(r.stdout.contains("dump_target: all checks passed"), "\(r)")
        XCTAssertEqual(r.stderr.components(separatedBy: "fiber dump: 3 fiber(s)").count - 1, 2, "\(r)")
        XCTAssertTrue(r.stderr.contains("the hub is waiting in its loop"), "\(r)")
    }

    /// Dumps taken over and over while threads start and end (their stacks
    /// unmapped under the reader) never crash the program or upset its results.
    func testDumpsWhileThreadsComeAndGoNeverCrash() throws {
        let binary = try Preload.program("dump_churn", for: self)
        var env = PreloadMode.fiber.environment(library: library)
        env["GREEN_DUMP_SIGNAL"] = "USR2"
        let child = try Preload.Child(binary, ["2"], environment: env)
        XCTAssertNotNil(try child.waitForLine(startingWith: "churning", timeout: 30), child.stdout)
        var sent = 0
        while child.process.isRunning && sent < 2000 {
            kill(child.pid, SIGUSR2)
            sent += 1
            usleep(2000)
        }
        let r = child.wait(timeout: 60)
        XCTAssertTrue(!r.signaled && !r.timedOut && r.status == 0, "\(r.stdout)\n\(r.stderr.suffix(3000))")
        XCTAssertTrue(r.stdout.contains("dump_churn: all checks passed"), r.stdout)
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
        XCTAssertTrue(r.stderr.contains("fiber dump:"), "\(sent) signals sent, no dump: \(r.stderr.suffix(3000))")
    }

    // MARK: the blocking monitor names the spinning fiber thread

    /// GREEN_MONITOR_MS: the report names the spinning thread by its pthread
    /// name and fiber id, shows its backtrace (a frame in the program) and the
    /// fiber dump.
    func testMonitorNamesTheSpinningFiberThread() throws {
        // Preemption off: it would give the others their turns, and the hub would never stall.
        let child = try startSpinner([], environment: ["GREEN_MONITOR_MS": "100", "GREEN_PREEMPT": "0"])
        let printed = try waitForStderr(child, containing: ["blocking monitor:", "backtrace of the stalled hub's thread",
                                                            "running now:"])
        kill(child.pid, SIGKILL)
        let r = child.wait(timeout: 10)
        XCTAssertTrue(printed, "no stall report: \(r)")
        XCTAssertTrue(r.stderr.contains("has not switched fibers for"), "\(r)")
        XCTAssertTrue(r.stderr.contains("running: spinner (fiber #"), "\(r)")
        // A frame in spin_dump's own code (the spinner), as FILE(+OFFSET) for addr2line.
        let backtrace = r.stderr.components(separatedBy: "backtrace of the stalled hub's thread").last ?? ""
        XCTAssertTrue(backtrace.contains("spin_dump"), "\(r)")
        assertDumpShowsTheSpinner(r)
        XCTAssertEqual(r.stderr.components(separatedBy: "blocking monitor:").count - 1, 1, "one report per stall: \(r)")
    }

    /// The program blocks every signal: no backtrace can be had from its
    /// thread, and the report says so (and how to get one) instead of saying
    /// nothing; the name and the dump still come out.
    func testMonitorReportsASpinnerThatBlocksSignals() throws {
        let child = try startSpinner(["block"], environment: ["GREEN_MONITOR_MS": "100", "GREEN_PREEMPT": "0"])
        let printed = try waitForStderr(child, containing: ["blocking monitor:", "running now:"])
        kill(child.pid, SIGKILL)
        let r = child.wait(timeout: 10)
        XCTAssertTrue(printed, "no stall report: \(r)")
        XCTAssertTrue(r.stderr.contains("running: spinner (fiber #"), "\(r)")
        XCTAssertTrue(r.stderr.contains("no backtrace: OS thread"), "\(r)")
        XCTAssertTrue(r.stderr.contains("gdb -p \(child.pid)"), "\(r)")
        assertDumpShowsTheSpinner(r)
    }
}
