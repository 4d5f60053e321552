import Prometheus
import Synchronization

/// Series made on first use, one per key, then kept: for label values that are bounded but
/// mostly never occur (a problem code, a breaker transition, a rejection reason), so the
/// scrape does not list dozens of zeros, and for the series of a webhook source a reload added.
/// Finding one takes a lock and a dictionary lookup; the series is made (and registered) once.
final class SeriesCache<Key: Hashable & Sendable, Series: Sendable>: Sendable {
    private let made: Mutex<[Key: Series]>
    private let make: @Sendable (Key) -> Series

    /// - Parameters:
    ///   - initial: series made already (those the scrape lists from the start, at zero).
    ///   - make: makes the series of a key (called once per key, under the lock).
    init(_ initial: [Key: Series] = [:], _ make: @escaping @Sendable (Key) -> Series) {
        self.made = Mutex(initial)
        self.make = make
    }

    /// The series of `key`, made now if it is the first time.
    func callAsFunction(_ key: Key) -> Series {
        made.withLock { made in
            if let series = made[key] { return series }
            let series = make(key)
            made[key] = series
            return series
        }
    }
}

/// Counters of one family made on first use (``SeriesCache``).
typealias CounterCache<Key: Hashable & Sendable> = SeriesCache<Key, Counter>
