extension ResiliencePipeline {
    /// Composes strategies into a pipeline, first added = outermost.
    ///
    /// Every option is checked when the strategy is added; ``build()`` throws one
    /// ``ConfigurationError`` listing every invalid option, each with its path.
    ///
    /// ```swift
    /// let pipeline = try ResiliencePipeline<Int>.Builder()
    ///     .timeout(.seconds(10))
    ///     .retry(.init(maxAttempts: 3))
    ///     .bulkhead(.init(maxConcurrent: 10))
    ///     .build()
    /// ```
    public struct Builder<C: Clock>: Sendable where C.Duration == Duration {
        /// The clock every strategy the builder creates is driven by.
        public let clock: C
        private var strategies: [any ResilienceStrategy<Output>] = []
        private var issues: [ConfigurationError.Issue] = []
        private var eventSink: (any ResilienceEventSink)?

        /// Creates a builder whose strategies run on `clock`.
        public init(clock: C) {
            self.clock = clock
        }

        private func adding(_ make: () throws(ConfigurationError) -> any ResilienceStrategy<Output>) -> Self {
            var copy = self
            do {
                copy.strategies.append(try make())
            } catch {
                copy.issues.append(contentsOf: error.issues)
            }
            return copy
        }

        /// Adds any strategy, including your own.
        public func strategy(_ strategy: some ResilienceStrategy<Output>) -> Self {
            adding { strategy }
        }

        /// Adds a ``Timeout``: total if added before ``retry(_:)``, per attempt if after.
        public func timeout(
            _ timeout: Duration,
            enforcement: Timeout<Output, C>.Enforcement = .cancel,
            name: String = "timeout"
        ) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in
                try Timeout<Output, C>(.init(timeout, enforcement: enforcement, name: name), clock: clock)
            }
        }

        /// Adds a ``Retry``.
        public func retry(_ configuration: Retry<Output, C>.Configuration = .init()) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in try Retry(configuration, clock: clock) }
        }

        /// Adds a shared ``CircuitBreaker``; `isFailure` says which outcomes count against it,
        /// `isIgnored` which are not counted at all, `describe` what a returned value that
        /// counted as a failure was (the ``ReturnedFailure`` a circuit-open rejection carries).
        public func circuitBreaker(
            _ breaker: CircuitBreaker<C>,
            isFailure: @escaping CircuitBreakerStrategy<Output, C>.OutcomePredicate = CircuitBreakerStrategy<
                Output, C
            >.defaultIsFailure,
            isIgnored: CircuitBreakerStrategy<Output, C>.OutcomePredicate? = nil,
            describe: @escaping @Sendable (Result<Output, any Error>) -> String = { $0.outcomeDescription }
        ) -> Self {
            adding {
                CircuitBreakerStrategy(breaker: breaker, isFailure: isFailure, isIgnored: isIgnored, describe: describe)
            }
        }

        /// Adds a new ``CircuitBreaker`` with these options. To read its state, isolate or
        /// reset it, or share it, create the breaker yourself and pass it instead.
        public func circuitBreaker(
            _ configuration: CircuitBreaker<C>.Configuration,
            isFailure: @escaping CircuitBreakerStrategy<Output, C>.OutcomePredicate = CircuitBreakerStrategy<
                Output, C
            >.defaultIsFailure,
            describe: @escaping @Sendable (Result<Output, any Error>) -> String = { $0.outcomeDescription }
        ) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in
                CircuitBreakerStrategy(
                    breaker: try CircuitBreaker(configuration, clock: clock),
                    isFailure: isFailure,
                    describe: describe
                )
            }
        }

        /// Adds a shared ``Bulkhead``.
        public func bulkhead(_ bulkhead: Bulkhead) -> Self {
            let clock = self.clock
            return adding { BulkheadStrategy(bulkhead: bulkhead, clock: clock) }
        }

        /// Adds a new ``Bulkhead`` with these options.
        public func bulkhead(_ configuration: Bulkhead.Configuration) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in
                BulkheadStrategy(bulkhead: try Bulkhead(configuration), clock: clock)
            }
        }

        /// Adds a shared ``AdaptiveConcurrencyLimit``; `classify` says what each outcome tells it
        /// (nil: ``AdaptiveConcurrencyStrategy/defaultClassify``).
        public func adaptiveConcurrencyLimit(
            _ limiter: AdaptiveConcurrencyLimit<C>,
            classify: AdaptiveConcurrencyStrategy<Output, C>.Classifier? = nil
        ) -> Self {
            adding { AdaptiveConcurrencyStrategy(limiter: limiter, classify: classify) }
        }

        /// Adds a new ``AdaptiveConcurrencyLimit`` with these options, on the builder's clock.
        /// To read its limit or share it, create the limiter yourself and pass it instead.
        public func adaptiveConcurrencyLimit(
            _ configuration: AdaptiveConcurrencyLimit<C>.Configuration,
            classify: AdaptiveConcurrencyStrategy<Output, C>.Classifier? = nil
        ) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in
                AdaptiveConcurrencyStrategy(
                    limiter: try AdaptiveConcurrencyLimit(configuration, clock: clock),
                    classify: classify
                )
            }
        }

        /// Adds a shared ``RateLimiter``.
        public func rateLimiter(_ limiter: RateLimiter<C>) -> Self {
            adding { RateLimiterStrategy(limiter: limiter) }
        }

        /// Adds a new ``RateLimiter`` with these options.
        public func rateLimiter(_ configuration: RateLimiter<C>.Configuration) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in
                RateLimiterStrategy(limiter: try RateLimiter(configuration, clock: clock))
            }
        }

        /// Adds a ``Fallback``.
        public func fallback(_ configuration: Fallback<Output>.Configuration) -> Self {
            adding { () throws(ConfigurationError) in try Fallback(configuration) }
        }

        /// Adds ``Hedging``.
        public func hedging(_ configuration: Hedging<Output, C>.Configuration) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in try Hedging(configuration, clock: clock) }
        }

        /// Adds ``FaultInjection`` (inert unless its configuration enables it).
        public func faultInjection(_ configuration: FaultInjection<Output, C>.Configuration) -> Self {
            let clock = self.clock
            return adding { () throws(ConfigurationError) in try FaultInjection(configuration, clock: clock) }
        }

        /// Sends every decision to `sink`; calling it again adds another sink.
        public func telemetry(_ sink: some ResilienceEventSink) -> Self {
            var copy = self
            if let existing = eventSink {
                copy.eventSink = MultiplexEventSink([existing, sink])
            } else {
                copy.eventSink = sink
            }
            return copy
        }

        /// Builds the pipeline, or throws every invalid option found.
        public func build() throws(ConfigurationError) -> ResiliencePipeline<Output> {
            guard issues.isEmpty else { throw ConfigurationError(issues: issues) }
            return ResiliencePipeline(strategies: strategies, eventSink: eventSink)
        }
    }
}

extension ResiliencePipeline.Builder where C == ContinuousClock {
    /// Creates a builder on the continuous clock.
    public init() {
        self.init(clock: ContinuousClock())
    }
}
