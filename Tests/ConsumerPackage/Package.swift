// swift-tools-version:6.0
import PackageDescription

// A project that uses Green as README "Using it" says: it depends on the
// `Green` product and nothing else. `.ci/consumer` builds and runs it, showing
// that a consumer needs only libev-dev (not the test and example libraries).
let package = Package(
    name: "ConsumerPackage",
    // `name:` because a path dependency is otherwise known by its directory's
    // name, which is whatever the clone was called.
    dependencies: [.package(name: "Green", path: "../..")],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [.product(name: "Green", package: "Green")]),
    ]
)
