import Foundation
import XCTest

/// `green install` and `green uninstall`, into a temporary prefix: the
/// installed launcher finds the installed library, `green version` names it
/// and its build, and uninstall removes exactly what install put there.
final class InstallTests: XCTestCase {
    /// A fresh, empty prefix (symlink-free, as the launcher prints paths);
    /// removed after the test.
    func temporaryPrefix() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("green-install-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.resolvingSymlinksInPath().path
    }

    /// The built `green` and preload library (skipped loudly, or failed under CI, when missing).
    func builtLauncher() throws -> (green: String, library: String) {
        let library = try Preload.library(for: self)
        let green = Preload.productsDirectory.appendingPathComponent("green").path
        guard FileManager.default.isExecutableFile(atPath: green) else {
            try Preload.unavailable("\(green) is not built: run `swift build --product green`", in: self)
        }
        return (green, library)
    }

    /// Every path under `prefix`, relative to it, sorted.
    func contents(of prefix: String) -> [String] {
        (FileManager.default.subpaths(atPath: prefix) ?? []).sorted()
    }

    func testInstallRunVersionAndUninstallLeaveNothing() throws {
        let (green, library) = try builtLauncher()
        let prefix = try temporaryPrefix()
        let install = try runLauncher(green, ["install", "--prefix", prefix])
        XCTAssertEqual(install.status, 0, install.stderr)
        XCTAssertTrue(install.stdout.hasPrefix("installed \(prefix)/bin/green\ninstalled \(prefix)/lib/green/libgreen-preload.so\n"),
                      install.stdout)
        XCTAssertEqual(contents(of: prefix), ["bin", "bin/green", "lib", "lib/green", "lib/green/MANIFEST",
                                              "lib/green/libgreen-preload.so"])

        // The installed launcher runs programs with the installed library.
        let installed = prefix + "/bin/green"
        let run = try runLauncher(installed, ["run", "--", "/bin/true"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        let env = try runLauncher(installed, ["run", "--threads=native", "/usr/bin/env"])
        XCTAssertEqual(env.status, 0, env.stderr)
        XCTAssertTrue(env.stdout.contains("\nLD_PRELOAD=\(prefix)/lib/green/libgreen-preload.so\n"), env.stdout)

        // version: the built version line, where it runs from, the library and its build ID, as readelf shows it.
        let notes = try runProcess(URL(fileURLWithPath: "/usr/bin/readelf"), ["-n", library], environment: [:]).stdout
        let buildID = try XCTUnwrap(notes.split(separator: "\n").first { $0.contains("Build ID: ") }?
            .split(separator: " ").last, notes)
        let builtVersion = try runLauncher(green, ["version"]).stdout.split(separator: "\n").first ?? ""
        XCTAssertTrue(builtVersion.hasPrefix("green "), String(builtVersion))
        let version = try runLauncher(installed, ["version"])
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertEqual(version.stdout, """
            \(builtVersion)
            launcher: \(installed)
            library:  \(prefix)/lib/green/libgreen-preload.so (build ID \(buildID))

            """)

        // The installed green knows its own prefix.
        let uninstall = try runLauncher(installed, ["uninstall"])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertEqual(contents(of: prefix), [])
    }

    /// Files and directories that were there before stay, a second install
    /// (over the running copy) lists no more than the first, and a second
    /// uninstall finds nothing.
    func testUninstallRemovesOnlyWhatInstallPut() throws {
        let (green, _) = try builtLauncher()
        let prefix = try temporaryPrefix()
        try FileManager.default.createDirectory(atPath: prefix + "/bin", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: prefix + "/lib", withIntermediateDirectories: false)
        XCTAssertTrue(FileManager.default.createFile(atPath: prefix + "/bin/other-tool", contents: Data("x".utf8)))

        XCTAssertEqual(try runLauncher(green, ["install", "--prefix=\(prefix)"]).status, 0)
        let again = try runLauncher(prefix + "/bin/green", ["install", "--prefix", prefix])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(readTextFile(prefix + "/lib/green/MANIFEST"), """
            # green install: what `green uninstall` removes, relative to the prefix
            bin/green
            lib/green/libgreen-preload.so
            lib/green/MANIFEST
            lib/green/

            """)

        let uninstall = try runLauncher(green, ["uninstall", "--prefix", prefix])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertEqual(contents(of: prefix), ["bin", "bin/other-tool", "lib"])

        let nothing = try runLauncher(green, ["uninstall", "--prefix", prefix])
        XCTAssertEqual(nothing.status, 1)
        XCTAssertEqual(nothing.stderr, "green: nothing installed under \(prefix): no \(prefix)/lib/green/MANIFEST\n")
    }

    /// A manifest naming a path outside the prefix makes uninstall remove nothing.
    func testManifestOutsideThePrefixIsRefused() throws {
        let (green, _) = try builtLauncher()
        let prefix = try temporaryPrefix()
        XCTAssertEqual(try runLauncher(green, ["install", "--prefix", prefix]).status, 0)
        let manifest = prefix + "/lib/green/MANIFEST"
        let text = readTextFile(manifest) + "../outside\n"
        XCTAssertTrue(FileManager.default.createFile(atPath: manifest, contents: Data(text.utf8)))

        let r = try runLauncher(green, ["uninstall", "--prefix", prefix])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "green: \(manifest) lists '../outside', which is not under the prefix; nothing removed\n")
        XCTAssertEqual(contents(of: prefix), ["bin", "bin/green", "lib", "lib/green", "lib/green/MANIFEST",
                                              "lib/green/libgreen-preload.so"])
    }

    func testUsageErrors() throws {
        let (green, _) = try builtLauncher()
        for (args, message) in [(["install", "--prefix"], "green: --prefix needs a value"),
                                (["install", "--prefix="], "green: --prefix needs a value"),
                                (["uninstall", "--force"], "green: unknown option '--force'")] {
            let r = try runLauncher(green, args)
            XCTAssertEqual(r.status, 2, "\(args)")
            XCTAssertEqual(r.stderr.split(separator: "\n").first.map(String.init), message, "\(args)")
        }
    }
}
