import Glibc

/// Replaces this process with `program` (searched in PATH like `env` does),
/// so the program's exit status is the launcher's. Only returns on failure,
/// and then exits as `env` would: 127 when not found, 126 otherwise.
func execProgram(_ program: String, _ arguments: [String]) -> Never {
    let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
    execvp(program, argv)
    let error = errno
    switch error {
    case ENOENT:
        exitWithFailure("\(program): command not found", status: 127)
    case EACCES:
        exitWithFailure("\(program): permission denied", status: 126)
    default:
        exitWithFailure("\(program): \(String(cString: strerror(error)))", status: 126)
    }
}
