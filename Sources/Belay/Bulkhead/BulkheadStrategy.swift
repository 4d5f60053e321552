/// Applies a shared ``Bulkhead`` to a pipeline's calls.
///
/// A queued call whose deadline no enclosing timeout enforces by cancellation (a
/// cooperative ``Timeout``, or a ``Deadline/current`` the caller bound) leaves the queue when
/// it passes: the strategy sleeps until then on its clock.
public struct BulkheadStrategy<Output: Sendable>: ResilienceStrategy {
    /// The bulkhead this strategy takes slots from.
    public let bulkhead: Bulkhead
    private let sleepUntil: @Sendable (Deadline) async throws -> Void

    /// Creates the strategy for `bulkhead`; queued calls' deadlines are read on the continuous clock.
    public init(bulkhead: Bulkhead) {
        self.init(bulkhead: bulkhead, clock: ContinuousClock())
    }

    /// Creates the strategy for `bulkhead`; queued calls' deadlines are read on `clock`.
    public init<C: Clock>(bulkhead: Bulkhead, clock: C) where C.Duration == Duration {
        self.bulkhead = bulkhead
        self.sleepUntil = { deadline in try await clock.sleep(until: deadline.instant(on: clock), tolerance: nil) }
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
            if let deadline = context.deadline, !deadline.isEnforced {
                try await bulkhead.acquire(context: context, before: deadline, sleep: sleepUntil)
            } else {
                try await bulkhead.acquire(context: context)
            }
        } catch {
            return .failure(error)
        }
        defer { bulkhead.release() }
        return await next(context)
    }
}
