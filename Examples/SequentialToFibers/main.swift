// Migration example: the same blocking code, run one call after another and
// then on fibers. Only how the work is *spawned* changes, not how it is written.
//
//   swift run -c release sequential-to-fibers
import Green

/// A slow blocking step: a "service call" that waits 100 ms for its answer,
/// then does a little work on it. Written in plain blocking style.
func fetchReport(_ id: Int) throws -> String {
    try Green.sleep(for: .milliseconds(100)) // waiting on the network, say
    let checksum = (0..<1_000).reduce(id) { ($0 &* 31) &+ $1 }
    return "report \(id): \(checksum & 0xffff)"
}

let ids = Array(0..<20)

func timed<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let result = try body()
    return (result, ContinuousClock.now - start)
}

// Before: one step after another.
let (sequential, sequentialTime) = try timed {
    try ids.map { try fetchReport($0) }
}

// After: the same function, each call on its own fiber.
let (concurrent, concurrentTime) = try timed {
    let fibers = ids.map { id in Green.spawn { try fetchReport(id) } }
    return try fibers.map { try $0.value }
}

precondition(sequential == concurrent, "both ways must produce the same reports")
func ms(_ d: Duration) -> String {
    let (s, atto) = d.components
    return "\(s * 1000 + atto / 1_000_000_000_000_000) ms"
}
print("\(ids.count) blocking steps of 100 ms each")
print("sequential: \(ms(sequentialTime))")
print("on fibers:  \(ms(concurrentTime))  (same results: \(sequential == concurrent))")
print("first report: \(concurrent[0])")
