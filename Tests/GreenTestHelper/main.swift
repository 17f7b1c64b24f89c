// A helper process for tests whose outcome is a crash or needs a clean
// process: run as `GreenTestHelper <mode>`.
import Glibc
import Green

final class Counter { var value = 0 }

/// Holds a dynamically checked `inout` access across a park.
func incrementAcrossPark(_ x: inout Int) {
    x += 1
    try? Green.sleep(for: .milliseconds(20))
    x += 1
}

@inline(never)
func recurse(_ depth: Int) -> Int {
    var frame = (depth, depth &+ 1, depth &+ 2, depth &+ 3)
    withUnsafeMutablePointer(to: &frame) { _ in }
    return recurse(depth + 1) &+ frame.0
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
switch mode {
case "overflow":
    let f = Green.spawn(name: "deep-recursion", stackSize: 64 * 1024) { recurse(0) }
    print(try f.value)
case "overflow-neighbour-survives":
    // Not used by the crash test: a fiber that merely runs deep but within bounds.
    let f = Green.spawn(name: "deep-ok", stackSize: 1 << 20) { () -> Int in
        func down(_ n: Int) -> Int { n == 0 ? 0 : down(n - 1) + 1 }
        return down(5000)
    }
    print(try f.value)
case "exclusivity":
    let counter = Counter()
    let rootOwned = Counter()
    // The root context holds an access of its own while the fibers run.
    func whileHolding(_ x: inout Int) throws {
        let a = Green.spawn { incrementAcrossPark(&counter.value) }
        let b = Green.spawn { incrementAcrossPark(&counter.value) }
        let c = Green.spawn { for _ in 0..<3 { incrementAcrossPark(&Counter().value) } }
        try a.value
        try b.value
        try c.value
        x += 1
    }
    try whileHolding(&rootOwned.value)
    // The value itself is unspecified (the two modifications overlap); what
    // matters is that the overlapping accesses, one per fiber, did not trap.
    print("overlapping accesses finished: \(counter.value > 0)")
case "exclusivity-still-checked":
    // A real conflict inside one fiber must still trap.
    let counter = Counter()
    func twice(_ a: inout Int, _ b: () -> Void) { a += 1; b() }
    let f = Green.spawn { twice(&counter.value) { counter.value += 1 } }
    try f.value
    print("not trapped")
default:
    fputs("usage: GreenTestHelper overflow|exclusivity|exclusivity-still-checked\n", stderr)
    exit(2)
}
