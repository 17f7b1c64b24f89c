import Glibc

/// The launcher's version, printed by `green version`.
let greenVersion = "0.1.0"

/// The usage text printed by `green --help` and after every usage error.
let usageText = """
    green run [options] [--] PROGRAM [ARGS...]
      --threads=fiber|native   pthreads become fibers on one hub (default) or stay OS threads
      --stack-size=SIZE        default stack for threads that do not set one (bytes, or 64k, 1m, …)
      --debug                  the preload library logs what it does to stderr
    green --help | green version
    """

/// A mistake in the command line: reported with the usage, exit status 2.
struct UsageError: Error {
    /// One line saying what was wrong, without the "green: " prefix.
    let message: String
}

/// Prints the usage to standard output (for `--help`).
func printUsage() {
    print(usageText)
}

/// Writes `text` to standard error unbuffered, so nothing is lost when the
/// process exits or execs right after.
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

/// Reports a usage error and the usage on standard error; exits with 2.
func exitWithUsageError(_ message: String) -> Never {
    writeToStandardError("green: \(message)\n\(usageText)\n")
    exit(2)
}

/// Reports a failure (one line on standard error) and exits with `status`.
func exitWithFailure(_ message: String, status: Int32) -> Never {
    writeToStandardError("green: \(message)\n")
    exit(status)
}
