// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Green",
    products: [
        .library(name: "Green", targets: ["Green"]),
        .executable(name: "green-bench", targets: ["GreenBenchmarks"]),
        .executable(name: "sequential-to-fibers", targets: ["SequentialToFibers"]),
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
        // The Swift runtime: Hub, Fiber, timeouts, sync, channels, pools.
        .target(name: "Green", dependencies: ["CGreenCore"]),
        .executableTarget(name: "GreenBenchmarks", dependencies: ["Green"]),
        .executableTarget(name: "SequentialToFibers", dependencies: ["Green"], path: "Examples/SequentialToFibers"),
        // A helper process for tests that must crash (stack overflow).
        .executableTarget(name: "GreenTestHelper", dependencies: ["Green"], path: "Tests/GreenTestHelper"),
        .testTarget(name: "GreenTests", dependencies: ["Green", "CGreenCore", "GreenTestHelper"]),
    ],
    swiftLanguageModes: [.v5]
)
