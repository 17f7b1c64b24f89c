// Three fibers sleep 100 ms at once; the line printed says they all ran.
import Green

let start = ContinuousClock.now
let fibers = (1...3).map { i in
    Green.spawn { () throws -> Int in
        try Green.sleep(for: .milliseconds(100))
        return i
    }
}
let results = try fibers.map { try $0.value }
let elapsed = Int((ContinuousClock.now - start) / .milliseconds(1))
print("consumer: 3 fibers slept 100 ms each, results \(results), \(elapsed) ms in all")
