// SpawnJoin.swift — section 2: create many units with a trivial body, then
// wait for all of them. Reported per unit, split into the create phase and
// the join phase. Each contender runs a cold round (first use in this
// process) and then a warm round; the ratio uses the warm figures.
import CGreenCore
import Glibc
import Green

enum SpawnJoin {
    static let fibers = 100_000
    static let tasks = 100_000
    static let threads = 10_000

    struct Round {
        var units: Int
        var create: Double // seconds
        var join: Double
        var total: Double { create + join }
        var nsPerUnit: Double { total * 1e9 / Double(units) }
    }

    static func run() throws {
        let greenCold = try greenFibers(fibers)
        let greenWarm = try greenFibers(fibers)
        let taskCold = swiftTasks(tasks)
        let taskWarm = swiftTasks(tasks)
        let threadCold = pthreads(threads)
        let threadWarm = pthreads(threads)

        let base = greenWarm.nsPerUnit
        var t = Table("2. Spawn + join (trivial body; create all, then join all)",
                      ["contender", "units", "round", "create / unit", "join / unit", "total / unit", "vs Green (warm)"])
        for (name, label, cold, warm) in [
            ("Green", "Green fibers: Green.spawn + join", greenCold, greenWarm),
            ("Task", "Swift Tasks: Task {} + await .value", taskCold, taskWarm),
            ("Thread", "pthreads: pthread_create + join", threadCold, threadWarm),
        ] {
            for (round, r) in [("cold", cold), ("warm", warm)] {
                t.add([round == "cold" ? label : "", grouped(r.units), round,
                       perOp(ns: r.create * 1e9 / Double(r.units)),
                       perOp(ns: r.join * 1e9 / Double(r.units)),
                       perOp(ns: r.nsPerUnit),
                       round == "warm" ? ratio(name, r.nsPerUnit, baseline: base) : ""])
            }
        }
        // One unit alive at a time: the pooled stack stays hot in cache.
        let greenOne = try greenOneAtATime(fibers)
        let coreOne = coreOneAtATime(fibers)
        let bareOne = bareOneAtATime(fibers)
        let objectOne = swiftObjectOneAtATime(fibers)
        let taskOne = tasksOneAtATime(tasks)
        t.add(["Green fibers, one at a time", grouped(greenOne.units), "warm", "", "", perOp(ns: greenOne.nsPerUnit), "baseline"])
        t.add(["  the C core alone, one at a time", grouped(coreOne.units), "warm", "", "", perOp(ns: coreOne.nsPerUnit),
               ratio("Core", coreOne.nsPerUnit, baseline: greenOne.nsPerUnit)])
        t.add(["  a bare stackful fiber, one at a time", grouped(bareOne.units), "warm", "", "", perOp(ns: bareOne.nsPerUnit),
               ratio("Bare", bareOne.nsPerUnit, baseline: greenOne.nsPerUnit)])
        t.add(["  a Swift object with a fiber's fields alone", grouped(objectOne.units), "warm", "", "", perOp(ns: objectOne.nsPerUnit),
               ratio("Object", objectOne.nsPerUnit, baseline: greenOne.nsPerUnit)])
        t.add(["Swift Tasks, one at a time", grouped(taskOne.units), "warm", "", "", perOp(ns: taskOne.nsPerUnit),
               ratio("Task", taskOne.nsPerUnit, baseline: greenOne.nsPerUnit)])
        t.note("'one at a time' spawns a unit and joins it before the next (a fiber runs each body on the fiber "
               + "the last one ended on, its stack cache-hot); 'create all, then join all' keeps 100,000 alive; a "
               + "fiber takes its stack at its first run (the one freed last), so these trivial bodies share a few.")
        t.note("'the C core alone': green_fiber_spawn + green_fiber_join from C, an empty body, no Swift fiber "
               + "object, closure or reference counts: what Green.spawn + join costs below its Swift layer.")
        t.note("'a bare stackful fiber': a record and a pooled stack, a first frame, a switch in and one back, "
               + "and nothing of the scheduler or a thread's state: the floor under any spawn of a fiber with a stack.")
        t.note("'a Swift object with a fiber's fields alone': allocate an object laid out as Fiber<Void>, hand it "
               + "on retained once as spawn does, release it, free it: no stack, no switch. The bare fiber's row and "
               + "this one add up to the floor of Green.spawn + join under a class handle.")
        t.note("Fibers start running only when main joins, so their bodies run in the join phase; tasks and "
               + "threads start running on other CPUs during the create phase.")
        t.note("cold = first round in this process (earlier sections may already have warmed shared runtime state).")
        t.note("Fiber stacks are default size (256 KiB, pooled); threads use the default pthread attributes "
               + "(stack \(defaultThreadStackKiB()) KiB).")
        t.print()
    }

