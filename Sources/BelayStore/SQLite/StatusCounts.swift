import Synchronization

/// The history part of ``SQLiteStore``'s status counts, kept a short while when it is
/// expensive to count.
///
/// `counts()` counts every status through the `deliveries_status(status, id)` index: one
/// range per status, so its cost is the number of rows counted. The live statuses
/// (`pending`, `in_flight`) and those an operator acts on (`dead`, `cancelled`) stay small
/// and are always counted. `delivered` and `acknowledged` are the history: they grow with
/// every delivery made (until retention purges them), so once they hold at least
/// ``threshold`` rows, their counts are reused for up to ``maxAge`` (of the injected clock)
/// before being counted again. Below the threshold every count is exact; above it, a scrape
/// costs what the live statuses cost, and one scrape per `maxAge` also pays the history's.
///
/// No write pays for it: a counts table kept by triggers (an earlier attempt) cost 8 % of
/// accepts and 23 % of dispatch.
final class StatusCounts: Sendable {
    /// The counts reused, and the clock reading they were taken at.
    private struct Cached {
        var counts: [DeliveryStatus: Int]
        var takenAt: Duration
    }

    /// The statuses whose counts may be reused.
    static let history: [DeliveryStatus] = [.delivered, .acknowledged]
    /// The statuses always counted.
    static let exact: [DeliveryStatus] = DeliveryStatus.allCases.filter { !history.contains($0) }

    /// How long history counts are reused.
    let maxAge: Duration
    /// The history total (rows) from which counts are reused; below it they are always counted.
    let threshold: Int
    /// The time elapsed on the injected clock since the store opened.
    private let elapsed: @Sendable () -> Duration
    private let cached = Mutex<Cached?>(nil)

    init<C: Clock>(clock: C, maxAge: Duration, threshold: Int) where C.Duration == Duration {
        let start = clock.now
        self.elapsed = { start.duration(to: clock.now) }
        self.maxAge = maxAge
        self.threshold = threshold
    }

    /// The clock's reading now, to pass back to ``keep(_:takenAt:)``.
    var now: Duration { elapsed() }

    /// The history counts to reuse at `now`, if any are recent enough.
    func reusable(at now: Duration) -> [DeliveryStatus: Int]? {
        cached.withLock { cached in
            guard let cached, now - cached.takenAt < maxAge else { return nil }
            return cached.counts
        }
    }

    /// Keeps the history counts read at `takenAt` if they are worth reusing (their total is
    /// at least ``threshold``).
    func keep(_ counts: [DeliveryStatus: Int], takenAt: Duration) {
        let total = Self.history.reduce(0) { $0 + (counts[$1] ?? 0) }
        cached.withLock { $0 = total >= threshold ? Cached(counts: counts, takenAt: takenAt) : nil }
    }

    /// Forgets the kept counts (after a purge), so that the next read counts again.
    func invalidate() {
        cached.withLock { $0 = nil }
    }
}
