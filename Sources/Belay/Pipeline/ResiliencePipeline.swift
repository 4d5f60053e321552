/// Strategies composed in order, built once and executed many times concurrently.
///
/// The first strategy added is the outermost. A typical HTTP pipeline is
/// total timeout → retry → circuit breaker → bulkhead → per-attempt timeout:
///
/// ```swift
/// let breaker = try CircuitBreaker(.init(failureRatio: 0.5, minimumThroughput: 10))
/// let pipeline = try ResiliencePipeline<Int>.Builder()
///     .timeout(.seconds(10))
///     .retry(.init(maxAttempts: 3))
///     .circuitBreaker(breaker)
///     .timeout(.seconds(2), name: "attempt-timeout")
///     .build()
/// let value = try await pipeline.execute { context in try await fetchValue() }
/// ```
public struct ResiliencePipeline<Output: Sendable>: Sendable {
    /// The operation a pipeline runs.
    public typealias Operation = @Sendable (ResilienceContext) async throws -> Output

    @usableFromInline
    let core: Core

    init(strategies: [any ResilienceStrategy<Output>], eventSink: (any ResilienceEventSink)?) {
        self.core = Core(strategies: strategies, eventSink: eventSink)
    }

    /// A pipeline with no strategies: it runs the operation once, as is.
    public static var empty: Self { Self(strategies: [], eventSink: nil) }

    /// The number of strategies in the pipeline.
    public var count: Int { core.strategies.count }

    /// Runs `operation` through the pipeline and returns its value or throws its error.
    ///
    /// A returned value is returned even if a strategy counted it as a failure (the last
    /// HTTP 503 after retries, say); rejections are thrown as ``ResilienceError``. A caller
    /// whose task is cancelled gets `CancellationError`: before every strategy and before the
    /// operation, the pipeline checks `Task.isCancelled`, so the operation of a caller that
    /// was already cancelled never runs.
    /// - Parameters:
    ///   - correlationID: an id that ties this execution's events, logs and traces together.
    ///   - partitionKey: the key a partitioned rate limiter uses.
    ///   - operation: the work; it receives the innermost context (attempt, deadline).
    public func execute(
        correlationID: String? = nil,
        partitionKey: String? = nil,
        _ operation: @escaping Operation
    ) async throws -> Output {
        try await executeOutcome(correlationID: correlationID, partitionKey: partitionKey, operation).get()
    }

    /// Runs `operation` through the pipeline and returns the outcome without throwing.
    public func executeOutcome(
        correlationID: String? = nil,
        partitionKey: String? = nil,
        _ operation: @escaping Operation
    ) async -> Result<Output, any Error> {
        let context = ResilienceContext(
            correlationID: correlationID,
            partitionKey: partitionKey,
            deadline: Deadline.current,
            eventSink: core.eventSink
        )
        return await core.run(from: 0, context, operation)
    }

    /// Runs `operation` through the pipeline with a context the caller prepared.
    public func executeOutcome(
        context: ResilienceContext,
        _ operation: @escaping Operation
    ) async -> Result<Output, any Error> {
        var context = context
        if context.eventSink == nil {
            context.eventSink = core.eventSink
        }
        return await core.run(from: 0, context, operation)
    }
}

extension ResiliencePipeline {
    /// The remainder of a pipeline as seen by one strategy: the inner strategies, then the operation.
    ///
    /// Call it like a function. It is a value, so strategies may call it several times
    /// (retry) or from child tasks (timeout, hedging).
    public struct Next: Sendable {
        @usableFromInline let core: Core
        @usableFromInline let index: Int
        @usableFromInline let operation: Operation

        @inlinable
        init(core: Core, index: Int, operation: @escaping Operation) {
            self.core = core
            self.index = index
            self.operation = operation
        }

        /// Runs the rest of the pipeline with `context`.
        @inlinable
        public func callAsFunction(_ context: ResilienceContext) async -> Result<Output, any Error> {
            await core.run(from: index, context, operation)
        }
    }

    @usableFromInline
    final class Core: Sendable {
        @usableFromInline let strategies: [any ResilienceStrategy<Output>]
        let eventSink: (any ResilienceEventSink)?

        init(strategies: [any ResilienceStrategy<Output>], eventSink: (any ResilienceEventSink)?) {
            self.strategies = strategies
            self.eventSink = eventSink
        }

        @inlinable
        func run(
            from index: Int,
            _ context: ResilienceContext,
            _ operation: @escaping Operation
        ) async -> Result<
            Output, any Error
        > {
            // A cancelled caller gets cancellation before any strategy or the operation does
            // work, as Polly checks before each execution: never a value, never a `timeout`.
            if Task.isCancelled { return .failure(CancellationError()) }
            if index == strategies.count {
                do {
                    return .success(try await operation(context))
                } catch {
                    return .failure(error)
                }
            }
            return await strategies[index].execute(
                context,
                next: Next(core: self, index: index + 1, operation: operation)
            )
        }
    }
}
