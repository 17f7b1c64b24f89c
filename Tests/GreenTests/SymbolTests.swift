import Foundation
import XCTest

/// The libraries export only the interposed calls listed in the DocC
/// catalog's "Interposed calls" (`Sources/Green/Green.docc/GreenRun.md`,
/// between `<!-- interposed:begin -->` and `<!-- interposed:end -->`) and the
/// public C API (`green_*`): under LD_PRELOAD any other exported name would
/// take the place of a host program's own function of that name.
final class SymbolTests: XCTestCase {
    /// The interposed calls as the documentation lists them.
    static func documentedInterposers() throws -> Set<String> {
        let article = Preload.packageRoot.appendingPathComponent("Sources/Green/Green.docc/GreenRun.md")
        let text = try String(contentsOf: article, encoding: .utf8)
        guard let begin = text.range(of: "<!-- interposed:begin -->"),
              let end = text.range(of: "<!-- interposed:end -->", range: begin.upperBound..<text.endIndex) else {
            throw TestError(code: -3)
        }
        let block = text[begin.upperBound..<end.lowerBound]
        var names = Set<String>()
        for part in block.split(separator: "`", omittingEmptySubsequences: false).enumerated() where part.offset % 2 == 1 {
            names.insert(String(part.element))
        }
        return names
    }

    /// Global symbols `library` defines in its dynamic symbol table.
    static func exportedNames(_ library: String) throws -> [String] {
        let r = try Preload.run("/usr/bin/nm", ["-D", "--defined-only", library], environment: [:], timeout: 60)
        XCTAssertEqual(r.status, 0, "nm failed: \(r)")
        let names: [String] = r.stdout.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 3, let kind = f[1].first, kind.isUppercase else { return nil } // globals only
            return String(f[2])
        }
        XCTAssertFalse(names.isEmpty, "nm listed nothing for \(library): \(r)")
        return names
    }

    /// Linker-made names every shared library has.
    static let linkerNames: Set<String> = ["__bss_start", "_edata", "_end", "_init", "_fini"]

    func check(_ file: String, allowSwift: Bool) throws {
        let path = Preload.productsDirectory.appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else {
            if ProcessInfo.processInfo.environment["GREEN_SANITIZER"] != nil { throw XCTSkip("not built under sanitizers") }
            try Preload.unavailable("\(path) is missing: run `swift build` first", in: self)
        }
        let documented = try Self.documentedInterposers()
        XCTAssertGreaterThan(documented.count, 100, "the list in GreenRun.md was not found or is short")
        let stray = try Self.exportedNames(path).filter { name in
            !(documented.contains(name) || name.hasPrefix("green_") || Self.linkerNames.contains(name)
              || (allowSwift && (name.hasPrefix("$s") || name.hasPrefix("_$s"))))
        }
        XCTAssertEqual(stray, [], "\(file) exports names that are neither documented interposers nor green_*")
    }

    func testPreloadLibraryExportsOnlyInterposersAndTheCAPI() throws {
        try check("libgreen-preload.so", allowSwift: false)
    }

    func testGreenSharedExportsOnlyInterposersTheCAPIAndSwift() throws {
        try check("libGreenShared.so", allowSwift: true)
    }

    /// Every documented interposer is really exported by the preload library.
    func testEveryDocumentedInterposerIsExported() throws {
        let path = Preload.productsDirectory.appendingPathComponent("libgreen-preload.so").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("libgreen-preload.so not built") }
        let exported = Set(try Self.exportedNames(path))
        let missing = try Self.documentedInterposers().subtracting(exported)
        XCTAssertEqual(missing, [], "documented in GreenRun.md but not exported")
    }
}
