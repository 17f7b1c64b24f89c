/// What `green run` was asked to do.
struct RunOptions {
    /// How the preload library treats pthreads (`GREEN_THREADS`).
    enum Threads: String {
        /// Every pthread becomes a fiber on the main thread's hub.
        case fiber
        /// pthreads stay OS threads.
        case native
    }

    /// `--threads`: fibers by default, as the preload library assumes.
    var threads = Threads.fiber
    /// Default stack size in bytes (`GREEN_STACK_SIZE`), only when given.
    var stackSize: Int?
    /// `--hubs`: how many hubs run the fiber threads (`GREEN_HUBS`), only
    /// when given: a number from 1 to 64, or `cpus` (the CPUs the process may run on).
    var hubs: String?
    /// Whether the preload library logs to stderr (`GREEN_DEBUG=1`).
    var debug = false
    /// `green run --help`: print the usage instead of running anything.
    var wantsHelp = false
    /// The program to exec (searched in PATH when it has no slash).
    var program = ""
    /// Its arguments, after the program name.
    var programArguments: [String] = []

    /// Parses the arguments after `run`. Options come first, as `--name=value`
    /// or `--name value`; everything after `--`, or from the first argument
    /// that is not an option, belongs to the program.
    static func parse(_ arguments: [String]) throws -> RunOptions {
        var options = RunOptions()
        var index = 0
        /// The value of an option, from `--name=value` or the next argument.
        func value(of name: String, inline: String?) throws -> String {
            if let inline { return inline }
            index += 1
            guard index < arguments.count else { throw UsageError(message: "\(name) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                index += 1
                break
            }
            guard argument.hasPrefix("-") else { break }
            let name: String, inline: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
                inline = nil
            }
            switch name {
            case "--threads":
                let text = try value(of: name, inline: inline)
                guard let threads = Threads(rawValue: text) else {
                    throw UsageError(message: "--threads expects fiber or native, not '\(text)'")
                }
                options.threads = threads
            case "--stack-size":
                let text = try value(of: name, inline: inline)
                guard let size = parseByteSize(text) else {
                    throw UsageError(message: "--stack-size: '\(text)' is not a size greater than 0 and at most 1g (bytes, or with a k, m or g suffix)")
                }
                options.stackSize = size
            case "--hubs":
                let text = try value(of: name, inline: inline)
                guard text == "cpus" || (Int(text).map { (1...64).contains($0) } ?? false) else {
                    throw UsageError(message: "--hubs expects a number from 1 to 64, or cpus, not '\(text)'")
                }
                options.hubs = text
            case "--debug" where inline == nil:
                options.debug = true
            case "--help" where inline == nil, "-h" where inline == nil:
                options.wantsHelp = true
                return options
            default:
                throw UsageError(message: "unknown option '\(argument)'")
            }
            index += 1
        }
        guard index < arguments.count else { throw UsageError(message: "run: no program given") }
        options.program = arguments[index]
        options.programArguments = Array(arguments[(index + 1)...])
        return options
    }
}
