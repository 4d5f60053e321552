/// The calls an upstream's objectives are judged on: per minute for the last 6 hours (the
/// burn-rate windows) and per hour over the error budget's window. A sans-IO value that takes
/// the time since its owner's start and allocates nothing once made.
///
/// A call is counted once in each: as answered or failed (a 5xx to the caller), and, when it
/// was answered, as slow when it took longer than the latency objective's bound.
struct SLOCounters: Sendable {
    /// What one span of time holds.
    struct Tally: Sendable, Equatable {
        /// Calls counted.
        var calls = 0
        /// Calls answered with a 5xx.
        var failed = 0
        /// Answered calls slower than the latency objective's bound.
        var slow = 0

        /// Answered calls (the latency objective's base).
        var answered: Int { calls - failed }

        static func += (lhs: inout Tally, rhs: Tally) {
            lhs.calls += rhs.calls
            lhs.failed += rhs.failed
            lhs.slow += rhs.slow
        }
    }

    /// A ring of buckets of one span each.
    struct Ring: Sendable {
        let span: Int64
        private var periods: [Int64]
        private var tallies: [Tally]

        init(span seconds: Int64, count: Int) {
            span = seconds
            periods = Array(repeating: -1, count: count)
            tallies = Array(repeating: Tally(), count: count)
        }

        var count: Int { periods.count }

        func period(of elapsed: Duration) -> Int64 { max(elapsed.components.seconds, 0) / span }

        mutating func add(_ tally: Tally, at elapsed: Duration) {
            let period = self.period(of: elapsed)
            let slot = Int(period % Int64(count))
            if periods[slot] != period {
                periods[slot] = period
                tallies[slot] = Tally()
            }
            tallies[slot] += tally
        }

        /// The sum of the last `buckets` buckets (the current one included) at `elapsed`.
        func sum(last buckets: Int, at elapsed: Duration) -> Tally {
            let current = period(of: elapsed)
            let buckets = Int64(min(max(buckets, 1), count))
            var total = Tally()
            for slot in 0..<count {
                let period = periods[slot]
                guard period >= 0, period <= current, current - period < buckets else { continue }
                total += tallies[slot]
            }
            return total
        }
    }

    /// The burn-rate windows: minutes, 6 hours of them.
    private(set) var minutes = Ring(span: 60, count: 360)
    /// The budget's window: hours.
    private(set) var hours: Ring

    /// Counters for a budget over `window` (whole hours; at least one).
    init(window: Duration) {
        hours = Ring(span: 3_600, count: max(Int(window.components.seconds / 3_600), 1))
    }

    /// Counts one call answered at `elapsed`.
    mutating func record(at elapsed: Duration, failed: Bool, slow: Bool) {
        let tally = Tally(calls: 1, failed: failed ? 1 : 0, slow: !failed && slow ? 1 : 0)
        minutes.add(tally, at: elapsed)
        hours.add(tally, at: elapsed)
    }

    /// The calls of the last `span` (whole minutes, at most 6 hours) at `elapsed`.
    func recent(_ span: Duration, at elapsed: Duration) -> Tally {
        minutes.sum(last: Int((span.components.seconds + 59) / 60), at: elapsed)
    }

    /// The calls of the budget's whole window at `elapsed`.
    func window(at elapsed: Duration) -> Tally {
        hours.sum(last: hours.count, at: elapsed)
    }
}
