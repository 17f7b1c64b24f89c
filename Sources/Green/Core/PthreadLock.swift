import Glibc

/// An OS-thread mutex with a stable address (as swift-nio's `NIOLock`): the
/// `pthread_mutex_t` lives in memory allocated once, never in a Swift stored
/// property, whose address `&` does not guarantee to be stable (Swift may
/// copy the value to a temporary around the call, and a lock that moves is
/// no lock). For the runtime's own cross-thread state; fibers use `Lock`.
// @unchecked: a pthread mutex is made to be shared between threads; the pointer never changes.
final class PthreadLock: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        if rc != 0 { fatalError("green: pthread_mutex_init failed (error \(rc))") }
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func lock() {
        let rc = pthread_mutex_lock(mutex)
        if rc != 0 { fatalError("green: pthread_mutex_lock failed (error \(rc))") }
    }

    func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        if rc != 0 { fatalError("green: pthread_mutex_unlock failed (error \(rc))") }
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// In a fork child only: the mutex may have been held by a thread that
    /// does not exist in the child; start it over unlocked.
    func reinitializeInChild() {
        pthread_mutex_init(mutex, nil)
    }
}

/// A condition variable at a stable address, used with a `PthreadLock`.
// @unchecked: a pthread condition is made to be shared between threads; the pointer never changes.
final class PthreadCondition: @unchecked Sendable {
    let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        let rc = pthread_cond_init(cond, nil)
        if rc != 0 { fatalError("green: pthread_cond_init failed (error \(rc))") }
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deinitialize(count: 1)
        cond.deallocate()
    }

    /// Wait (the caller holds `lock`); may wake spuriously.
    func wait(_ lock: PthreadLock) { pthread_cond_wait(cond, lock.mutex) }
    func signal() { pthread_cond_signal(cond) }
    func broadcast() { pthread_cond_broadcast(cond) }

    /// In a fork child only (see `PthreadLock.reinitializeInChild`).
    func reinitializeInChild() { pthread_cond_init(cond, nil) }
}

/// A counting semaphore for OS threads.
// @unchecked: `count` is used only under `lock`.
final class PthreadSemaphore: @unchecked Sendable {
    private let lock = PthreadLock()
    private let changed = PthreadCondition()
    private var count = 0

    func signal() {
        lock.locked {
            count += 1
            changed.signal()
        }
    }

    func wait() {
        lock.lock()
        while count == 0 { changed.wait(lock) }
        count -= 1
        lock.unlock()
    }
}