    static func greenFibers(_ n: Int) throws -> Round {
        var handles: [Fiber<Void>] = []
        handles.reserveCapacity(n)
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n { handles.append(Green.spawn {}) }
        let t1 = clock.now
        for f in handles { try f.join() }
        let t2 = clock.now
        precondition(handles.allSatisfy { $0.state == .done })
        return Round(units: n, create: seconds(t1 - t0), join: seconds(t2 - t1))
    }

    static func greenOneAtATime(_ n: Int) throws -> Round {
        for _ in 0..<1_000 { try Green.spawn {}.join() } // warm-up
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n { try Green.spawn {}.join() }
        return Round(units: n, create: 0, join: seconds(clock.now - t0))
    }

    static func coreOneAtATime(_ n: Int) -> Round {
        _ = Hub.current // the hub the fibers run on
        guard green_spawn_join_floor(1_000) == 0 else { fatalError("green-bench: spawn failed") } // warm-up
        let clock = ContinuousClock()
        let t0 = clock.now
        guard green_spawn_join_floor(n) == 0 else { fatalError("green-bench: spawn failed") }
        return Round(units: n, create: 0, join: seconds(clock.now - t0))
    }

    static func bareOneAtATime(_ n: Int) -> Round {
        guard green_spawn_join_bare_floor(1_000) == 0 else { fatalError("green-bench: no memory for stacks") } // warm-up
        let clock = ContinuousClock()
        let t0 = clock.now
        guard green_spawn_join_bare_floor(n) == 0 else { fatalError("green-bench: no memory for stacks") }
        return Round(units: n, create: 0, join: seconds(clock.now - t0))
    }

    static func swiftObjectOneAtATime(_ n: Int) -> Round {
        for _ in 0..<1_000 { objectRound() } // warm-up
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n { objectRound() }
        return Round(units: n, create: 0, join: seconds(clock.now - t0))
    }

    /// One object's life as a spawned fiber's handle lives it, minus the fiber.
    @inline(__always)
    static func objectRound() {
        let object = FiberShapedObject(name: "fiber", body: {})
        let handedOn = Unmanaged.passRetained(object) // as AnyFiber.start gives the C core a reference
        consumeObject(object)
        handedOn.release()
    }

    static func tasksOneAtATime(_ n: Int) -> Round {
        runAsyncBlocking {
            let clock = ContinuousClock()
            let t0 = clock.now
            for _ in 0..<n { await Task {}.value }
            return Round(units: n, create: 0, join: seconds(clock.now - t0))
        }
    }

    static func swiftTasks(_ n: Int) -> Round {
        runAsyncBlocking {
            var handles: [Task<Void, Never>] = []
            handles.reserveCapacity(n)
            let clock = ContinuousClock()
            let t0 = clock.now
            for _ in 0..<n { handles.append(Task {}) }
            let t1 = clock.now
            for h in handles { await h.value }
            let t2 = clock.now
            return Round(units: n, create: seconds(t1 - t0), join: seconds(t2 - t1))
        }
    }

    static func pthreads(_ n: Int) -> Round {
        var handles: [pthread_t] = []
        handles.reserveCapacity(n)
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<n {
            var err: Int32 = 0
            guard let t = startThread(error: &err, {}) else {
                fatalError("pthread_create failed after \(handles.count) threads: \(String(cString: strerror(err)))")
            }
            handles.append(t)
        }
        let t1 = clock.now
        for t in handles { joinThread(t) }
        let t2 = clock.now
        return Round(units: n, create: seconds(t1 - t0), join: seconds(t2 - t1))
    }

    static func defaultThreadStackKiB() -> Int {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        var size = 0
        pthread_attr_getstacksize(&attr, &size)
        return size / 1024
    }
}

/// The stored properties of a `Fiber<Void>` (AnyFiber's and the body), for
/// the row that measures what one such object costs alone.
final class FiberShapedObject {
    var core: OpaquePointer?
    var hub: AnyObject?
    var id: UInt64 = 0
    let name: String
    var outcomeValue: AnyObject?
    var outcomeError: Error?
    var outcomeObserved = false
    var locals: [ObjectIdentifier: Any]?
    var completionHandlers: [() -> Void]?
    var finished = false
    var cancelledBeforeEnd = false
    var body: (() throws -> Void)?

    init(name: String, body: @escaping () throws -> Void) {
        self.name = name
        self.body = body
    }
}

/// Kept out of line so that the optimizer cannot drop the object.
@inline(never)
func consumeObject(_ object: FiberShapedObject) {
    objectSink &+= object.id &+ UInt64(object.name.utf8.count)
}
nonisolated(unsafe) var objectSink: UInt64 = 0
