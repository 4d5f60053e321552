/// Applies a shared ``CircuitBreaker`` to a pipeline's calls.
///
/// ``Configuration/isFailure`` decides which outcomes count as failures: by default any
/// thrown error other than cancellation (cancelled calls are not counted at all).
public struct CircuitBreakerStrategy<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// Which outcomes count against the breaker.
    public typealias OutcomePredicate = @Sendable (Result<Output, any Error>) -> Bool

    /// The breaker this strategy reports to.
    public let breaker: CircuitBreaker<C>
    /// Which outcomes are failures.
    public let isFailure: OutcomePredicate

    /// Creates the strategy for `breaker`.
    public init(breaker: CircuitBreaker<C>, isFailure: @escaping OutcomePredicate = { $0.isNonCancellationError }) {
        self.breaker = breaker
        self.isFailure = isFailure
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let permit: CircuitBreakerStateMachine<C.Instant>.Permit
        switch breaker.acquire(context: context) {
        case .success(let granted): permit = granted
        case .failure(let rejection): return .failure(rejection)
        }
        let slowThreshold = breaker.configuration.slowCallDuration
        let start = slowThreshold == nil ? nil : breaker.clock.now
        let outcome = await next(context)
        let result: CircuitBreakerStateMachine<C.Instant>.CallResult
        if case .failure(let error) = outcome, error is CancellationError {
            result = .ignored
        } else {
            result = isFailure(outcome) ? .failure : .success
        }
        var slow = false
        if let slowThreshold, let start {
            slow = start.duration(to: breaker.clock.now) >= slowThreshold
        }
        breaker.record(result, slow: slow, permit: permit, context: context)
        return outcome
    }
}
