/// Counts that can be added and subtracted, kept per time bucket by ``SlidingWindow``.
protocol WindowCounts: Sendable {
    static var zero: Self { get }
    mutating func add(_ other: Self)
    mutating func subtract(_ other: Self)
}

/// A time-based sliding window: `bucketCount` buckets, each `bucketWidth` wide, with a
/// running total over the live buckets. Sans-IO: callers pass instants.
struct SlidingWindow<Counts: WindowCounts, Instant: InstantProtocol<Duration>>: Sendable {
    private var buckets: [Counts]
    private let bucketWidth: Duration
    private let origin: Instant
    /// The absolute index of the newest live bucket.
    private var newest: Int
    /// The sum of every live bucket.
    private(set) var total: Counts

    init(window: Duration, bucketCount: Int, origin: Instant) {
        precondition(bucketCount > 0 && window > .zero)
        self.buckets = Array(repeating: .zero, count: bucketCount)
        self.bucketWidth = window / bucketCount
        self.origin = origin
        self.newest = 0
        self.total = .zero
    }

    private func index(of instant: Instant) -> Int {
        let elapsed = origin.duration(to: instant)
        if elapsed <= .zero { return 0 }
        return Int(elapsed / bucketWidth)
    }

    /// Drops the buckets that have slid out of the window at `now`.
    mutating func advance(to now: Instant) {
        let target = index(of: now)
        guard target > newest else { return }
        let steps = min(target - newest, buckets.count)
        for step in 1...steps {
            let slot = (newest + step) % buckets.count
            total.subtract(buckets[slot])
            buckets[slot] = .zero
        }
        newest = target
    }

    /// Adds `counts` to the bucket of `now`.
    mutating func record(_ counts: Counts, at now: Instant) {
        advance(to: now)
        buckets[newest % buckets.count].add(counts)
        total.add(counts)
    }

    /// Empties the window.
    mutating func reset() {
        for slot in buckets.indices { buckets[slot] = .zero }
        total = .zero
    }
}
