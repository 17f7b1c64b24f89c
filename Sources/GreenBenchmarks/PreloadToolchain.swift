// PreloadToolchain.swift — what the preload section needs before it can
// measure: the package's source tree, an up-to-date libgreen-preload.so, and
// the C programs of Examples/ThreadPerConnection compiled into a temporary
// directory (`cc -O2 -pthread`).
import Glibc
import Green

struct PreloadToolchain {
    /// The package root (holds Package.swift).
    let packageRoot: String
    /// Absolute path of libgreen-preload.so.
    let preloadLibrary: String
    /// The temporary directory with the compiled programs.
    let workDirectory: String

    /// Find the sources, build or find the preload library, make the
    /// temporary directory. Prints what it does.
    static func prepare() throws -> PreloadToolchain {
        let root = try findPackageRoot()
        let library = try preloadLibrary(packageRoot: root)
        var template = Array("/tmp/green-bench-preload-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw BenchError("mkdtemp: \(String(cString: strerror(errno)))") }
        return PreloadToolchain(packageRoot: root, preloadLibrary: library, workDirectory: String(cString: dir))
    }

    /// Compile Examples/ThreadPerConnection/`name`.c into the temporary
    /// directory; returns the executable's path.
    func compile(_ name: String) throws -> String {
        let source = "\(packageRoot)/Examples/ThreadPerConnection/\(name).c"
        guard access(source, R_OK) == 0 else { throw BenchError("missing \(source)") }
        let output = "\(workDirectory)/\(name)"
        let cc = try ChildProcess(["cc", "-O2", "-pthread", "-o", output, source],
                                  environment: ChildProcess.environment(adding: []), label: "cc \(name).c")
        _ = try cc.readAll(until: .after(.seconds(120)))
        let status = try cc.wait(until: .after(.seconds(120)))
        guard status == 0 else { throw BenchError("cc -O2 -pthread \(source) failed: \(ChildProcess.describe(status))") }
        return output
    }

    /// Delete the temporary directory and the programs in it.
    func removeWorkDirectory() {
        for name in ["echo_server", "create_join", "switch_round_trip"] { unlink("\(workDirectory)/\(name)") }
        rmdir(workDirectory)
    }

    /// The directory holding Package.swift: the current directory if it is
    /// this package, else the tree this file was compiled from.
    static func findPackageRoot() throws -> String {
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let here = getcwd(&cwd, cwd.count).map { String(cString: $0) } ?? "."
        var compiled = #filePath
        for _ in 0..<3 { compiled = dirname(compiled) }   // …/Sources/GreenBenchmarks/X.swift → root
        for candidate in [here, compiled] where access("\(candidate)/Package.swift", R_OK) == 0
            && access("\(candidate)/Sources/GreenBenchmarks", R_OK) == 0 {
            return candidate
        }
        throw BenchError("cannot find the Green package sources (run from the package directory)")
    }

    /// libgreen-preload.so: `$GREEN_PRELOAD` if set; else the one next to
    /// this executable, first brought up to date with
    /// `swift build -c release --scratch-path <this build's scratch path> --product green-preload`
    /// (`swift run green-bench` builds only green-bench's own dependencies).
    static func preloadLibrary(packageRoot: String) throws -> String {
        if let path = getenv("GREEN_PRELOAD").map({ String(cString: $0) }), !path.isEmpty {
            guard access(path, R_OK) == 0 else { throw BenchError("GREEN_PRELOAD=\(path): no such file") }
            print("preload library: \(path) (from GREEN_PRELOAD)")
            return path
        }
        let binDir = dirname(Memory.selfExecutable())           // <scratch>/<triple>/release
        let library = "\(binDir)/libgreen-preload.so"
        let scratch = dirname(dirname(binDir))
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        if access("\(scratch)/build.db", R_OK) == 0 {
            let args = ["swift", "build", "-c", configuration, "--package-path", packageRoot,
                        "--scratch-path", scratch, "--product", "green-preload"]
            print("building the preload library: \(args.joined(separator: " "))")
            fflush(stdout)
            do {
                let build = try ChildProcess(args, environment: ChildProcess.environment(adding: []), label: "swift build")
                let output = try build.readAll(until: .after(.seconds(900)))
                let status = try build.wait(until: .after(.seconds(60)))
                if status != 0 { throw BenchError("swift build failed (\(ChildProcess.describe(status))):\n\(output)") }
            } catch let error as BenchError where access(library, R_OK) == 0 {
                print("warning: \(error); using the existing \(library), which may be out of date")
            }
        }
        guard access(library, R_OK) == 0 else {
            throw BenchError("no \(library): build it with `swift build -c release --scratch-path .build-bench` "
                             + "or set GREEN_PRELOAD")
        }
        print("preload library: \(library)")
        return library
    }

    /// A path without its last component ("/a/b" → "/a").
    static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
