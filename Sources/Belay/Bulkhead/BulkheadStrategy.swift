/// Applies a shared ``Bulkhead`` to a pipeline's calls.
public struct BulkheadStrategy<Output: Sendable>: ResilienceStrategy {
    /// The bulkhead this strategy takes slots from.
    public let bulkhead: Bulkhead

    /// Creates the strategy for `bulkhead`.
    public init(bulkhead: Bulkhead) {
        self.bulkhead = bulkhead
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        if bulkhead.tryAcquire() {
            defer { bulkhead.release() }
            return await next(context)
        }
        do {
            try await bulkhead.acquire(context: context)
        } catch {
            return .failure(error)
        }
        defer { bulkhead.release() }
        return await next(context)
    }
}
