import Synchronization

/// A limit on retries shared by every caller of one pipeline (or several pipelines).
///
/// Over a sliding `window`, retries may be at most `ratio` of the requests plus a floor of
/// `minimumPerSecond` per second, so a failing dependency sees at most about `1 + ratio`
/// times its normal load instead of `maxAttempts` times. Envoy and failsafe-go default
/// to 20 % with a minimum of 3 per second; so does this type.
///
/// ```swift
/// let budget = try RetryBudget(.init(ratio: 0.1))
/// let pipeline = try ResiliencePipeline<Int>.Builder()
///     .retry(.init(maxAttempts: 3, budget: budget))
///     .build()
/// ```
public final class RetryBudget<C: Clock>: Sendable where C.Duration == Duration {
    /// Options of a retry budget.
    public struct Configuration: Sendable {
        /// The budget's name in errors. Default `retry-budget`.
        public var name: String
        /// Retries allowed as a share of requests in the window, `0...1`. Default 0.2.
        public var ratio: Double
        /// Retries always allowed per second of window, whatever the traffic. Default 3.
        public var minimumPerSecond: Int
        /// How far back requests and retries are counted, in 10 buckets. Default 10 s.
        public var window: Duration

        /// Creates a configuration.
        public init(
            ratio: Double = 0.2,
            minimumPerSecond: Int = 3,
            window: Duration = .seconds(10),
            name: String = "retry-budget"
        ) {
            self.name = name
            self.ratio = ratio
            self.minimumPerSecond = minimumPerSecond
            self.window = window
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.ratio(ratio, "ratio")
            validator.atLeast(minimumPerSecond, 0, "minimumPerSecond")
            validator.positive(window, "window")
            try validator.check()
        }
    }

    /// The options in force.
    public let configuration: Configuration
    let clock: C
    private let origin: C.Instant
    private let state: Mutex<RetryBudgetStateMachine>

    /// Creates a budget on `clock`, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.state = Mutex(
            RetryBudgetStateMachine(
                ratio: configuration.ratio,
                minimumPerSecond: configuration.minimumPerSecond,
                window: configuration.window
            )
        )
        self.origin = clock.now
    }

    /// Counts one request (not a retry) against the budget.
    public func recordRequest() {
        let now = origin.duration(to: clock.now)
        state.withLock { $0.recordRequest(at: now) }
    }

    /// Takes one retry from the budget; `false` if none is left.
    public func tryWithdrawRetry() -> Bool {
        let now = origin.duration(to: clock.now)
        return state.withLock { $0.tryWithdraw(at: now) }
    }

    /// Requests and retries counted in the current window.
    public var usage: (requests: Int, retries: Int) {
        let now = origin.duration(to: clock.now)
        return state.withLock {
            $0.advance(to: now)
            return ($0.counts.requests, $0.counts.retries)
        }
    }
}

extension RetryBudget where C == ContinuousClock {
    /// Creates a budget on the continuous clock.
    public convenience init(_ configuration: Configuration) throws(ConfigurationError) {
        try self.init(configuration, clock: ContinuousClock())
    }
}
