/// A growable FIFO with O(1) push and pop at either end of use.
struct RingBuffer<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let e = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return e
    }

    /// Remove the first element matching `predicate`, keeping the order of the rest.
    mutating func removeFirst(where predicate: (Element) -> Bool) -> Element? {
        for i in 0..<count {
            let idx = (head + i) % storage.count
            if predicate(storage[idx]!) {
                let e = storage[idx]
                var items: [Element] = []
                items.reserveCapacity(count - 1)
                for j in 0..<count where j != i { items.append(storage[(head + j) % storage.count]!) }
                self = RingBuffer()
                for item in items { append(item) }
                return e
            }
        }
        return nil
    }

    func first(where predicate: (Element) -> Bool) -> Element? {
        for i in 0..<count {
            let e = storage[(head + i) % storage.count]!
            if predicate(e) { return e }
        }
        return nil
    }

    private mutating func grow() {
        let newCapacity = Swift.max(8, storage.count * 2)
        var newStorage = [Element?](repeating: nil, count: newCapacity)
        for i in 0..<count { newStorage[i] = storage[(head + i) % storage.count] }
        storage = newStorage
        head = 0
    }
}
