/// Applies a shared ``CircuitBreaker`` to a pipeline's calls.
///
/// ``isFailure`` decides which outcomes count as failures; by default any thrown error.
/// Cancelled calls and rejections by inner strategies that never reached the dependency
/// (`bulkhead-full`, `concurrency-limited`, `rate-limited`, another breaker's `circuit-open`) are not counted at
/// all. An inner per-attempt `timeout` does count: the dependency was too slow; a timeout of
/// the caller's own deadline (``ResilienceError/isCallersDeadline``: a `Belay-Timeout` shorter
/// than the pipeline's) does not, so one impatient caller cannot open a breaker others share.
/// ``isIgnored`` names further outcomes that are not the dependency's doing (a caller's
/// own error), which are then not counted either (Resilience4j's `ignoreExceptions`).
///
/// The failure that trips the breaker is what its `circuit-open` rejections carry as
/// ``ResilienceError/underlying``: a thrown error as is, a returned value counted as a
/// failure as a ``ReturnedFailure`` made by ``describe``.
public struct CircuitBreakerStrategy<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// Which outcomes count against the breaker.
    public typealias OutcomePredicate = @Sendable (Result<Output, any Error>) -> Bool

    /// The breaker this strategy reports to.
    public let breaker: CircuitBreaker<C>
    /// Which outcomes are failures.
    public let isFailure: OutcomePredicate
    /// Which outcomes are neither successes nor failures of the dependency, if any.
    public let isIgnored: OutcomePredicate?
    /// Describes a returned value counted as a failure, for ``ReturnedFailure`` ("HTTP 503").
    /// Called only for such values; it should name no payload or secret.
    public let describe: @Sendable (Result<Output, any Error>) -> String

    /// Creates the strategy for `breaker`.
    /// - Parameters:
    ///   - isFailure: which outcomes count as failures. Default any thrown error.
    ///   - isIgnored: outcomes not counted at all, checked first (a half-open probe gives its
    ///     slot back). Default none beyond cancellation and inner rejections.
    ///   - describe: describes a returned value counted as a failure. Default
    ///     ``Swift/Result/outcomeDescription`` ("a returned value").
    public init(
        breaker: CircuitBreaker<C>,
        isFailure: @escaping OutcomePredicate = Self.defaultIsFailure,
        isIgnored: OutcomePredicate? = nil,
        describe: @escaping @Sendable (Result<Output, any Error>) -> String = { $0.outcomeDescription }
    ) {
        self.breaker = breaker
        self.isFailure = isFailure
        self.isIgnored = isIgnored
        self.describe = describe
    }

    /// Any thrown error. (Cancellations and inner rejections are never counted, whatever
    /// the predicate says.)
    public static var defaultIsFailure: OutcomePredicate {
        { outcome in
            if case .failure = outcome { return true }
            return false
        }
    }

    /// Cancellation, rejections by inner strategies that never called the dependency, and the
    /// caller's own deadline passing (``ResilienceError/isCallersDeadline``) are neither
    /// successes nor failures of the dependency.
    static func neverReachedTheDependency(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        guard let rejection = error as? ResilienceError else { return false }
        return rejection.isCallersDeadline || rejection.code == .bulkheadFull || rejection.code == .rateLimited
            || rejection.code == .concurrencyLimited
            || rejection.code == .circuitOpen
            || rejection.code == .circuitIsolated
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let permit: CircuitBreakerStateMachine.Permit
        switch breaker.acquire(context: context) {
        case .success(let granted): permit = granted
        case .failure(let rejection): return .failure(rejection)
        }
        let slowThreshold = breaker.configuration.slowCallDuration
        let start = slowThreshold == nil ? nil : breaker.clock.now
        let outcome = await next(context)
        let result: CircuitBreakerStateMachine.CallResult
        if case .failure(let error) = outcome, Self.neverReachedTheDependency(error) {
            result = .ignored
        } else if let isIgnored, isIgnored(outcome) {
            result = .ignored
        } else {
            result = isFailure(outcome) ? .failure : .success
        }
        var slow = false
        if let slowThreshold, let start {
            slow = start.duration(to: breaker.clock.now) >= slowThreshold
        }
        var failure: (any Error)?
        if result == .failure {
            switch outcome {
            case .failure(let error): failure = error
            case .success: failure = ReturnedFailure(description: describe(outcome))
            }
        }
        breaker.record(result, slow: slow, permit: permit, failure: failure, context: context)
        return outcome
    }
}
