/// Counts that can be added and subtracted, kept per time bucket by ``SlidingWindow``.
protocol WindowCounts: Sendable {
    static var zero: Self { get }
    mutating func add(_ other: Self)
    mutating func subtract(_ other: Self)
}

/// A time-based sliding window: `bucketCount` buckets, each `bucketWidth` wide, with a
/// running total over the live buckets. Sans-IO and clock-agnostic: callers pass the
/// time elapsed since an origin of their choosing.
struct SlidingWindow<Counts: WindowCounts>: Sendable {
    private var buckets: [Counts]
    private let bucketWidth: Duration
    /// The absolute index of the newest live bucket.
    private var newest = 0
    /// Where the newest bucket ends: times before it need no division.
    private var newestEnd: Duration
    /// The sum of every live bucket.
    private(set) var total: Counts

    init(window: Duration, bucketCount: Int) {
        precondition(bucketCount > 0 && window > .zero)
        self.buckets = Array(repeating: .zero, count: bucketCount)
        self.bucketWidth = window / bucketCount
        self.newestEnd = bucketWidth
        self.total = .zero
    }

    /// Drops the buckets that have slid out of the window at `now`.
    mutating func advance(to now: Duration) {
        guard now >= newestEnd else { return }
        let target = Int(now / bucketWidth)
        let steps = min(target - newest, buckets.count)
        for step in 1...max(steps, 1) {
            let slot = (newest + step) % buckets.count
            total.subtract(buckets[slot])
            buckets[slot] = .zero
        }
        newest = target
        newestEnd = bucketWidth * (target + 1)
    }

    /// Adds `counts` to the bucket of `now` (a time before the newest bucket counts in it).
    mutating func record(_ counts: Counts, at now: Duration) {
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
