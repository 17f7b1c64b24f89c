// swift-tools-version:6.0
import PackageDescription

/// Executables that link Green statically must export the shim's symbols so
/// that shared libraries (libpq, Foundation, dlopen'ed code) call them.
let exportInterposers: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--export-dynamic"])]

let package = Package(
    name: "Green",
    products: [
        .library(name: "Green", targets: ["Green"]),
        // The same as a shared library: its interposers are exported, so every
        // shared library in the process (libpq, Foundation, dlopen'ed code)
        // reaches them without extra linker flags.
        .library(name: "GreenShared", type: .dynamic, targets: ["Green"]),
        .executable(name: "green-bench", targets: ["GreenBenchmarks"]),
        .executable(name: "sequential-to-fibers", targets: ["SequentialToFibers"]),
        .executable(name: "postgres-queries", targets: ["PostgresQueries"]),
    ],
    targets: [
        // libev from Debian's libev-dev (it ships no pkg-config file, so the
        // module map links `ev` itself).
        .systemLibrary(name: "CLibev", path: "Sources/CLibev"),
        // Context switch, stacks, scheduler mechanics, libev waits, hub ABI.
        .target(
            name: "CGreenCore",
            dependencies: ["CLibev"],
            linkerSettings: [.linkedLibrary("ev")]
        ),
        // The interposition shim: blocking libc calls park the current fiber.
        .target(name: "CGreenShim", dependencies: ["CGreenCore"], path: "Shims",
                linkerSettings: [.linkedLibrary("dl")]),
        // The Swift runtime: Hub, Fiber, timeouts, sync, channels, pools.
        .target(name: "Green", dependencies: ["CGreenCore", "CGreenShim"]),
        .executableTarget(name: "GreenBenchmarks", dependencies: ["Green", "CLibpq"], linkerSettings: exportInterposers),
        .executableTarget(name: "SequentialToFibers", dependencies: ["Green"], path: "Examples/SequentialToFibers",
                          linkerSettings: exportInterposers),
        .executableTarget(name: "PostgresQueries", dependencies: ["Green", "CLibpq"], path: "Examples/PostgresQueries",
                          linkerSettings: exportInterposers),
        // A helper process for tests that must crash (stack overflow).
        .executableTarget(name: "GreenTestHelper", dependencies: ["Green"], path: "Tests/GreenTestHelper",
                          linkerSettings: exportInterposers),
        // --export-dynamic: shared libraries in the test process (libpq,
        // Foundation) must see the shim's interposers in the executable.
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        // Real C client libraries, unmodified, from Debian's packages.
        .systemLibrary(name: "CLibpq", path: "Examples/CLibpq"),
        .systemLibrary(name: "CHiredis", path: "Tests/CHiredis"),
        .testTarget(name: "GreenTests",
                    dependencies: ["Green", "CGreenCore", "CTestSupport", "CLibpq", "CHiredis", "GreenTestHelper"],
                    linkerSettings: exportInterposers),
    ],
    swiftLanguageModes: [.v5]
)
