// `green`: runs an existing program with the Green preload library, so its
// pthreads become fibers and its blocking calls yield to the hub.
// Plain Swift + Glibc (no Foundation) so the launcher adds no start-up cost
// before the program it replaces itself with.
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())

switch arguments.first {
case "run":
    let options: RunOptions
    do {
        options = try RunOptions.parse(Array(arguments.dropFirst()))
    } catch {
        exitWithUsageError((error as? UsageError)?.message ?? "\(error)")
    }
    if options.wantsHelp {
        printUsage()
        exit(0)
    }
    let library = locatePreloadLibrary()
    applyLaunchEnvironment(library: library, options: options)
    execProgram(options.program, options.programArguments)
case "--help", "-h", "help":
    printUsage()
    exit(0)
case "version", "--version":
    print("green \(greenVersion)")
    exit(0)
case nil:
    exitWithUsageError("no command given")
case let command?:
    exitWithUsageError("unknown command '\(command)'")
}
