import Glibc

/// What `green install` or `green uninstall` was asked to do.
struct InstallOptions {
    /// `--prefix`: the directory holding bin/ and lib/, only when given.
    var prefix: String?
    /// `--help`: print the usage instead.
    var wantsHelp = false

    /// Parses the arguments after `install` or `uninstall`:
    /// `--prefix=DIR`, `--prefix DIR` or `--help`.
    static func parse(_ arguments: [String]) throws -> InstallOptions {
        var options = InstallOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--help" || argument == "-h" {
                options.wantsHelp = true
                return options
            } else if argument.hasPrefix("--prefix=") {
                options.prefix = String(argument.dropFirst("--prefix=".count))
            } else if argument == "--prefix" {
                index += 1
                guard index < arguments.count else { throw UsageError(message: "--prefix needs a value") }
                options.prefix = arguments[index]
            } else {
                throw UsageError(message: "unknown option '\(argument)'")
            }
            guard options.prefix != "" else { throw UsageError(message: "--prefix needs a value") }
            index += 1
        }
        return options
    }
}

/// Where `green install` installs without `--prefix`: /usr/local for root,
/// else ~/.local (whose bin/ Debian's ~/.profile puts on PATH), so a user
/// needs no sudo.
func defaultPrefix() throws -> String {
    if geteuid() == 0 { return "/usr/local" }
    guard let home = environmentValue("HOME"), home.hasPrefix("/") else {
        throw InstallError(message: "HOME is not set to an absolute path: give --prefix")
    }
    return home + "/.local"
}
