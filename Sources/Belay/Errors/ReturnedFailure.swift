/// A returned value that a strategy counted as a failure (an HTTP 503), as an error.
///
/// A `circuit-open` rejection carries one as ``ResilienceError/underlying`` when such a value
/// opened the circuit. Only a description is kept, made by the strategy's `describe`
/// (``CircuitBreakerStrategy/describe``): the value itself (an HTTP answer and its body) is
/// not held for as long as the circuit stays open, and a description names no payload.
public struct ReturnedFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the value was, e.g. `HTTP 503 from api.pay.example:443`.
    public var description: String

    /// Creates a failure described as `description`.
    public init(description: String) {
        self.description = description
    }
}
