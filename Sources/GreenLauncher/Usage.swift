import Glibc

/// The usage text printed by `green --help` and after every usage error.
let usageText = """
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

/// `green --help`: the usage, then every environment variable the preload
/// library and the launcher read (each option above sets one of them), so
/// the settings that have no option are found here too.
let helpText = usageText + """


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

/// A mistake in the command line: reported with the usage, exit status 2.
struct UsageError: Error {
    /// One line saying what was wrong, without the "green: " prefix.
    let message: String
}

/// Prints the usage and the environment variables to standard output (for `--help`).
func printUsage() {
    print(helpText)
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
