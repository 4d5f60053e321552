import Prometheus
import Synchronization

/// Counters of one family made on first use, one per key, then kept: for label values that
/// are bounded but mostly never occur (a problem code, a breaker transition, a rejection
/// reason), so the scrape does not list dozens of zeros. Finding one takes a lock and a
/// dictionary lookup; the series is made (and registered) once.
final class CounterCache<Key: Hashable & Sendable>: Sendable {
    private let counters = Mutex<[Key: Counter]>([:])
    private let make: @Sendable (Key) -> Counter

    /// - Parameter make: makes the counter of a key (called once per key, under the lock).
    init(_ make: @escaping @Sendable (Key) -> Counter) {
        self.make = make
    }

    /// The counter of `key`, made now if it is the first time.
    func callAsFunction(_ key: Key) -> Counter {
        counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = make(key)
            counters[key] = counter
            return counter
        }
    }
}
