public import Belay

extension UpstreamPolicy {
    /// The circuit breaker's options: ``circuitBreaker``, named after the upstream.
    public var breakerConfiguration: CircuitBreaker<ContinuousClock>.Configuration {
        var configuration = circuitBreaker
        configuration.name = name
        return configuration
    }

    /// The retry budget's options: ``retryBudget``, `<upstream>-retry-budget`.
    public var retryBudgetConfiguration: RetryBudget<ContinuousClock>.Configuration {
        .init(ratio: retryBudget, name: "\(name)-retry-budget")
    }

    /// The fixed bulkhead's options (``maxConcurrent``, ``maxQueue``), `<upstream>-bulkhead`.
    public var bulkheadConfiguration: Bulkhead.Configuration {
        .init(maxConcurrent: maxConcurrent, maxQueue: maxQueue, name: "\(name)-bulkhead")
    }

    /// The adaptive limit's options, if set: ``adaptiveConcurrency``, `<upstream>-concurrency`.
    public var adaptiveConcurrencyConfiguration: AdaptiveConcurrencyLimit<ContinuousClock>.Configuration? {
        adaptiveConcurrency.map { configuration in
            var configuration = configuration
            configuration.name = "\(name)-concurrency"
            return configuration
        }
    }

    /// The rate limiter's options, if set: ``rateLimit``, waiting up to ``attemptTimeout``
    /// for a permit, `<upstream>-rate-limit`.
    public var rateLimiterConfiguration: RateLimiter<ContinuousClock>.Configuration? {
        rateLimit.map { rate in
            .init(
                permitsPerSecond: rate.permitsPerSecond,
                burst: rate.burst,
                maxWait: attemptTimeout,
                name: "\(name)-rate-limit"
            )
        }
    }
}

extension ResilienceRegistry where C == ContinuousClock {
    /// Registers `policy` — an upstream's policy, as the gateway reads it from `belay.yaml` —
    /// as the pipeline `policy.name` for `Output`, around any operation: the total timeout, the
    /// retries (attempts, exponential backoff with jitter, the retry budget), the circuit
    /// breaker, the fixed bulkhead or the adaptive concurrency limit, the rate limit, and the
    /// attempt timeout, in the order the gateway applies them.
    ///
    /// The breaker, the bulkhead or adaptive limit and the rate limiter are the registry's
    /// shared objects named after the upstream: registering a new policy under the same name
    /// keeps each one whose options are unchanged (an open breaker stays open, a learnt limit
    /// stays learnt), and an ``UpstreamClient`` made with this registry's ``ResilienceRegistry/shared``
    /// (or a stage of it) for the same policy uses the same breaker and adaptive limit.
    ///
    /// What is HTTP's alone is not applied: endpoints, failover, headers, stale answers,
    /// hedging (it re-runs only safe reads) and the retry conditions (statuses, resets): the
    /// pipeline retries what `shouldRetry` says, by default every thrown error but
    /// cancellation and an open circuit (``Retry/defaultShouldRetry``).
    /// - Throws: ``ConfigurationError`` naming every invalid option; nothing is replaced then.
    @discardableResult
    public func register<Output: Sendable>(
        _ policy: UpstreamPolicy,
        for output: Output.Type = Output.self,
        shouldRetry: @escaping Retry<Output, ContinuousClock>.OutcomePredicate = Retry<Output, ContinuousClock>
            .defaultShouldRetry
    ) throws(ConfigurationError) -> ResiliencePipeline<Output> {
        let clock = self.clock
        return try register(policy.name, for: Output.self) { builder, shared throws(ConfigurationError) in
            let budget = try RetryBudget(policy.retryBudgetConfiguration, clock: clock)
            var builder =
                builder
                .timeout(policy.totalTimeout, name: "\(policy.name)-total-timeout")
                .retry(
                    .init(
                        maxAttempts: policy.maxAttempts,
                        backoff: .exponentialJitter(base: policy.retryBase, cap: policy.retryCap),
                        shouldRetry: shouldRetry,
                        budget: budget,
                        name: "\(policy.name)-retry"
                    )
                )
                .circuitBreaker(try shared.circuitBreaker(policy.name, policy.breakerConfiguration))
            let adaptive = policy.adaptiveConcurrencyConfiguration
            if adaptive == nil {
                builder = builder.bulkhead(try shared.bulkhead(policy.name, policy.bulkheadConfiguration))
            }
            if let rate = policy.rateLimiterConfiguration {
                builder = builder.rateLimiter(try shared.rateLimiter(policy.name, rate))
            }
            if let adaptive {
                builder = builder.adaptiveConcurrencyLimit(try shared.adaptiveConcurrencyLimit(policy.name, adaptive))
            }
            return builder.timeout(policy.attemptTimeout, name: "\(policy.name)-attempt-timeout")
        }
    }
}
