import Glibc

/// The whole content of the file at `path`, or nil when it cannot be read.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return bytes }
        bytes += chunk[..<n]
    }
}

/// A failure of `green install` or `green uninstall`: one line, exit status 1.
struct InstallError: Error {
    /// What went wrong, without the "green: " prefix.
    let message: String
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over
/// `path`: a program running from the old file keeps it (no "text file busy"),
/// and no reader ever sees half a file.
func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t) throws {
    let temporary = "\(path).tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw InstallError(message: "cannot create \(temporary): \(errorText())") }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
            let message = "cannot write \(temporary): \(errorText())"
            close(fd)
            unlink(temporary)
            throw InstallError(message: message)
        }
        offset += n
    }
    // open's mode is masked by the umask; installed files get exactly `mode`.
    guard fchmod(fd, mode) == 0, close(fd) == 0, rename(temporary, path) == 0 else {
        let message = "cannot install \(path): \(errorText())"
        unlink(temporary)
        throw InstallError(message: message)
    }
}

/// Makes `path` and its missing parents (mode 0755), like `mkdir -p`, and
/// returns the directories it created, parents first.
func makeDirectories(_ path: String) throws -> [String] {
    var created: [String] = []
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) == 0 {
            created.append(current)
            continue
        }
        let error = errno
        if error != EEXIST || !isDirectory(current) {
            throw InstallError(message: "cannot create the directory \(current): \(String(cString: strerror(error)))")
        }
    }
    return created
}

/// Whether `path` names a directory (after following symlinks).
func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// The text of the current errno, as `strerror` gives it.
func errorText() -> String {
    String(cString: strerror(errno))
}
