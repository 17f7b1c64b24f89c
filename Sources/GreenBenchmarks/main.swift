// green-bench — Green fibers side by side with Swift concurrency tasks and
// pthreads, all measured in the same run.
//
//   swift run -c release green-bench                  # all sections
//   swift run -c release green-bench pingpong spawn    # some sections
//   swift run -c release --scratch-path .build-bench green-bench preload
//                                                      # C programs natively vs LD_PRELOAD (not in "all")
//   green-bench --mem fibers|tasks|threads             # (internal) memory child
import Glibc

let sections = ["pingpong", "spawn", "memory", "shim", "preload"]
let defaultSections = ["pingpong", "spawn", "memory", "shim"]

func usage() -> Never {
    print("usage: green-bench [\(sections.joined(separator: "] ["))]   (default: all but preload)")
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "--profile-spawn-one" {
    // Hidden: a tight spawn+join loop to run under perf.
    let r = try SpawnJoin.greenOneAtATime(2_000_000)
    print("\(r.nsPerUnit) ns per spawn+join")
    exit(0)
}
if args.first == "--profile-spawn-core" {
    // Hidden: the C core's spawn+join alone (no Swift object), to run under perf or callgrind.
    let r = SpawnJoin.coreOneAtATime(2_000_000)
    print("\(r.nsPerUnit) ns per spawn+join")
    exit(0)
}
if args.first == "--profile-spawn-bare" {
    // Hidden: a bare stackful fiber's spawn+join (the floor row), to run under callgrind.
    let r = SpawnJoin.bareOneAtATime(2_000_000)
    print("\(r.nsPerUnit) ns per spawn+join")
    exit(0)
}
if args.first == "--profile-spawn-many" {
    // Hidden: 100,000 fibers alive (create all, then join all), 20 rounds, to run under perf.
    var total = 0.0
    for _ in 0..<20 { total += try SpawnJoin.greenFibers(100_000).nsPerUnit }
    print("\(total / 20) ns per spawn+join")
    exit(0)
}
if args.first == "--profile-pingpong" {
    // Hidden: two fibers yielding to each other 2,000,000 times each, to run under perf or callgrind.
    let r = try PingPong.greenFibers(rounds: 2_000_000)
    print("\(r.seconds / 2_000_000 * 1e9) ns per round trip")
    exit(0)
}
if args.first == "--mem" {
    guard args.count == 2 else { usage() }
    Memory.child(args[1])
}
if args.contains("-h") || args.contains("--help") { usage() }
for a in args where !sections.contains(a) {
    fputs("green-bench: unknown section '\(a)'\n", stderr)
    usage()
}
if args.isEmpty { args = defaultSections }

#if arch(x86_64)
let arch = "x86_64"
#elseif arch(arm64)
let arch = "aarch64"
#else
let arch = "unknown arch"
#endif

print("Green benchmarks — fibers vs Swift Tasks vs pthreads")
print("machine: nproc=\(ProcessInfoLite.cpus), kernel \(kernelRelease()), \(arch)")
print("command: swift run -c release green-bench   (this run: green-bench \(args.joined(separator: " ")))")
#if DEBUG
print("WARNING: this is a debug build; numbers are meaningless. Use -c release.")
#endif
fflush(stdout)

let started = ContinuousClock.now
do {
    if args.contains("pingpong") { try PingPong.run() }
    if args.contains("spawn") { try SpawnJoin.run() }
    if args.contains("memory") { Memory.run() }
    if args.contains("shim") { try ShimBench.run() }
    if args.contains("preload") { try PreloadBench.run() }
} catch {
    fputs("green-bench: \(error)\n", stderr)
    exit(1)
}
print("\ntotal benchmark time: \(fixed(seconds(ContinuousClock.now - started), 1)) s")
