// swift-tools-version:6.0
import PackageDescription

/// The linker already exports each interposer that a linked shared library
/// (libc users such as Foundation or libpq) references; --export-dynamic makes
/// sure code loaded later with dlopen sees all of them too.
let exportInterposers: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--export-dynamic"])]

/// Swift 6 language mode, for the runtime (where hub affinity is stated in the
/// types: hub-bound types are not Sendable, the cross-thread entry points take
/// @Sendable work) and for the targets that compile in it unchanged; the rest
/// stay in the package's Swift 5 mode.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Green",
    products: [
        .library(name: "Green", targets: ["Green"]),
        // The same as a shared library: its interposers are exported, so every
        // shared library in the process (libpq, Foundation, dlopen'ed code)
        // reaches them without extra linker flags.
        .library(name: "GreenShared", type: .dynamic, targets: ["Green"]),
        // The LD_PRELOAD library for existing binaries (C only: no Swift runtime).
        .library(name: "green-preload", type: .dynamic, targets: ["CGreenPreload"]),
        // `green run -- PROGRAM ARGS…`: runs a program with the preload library.
        .executable(name: "green", targets: ["GreenLauncher"]),
        .executable(name: "green-bench", targets: ["GreenBenchmarks"]),
        .executable(name: "sequential-to-fibers", targets: ["SequentialToFibers"]),
        .executable(name: "sync-swift-to-fibers", targets: ["SyncSwiftToFibers"]),
        .executable(name: "postgres-queries", targets: ["PostgresQueries"]),
        .executable(name: "http-server", targets: ["HTTPServer"]),
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
        .target(name: "CGreenShim", dependencies: ["CGreenCore"], path: "Shims/CGreenShim",
                linkerSettings: [.linkedLibrary("dl")]),
        // Preload mode only: pthreads as fibers, the C thread pool, start-up.
        .target(name: "CGreenPreload", dependencies: ["CGreenCore", "CGreenShim"], path: "Shims/CGreenPreload",
                // swiftc links every product with the Swift runtime (its swiftrt.o needs
                // it): link it statically and keep its symbols local, so the library
                // needs no libswiftCore.so and exports only the interposers.
                linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--exclude-libs=ALL", "-Xlinker", "--gc-sections"])]),
        .executableTarget(name: "GreenLauncher", swiftSettings: swift6),
        // The Swift runtime: Hub, Fiber, timeouts, sync, channels, pools.
        .target(name: "Green", dependencies: ["CGreenCore", "CGreenShim"], swiftSettings: swift6),
        .executableTarget(name: "GreenBenchmarks", dependencies: ["Green", "CGreenCore", "CLibpq"], linkerSettings: exportInterposers),
        .executableTarget(name: "SequentialToFibers", dependencies: ["Green"], path: "Examples/SequentialToFibers",
                          swiftSettings: swift6, linkerSettings: exportInterposers),
        .executableTarget(name: "SyncSwiftToFibers", dependencies: ["Green"], path: "Examples/SyncSwiftToFibers",
                          linkerSettings: exportInterposers),
        .executableTarget(name: "PostgresQueries", dependencies: ["Green", "CLibpq"], path: "Examples/PostgresQueries",
                          swiftSettings: swift6, linkerSettings: exportInterposers),
        .target(name: "HTTPServerKit", dependencies: ["Green"], path: "Examples/HTTPServerKit", swiftSettings: swift6),
        .executableTarget(name: "HTTPServer", dependencies: ["Green", "HTTPServerKit"], path: "Examples/HTTPServer",
                          swiftSettings: swift6, linkerSettings: exportInterposers),
        // A helper process for tests that crash or need a process of their own
        // (stack overflow, fork, blocking monitor, DNS in a mount namespace).
        .executableTarget(name: "GreenTestHelper", dependencies: ["Green"], path: "Tests/GreenTestHelper",
                          linkerSettings: exportInterposers),
        // Declarations the Glibc module lacks (epoll, raw syscalls), for tests.
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        // Real C client libraries, unmodified, from Debian's packages.
        .systemLibrary(name: "CLibpq", path: "Examples/CLibpq"),
        .systemLibrary(name: "CHiredis", path: "Tests/CHiredis"),
        .testTarget(name: "GreenTests",
                    dependencies: ["Green", "CGreenCore", "CTestSupport", "CLibpq", "CHiredis", "GreenTestHelper",
                                   "HTTPServerKit", "GreenLauncher"],
                    linkerSettings: exportInterposers),
    ],
    swiftLanguageModes: [.v5]
)
