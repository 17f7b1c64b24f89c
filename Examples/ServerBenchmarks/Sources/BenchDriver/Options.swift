/// What to run and where the programs are, from the command line.
///
///     server-bench --bin DIR --green-http PATH --green PATH [--only echo|http|green-run] [--seconds S]
///                  [--http-seconds S] [--rounds N] [--sizes 1024,…] [--connections 10,…]
///                  [--port-base P] [--logs DIR]
struct Options {
    /// The directory with this package's release executables (echo-load, the servers).
    var binDirectory = ""
    /// The root package's `http-server` executable (Examples/HTTPServer).
    var greenHTTPServer = ""
    /// The root package's `green` launcher (with libgreen-preload.so beside it).
    var green = ""
    /// Run only this benchmark ("echo", "http" or "green-run"); nil runs all.
    var only: String?
    /// Measured seconds per echo cell (after a warm-up of `echoWarmup`).
    var echoSeconds = 2.5
    var echoWarmup = 0.5
    /// Seconds of each wrk run.
    var httpSeconds = 5
    /// Connections wrk keeps open.
    var httpConnections = 100
    /// Each measurement is taken this many times; the best requests/s is kept.
    var rounds = 1
    /// Echo message sizes in bytes and connection counts.
    var sizes = [1024, 10 * 1024, 100 * 1024]
    var connections = [10, 100, 1000]
    /// The first of the loopback ports the servers listen on.
    var portBase = 19_100
    /// Where the servers' output goes.
    var logDirectory = "/tmp"

    /// Parse `arguments` (without the program name); throws a usage message.
    static func parse(_ arguments: [String]) throws -> Options {
        var o = Options()
        var rest = arguments[...]
        /// The value after a flag.
        func value(_ flag: String) throws -> String {
            guard let v = rest.popFirst() else { throw BenchError("\(flag) needs a value") }
            return v
        }
        /// A comma-separated list of positive integers.
        func integers(_ flag: String) throws -> [Int] {
            let list = try value(flag).split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
            guard !list.isEmpty else { throw BenchError("\(flag) needs positive numbers separated by commas") }
            return list
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--bin": o.binDirectory = try value(flag)
            case "--green-http": o.greenHTTPServer = try value(flag)
            case "--green": o.green = try value(flag)
            case "--only": o.only = try value(flag)
            case "--seconds": o.echoSeconds = Double(try value(flag)) ?? o.echoSeconds
            case "--http-seconds": o.httpSeconds = Int(try value(flag)) ?? o.httpSeconds
            case "--rounds": o.rounds = max(1, Int(try value(flag)) ?? 1)
            case "--sizes": o.sizes = try integers(flag)
            case "--connections": o.connections = try integers(flag)
            case "--port-base": o.portBase = Int(try value(flag)) ?? o.portBase
            case "--logs": o.logDirectory = try value(flag)
            default: throw BenchError("unknown option \(flag)")
            }
        }
        guard !o.binDirectory.isEmpty else { throw BenchError("--bin DIR is required") }
        if o.runs("http") && o.greenHTTPServer.isEmpty { throw BenchError("--green-http PATH is required") }
        if o.runs("green-run") && o.green.isEmpty { throw BenchError("--green PATH is required") }
        if let only = o.only, !["echo", "http", "green-run"].contains(only) {
            throw BenchError("--only takes echo, http or green-run")
        }
        return o
    }

    /// Whether `benchmark` ("echo", "http", "green-run") is to run.
    func runs(_ benchmark: String) -> Bool { only == nil || only == benchmark }

    /// The path of one of this package's executables.
    func executable(_ name: String) -> String { binDirectory + "/" + name }
}

/// A failure that ends the benchmark, with the message to print.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
