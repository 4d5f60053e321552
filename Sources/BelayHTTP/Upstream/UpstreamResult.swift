public import Belay

/// What one call through an upstream's policy produced, and how.
public struct UpstreamResult: Sendable {
    /// The final outcome: the upstream's answer, or why there is none
    /// (``ResilienceError`` for a policy's refusal, ``UpstreamFailure`` when unreachable).
    public var outcome: Result<UpstreamResponse, any Error>
    /// Set when the answer came from the stale-if-error cache: the cached answer's age.
    public var staleAge: Duration?
    /// Whether the answer is the policy's ``UpstreamPolicy/Fallback``: the call failed and
    /// nothing stale was cached. ``outcome`` is then the fallback's answer.
    public var fallback = false
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
    /// When the attempt started, after the start of the call (waits for a bulkhead slot, a
    /// rate-limit permit or a retry's delay come before it).
    public var startOffset: Duration
    /// Endpoints passed over for this attempt because they were ejected as outliers: ones
    /// the failover order would have tried first. Empty when none is ejected.
    public var skipped: [UpstreamEndpoint]
    /// How long the answer asked to wait before a retry (`Retry-After`, or for a 429 the
    /// reset time of its `RateLimit` headers), if it said.
    public var retryAfter: Duration?
    /// Whether it was a hedge: started while another attempt of the call was still running.
    public var hedged: Bool
    /// Whether it was cancelled because another attempt of the call answered first (a hedged
    /// call's slower attempt).
    public var abandoned: Bool

    /// Creates a record (the client makes them; observers' tests may too).
    public init(
        number: Int,
        endpoint: UpstreamEndpoint,
        status: Int?,
        failure: UpstreamFailure.Kind?,
        duration: Duration,
        startOffset: Duration = .zero,
        skipped: [UpstreamEndpoint] = [],
        retryAfter: Duration? = nil,
        hedged: Bool = false,
        abandoned: Bool = false
    ) {
        self.number = number
        self.endpoint = endpoint
        self.status = status
        self.failure = failure
        self.duration = duration
        self.startOffset = startOffset
        self.skipped = skipped
        self.retryAfter = retryAfter
        self.hedged = hedged
        self.abandoned = abandoned
    }
}
