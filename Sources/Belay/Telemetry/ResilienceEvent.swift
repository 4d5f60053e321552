/// One decision a strategy took: a retry scheduled, a breaker opened, a call rejected.
///
/// Events are plain values handed to a ``ResilienceEventSink`` on the calling task. The
/// ``Kind/name`` of an event is a short, bounded string fit for a metric label.
public struct ResilienceEvent: Sendable, CustomStringConvertible {
    /// What happened.
    public enum Kind: Sendable {
        /// A retry will run after `delay`, because the previous outcome was `reason`.
        case retryScheduled(delay: Duration, reason: String)
        /// Retrying stopped although the outcome was retriable.
        case retryAbandoned(reason: RetryAbandonReason, outcome: String)
        /// The timeout fired after `after`.
        case timedOut(after: Duration)
        /// The circuit breaker moved between states.
        case circuitStateChanged(from: CircuitState, to: CircuitState)
        /// A strategy refused the call.
        case rejected(ResilienceError.Code, retryAfter: Duration?)
        /// The rate limiter made the call wait `delay` for a permit.
        case rateLimitDelayed(delay: Duration)
        /// The hedging strategy started an extra attempt.
        case hedgeLaunched(attempt: Int, after: Duration)
        /// The fallback produced the result.
        case fallbackUsed(reason: String)
        /// The fault-injection strategy injected a fault.
        case faultInjected(FaultKind)
        /// An ``AdaptiveConcurrencyLimit`` moved its limit.
        case concurrencyLimitChanged(from: Int, to: Int)

        /// A short, bounded name, e.g. `retry_scheduled`, `circuit_opened`.
        public var name: String {
            switch self {
            case .retryScheduled: "retry_scheduled"
            case .retryAbandoned: "retry_abandoned"
            case .timedOut: "timeout"
            case .circuitStateChanged(_, let to):
                switch to {
                case .closed: "circuit_closed"
                case .open: "circuit_opened"
                case .halfOpen: "circuit_half_opened"
                case .isolated: "circuit_isolated"
                }
            case .rejected: "rejected"
            case .rateLimitDelayed: "rate_limit_delayed"
            case .hedgeLaunched: "hedge_launched"
            case .fallbackUsed: "fallback_used"
            case .faultInjected: "fault_injected"
            case .concurrencyLimitChanged: "concurrency_limit_changed"
            }
        }
    }

    /// Why a retriable outcome was not retried.
    public enum RetryAbandonReason: String, Sendable, Hashable {
        /// Every configured attempt was used.
        case attemptsExhausted = "attempts-exhausted"
        /// The delay would end at or after the deadline.
        case deadline
        /// The shared retry budget had no allowance left.
        case budgetExhausted = "budget-exhausted"
        /// The outcome asked for a delay longer than the configured maximum.
        case delayHintTooLong = "delay-hint-too-long"
    }

    /// The kind of fault that was injected.
    public enum FaultKind: String, Sendable, Hashable {
        case latency, error, outcome
    }

    /// The name of the strategy instance that decided, e.g. `retry` or `payments-breaker`.
    public var strategy: String
    /// What it decided.
    public var kind: Kind
    /// The execution's correlation id, if one was given.
    public var correlationID: String?
    /// The attempt the decision concerns (1-based).
    public var attempt: Int

    /// Creates an event.
    public init(strategy: String, kind: Kind, correlationID: String?, attempt: Int) {
        self.strategy = strategy
        self.kind = kind
        self.correlationID = correlationID
        self.attempt = attempt
    }

    public var description: String {
        let detail: String
        switch kind {
        case .retryScheduled(let delay, let reason):
            detail = "retry in \(delay.formattedForHumans) because \(reason)"
        case .retryAbandoned(let reason, let outcome):
            detail = "not retrying (\(reason.rawValue)) after \(outcome)"
        case .timedOut(let after):
            detail = "timed out after \(after.formattedForHumans)"
        case .circuitStateChanged(let from, let to):
            detail = "circuit \(from) -> \(to)"
        case .rejected(let code, let retryAfter):
            detail = "rejected: \(code)" + (retryAfter.map { ", retry after \($0.formattedForHumans)" } ?? "")
        case .rateLimitDelayed(let delay):
            detail = "waited \(delay.formattedForHumans) for a permit"
        case .hedgeLaunched(let attempt, let after):
            detail = "hedged attempt \(attempt) launched after \(after.formattedForHumans)"
        case .fallbackUsed(let reason):
            detail = "fallback used because \(reason)"
        case .faultInjected(let kind):
            detail = "injected \(kind.rawValue) fault"
        case .concurrencyLimitChanged(let from, let to):
            detail = "concurrency limit \(from) -> \(to)"
        }
        return "[\(strategy)] attempt \(attempt): \(detail)"
    }
}

extension Duration {
    /// `1.5s`, `120ms`, `250µs`: a short form for logs and summaries.
    public var formattedForHumans: String {
        let seconds = Double(components.seconds) + Double(components.attoseconds) * 1e-18
        let magnitude = abs(seconds)
        func trim(_ value: Double) -> String {
            let rounded = (value * 10).rounded() / 10
            return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        }
        if magnitude >= 1 { return trim(seconds) + "s" }
        if magnitude >= 1e-3 { return trim(seconds * 1e3) + "ms" }
        if magnitude == 0 { return "0s" }
        return trim(seconds * 1e6) + "µs"
    }

    /// The duration in seconds as a `Double`.
    public var inSeconds: Double {
        // `components` divides 128-bit attoseconds: once, not twice.
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
