public import Belay

/// What one call through an upstream's policy produced, and how.
public struct UpstreamResult: Sendable {
    /// The final outcome: the upstream's answer, or why there is none
    /// (``ResilienceError`` for a policy's refusal, ``UpstreamFailure`` when unreachable).
    public var outcome: Result<UpstreamResponse, any Error>
    /// Set when the answer came from the stale-if-error cache: the cached answer's age.
    public var staleAge: Duration?
    /// Every attempt made, in order.
    public var attempts: [AttemptRecord]
    /// Every resilience decision taken for this call, in order (retries scheduled, waits,
    /// rejections, breaker transitions it caused): what the audit trail shows.
    public var decisions: [ResilienceEvent] = []
}

/// One attempt of a call, as the audit trail and `Belay-Attempts` report it.
public struct AttemptRecord: Sendable, Hashable {
    /// The attempt's number, 1-based.
    public var number: Int
    /// The endpoint tried.
    public var endpoint: UpstreamEndpoint
    /// The status answered, if any.
    public var status: Int?
    /// The failure, if there was no answer. Both this and ``status`` are nil when the
    /// caller's own request body failed (``RequestBodyError``).
    public var failure: UpstreamFailure.Kind?
    /// How long the attempt took until the answer's head (or the failure).
    public var duration: Duration

    /// Creates a record (the client makes them; observers' tests do too).
    public init(
        number: Int,
        endpoint: UpstreamEndpoint,
        status: Int?,
        failure: UpstreamFailure.Kind?,
        duration: Duration
    ) {
        self.number = number
        self.endpoint = endpoint
        self.status = status
        self.failure = failure
        self.duration = duration
    }
}
