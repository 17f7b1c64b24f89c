import Glibc

/// `green uninstall`: removes what the manifest under `prefix` lists — its
/// files, the manifest last, then the directories install created if they
/// are empty — and nothing else. Returns the lines to print.
func uninstall(prefix requested: String) throws -> [String] {
    guard let prefix = realPath(requested), let entries = readManifest(prefix: prefix) else {
        throw InstallError(message: "nothing installed under \(requested): no \(requested)/\(manifestFile)")
    }
    // A damaged or edited manifest must not reach outside the prefix.
    for entry in entries where entry.hasPrefix("/") || entry.split(separator: "/").contains("..") {
        throw InstallError(message: "\(prefix)/\(manifestFile) lists '\(entry)', which is not under the prefix; nothing removed")
    }
    // The manifest goes last, so an uninstall that fails can be run again.
    let files = entries.filter { !$0.hasSuffix("/") && $0 != manifestFile } + [manifestFile]
    let directories = entries.filter { $0.hasSuffix("/") }.map { String($0.dropLast()) }
    var report: [String] = []
    for file in files {
        let path = prefix + "/" + file
        if unlink(path) == 0 {
            report.append("removed \(path)")
        } else if errno != ENOENT {
            throw InstallError(message: "cannot remove \(path): \(errorText())")
        }
    }
    // Children before parents; a directory that holds something else stays.
    for directory in directories.reversed() {
        let path = prefix + "/" + directory
        if rmdir(path) == 0 {
            report.append("removed \(path)/")
        } else if errno == ENOTEMPTY || errno == EEXIST {
            report.append("kept \(path)/: it holds other files")
        } else if errno != ENOENT {
            throw InstallError(message: "cannot remove \(path): \(errorText())")
        }
    }
    return report
}

/// The prefix `green uninstall` acts on without `--prefix`: the one this
/// executable is installed in (so an installed green removes itself), else
/// the default prefix.
func uninstallPrefix() throws -> String {
    if let installedIn = realPath(executableDirectory() + "/.."), readManifest(prefix: installedIn) != nil {
        return installedIn
    }
    return try defaultPrefix()
}
