import Foundation

/// Requests, errors, retries, stale answers and a latency histogram of one upstream over the
/// last few minutes, kept in 10-second buckets: a sans-IO value that takes the time since its
/// owner's start and allocates nothing once made.
///
/// A bucket is reused (zeroed) when time reaches it again, so a window's figures expire in
/// steps of 10 seconds. Latencies are counted in fixed bins growing by a factor of 2^(1/4)
/// (about 19 %) from 100 µs to about 100 s; a percentile is interpolated within its bin.
struct HealthCounters: Sendable {
    /// One bucket's span.
    static let bucketSpan: Duration = .seconds(10)
    /// Buckets kept: 5 minutes.
    static let bucketCount = 30
    /// The upper bound of each latency bin in microseconds; one more bin holds the rest.
    static let latencyBounds: [Int64] = (0...80).map { Int64((100 * pow(2, Double($0) / 4)).rounded()) }
    static var binCount: Int { latencyBounds.count + 1 }

    /// Figures over one window.
    struct Summary: Sendable, Equatable {
        var requests = 0
        var errors = 0
        var retries = 0
        /// Requests that needed at least one retry.
        var retried = 0
        var stale = 0
        /// Latency percentiles (p50, p95, p99); nil without requests.
        var p50: Duration?
        var p95: Duration?
        var p99: Duration?

        /// Errors (5xx answers to callers) per request; 0 without requests.
        var errorRate: Double { requests == 0 ? 0 : Double(errors) / Double(requests) }
        /// Retries per request; 0 without requests.
        var retryRate: Double { requests == 0 ? 0 : Double(retries) / Double(requests) }
        /// The share of requests that needed a retry; 0 without requests.
        var retriedShare: Double { requests == 0 ? 0 : Double(retried) / Double(requests) }
    }

    /// The bucket period (time / span) each slot holds; -1 for none.
    private var periods: [Int64]
    private var requests: [Int]
    private var errors: [Int]
    private var retries: [Int]
    private var retried: [Int]
    private var stale: [Int]
    /// `bucketCount * binCount` latency counts, one row per slot.
    private var latency: [Int]

    init() {
        periods = Array(repeating: -1, count: Self.bucketCount)
        requests = Array(repeating: 0, count: Self.bucketCount)
        errors = requests
        retries = requests
        retried = requests
        stale = requests
        latency = Array(repeating: 0, count: Self.bucketCount * Self.binCount)
    }

    /// Counts one request answered at `elapsed` (time since the owner's start).
    mutating func record(
        at elapsed: Duration,
        latency duration: Duration,
        error: Bool,
        retries extra: Int,
        stale served: Bool
    ) {
        let slot = self.slot(for: Self.period(of: elapsed))
        requests[slot] += 1
        if error { errors[slot] += 1 }
        retries[slot] += extra
        if extra > 0 { retried[slot] += 1 }
        if served { stale[slot] += 1 }
        latency[slot * Self.binCount + Self.bin(of: duration)] += 1
    }

    /// The figures of the last `span` (rounded up to whole buckets, at most 5 minutes) at `elapsed`.
    func summary(at elapsed: Duration, over span: Duration) -> Summary {
        let current = Self.period(of: elapsed)
        let buckets = min(max(Int((span / Self.bucketSpan).rounded(.up)), 1), Self.bucketCount)
        var summary = Summary()
        var bins = [Int](repeating: 0, count: Self.binCount)
        for slot in 0..<Self.bucketCount {
            let period = periods[slot]
            guard period >= 0, period <= current, current - period < Int64(buckets) else { continue }
            summary.requests += requests[slot]
            summary.errors += errors[slot]
            summary.retries += retries[slot]
            summary.retried += retried[slot]
            summary.stale += stale[slot]
            for bin in 0..<Self.binCount { bins[bin] += latency[slot * Self.binCount + bin] }
        }
        if summary.requests > 0 {
            summary.p50 = Self.percentile(0.50, of: bins, total: summary.requests)
            summary.p95 = Self.percentile(0.95, of: bins, total: summary.requests)
            summary.p99 = Self.percentile(0.99, of: bins, total: summary.requests)
        }
        return summary
    }

    /// The `quantile` of latencies over the last `span` at `elapsed`; nil without requests.
    func latency(_ quantile: Double, at elapsed: Duration, over span: Duration) -> Duration? {
        let current = Self.period(of: elapsed)
        let buckets = min(max(Int((span / Self.bucketSpan).rounded(.up)), 1), Self.bucketCount)
        var bins = [Int](repeating: 0, count: Self.binCount)
        var total = 0
        for slot in 0..<Self.bucketCount {
            let period = periods[slot]
            guard period >= 0, period <= current, current - period < Int64(buckets) else { continue }
            total += requests[slot]
            for bin in 0..<Self.binCount { bins[bin] += latency[slot * Self.binCount + bin] }
        }
        return total > 0 ? Self.percentile(quantile, of: bins, total: total) : nil
    }

    /// The slot of `period`, zeroed first if it held an older one.
    private mutating func slot(for period: Int64) -> Int {
        let slot = Int(period % Int64(Self.bucketCount))
        if periods[slot] != period {
            periods[slot] = period
            requests[slot] = 0
            errors[slot] = 0
            retries[slot] = 0
            retried[slot] = 0
            stale[slot] = 0
            for bin in 0..<Self.binCount { latency[slot * Self.binCount + bin] = 0 }
        }
        return slot
    }

    static func period(of elapsed: Duration) -> Int64 {
        max(elapsed.components.seconds, 0) / bucketSpan.components.seconds
    }

    /// The bin of `duration`: the first whose bound is at least it (binary search).
    static func bin(of duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        var low = 0
        var high = latencyBounds.count
        while low < high {
            let middle = (low + high) / 2
            if latencyBounds[middle] < micros { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The `quantile` of the counts in `bins`, interpolated linearly within its bin.
    static func percentile(_ quantile: Double, of bins: [Int], total: Int) -> Duration {
        let rank = quantile * Double(total)
        var seen = 0
        for (bin, count) in bins.enumerated() where count > 0 {
            if Double(seen + count) >= rank {
                let lower = bin == 0 ? 0 : latencyBounds[bin - 1]
                let upper = bin < latencyBounds.count ? latencyBounds[bin] : lower * 2
                let fraction = min(max((rank - Double(seen)) / Double(count), 0), 1)
                let micros = Double(lower) + Double(upper - lower) * fraction
                return .microseconds(Int64(micros.rounded()))
            }
            seen += count
        }
        return .microseconds(latencyBounds.last ?? 0)
    }
}
