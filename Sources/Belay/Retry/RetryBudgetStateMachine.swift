/// The sans-IO core of ``RetryBudget``: requests and retries per time bucket.
struct RetryBudgetStateMachine: Sendable {
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

    private var window: SlidingWindow<Counts>
    private let ratio: Double
    private let reserve: Double

    init(ratio: Double, minimumPerSecond: Int, window: Duration) {
        self.window = SlidingWindow(window: window, bucketCount: 10)
        self.ratio = ratio
        self.reserve = Double(minimumPerSecond) * window.inSeconds
    }

    /// Retries the window allows in all: `ratio · requests + minimumPerSecond · window`.
    func allowance() -> Double {
        ratio * Double(window.total.requests) + reserve
    }

    mutating func recordRequest(at now: Duration) {
        window.record(Counts(requests: 1, retries: 0), at: now)
    }

    /// Withdraws one retry if the allowance has room for it.
    mutating func tryWithdraw(at now: Duration) -> Bool {
        window.advance(to: now)
        guard Double(window.total.retries + 1) <= allowance() else { return false }
        window.record(Counts(requests: 0, retries: 1), at: now)
        return true
    }

    mutating func advance(to now: Duration) {
        window.advance(to: now)
    }

    var counts: Counts { window.total }
}
