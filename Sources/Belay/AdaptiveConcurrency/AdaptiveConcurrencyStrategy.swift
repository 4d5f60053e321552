/// Applies a shared ``AdaptiveConcurrencyLimit`` to a pipeline's calls.
///
/// Each call holds a slot while the rest of the pipeline runs; ``classify`` then tells the
/// limiter what its outcome says about the dependency's capacity (``ConcurrencySignal``).
/// Place it where its round trip measures the dependency: inside retries (each attempt is
/// one call), after rate limiters whose waits are not the dependency's doing.
public struct AdaptiveConcurrencyStrategy<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// Says what an outcome tells the limiter.
    public typealias Classifier = @Sendable (Result<Output, any Error>) -> ConcurrencySignal

    /// The limiter this strategy takes slots from.
    public let limiter: AdaptiveConcurrencyLimit<C>
    /// What each outcome tells the limiter.
    public var classify: Classifier { custom ?? Self.defaultClassify }
    /// The classifier the caller gave; nil for ``defaultClassify``, which ``execute`` applies
    /// inline (a closure call on every success costs a generic metadata lookup).
    private let custom: Classifier?

    /// Creates the strategy for `limiter`.
    /// - Parameter classify: what each outcome tells the limiter; nil (the default) for
    ///   ``defaultClassify``.
    public init(limiter: AdaptiveConcurrencyLimit<C>, classify: Classifier? = nil) {
        self.limiter = limiter
        self.custom = classify
    }

    /// A returned value is a success; a timeout of the pipeline's own deadline is a drop;
    /// anything else is ignored: cancellation, the caller's own deadline
    /// (``ResilienceError/isCallersDeadline``), other strategies' refusals, and thrown errors
    /// in general (the library does not know which mean overload: a classifier that does, as
    /// the HTTP layer's maps 429, 503 and resets to ``ConcurrencySignal/dropped``, says so).
    public static var defaultClassify: Classifier {
        { outcome in defaultSignal(outcome) }
    }

    private static func defaultSignal(_ outcome: Result<Output, any Error>) -> ConcurrencySignal {
        switch outcome {
        case .success:
            return .success
        case .failure(let error as ResilienceError):
            return error.code == .timeout && !error.isCallersDeadline ? .dropped : .ignored
        case .failure:
            return .ignored
        }
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let permit: AdaptiveConcurrencyPermit
        if let granted = limiter.tryAcquire() {
            permit = granted
        } else {
            do {
                permit = try await limiter.acquire(context: context)
            } catch {
                return .failure(error)
            }
        }
        let outcome = await next(context)
        limiter.release(permit, custom?(outcome) ?? Self.defaultSignal(outcome), context: context)
        return outcome
    }
}
