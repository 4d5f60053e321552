import HTTPTypes

/// The header names the gateway reads and writes, parsed once.
extension HTTPField.Name {
    /// `Belay-Request-Id`: the request id, on every answer.
    static let belayRequestID = HTTPField.Name("Belay-Request-Id")!
    /// `Belay-Attempts`: attempts made, on proxied answers.
    static let belayAttempts = HTTPField.Name("Belay-Attempts")!
    /// `Belay-Endpoint`: the endpoint that answered, on proxied answers.
    static let belayEndpoint = HTTPField.Name("Belay-Endpoint")!
    /// `Belay-Degraded`: set when a cached answer is served.
    static let belayDegraded = HTTPField.Name("Belay-Degraded")!
    /// `Belay-Timeout`: the caller's remaining budget.
    static let belayTimeout = HTTPField.Name("Belay-Timeout")!
    /// `X-Request-Id`: the caller's request id, forwarded upstream.
    static let xRequestID = HTTPField.Name("X-Request-Id")!
    /// `X-Forwarded-For`: the callers' addresses.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
