import CGreenCore
import Glibc

extension Green {
    /// Start the blocking monitor (gevent's `monitor_thread`): a watchdog
    /// thread that notices when a hub with live fibers has not switched for
    /// `threshold` while not waiting in its loop, and prints to stderr which
    /// fiber was running and its thread's backtrace — to find the call that
    /// stalls everything (CPU-bound code that never parks, or a blocking call
    /// the shim cannot see). Also on with `GREEN_MONITOR_MS=<threshold>`.
    /// Calling it again changes the threshold.
    public static func startBlockingMonitor(threshold: Duration = .milliseconds(100)) {
        let rc = green_monitor_start(threshold.nanosecondsClamped)
        if rc != 0 { printToStandardError("green: cannot start the blocking monitor (error \(rc))\n") }
    }

    /// How many stalls the blocking monitor has reported.
    public static var blockingMonitorReports: Int { Int(green_monitor_reports()) }
}

/// `GREEN_MONITOR_MS=n` starts the monitor with the first hub.
let startMonitorFromEnvironmentOnce: Void = {
    if let v = getenv("GREEN_MONITOR_MS"), let ms = Int(String(cString: v)), ms > 0 {
        Green.startBlockingMonitor(threshold: .milliseconds(ms))
    }
}()
