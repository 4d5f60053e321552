/// The sans-IO core of ``RetryBudget``: requests and retries per time bucket.
struct RetryBudgetStateMachine<Instant: InstantProtocol<Duration>>: Sendable {
    struct Counts: WindowCounts {
        var requests: Int
        var retries: Int
        static var zero: Counts { Counts(requests: 0, retries: 0) }
        mutating func add(_ other: Counts) {
            requests += other.requests
            retries += other.retries
        }
        mutating func subtract(_ other: Counts) {
            requests -= other.requests
            retries -= other.retries
        }
    }

    private var window: SlidingWindow<Counts, Instant>
    private let ratio: Double
    private let reserve: Double

    init(ratio: Double, minimumPerSecond: Int, window: Duration, origin: Instant) {
        self.window = SlidingWindow(window: window, bucketCount: 10, origin: origin)
        self.ratio = ratio
        self.reserve = Double(minimumPerSecond) * window.inSeconds
    }

    /// Retries the window allows in all: `ratio · requests + minimumPerSecond · window`.
    func allowance() -> Double {
        ratio * Double(window.total.requests) + reserve
    }

    mutating func recordRequest(at now: Instant) {
        window.record(Counts(requests: 1, retries: 0), at: now)
    }

    /// Withdraws one retry if the allowance has room for it.
    mutating func tryWithdraw(at now: Instant) -> Bool {
        window.advance(to: now)
        guard Double(window.total.retries + 1) <= allowance() else { return false }
        window.record(Counts(requests: 0, retries: 1), at: now)
        return true
    }

    mutating func advance(to now: Instant) {
        window.advance(to: now)
    }

    var counts: Counts { window.total }
}
