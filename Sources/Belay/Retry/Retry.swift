/// Runs the rest of the pipeline again when an outcome is transient.
///
/// - Only outcomes that ``Configuration/shouldRetry`` accepts are retried: by default any
///   thrown error except cancellation and an open breaker's rejection; returned values are
///   never retried unless the predicate says so (the HTTP layer retries 503s this way).
/// - The delay comes from ``Configuration/backoff`` (full jitter by default). A delay hint
///   carried by the outcome (`Retry-After`) is honoured: the retry never starts before it.
///   A hint longer than ``Configuration/maxDelayHint`` stops retrying instead of waiting
///   that long or re-sending early.
/// - A retry whose delay would end at or after the deadline is not started.
/// - With a ``RetryBudget``, a retry is started only if the shared budget allows it.
/// - A caller cancelled while an outcome was to be retried gets `CancellationError`.
///
/// ```swift
/// let pipeline = try ResiliencePipeline<HTTPStatus>.Builder()
///     .retry(.init(maxAttempts: 4, backoff: .exponentialJitter(base: .milliseconds(50), cap: .seconds(2)),
///                  shouldRetry: { outcome in (try? outcome.get())?.code == 503 }))
///     .build()
/// ```
public struct Retry<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// Decides from an outcome.
    public typealias OutcomePredicate = @Sendable (Result<Output, any Error>) -> Bool

    /// Options of a retry.
    public struct Configuration: Sendable {
        /// The strategy's name in events and errors. Default `retry`.
        public var name: String
        /// Attempts in all, the first included. At least 1; default 3.
        public var maxAttempts: Int
        /// The delay before each retry. Default full jitter, base 100 ms, cap 5 s.
        public var backoff: Backoff
        /// Which outcomes are retried. Default: thrown errors other than cancellation and an
        /// open or isolated circuit.
        public var shouldRetry: OutcomePredicate
        /// A delay the outcome asks for (`Retry-After`), if any. Default: none, except a
        /// ``ResilienceError``'s `retryAfter` for a rate-limit rejection.
        public var delayHint: @Sendable (Result<Output, any Error>) -> Duration?
        /// The longest hinted delay that is waited for. Default 60 s.
        public var maxDelayHint: Duration
        /// A budget shared with other callers, if any. Default none.
        public var budget: RetryBudget<C>?
        /// Describes an outcome for events ("HTTP 503", "connection reset").
        public var describe: @Sendable (Result<Output, any Error>) -> String
        /// A uniform random number in `0..<1` for jitter. Default the system generator.
        public var random: @Sendable () -> Double

        /// Creates a configuration.
        public init(
            maxAttempts: Int = 3,
            backoff: Backoff = .exponentialJitter(base: .milliseconds(100), cap: .seconds(5)),
            shouldRetry: @escaping OutcomePredicate = Retry.defaultShouldRetry,
            delayHint: @escaping @Sendable (Result<Output, any Error>) -> Duration? = Retry.defaultDelayHint,
            maxDelayHint: Duration = .seconds(60),
            budget: RetryBudget<C>? = nil,
            describe: @escaping @Sendable (Result<Output, any Error>) -> String = { $0.outcomeDescription },
            random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
            name: String = "retry"
        ) {
            self.name = name
            self.maxAttempts = maxAttempts
            self.backoff = backoff
            self.shouldRetry = shouldRetry
            self.delayHint = delayHint
            self.maxDelayHint = maxDelayHint
            self.budget = budget
            self.describe = describe
            self.random = random
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.atLeast(maxAttempts, 1, "maxAttempts")
            for (option, value) in backoff.durations {
                validator.nonNegative(value, "backoff.\(option)")
            }
            validator.nonNegative(maxDelayHint, "maxDelayHint")
            try validator.check()
        }
    }

    /// Retries thrown errors other than cancellation and an open or isolated circuit.
    public static var defaultShouldRetry: OutcomePredicate {
        { outcome in
            guard case .failure(let error) = outcome else { return false }
            if error is CancellationError { return false }
            if let rejection = error as? ResilienceError,
                rejection.code == .circuitOpen || rejection.code == .circuitIsolated
            {
                return false
            }
            return true
        }
    }

    /// The `retryAfter` of a rate-limit rejection; nothing otherwise.
    public static var defaultDelayHint: @Sendable (Result<Output, any Error>) -> Duration? {
        { outcome in
            if case .failure(let error as ResilienceError) = outcome, error.code == .rateLimited {
                return error.retryAfter
            }
            return nil
        }
    }

    /// The options in force.
    public let configuration: Configuration
    let clock: C

    /// Creates a retry strategy, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        configuration.budget?.recordRequest()
        // The success path: one attempt, no copies of the configuration or context.
        var context = context
        if context.attempt != 1 { context.attempt = 1 }
        let first = await next(context)
        guard configuration.shouldRetry(first) else { return first }
        return await retry(after: first, context, next: next)
    }

    private func retry(
        after first: Result<Output, any Error>,
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<Output, any Error> {
        let configuration = self.configuration
        var attemptContext = context
        var previousDelay: Duration?
        var attempt = 1
        var outcome = first
        while true {
            if attempt > 1 {
                attemptContext.attempt = attempt
                outcome = await next(attemptContext)
                guard configuration.shouldRetry(outcome) else { return outcome }
            }
            guard attempt < configuration.maxAttempts else {
                if configuration.maxAttempts > 1 {
                    abandon(.attemptsExhausted, outcome, attemptContext)
                }
                return outcome
            }
            // The caller is gone: the outcome was to be retried, so it is not the answer.
            if Task.isCancelled { return .failure(CancellationError()) }

            let backoffDelay = configuration.backoff.delay(
                forRetry: attempt,
                previous: previousDelay,
                random: configuration.random()
            )
            var delay = backoffDelay
            if let hint = configuration.delayHint(outcome) {
                if hint > configuration.maxDelayHint {
                    abandon(.delayHintTooLong, outcome, attemptContext)
                    return outcome
                }
                delay = max(delay, hint)
            }
            let now = clock.now
            let resumeAt = now.advanced(by: delay)
            if let deadline = attemptContext.deadline, resumeAt >= deadline.instant(on: clock) {
                abandon(.deadline, outcome, attemptContext)
                return outcome
            }
            if let budget = configuration.budget, !budget.tryWithdrawRetry() {
                abandon(.budgetExhausted, outcome, attemptContext)
                if case .failure(let error) = outcome {
                    return .failure(
                        ResilienceError(
                            code: .retryBudgetExhausted,
                            strategy: budget.configuration.name,
                            message: "the retry budget is exhausted; not retrying",
                            underlying: error
                        )
                    )
                }
                return outcome
            }
            attemptContext.emit(
                .retryScheduled(delay: delay, reason: configuration.describe(outcome)),
                strategy: configuration.name
            )
            if delay > .zero {
                do {
                    try await clock.sleep(until: resumeAt, tolerance: nil)
                } catch {
                    return .failure(CancellationError())
                }
            }
            previousDelay = backoffDelay
            attempt += 1
        }
    }

    private func abandon(
        _ reason: ResilienceEvent.RetryAbandonReason,
        _ outcome: Result<Output, any Error>,
        _ context: ResilienceContext
    ) {
        context.emit(
            .retryAbandoned(reason: reason, outcome: configuration.describe(outcome)),
            strategy: configuration.name
        )
    }
}
