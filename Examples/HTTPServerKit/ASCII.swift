/// Byte-level helpers for parsing HTTP: the head is ASCII, so it is parsed
/// as bytes and only the parts a handler sees become Strings.
enum ASCII {
    static let space: UInt8 = 0x20, tab: UInt8 = 0x09, cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
    static let colon: UInt8 = 0x3A, comma: UInt8 = 0x2C, slash: UInt8 = 0x2F, star: UInt8 = 0x2A

    /// RFC 9110 `tchar`: the characters of methods and header names.
    static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true   // digits, letters
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    static func isHexDigit(_ b: UInt8) -> Bool { isDigit(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }

    /// Visible characters (and obs-text) allowed in a request target.
    static func isTargetChar(_ b: UInt8) -> Bool { b > 0x20 && b != 0x7F }

    static func lowercased(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// Whether two byte strings are equal, ignoring ASCII case.
    static func equalsIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { lowercased($0) == lowercased($1) }
    }

    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool { equalsIgnoringCase(a.utf8, b.utf8) }

    /// Whether a comma-separated list (a `Connection` value) holds `token`, ignoring case.
    static func listContains<A: BidirectionalCollection<UInt8>>(_ list: A, token: String) -> Bool
    where A.SubSequence: BidirectionalCollection<UInt8> {
        list.split(separator: comma).contains { equalsIgnoringCase(trimmed($0), token.utf8) }
    }

    /// Without leading and trailing spaces and tabs.
    static func trimmed<A: BidirectionalCollection<UInt8>>(_ bytes: A) -> A.SubSequence {
        let isBlank = { (b: UInt8) in b == space || b == tab }
        guard let first = bytes.firstIndex(where: { !isBlank($0) }) else { return bytes[bytes.endIndex...] }
        let last = bytes.lastIndex(where: { !isBlank($0) })!
        return bytes[first...last]
    }

    /// A run of decimal digits as a number, nil if it is empty, has anything
    /// else, or is too long to be a sane length.
    static func decimal<A: Collection<UInt8>>(_ bytes: A) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy(isDigit) else { return nil }
        return bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}
