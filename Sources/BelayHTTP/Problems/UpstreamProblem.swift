import Belay

/// What a failed call to an upstream comes to in the contract's words: the problem code
/// (``ProblemCode``), a sentence that names no secret and no payload, and how long to wait.
/// The gateway answers it as problem+json; ``ResilientHTTPClient`` throws it as ``ResilientHTTPError``.
public enum UpstreamProblem {
    /// The contract's code, a detail sentence and a `Retry-After` for a failed call to
    /// `upstream` (what the gateway answers as problem+json, and ``ResilientHTTPError`` carries).
    public static func describe(
        _ error: any Error,
        upstream: String
    ) -> (code: ProblemCode, detail: String, retryAfter: Duration?) {
        switch error {
        case let rejection as ResilienceError:
            let code = ProblemCode(rejection.code)
            switch rejection.code {
            case .circuitOpen:
                var detail = "\(upstream) is failing; calls are paused while its circuit is open"
                if let opening = rejection.circuitOpening {
                    detail += ": opened after \(opening)"
                    if let cause = rejection.underlying { detail += "; last: \(Self.safeDescription(of: cause))" }
                }
                return (code, detail, rejection.retryAfter)
            case .circuitIsolated: return (code, "\(upstream) has been isolated by an operator", nil)
            case .timeout where rejection.isCallersDeadline:
                return (
                    code,
                    "\(upstream) did not answer within the request's Belay-Timeout (\(rejection.message)); "
                        + "not counted against \(upstream)",
                    nil
                )
            case .timeout: return (code, "\(upstream) did not answer in time (\(rejection.message))", nil)
            case .bulkheadFull: return (code, "too many calls to \(upstream) are in flight", nil)
            case .concurrencyLimited:
                // Always with a Retry-After: a slot frees within about one round trip.
                return (
                    code,
                    "calls to \(upstream) are held to the concurrency it was seen to handle: \(rejection.message)",
                    rejection.retryAfter ?? .seconds(1)
                )
            case .rateLimited:
                return (code, "calls to \(upstream) are paced to the provider's limit", rejection.retryAfter)
            case .retryBudgetExhausted:
                return (
                    code,
                    "\(upstream) is failing and the retry budget is spent; last: \(rejection.underlying.map { "\($0)" } ?? "unknown")",
                    nil
                )
            default: return (code, rejection.message, rejection.retryAfter)
            }
        case let bodyError as RequestBodyError:
            if bodyError.code == .tooLarge {
                return (.payloadTooLarge, "the body exceeds server.max_body (\(bodyError.limit ?? 0) bytes)", nil)
            }
            if bodyError.code == .incomplete {
                let how = Self.attemptEnding(bodyError.underlying)
                return (
                    .invalidRequest,
                    "the request body was still arriving when the attempt \(how); send it faster, or declare a "
                        + "Content-Length of at most 1 MiB so that Belay reads it before calling \(upstream). "
                        + "Not counted against \(upstream)",
                    nil
                )
            }
            return (.invalidRequest, "the request body could not be read", nil)
        case let refusal as RequestRefusal:
            return (.invalidRequest, "\(refusal); nothing was sent to \(upstream)", nil)
        case let failure as UpstreamFailure:
            if failure.kind == .timeout {
                return (.timeout, "\(upstream) did not answer in time: \(failure.detail)", nil)
            }
            return (.upstreamUnreachable, "\(upstream) could not be reached: \(failure.description)", nil)
        case is CancellationError:
            return (.upstreamUnreachable, "the call to \(upstream) was cancelled", nil)
        default:
            return (.upstreamUnreachable, "the call to \(upstream) failed: \(type(of: error))", nil)
        }
    }

    /// A failure in words that name no secret and no payload: an ``UpstreamFailure``'s or a
    /// ``ReturnedFailure``'s own description (kind, endpoint, status), a rejection's code and
    /// message, and for any other error only its type.
    public static func safeDescription(of error: any Error) -> String {
        switch error {
        case let failure as UpstreamFailure: failure.description
        case let returned as ReturnedFailure: returned.description
        case let rejection as ResilienceError: "\(rejection.code): \(rejection.message)"
        default: String(describing: type(of: error))
        }
    }

    /// How an attempt ended that failed while the caller's body was arriving, e.g. `timed out`.
    private static func attemptEnding(_ error: (any Error)?) -> String {
        if let rejection = error as? ResilienceError, rejection.code == .timeout {
            return "timed out (\(rejection.message))"
        }
        switch (error as? UpstreamFailure)?.kind {
        case .timeout: return "timed out"
        case .reset: return "lost its connection to the upstream"
        case .connect: return "could not connect"
        case .other, nil: return "failed"
        }
    }

}
