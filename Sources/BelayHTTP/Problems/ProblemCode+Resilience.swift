public import Belay

extension ProblemCode {
    /// The contract code for a strategy's rejection, so the HTTP edge maps it in one place.
    ///
    /// `circuit-isolated` is reported as `circuit-open`; an injected fault as
    /// `upstream-unreachable` (it stands in for a failing upstream).
    public init(_ code: ResilienceError.Code) {
        switch code {
        case .timeout: self = .timeout
        case .circuitOpen, .circuitIsolated: self = .circuitOpen
        case .bulkheadFull: self = .bulkheadFull
        case .concurrencyLimited: self = .concurrencyLimited
        case .rateLimited: self = .rateLimited
        case .retryBudgetExhausted: self = .retryBudgetExhausted
        default: self = .upstreamUnreachable
        }
    }
}
