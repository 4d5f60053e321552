/// Applies a shared ``RateLimiter`` to a pipeline's calls, waiting for a permit when allowed.
public struct RateLimiterStrategy<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// The limiter this strategy takes permits from.
    public let limiter: RateLimiter<C>

    /// Creates the strategy for `limiter`.
    public init(limiter: RateLimiter<C>) {
        self.limiter = limiter
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        var maxWait = limiter.configuration.maxWait
        if maxWait > .zero, let deadline = context.deadline {
            maxWait = min(maxWait, deadline.remaining(on: limiter.clock))
        }
        switch limiter.decide(partition: context.partitionKey, maxWait: maxWait) {
        case .granted:
            return await next(context)
        case .wait(let delay):
            context.emit(.rateLimitDelayed(delay: delay), strategy: limiter.configuration.name)
            do {
                try await limiter.clock.sleep(for: delay)
            } catch {
                limiter.refund(partition: context.partitionKey)
                return .failure(CancellationError())
            }
            return await next(context)
        case .rejected(let retryAfter):
            context.emit(.rejected(.rateLimited, retryAfter: retryAfter), strategy: limiter.configuration.name)
            return .failure(
                ResilienceError(
                    code: .rateLimited,
                    strategy: limiter.configuration.name,
                    message: "no permit within the allowed wait",
                    retryAfter: retryAfter
                )
            )
        }
    }
}
