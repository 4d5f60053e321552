import Belay

/// Whose doing a failed call was, decided once and used by the circuit breaker, outlier
/// ejection, the retry budget, the health model, metrics and the delivery planner
/// (DESIGN.md: "Only the upstream's own failures count against it").
public enum Fault: Sendable, Hashable {
    /// The caller's: its `Belay-Timeout` was shorter than the policy's deadlines, its body
    /// failed or was too large, it went away, or it sent a request the HTTP client refuses to
    /// send (``RequestRefusal``). Never counted against the upstream.
    case caller
    /// The policy's own refusal before anything was sent (circuit open, bulkhead full,
    /// concurrency limited, rate limited, retry budget spent): counted by nobody as a new failure of the upstream.
    case policy
    /// The upstream's: an error answer, a reset, a connect failure, a timeout of the policy's
    /// own deadline.
    case upstream

    /// Whose doing `error` (a call's failure) was.
    public static func of(_ error: any Error) -> Fault {
        switch error {
        case is RequestBodyError, is RequestRefusal, is CancellationError:
            return .caller
        case let rejection as ResilienceError:
            if rejection.isCallersDeadline { return .caller }
            switch rejection.code {
            case .circuitOpen, .circuitIsolated, .bulkheadFull, .concurrencyLimited, .rateLimited,
                .retryBudgetExhausted:
                return .policy
            default:
                return .upstream
            }
        default:
            return .upstream
        }
    }
}

/// A request the HTTP client refused to send as it was (a `TRACE` with a body, a header value
/// it cannot encode, a body shorter than its `Content-Length`): the caller's fault, answered
/// `400 invalid-request`, never retried and never counted against the upstream.
public struct RequestRefusal: Error, Sendable, CustomStringConvertible {
    /// Why, in words (no header values).
    public var reason: String

    /// Creates a refusal.
    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { "the request cannot be sent: \(reason)" }
}
