import Glibc

/// A socket's read-ahead: bytes read from the fd and not yet consumed.
///
/// Reads land straight in the free tail (one copy, kernel to here);
/// consuming only moves `start`; the live bytes move to the front only when
/// the tail is too small. Plain memory instead of an array, so the parsing
/// hot path has no copy-on-write or exclusivity checks.
struct ReadBuffer: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0

    /// The first read allocates this much; longer lines or bodies grow it.
    static let initialCapacity = 16384
    /// An emptied buffer larger than this is freed.
    static let keptCapacity = 65536

    /// How many bytes are buffered.
    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    /// The buffered bytes (valid until the next mutating call).
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.map { $0 + start }, count: end - start)
    }

    /// Drop the first `n` buffered bytes.
    mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "ReadBuffer.consume beyond the buffered bytes")
        start += n
        if start == end {
            start = 0; end = 0
            // A connection that once took a large body should not keep its memory.
            if capacity > ReadBuffer.keptCapacity { release() }
        }
    }

    /// Copy out and consume up to `n` bytes.
    mutating func take(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, count))
        let out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        consume(n)
        return out
    }

    /// One read(2) from `fd` into the free tail (made at least `atLeast`
    /// bytes long first). Returns read's result: bytes read, 0 at end of
    /// stream, -1 with errno set.
    mutating func fill(from fd: Int32, atLeast: Int = 4096) -> Int {
        reserveTail(atLeast)
        let n = Glibc.read(fd, storage! + end, capacity - end)
        if n > 0 { end += n }
        return n
    }

    /// Make room for `n` more bytes after the buffered ones.
    private mutating func reserveTail(_ n: Int) {
        if capacity - end >= n { return }
        let live = count
        if start > 0 && capacity - live >= n {
            // Enough room once the live bytes move to the front.
            if live > 0 { storage!.copyMemory(from: storage! + start, byteCount: live) }
        } else {
            let newCapacity = max(ReadBuffer.initialCapacity, capacity * 2, live + n)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            if live > 0 { grown.copyMemory(from: storage! + start, byteCount: live) }
            storage?.deallocate()
            storage = grown
            capacity = newCapacity
        }
        start = 0
        end = live
    }

    /// Free the memory (the socket's deinit).
    mutating func release() {
        storage?.deallocate()
        storage = nil
        capacity = 0; start = 0; end = 0
    }
}
