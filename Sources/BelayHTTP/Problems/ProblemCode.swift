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

    public static let unknownUpstream = ProblemCode("unknown-upstream", 404, "Unknown upstream", retryable: false)
    public static let circuitOpen = ProblemCode("circuit-open", 503, "Circuit open", retryable: true)
    public static let bulkheadFull = ProblemCode("bulkhead-full", 503, "Too many concurrent calls", retryable: true)
    public static let retryBudgetExhausted = ProblemCode(
        "retry-budget-exhausted",
        503,
        "Retry budget exhausted",
        retryable: true
    )
    public static let timeout = ProblemCode("timeout", 504, "Timed out", retryable: true)
    public static let upstreamUnreachable = ProblemCode(
        "upstream-unreachable",
        502,
        "Upstream unreachable",
        retryable: true
    )
    public static let rateLimited = ProblemCode("rate-limited", 429, "Rate limited", retryable: true)
    public static let unauthorized = ProblemCode("unauthorized", 401, "Unauthorized", retryable: false)
    public static let forbidden = ProblemCode("forbidden", 403, "Forbidden", retryable: false)
    public static let payloadTooLarge = ProblemCode("payload-too-large", 413, "Payload too large", retryable: false)
    public static let invalidRequest = ProblemCode("invalid-request", 400, "Invalid request", retryable: false)
    public static let idempotencyKeyMissing = ProblemCode(
        "idempotency-key-missing",
        400,
        "Idempotency-Key missing",
        retryable: false
    )
    public static let idempotencyKeyReused = ProblemCode(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused with another payload",
        retryable: false
    )
    public static let idempotencyKeyInFlight = ProblemCode(
        "idempotency-key-in-flight",
        409,
        "A request with this Idempotency-Key is in progress",
        retryable: true
    )
    public static let signatureInvalid = ProblemCode("signature-invalid", 401, "Signature invalid", retryable: false)
    public static let notFound = ProblemCode("not-found", 404, "Not found", retryable: false)

    /// Every code of the contract.
    public static let all: [ProblemCode] = [
        .unknownUpstream, .circuitOpen, .bulkheadFull, .retryBudgetExhausted, .timeout, .upstreamUnreachable,
        .rateLimited, .unauthorized, .forbidden, .payloadTooLarge, .invalidRequest, .idempotencyKeyMissing,
        .idempotencyKeyReused, .idempotencyKeyInFlight, .signatureInvalid, .notFound,
    ]
}
