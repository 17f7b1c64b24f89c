/// A value each fiber sees its own copy of (like a thread-local, per fiber).
///
/// ```swift
/// let requestID = FiberLocal<Int>(default: 0)
/// Green.spawn { requestID.value = 7; handle() }   // handle() reads 7
/// ```
public final class FiberLocal<Value> {
    private let defaultValue: Value

    public init(default defaultValue: Value) { self.defaultValue = defaultValue }

    /// The running fiber's value (the default until it sets one).
    public var value: Value {
        get { AnyFiber.running.locals?[ObjectIdentifier(self)] as? Value ?? defaultValue }
        set {
            let fiber = AnyFiber.running
            if fiber.locals == nil { fiber.locals = [:] }
            fiber.locals![ObjectIdentifier(self)] = newValue
        }
    }
}

/// A fiber-local (a global `let`, say) may be shared by every thread: each
/// access reads or writes the running fiber's own copy, on that fiber's
/// thread, and the object itself holds only its immutable default.
extension FiberLocal: Sendable where Value: Sendable {}
