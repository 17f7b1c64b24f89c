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
    let a = Green.spawn { incrementAcrossPark(&counter.value) }
    let b = Green.spawn { incrementAcrossPark(&counter.value) }
    try a.value
    try b.value
    // The value itself is unspecified (the two modifications overlap); what
    // matters is that the overlapping accesses, one per fiber, did not trap.
    print("overlapping accesses finished: \(counter.value > 0)")
default:
    fputs("usage: GreenTestHelper overflow|exclusivity\n", stderr)
    exit(2)
}
