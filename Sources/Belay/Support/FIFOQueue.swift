/// A first-in-first-out queue: O(1) amortised push and pop; removal by id (a cancelled
/// waiter) scans the queue.
struct FIFOQueue<Element: Sendable>: Sendable {
    private var storage: [(id: UInt64, element: Element)?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(id: UInt64, _ element: Element) {
        storage.append((id, element))
        count += 1
    }

    mutating func popFirst() -> Element? {
        while head < storage.count {
            let entry = storage[head]
            storage[head] = nil
            head += 1
            if let entry {
                count -= 1
                compactIfNeeded()
                return entry.element
            }
        }
        return nil
    }

    /// Removes the element with `id`; nil if it is not queued any more.
    mutating func remove(id: UInt64) -> Element? {
        for index in head..<storage.count {
            if let entry = storage[index], entry.id == id {
                storage[index] = nil
                count -= 1
                compactIfNeeded()
                return entry.element
            }
        }
        return nil
    }

    mutating func removeAll() -> [Element] {
        let elements = storage[head...].compactMap { $0?.element }
        storage.removeAll()
        head = 0
        count = 0
        return elements
    }

    private mutating func compactIfNeeded() {
        if count == 0 {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }
}
