/// Bounds how long the rest of the pipeline may take, cancelling it when time is up.
///
/// Placed outermost it is a **total** timeout; placed inside ``Retry`` it bounds each
/// **attempt**. The effective deadline is the earlier of its own and any outer
/// ``Deadline``; it is bound to ``Deadline/current`` for everything inside, so nested
/// pipelines see the budget that is left.
///
/// Cancellation is cooperative (structured concurrency): the inner work is cancelled when
/// the deadline passes and the strategy returns ``ResilienceError/Code/timeout`` once that
/// work has finished unwinding. Operations that honour task cancellation (AsyncHTTPClient,
/// `Task.sleep`) unwind at once. A caller that was cancelled gets `CancellationError`, never
/// `timeout`, even if the deadline passed too.
///
/// ```swift
/// let pipeline = try ResiliencePipeline<Data>.Builder().timeout(.seconds(2)).build()
/// ```
public struct Timeout<Output: Sendable, C: Clock>: ResilienceStrategy where C.Duration == Duration {
    /// Options of a timeout.
    public struct Configuration: Sendable {
        /// The strategy's name in events and errors. Default `timeout`.
        public var name: String
        /// How long the inner work may take. Must be greater than zero.
        public var timeout: Duration
        /// How the deadline is enforced. Default ``Enforcement/cancel``.
        public var enforcement: Enforcement

        /// Creates a configuration.
        public init(_ timeout: Duration, enforcement: Enforcement = .cancel, name: String = "timeout") {
            self.timeout = timeout
            self.enforcement = enforcement
            self.name = name
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.positive(timeout, "timeout")
            try validator.check()
        }
    }

    /// How a timeout makes the deadline hold.
    public enum Enforcement: Sendable, Hashable {
        /// Run the inner work in a child task and cancel it when the deadline passes: the
        /// deadline holds whatever the work does. Costs a child task and a timer per call
        /// (microseconds, see docs/BENCHMARKS.md).
        case cancel
        /// Only bind the deadline (``Deadline/current`` and the context): the work is trusted
        /// to honour it (an HTTP client given the deadline, inner strategies, nested
        /// pipelines). Inner strategies that wait honour it: ``Retry`` does not start a
        /// retry that would end after it, ``RateLimiter`` does not wait past it, and a call
        /// queued in a ``Bulkhead`` leaves the queue when it passes. Costs no child task and
        /// no timer. A failure that ends after the deadline is reported as `timeout`.
        case cooperative
    }

    /// The options in force.
    public let configuration: Configuration
    let clock: C

    /// Creates a timeout strategy, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
    }

    private enum Race: Sendable {
        case finished(Result<Output, any Error>)
        case timerFired
        case timerCancelled
    }

    public func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<Output>.Next
    ) async -> Result<
        Output, any Error
    > {
        let now = clock.now
        var ownDeadline = now.advanced(by: configuration.timeout)
        // Whether an outer deadline comes first and is enforced by an outer, cancelling timeout.
        var outerEnforces = false
        // Whose deadline binds: this strategy's own, or an earlier outer one's origin.
        var origin = Deadline.Origin.strategy
        if let outer = context.deadline {
            let outerInstant = outer.instant(on: clock)
            if outerInstant < ownDeadline {
                ownDeadline = outerInstant
                outerEnforces = outer.isEnforced
                origin = outer.origin
            }
        }
        let deadlineInstant = ownDeadline
        let budget = now.duration(to: deadlineInstant)
        if budget <= .zero {
            return timedOut(context, after: .zero, origin: origin)
        }
        if configuration.enforcement == .cooperative {
            let deadline = Deadline(instant: deadlineInstant, budget: budget, isEnforced: outerEnforces, origin: origin)
            var inner = context
            inner.deadline = deadline
            let outcome = await Deadline.$current.withValue(deadline) { await next(inner) }
            if case .failure(let error) = outcome, !(error is CancellationError), clock.now >= deadlineInstant {
                return timedOut(context, after: budget, origin: origin)
            }
            return outcome
        }
        let deadline = Deadline(instant: deadlineInstant, budget: budget, isEnforced: true, origin: origin)
        let inner = {
            var inner = context
            inner.deadline = deadline
            return inner
        }()
        let clock = self.clock
        return await withTaskGroup(of: Race.self, returning: Result<Output, any Error>.self) { group in
            group.addTask {
                .finished(await Deadline.$current.withValue(deadline) { await next(inner) })
            }
            group.addTask {
                do {
                    try await clock.sleep(until: deadlineInstant, tolerance: nil)
                    return .timerFired
                } catch {
                    return .timerCancelled
                }
            }
            while let first = await group.next() {
                switch first {
                case .finished(let outcome):
                    group.cancelAll()
                    return outcome
                case .timerFired:
                    group.cancelAll()
                    return timedOut(context, after: budget, origin: origin)
                case .timerCancelled:
                    // Our own task was cancelled: let the inner work report how it ended.
                    continue
                }
            }
            return .failure(CancellationError())
        }
    }

    private func timedOut(
        _ context: ResilienceContext,
        after budget: Duration,
        origin: Deadline.Origin
    ) -> Result<Output, any Error> {
        // The caller went away: whatever deadline also passed, its answer is cancellation.
        if Task.isCancelled { return .failure(CancellationError()) }
        context.emit(.timedOut(after: budget), strategy: configuration.name)
        var error = ResilienceError(
            code: .timeout,
            strategy: configuration.name,
            message: origin == .caller
                ? "the caller's deadline passed within \(budget.formattedForHumans)"
                : "did not finish within \(budget.formattedForHumans)"
        )
        error.deadlineOrigin = origin
        return .failure(error)
    }
}
