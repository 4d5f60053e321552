/// Replaces a failed outcome with a substitute: a cached value, a default, a degraded answer.
///
/// A caller that was cancelled gets `CancellationError`, not a substitute.
///
/// ```swift
/// let pipeline = try ResiliencePipeline<[Rate]>.Builder()
///     .fallback(.init { _, _ in cachedRates })
///     .retry(.init())
///     .build()
/// ```
public struct Fallback<Output: Sendable>: ResilienceStrategy {
    /// Produces the substitute from the failed outcome.
    public typealias Action = @Sendable (Result<Output, any Error>, ResilienceContext) async throws -> Output

    /// Options of a fallback.
    public struct Configuration: Sendable {
        /// The strategy's name in events. Default `fallback`.
        public var name: String
        /// Which outcomes are replaced. Default: thrown errors other than cancellation.
        public var shouldHandle: @Sendable (Result<Output, any Error>) -> Bool
        /// The substitute. If it throws, that error is the outcome.
        public var action: Action

        /// Creates a configuration.
        public init(
            shouldHandle: @escaping @Sendable (Result<Output, any Error>) -> Bool = { $0.isNonCancellationError },
            name: String = "fallback",
            action: @escaping Action
        ) {
            self.name = name
            self.shouldHandle = shouldHandle
            self.action = action
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            try validator.check()
        }
    }

    /// The options in force.
    public let configuration: Configuration

    /// Creates a fallback strategy, validating its options.
    public init(_ configuration: Configuration) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let outcome = await next(context)
        guard configuration.shouldHandle(outcome) else { return outcome }
        // A cancelled caller gets cancellation, not a substitute.
        if Task.isCancelled { return .failure(CancellationError()) }
        context.emit(.fallbackUsed(reason: outcome.outcomeDescription), strategy: configuration.name)
        do {
            return .success(try await configuration.action(outcome, context))
        } catch {
            return .failure(error)
        }
    }
}
