// `green`: runs an existing program with the Green preload library, so its
// pthreads become fibers and its blocking calls yield to the hub.
// Plain Swift + Glibc (no Foundation) so the launcher adds no start-up cost
// before the program it replaces itself with.
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())

/// The command's options (the arguments after it), or exit with the usage
/// error; with `--help` among them, print the usage and exit.
func parsedOrExit<Options>(_ parse: ([String]) throws -> Options, wantsHelp: (Options) -> Bool) -> Options {
    let options: Options
    do {
        options = try parse(Array(arguments.dropFirst()))
    } catch {
        exitWithUsageError((error as? UsageError)?.message ?? "\(error)")
    }
    if wantsHelp(options) {
        printUsage()
        exit(0)
    }
    return options
}

switch arguments.first {
case "run":
    let options = parsedOrExit(RunOptions.parse, wantsHelp: \.wantsHelp)
    let library = locatePreloadLibrary()
    applyLaunchEnvironment(library: library, options: options)
    execProgram(options.program, options.programArguments)
case "install", "uninstall":
    let options = parsedOrExit(InstallOptions.parse, wantsHelp: \.wantsHelp)
    do {
        let report = arguments.first == "install"
            ? try install(prefix: options.prefix ?? defaultPrefix())
            : try uninstall(prefix: options.prefix ?? uninstallPrefix())
        for line in report { print(line) }
    } catch {
        exitWithFailure((error as? InstallError)?.message ?? "\(error)", status: 1)
    }
    exit(0)
case "--help", "-h", "help":
    printUsage()
    exit(0)
case "version", "--version":
    print(versionText())
    exit(0)
case nil:
    exitWithUsageError("no command given")
case let command?:
    exitWithUsageError("unknown command '\(command)'")
}
