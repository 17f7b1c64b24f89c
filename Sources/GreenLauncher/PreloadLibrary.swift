import Glibc

/// The preload library's file name, as SwiftPM builds the `green-preload` product.
let preloadLibraryName = "libgreen-preload.so"

/// Where `green` installs the preload library, relative to its own directory
/// (`<prefix>/bin/green` finds `<prefix>/lib/green/libgreen-preload.so`).
let installedLibraryPath = "../lib/green/" + preloadLibraryName

/// The absolute, symlink-free path of the preload library: `$GREEN_PRELOAD`
/// when set, else `libgreen-preload.so` next to the real `green` executable
/// (SwiftPM builds both into the same directory), else where `green install`
/// puts it. Exits with 1 when missing.
func locatePreloadLibrary() -> String {
    guard let path = findPreloadLibrary() else {
        let candidates = preloadLibraryCandidates().joined(separator: " or ")
        exitWithFailure("cannot find the preload library at \(candidates); build it with 'swift build -c release' (or set GREEN_PRELOAD)", status: 1)
    }
    // ld.so splits LD_PRELOAD at colons and spaces; such a path cannot be carried.
    guard !path.contains(":"), !path.contains(" ") else {
        exitWithFailure("the preload library path \(path) contains a colon or space, which LD_PRELOAD cannot carry", status: 1)
    }
    return path
}

/// The first of the candidates that is a regular file, symlink-free; nil if none is.
func findPreloadLibrary() -> String? {
    for candidate in preloadLibraryCandidates() {
        if let path = realPath(candidate), isRegularFile(path) { return path }
    }
    return nil
}

/// Where the library is looked for, in order: `$GREEN_PRELOAD` alone when set
/// (an explicit choice must not silently fall back to another build).
func preloadLibraryCandidates() -> [String] {
    if let override = environmentValue("GREEN_PRELOAD"), !override.isEmpty { return [override] }
    let directory = executableDirectory()
    return [directory + "/" + preloadLibraryName, directory + "/" + installedLibraryPath]
}

/// The value of an environment variable, or nil when unset.
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// The directory of the running executable, or "." if unknown.
func executableDirectory() -> String {
    guard let exe = executablePath(), let slash = exe.lastIndex(of: "/") else { return "." }
    return slash == exe.startIndex ? "/" : String(exe[..<slash])
}

/// The running executable's path, from the kernel's /proc/self/exe (already
/// symlink-free), or nil if that cannot be read.
func executablePath() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The canonical absolute path of `path`, or nil when it does not exist.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Whether `path` names a regular file (after following symlinks).
func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}
