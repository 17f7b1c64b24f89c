import Glibc

/// Sets what the preload library reads at start-up: LD_PRELOAD, GREEN_THREADS,
/// and GREEN_STACK_SIZE / GREEN_HUBS / GREEN_DEBUG only when asked for (values inherited
/// from the caller's environment are otherwise left alone).
func applyLaunchEnvironment(library: String, options: RunOptions) {
    setenv("LD_PRELOAD", preloadList(adding: library, to: environmentValue("LD_PRELOAD")), 1)
    setenv("GREEN_THREADS", options.threads.rawValue, 1)
    if let size = options.stackSize { setenv("GREEN_STACK_SIZE", String(size), 1) }
    if let hubs = options.hubs { setenv("GREEN_HUBS", hubs, 1) }
    if options.debug { setenv("GREEN_DEBUG", "1", 1) }
}

/// `library` first, then the existing LD_PRELOAD entries (which ld.so splits
/// at colons and spaces) without any other copy of it, joined by colons.
/// First, so its interposers win over those of other preloaded libraries.
func preloadList(adding library: String, to existing: String?) -> String {
    let others = (existing ?? "")
        .split(whereSeparator: { $0 == ":" || $0 == " " })
        .map(String.init)
        .filter { $0 != library && realPath($0) != library }
    return ([library] + others).joined(separator: ":")
}
