/// The error codes of Belay's HTTP contract, each with its status (see DESIGN.md, "Errors").
///
/// Every error Belay itself produces is an RFC 9457 `application/problem+json` document
/// whose `code` extension is one of these.
public struct ProblemCode: Hashable, Sendable, CustomStringConvertible {
    /// The code as sent, e.g. `circuit-open`.
    public let name: String
    /// The HTTP status it is sent with.
    public let status: Int
    /// A short, stable title for the problem document.
    public let title: String
    /// Whether the same request may succeed if sent again later.
    public let retryable: Bool

    private init(_ name: String, _ status: Int, _ title: String, retryable: Bool) {
        self.name = name
        self.status = status
        self.title = title
        self.retryable = retryable
    }

    public var description: String { name }

    /// The problem type URI: `https://belay.dev/problems/<code>`.
    public var type: String { "https://belay.dev/problems/\(name)" }

    /// The path names no configured upstream (404).
    public static let unknownUpstream = ProblemCode("unknown-upstream", 404, "Unknown upstream", retryable: false)
    /// The upstream's circuit breaker is open (503, with `Retry-After`).
    public static let circuitOpen = ProblemCode("circuit-open", 503, "Circuit open", retryable: true)
    /// The upstream's concurrency limit and its queue are full (503).
    public static let bulkheadFull = ProblemCode("bulkhead-full", 503, "Too many concurrent calls", retryable: true)
    /// The upstream's adaptive concurrency limit is reached and no slot freed within
    /// `bulkhead.max_wait` (503, with `Retry-After`).
    public static let concurrencyLimited = ProblemCode(
        "concurrency-limited",
        503,
        "Concurrency limit reached",
        retryable: true
    )
    /// A retry was needed but the retry budget had no allowance left (503).
    public static let retryBudgetExhausted = ProblemCode(
        "retry-budget-exhausted",
        503,
        "Retry budget exhausted",
        retryable: true
    )
    /// The deadline passed before the upstream answered (504).
    public static let timeout = ProblemCode("timeout", 504, "Timed out", retryable: true)
    /// No endpoint of the upstream could be reached (502).
    public static let upstreamUnreachable = ProblemCode(
        "upstream-unreachable",
        502,
        "Upstream unreachable",
        retryable: true
    )
    /// A rate limit refused the call (429, with `Retry-After` and `RateLimit`).
    public static let rateLimited = ProblemCode("rate-limited", 429, "Rate limited", retryable: true)
    /// The caller presented no valid key (401).
    public static let unauthorized = ProblemCode("unauthorized", 401, "Unauthorized", retryable: false)
    /// The caller's key lacks the scope for this route (403).
    public static let forbidden = ProblemCode("forbidden", 403, "Forbidden", retryable: false)
    /// The request body exceeds `server.max_body` (413).
    public static let payloadTooLarge = ProblemCode("payload-too-large", 413, "Payload too large", retryable: false)
    /// The request is malformed; `detail` names the field at fault (400).
    public static let invalidRequest = ProblemCode("invalid-request", 400, "Invalid request", retryable: false)
    /// The route requires an `Idempotency-Key` and none was sent (400).
    public static let idempotencyKeyMissing = ProblemCode(
        "idempotency-key-missing",
        400,
        "Idempotency-Key missing",
        retryable: false
    )
    /// The `Idempotency-Key` was used before with another payload (422).
    public static let idempotencyKeyReused = ProblemCode(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused with another payload",
        retryable: false
    )
    /// A request with this `Idempotency-Key` is still being processed (409).
    public static let idempotencyKeyInFlight = ProblemCode(
        "idempotency-key-in-flight",
        409,
        "A request with this Idempotency-Key is in progress",
        retryable: true
    )
    /// A webhook signature is missing, wrong or outside the tolerance (401).
    public static let signatureInvalid = ProblemCode("signature-invalid", 401, "Signature invalid", retryable: false)
    /// The resource does not exist (404).
    public static let notFound = ProblemCode("not-found", 404, "Not found", retryable: false)
    /// The resource's current state does not allow the operation, e.g. cancelling a
    /// delivered delivery (409).
    public static let conflict = ProblemCode("conflict", 409, "Conflict with the current state", retryable: false)
    /// Belay's own store failed to read or write; nothing was changed (503, with `Retry-After`).
    public static let storeUnavailable = ProblemCode(
        "store-unavailable",
        503,
        "Store unavailable",
        retryable: true
    )
    /// The instance is stopping (SIGTERM): `/readyz` answers it while new connections are still
    /// served for `server.drain`, so a load balancer sends new work elsewhere (503).
    public static let draining = ProblemCode("draining", 503, "Draining", retryable: true)
    /// The route exists but not for this method (405, with `Allow`). An extension of the
    /// contract's codes.
    public static let methodNotAllowed = ProblemCode("method-not-allowed", 405, "Method not allowed", retryable: false)
    /// A config reload was refused: the file has problems (listed in the answer's `problems`),
    /// and the running config is kept (422). An extension of the contract's codes; not in
    /// ``all``, whose codes label the proxy's metrics (a reload is no proxied request).
    public static let configInvalid = ProblemCode("config-invalid", 422, "Config refused", retryable: false)

    /// Every code of the contract.
    public static let all: [ProblemCode] = [
        .unknownUpstream, .circuitOpen, .bulkheadFull, .concurrencyLimited, .retryBudgetExhausted, .timeout,
        .upstreamUnreachable,
        .rateLimited, .unauthorized, .forbidden, .payloadTooLarge, .invalidRequest, .idempotencyKeyMissing,
        .idempotencyKeyReused, .idempotencyKeyInFlight, .signatureInvalid, .notFound, .conflict, .storeUnavailable,
        .methodNotAllowed, .draining,
    ]
}
