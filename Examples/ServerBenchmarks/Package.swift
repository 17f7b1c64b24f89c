// swift-tools-version:6.0
// The server benchmarks (issue #5): Green against SwiftNIO, Hummingbird,
// OS threads and C epoll, on echo and HTTP. A package of its own so that the
// root package never depends on NIO. Run it with `bash Examples/ServerBenchmarks/run`.
import PackageDescription

/// Green's servers export the shim's interposers, as the root package's examples do.
let exportInterposers: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--export-dynamic"])]

let package = Package(
    name: "ServerBenchmarks",
    products: [
        .executable(name: "server-bench", targets: ["BenchDriver"]),
        .executable(name: "echo-load", targets: ["EchoLoad"]),
        .executable(name: "green-echo", targets: ["GreenEcho"]),
        .executable(name: "nio-echo", targets: ["NIOEcho"]),
        .executable(name: "thread-echo", targets: ["ThreadEcho"]),
        .executable(name: "c-epoll-echo", targets: ["CEpollEcho"]),
        .executable(name: "c-epoll-http", targets: ["CEpollHTTP"]),
        .executable(name: "hummingbird-hello", targets: ["HummingbirdHello"]),
    ],
    dependencies: [
        .package(name: "Green", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // The orchestrator: starts each server pinned to CPU 0, loads it from
        // CPU 1, reads its CPU time, prints the tables.
        .executableTarget(name: "BenchDriver"),
        // The one echo load generator for every server (C, epoll, byte-exact).
        .target(name: "CBenchSupport"),
        .executableTarget(name: "EchoLoad", dependencies: ["CBenchSupport"]),
        // Echo servers.
        .executableTarget(name: "GreenEcho", dependencies: [.product(name: "Green", package: "Green")],
                          linkerSettings: exportInterposers),
        .executableTarget(name: "NIOEcho", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .executableTarget(name: "ThreadEcho"),
        .executableTarget(name: "CEpollEcho", dependencies: ["CBenchSupport"]),
        // HTTP servers (Green's is the root package's `http-server`).
        .executableTarget(name: "CEpollHTTP", dependencies: ["CBenchSupport"]),
        .executableTarget(name: "HummingbirdHello", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
