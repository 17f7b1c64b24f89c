// ShimLocks.swift — section 4c: an uncontended pthread mutex lock/unlock
// pair through the shim's interposers (they park a fiber when the lock is
// taken) against libc's own functions, off a fiber and on one.
import Glibc
import Green

extension ShimBench {
    typealias MutexFn = @convention(c) (UnsafeMutablePointer<pthread_mutex_t>) -> Int32

    static func lockPairs() throws {
        let next = UnsafeMutableRawPointer(bitPattern: -1) // RTLD_NEXT: libc, behind our interposers
        let libcLock = unsafeBitCast(dlsym(next, "pthread_mutex_lock"), to: MutexFn.self)
        let libcUnlock = unsafeBitCast(dlsym(next, "pthread_mutex_unlock"), to: MutexFn.self)
        let shimLock: MutexFn = { Glibc.pthread_mutex_lock($0) }
        let shimUnlock: MutexFn = { Glibc.pthread_mutex_unlock($0) }
        let n = 20_000_000
        func pairs(_ lock: MutexFn, _ unlock: MutexFn) -> (Double, Double) {
            var shim: [Double] = [], libc: [Double] = []
            for _ in 0..<5 { // interleaved, median of 5
                for (fnLock, fnUnlock, into) in [(shimLock, shimUnlock, 0), (libcLock, libcUnlock, 1)] {
                    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
                    m.initialize(to: pthread_mutex_t())
                    let ns = measure { for _ in 0..<n { _ = fnLock(m); _ = fnUnlock(m) } } * 1e9 / Double(n)
                    m.deallocate()
                    if into == 0 { shim.append(ns) } else { libc.append(ns) }
                }
            }
            return (median(shim), median(libc))
        }
        var offFiber = (0.0, 0.0)
        joinThread(startThread { offFiber = pairs(shimLock, shimUnlock) }!) // a thread that never used Green
        let onFiber = try Green.spawn { pairs(shimLock, shimUnlock) }.value
        var table = Table("4c. Uncontended pthread_mutex_lock + unlock (20,000,000 pairs, median of 5)",
                          ["caller", "through the shim", "libc directly", "difference per pair"])
        for (name, r) in [("a thread without a hub", offFiber), ("a fiber", onFiber)] {
            table.add([name, perOp(ns: r.0), perOp(ns: r.1), fixed(r.0 - r.1, 1) + " ns"])
        }
        table.note("The shim's mutex is glibc's protocol on the same word; the difference is the cost of parking-aware")
        table.note("ownership (a fiber's owner id) and the extra call through the interposer.")
        table.print()
    }
}
