/// The GNU build ID of the ELF file `bytes` (the linker's hash of its
/// contents, which `file` and `readelf -n` show) as hex, or nil when it has
/// none. `green version` names the preload library's build by it: SwiftPM
/// has no simple way to embed a git commit, and hashing 9 MB in a debug
/// build takes seconds.
func elfBuildID(_ bytes: [UInt8]) -> String? {
    /// A little-endian unsigned integer of `size` bytes at `offset`, nil when past the end.
    func integer(_ offset: Int, _ size: Int) -> Int? {
        guard offset >= 0, offset + size <= bytes.count else { return nil }
        return (0..<size).reversed().reduce(0) { $0 << 8 | Int(bytes[offset + $1]) }
    }
    // 64-bit little-endian ELF only: what SwiftPM builds on x86_64 and aarch64 Linux.
    guard bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46, 2, 1]),
          let programHeaders = integer(32, 8), let entrySize = integer(54, 2), let count = integer(56, 2)
    else { return nil }
    let noteSegment = 4, buildIDNote = 3
    for index in 0..<count {
        let header = programHeaders + index * entrySize
        guard integer(header, 4) == noteSegment, let start = integer(header + 8, 8), let size = integer(header + 32, 8)
        else { continue }
        // Notes: name size, descriptor size, type, then name and descriptor, each padded to 4 bytes.
        var note = start
        while note + 12 <= start + size, let nameSize = integer(note, 4), let descriptorSize = integer(note + 4, 4) {
            let name = note + 12, descriptor = name + (nameSize + 3) / 4 * 4
            if integer(note + 8, 4) == buildIDNote, nameSize == 4, Array(bytes[name..<min(name + 4, bytes.count)]) == Array("GNU\0".utf8),
               descriptor + descriptorSize <= bytes.count {
                return bytes[descriptor..<(descriptor + descriptorSize)].map { hex($0) }.joined()
            }
            note = descriptor + (descriptorSize + 3) / 4 * 4
        }
    }
    return nil
}

/// `byte` as two lowercase hex digits.
private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
}
