import Glibc

/// Where `green install` puts its files, relative to the prefix. The launcher
/// finds the library from bin/ as `installedLibraryPath`.
let installedExecutable = "bin/green"
let installedLibrary = "lib/green/" + preloadLibraryName
/// The list of what was installed, which `green uninstall` removes: the files,
/// then each directory that install created (ending in "/"), parents first.
let manifestFile = "lib/green/MANIFEST"

/// `green install`: copies this executable and the preload library it would
/// use into `prefix`/bin and `prefix`/lib/green, and writes the manifest.
/// Returns the lines to print.
func install(prefix requested: String) throws -> [String] {
    // Symlink-free, so the directories made below can be told apart as under it.
    _ = try makeDirectories(requested)
    guard let prefix = realPath(requested) else {
        throw InstallError(message: "cannot resolve the prefix \(requested): \(errorText())")
    }
    // ld.so splits LD_PRELOAD at colons and spaces: refuse now, not at the first run.
    guard !prefix.contains(":"), !prefix.contains(" ") else {
        throw InstallError(message: "the prefix \(prefix) contains a colon or space, which LD_PRELOAD cannot carry")
    }
    // Read both before writing anything: installing over the running copy must work.
    guard let executable = executablePath(), let executableBytes = readFile(executable) else {
        throw InstallError(message: "cannot read the running green executable (/proc/self/exe)")
    }
    let library = locatePreloadLibrary()
    guard let libraryBytes = readFile(library) else {
        throw InstallError(message: "cannot read \(library): \(errorText())")
    }

    // Directories an earlier install created stay listed, so uninstall still removes them.
    var directories = readManifest(prefix: prefix)?.filter { $0.hasSuffix("/") } ?? []
    for directory in ["bin", "lib/green"] {
        for created in try makeDirectories(prefix + "/" + directory) where created.hasPrefix(prefix + "/") {
            let relative = String(created.dropFirst(prefix.count + 1)) + "/"
            if !directories.contains(relative) { directories.append(relative) }
        }
    }
    // The manifest first: an install that fails half-way can still be uninstalled.
    let manifest = ["# green install: what `green uninstall` removes, relative to the prefix"]
        + [installedExecutable, installedLibrary, manifestFile] + directories
    try writeFileAtomically(prefix + "/" + manifestFile, Array((manifest.joined(separator: "\n") + "\n").utf8), mode: 0o644)
    try writeFileAtomically(prefix + "/" + installedLibrary, libraryBytes, mode: 0o644)
    try writeFileAtomically(prefix + "/" + installedExecutable, executableBytes, mode: 0o755)

    var report = ["installed \(prefix)/\(installedExecutable)", "installed \(prefix)/\(installedLibrary)"]
    let onPath = (environmentValue("PATH") ?? "").split(separator: ":").contains { realPath(String($0)) == prefix + "/bin" }
    if !onPath { report.append("note: \(prefix)/bin is not on PATH; add it, or run \(prefix)/\(installedExecutable)") }
    return report
}

/// The manifest's entries (comments and blank lines left out), or nil when
/// there is no manifest under `prefix`.
func readManifest(prefix: String) -> [String]? {
    guard let bytes = readFile(prefix + "/" + manifestFile) else { return nil }
    return String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        .map(String.init)
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
}
