/// What one execution of a pipeline carries through its strategies.
///
/// A pipeline creates one context per ``ResiliencePipeline/execute(correlationID:partitionKey:_:)``
/// call; strategies pass (modified copies of) it inward. The operation receives the
/// innermost copy, so it can read its attempt number and remaining budget.
public struct ResilienceContext: Sendable {
    /// The attempt number (1-based), set by the innermost ``Retry`` or ``Hedging``.
    public var attempt: Int
    /// The deadline in force for this attempt, if a ``Timeout`` set one (or an outer one was bound).
    public var deadline: Deadline?
    /// An id that ties events, logs and traces of one execution together.
    public var correlationID: String?
    /// The key a partitioned ``RateLimiter`` uses (a consumer, a tenant), if any.
    public var partitionKey: String?
    /// Where the strategies' decisions go.
    public var eventSink: (any ResilienceEventSink)?

    /// Creates a context for one execution.
    public init(
        correlationID: String? = nil,
        partitionKey: String? = nil,
        deadline: Deadline? = Deadline.current,
        eventSink: (any ResilienceEventSink)? = nil
    ) {
        self.attempt = 1
        self.deadline = deadline
        self.correlationID = correlationID
        self.partitionKey = partitionKey
        self.eventSink = eventSink
    }

    /// Emits a decision of the strategy named `strategy` to the event sink, if there is one.
    public func emit(_ kind: @autoclosure () -> ResilienceEvent.Kind, strategy: String) {
        guard let eventSink else { return }
        eventSink.receive(
            ResilienceEvent(strategy: strategy, kind: kind(), correlationID: correlationID, attempt: attempt)
        )
    }
}
