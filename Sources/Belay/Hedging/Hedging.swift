/// Starts extra attempts when the first is slow; the first acceptable outcome wins.
///
/// After ``Configuration/delay`` without an acceptable outcome (a fixed time, or an
/// observed latency percentile), another attempt is started, up to
/// ``Configuration/maxHedgedAttempts`` extra ones. An attempt that fails starts the next
/// at once (unless ``Configuration/launchesOnFailure`` is off: then a failure waits for the
/// attempts still running, or is returned when none is, for a retry outside to handle). The
/// first acceptable outcome is returned and the other attempts are cancelled; if none is
/// acceptable, the last outcome is returned. With a ``Configuration/budget``, each extra
/// attempt is a retry withdrawn from it: none is started once it is spent.
///
/// Hedge only idempotent work: several attempts may reach the dependency.
///
/// ```swift
/// let pipeline = try ResiliencePipeline<Quote>.Builder()
///     .hedging(.init(maxHedgedAttempts: 1, delay: .percentile(0.95, otherwise: .milliseconds(200))))
///     .build()
/// ```
public struct Hedging<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// When to start the next attempt.
    public enum Delay: Sendable {
        /// After a fixed time.
        case fixed(Duration)
        /// After the observed `quantile` latency of recent successful attempts, or
        /// `otherwise` until `minimumSamples` have been seen.
        case percentile(Double, otherwise: Duration, minimumSamples: Int = 20)
    }

    /// Options of hedging.
    public struct Configuration: Sendable {
        /// The strategy's name in events. Default `hedging`.
        public var name: String
        /// Extra attempts at most. At least 1; default 1.
        public var maxHedgedAttempts: Int
        /// When to start the next attempt. Default a fixed 200 ms.
        public var delay: Delay
        /// Which outcomes are acceptable. Default: any returned value.
        public var isAcceptable: @Sendable (Result<Output, any Error>) -> Bool
        /// Whether an unacceptable outcome starts the next attempt at once. Default true; off
        /// when a ``Retry`` outside handles failures (with its backoff and `Retry-After`), so
        /// that hedging only answers slowness.
        public var launchesOnFailure: Bool
        /// A budget each extra attempt is withdrawn from, shared with retries, if any: once it
        /// is spent, no extra attempt starts. Default none.
        public var budget: RetryBudget<C>?

        /// Creates a configuration.
        public init(
            maxHedgedAttempts: Int = 1,
            delay: Delay = .fixed(.milliseconds(200)),
            isAcceptable: @escaping @Sendable (Result<Output, any Error>) -> Bool = {
                if case .success = $0 { return true }
                return false
            },
            launchesOnFailure: Bool = true,
            budget: RetryBudget<C>? = nil,
            name: String = "hedging"
        ) {
            self.name = name
            self.maxHedgedAttempts = maxHedgedAttempts
            self.delay = delay
            self.isAcceptable = isAcceptable
            self.launchesOnFailure = launchesOnFailure
            self.budget = budget
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.atLeast(maxHedgedAttempts, 1, "maxHedgedAttempts")
            switch delay {
            case .fixed(let delay):
                validator.nonNegative(delay, "delay")
            case .percentile(let quantile, let otherwise, let minimumSamples):
                validator.ratio(quantile, "delay.percentile")
                validator.nonNegative(otherwise, "delay.otherwise")
                validator.atLeast(minimumSamples, 1, "delay.minimumSamples")
            }
            try validator.check()
        }
    }

    /// The options in force.
    public let configuration: Configuration
    /// Latencies of successful attempts, feeding percentile delays.
    public let latencies: LatencyTracker
    let clock: C

    /// Creates a hedging strategy, validating its options.
    public init(
        _ configuration: Configuration,
        clock: C,
        latencies: LatencyTracker = LatencyTracker()
    )
        throws(ConfigurationError)
    {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.latencies = latencies
    }

    private enum Event: Sendable {
        case finished(Result<Output, any Error>, latency: Duration)
        case hedgeDue
        case timerCancelled
    }

    private func currentDelay() -> Duration {
        switch configuration.delay {
        case .fixed(let delay):
            return delay
        case .percentile(let quantile, let otherwise, let minimumSamples):
            return latencies.percentile(quantile, minimumSamples: minimumSamples) ?? otherwise
        }
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let clock = self.clock
        let delay = currentDelay()
        let maxAttempts = configuration.maxHedgedAttempts + 1
        return await withTaskGroup(of: Event.self, returning: Result<Output, any Error>.self) { group in
            var launched = 0
            var running = 0
            var timerPending = false
            var last: Result<Output, any Error>?

            func launch() {
                launched += 1
                running += 1
                var attemptContext = context
                attemptContext.attempt = launched
                group.addTask {
                    let start = clock.now
                    let outcome = await next(attemptContext)
                    return .finished(outcome, latency: start.duration(to: clock.now))
                }
                if launched < maxAttempts && !timerPending {
                    timerPending = true
                    group.addTask {
                        do {
                            try await clock.sleep(until: clock.now.advanced(by: delay), tolerance: nil)
                            return .hedgeDue
                        } catch {
                            return .timerCancelled
                        }
                    }
                }
            }

            launch()
            while let event = await group.next() {
                switch event {
                case .finished(let outcome, let latency):
                    running -= 1
                    if configuration.isAcceptable(outcome) {
                        if case .success = outcome { latencies.record(latency) }
                        group.cancelAll()
                        return outcome
                    }
                    last = outcome
                    if configuration.launchesOnFailure, launched < maxAttempts, !Task.isCancelled, mayLaunch() {
                        emitLaunch(context, attempt: launched + 1, after: latency)
                        launch()
                    } else if running == 0 {
                        group.cancelAll()
                        return outcome
                    }
                case .hedgeDue:
                    timerPending = false
                    // Not for a caller gone away, nor past the deadline (nothing could answer in time).
                    let late = context.deadline?.hasPassed(on: clock) ?? false
                    if launched < maxAttempts && running > 0 && !Task.isCancelled && !late && mayLaunch() {
                        emitLaunch(context, attempt: launched + 1, after: delay)
                        launch()
                    }
                case .timerCancelled:
                    timerPending = false
                }
            }
            return last ?? .failure(CancellationError())
        }
    }

    /// Whether the budget, if any, allows one more attempt (withdrawn if so).
    private func mayLaunch() -> Bool {
        configuration.budget?.tryWithdrawRetry() ?? true
    }

    private func emitLaunch(_ context: ResilienceContext, attempt: Int, after: Duration) {
        var attemptContext = context
        attemptContext.attempt = attempt
        attemptContext.emit(.hedgeLaunched(attempt: attempt, after: after), strategy: configuration.name)
    }
}
