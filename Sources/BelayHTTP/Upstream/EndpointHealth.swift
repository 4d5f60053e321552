import Synchronization

/// Outlier ejection: an endpoint that fails `ejectAfter` times in a row is skipped for
/// `ejection`, then tried again; one success re-admits it for good, one more failure
/// ejects it again for twice as long (at most ten times the base duration).
final class EndpointHealth<C: Clock>: Sendable where C.Duration == Duration {
    struct Change: Sendable, Equatable {
        var endpoint: Int
        var ejected: Bool
    }

    private struct Entry {
        var consecutiveFailures = 0
        var ejectedUntil: C.Instant?
        var ejections = 0
        /// Every ejection since the client was made (a success does not reset it).
        var totalEjections = 0
    }

    private let clock: C
    private let ejectAfter: Int
    private let ejection: Duration
    private let entries: Mutex<[Entry]>
    /// Every endpoint in configured order: the order while none is ejected.
    private let configuredOrder: [Int]

    init(endpointCount: Int, ejectAfter: Int, ejection: Duration, clock: C) {
        self.clock = clock
        self.ejectAfter = max(ejectAfter, 1)
        self.ejection = ejection
        self.entries = Mutex(Array(repeating: Entry(), count: endpointCount))
        self.configuredOrder = Array(0..<endpointCount)
    }

    /// The endpoints to try, in failover order: admitted ones first, then ejected ones whose
    /// time is up (probes), then the rest (so an all-ejected upstream is still tried); and
    /// how many of the order's last entries are those ejected ones.
    func order() -> (order: [Int], ejected: Int) {
        if entries.withLock({ entries in entries.allSatisfy { $0.ejectedUntil == nil } }) {
            return (configuredOrder, 0)
        }
        let now = clock.now
        return entries.withLock { entries in
            var admitted: [Int] = []
            var probing: [Int] = []
            var ejected: [Int] = []
            for (index, entry) in entries.enumerated() {
                guard let until = entry.ejectedUntil else {
                    admitted.append(index)
                    continue
                }
                if until <= now { probing.append(index) } else { ejected.append(index) }
            }
            return (admitted + probing + ejected, ejected.count)
        }
    }

    /// Records an attempt's result; returns the ejection or re-admission it caused.
    func record(endpoint: Int, success: Bool) -> Change? {
        let now = clock.now
        let base = ejection
        let threshold = ejectAfter
        return entries.withLock { entries in
            guard entries.indices.contains(endpoint) else { return nil }
            if success {
                let wasEjected = entries[endpoint].ejectedUntil != nil
                entries[endpoint] = Entry(totalEjections: entries[endpoint].totalEjections)
                return wasEjected ? Change(endpoint: endpoint, ejected: false) : nil
            }
            entries[endpoint].consecutiveFailures += 1
            let entry = entries[endpoint]
            let probeFailed = entry.ejectedUntil.map { $0 <= now } ?? false
            guard probeFailed || (entry.ejectedUntil == nil && entry.consecutiveFailures >= threshold) else {
                return nil
            }
            let factor = min(1 << min(entry.ejections, 10), 10)
            entries[endpoint].ejectedUntil = now.advanced(by: base * factor)
            entries[endpoint].ejections += 1
            entries[endpoint].totalEjections += 1
            return entry.ejectedUntil == nil ? Change(endpoint: endpoint, ejected: true) : nil
        }
    }

    /// How many times `endpoint` was ejected (or ejected again after a failed probe) so far.
    func ejectionCount(_ endpoint: Int) -> Int {
        entries.withLock { entries in entries.indices.contains(endpoint) ? entries[endpoint].totalEjections : 0 }
    }

    /// Whether `endpoint` is ejected now.
    func isEjected(_ endpoint: Int) -> Bool {
        let now = clock.now
        return entries.withLock { entries in
            guard let until = entries[endpoint].ejectedUntil else { return false }
            return until > now
        }
    }
}
