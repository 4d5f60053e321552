/// The error a strategy throws when it refuses or abandons a call.
///
/// A rejection says which strategy refused (``strategy``) and why (``code``); callers
/// switch on the code and never match strings. Only `code.description` is suitable for
/// metric labels.
///
/// ```swift
/// do { try await pipeline.execute { _ in try await call() } }
/// catch let error as ResilienceError where error.code == .circuitOpen {
///     print("try again in \(error.retryAfter ?? .zero)")
/// }
/// ```
public struct ResilienceError: Error, Sendable, CustomStringConvertible {
    /// What kind of refusal this is. New codes may be added without breaking users.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case timeout
            case circuitOpen = "circuit-open"
            case circuitIsolated = "circuit-isolated"
            case bulkheadFull = "bulkhead-full"
            case concurrencyLimited = "concurrency-limited"
            case rateLimited = "rate-limited"
            case retryBudgetExhausted = "retry-budget-exhausted"
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// A timeout strategy's deadline (its own or an outer one) passed first.
        public static let timeout = Code(.timeout)
        /// The circuit breaker is open (or half-open with every probe slot taken); always
        /// comes with a `retryAfter`, and with what opened it (``ResilienceError/circuitOpening``,
        /// ``ResilienceError/underlying``).
        public static let circuitOpen = Code(.circuitOpen)
        /// The circuit breaker was isolated by hand and rejects every call until reset.
        public static let circuitIsolated = Code(.circuitIsolated)
        /// The bulkhead has no free slot and its wait queue is full.
        public static let bulkheadFull = Code(.bulkheadFull)
        /// The ``AdaptiveConcurrencyLimit`` is at its current limit and the call could not wait
        /// for a slot (its queue was full, or `maxWait` passed first); comes with a `retryAfter`.
        public static let concurrencyLimited = Code(.concurrencyLimited)
        /// The rate limiter has no permit within the allowed wait.
        public static let rateLimited = Code(.rateLimited)
        /// A retry was wanted but the shared retry budget had no allowance left.
        public static let retryBudgetExhausted = Code(.retryBudgetExhausted)

        /// The code as a stable kebab-case string, e.g. `circuit-open`.
        public var description: String { base.rawValue }
    }

    /// Why the call was refused.
    public var code: Code
    /// The name of the strategy that refused, e.g. `retry` or `payments-breaker`.
    public var strategy: String
    /// A human-readable sentence. Never contains secrets or payloads.
    public var message: String
    /// When trying again could succeed, if the strategy knows (open breaker, rate limit).
    public var retryAfter: Duration?
    /// The error that led to this one, if any: the last attempt's error for a budget refusal;
    /// for ``Code/circuitOpen``, the failure that opened the circuit (a ``ReturnedFailure`` when
    /// it was a returned value counted as one; nil when slow calls opened it), kept until the
    /// circuit closes.
    public var underlying: (any Error)?
    /// For ``Code/timeout``: whose deadline passed. ``Deadline/Origin/caller`` when a deadline
    /// the caller bound (its remaining budget) came first: not the dependency's doing, so
    /// circuit breakers ignore it. Nil for other codes.
    public var deadlineOrigin: Deadline.Origin?
    /// For ``Code/circuitOpen``: why the circuit opened (`6 of 10 calls failed`), kept until it
    /// closes. Nil for other codes.
    public var circuitOpening: CircuitOpening?

    /// Whether this is a timeout of the caller's own deadline (``deadlineOrigin`` is
    /// ``Deadline/Origin/caller``), not of the pipeline's.
    public var isCallersDeadline: Bool { code == .timeout && deadlineOrigin == .caller }

    /// Creates a resilience error.
    public init(
        code: Code,
        strategy: String,
        message: String,
        retryAfter: Duration? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.strategy = strategy
        self.message = message
        self.retryAfter = retryAfter
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code) (\(strategy)): \(message)"
        if let retryAfter {
            text += "; retry after \(retryAfter)"
        }
        if let underlying {
            text += "; underlying: \(underlying)"
        }
        return text
    }
}
