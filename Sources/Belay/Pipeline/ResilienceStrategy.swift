/// One resilience behaviour (retry, timeout, breaker…) that wraps the rest of a pipeline.
///
/// A strategy receives the execution's context and `next`, the remainder of the pipeline
/// (the inner strategies and finally the operation). It works on **outcomes**: a returned
/// value can count as a failure (an HTTP 503) just as a thrown error can, so nothing has
/// to throw to be retried.
///
/// ```swift
/// struct CountingStrategy<Output: Sendable>: ResilienceStrategy {
///     let counter: Counter
///     func execute(
///         _ context: ResilienceContext,
///         next: ResiliencePipeline<Output>.Next
///     ) async -> Result<Output, any Error> {
///         counter.increment()
///         return await next(context)
///     }
/// }
/// ```
public protocol ResilienceStrategy<Output>: Sendable {
    /// The operation's result type.
    associatedtype Output: Sendable

    /// Runs `next` under this strategy and returns the outcome.
    func execute(_ context: ResilienceContext, next: ResiliencePipeline<Output>.Next) async -> Result<Output, any Error>
}

extension Result where Failure == any Error {
    /// Whether the outcome is a thrown error other than cancellation.
    @inlinable
    public var isNonCancellationError: Bool {
        if case .failure(let error) = self {
            return !(error is CancellationError)
        }
        return false
    }

    /// A short description for events: the error, or "a returned value".
    public var outcomeDescription: String {
        switch self {
        case .success: "a returned value"
        case .failure(let error): String(describing: error)
        }
    }
}
