/// The launcher's version, printed by `green version`.
let greenVersion = "0.1.0"

/// `green version`'s text: the version, this executable, and the preload
/// library `green run` would use with its build ID, which tells one build
/// from another.
func versionText() -> String {
    let library: String
    if let path = findPreloadLibrary() {
        let buildID = readFile(path).flatMap(elfBuildID) ?? "none"
        library = "\(path) (build ID \(buildID))"
    } else {
        library = "not found at " + preloadLibraryCandidates().joined(separator: " or ")
    }
    return """
        green \(greenVersion)
        launcher: \(executablePath() ?? "unknown")
        library:  \(library)
        """
}
