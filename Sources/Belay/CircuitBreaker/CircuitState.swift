/// The state of a ``CircuitBreaker``.
public enum CircuitState: String, Sendable, Hashable, CustomStringConvertible {
    /// Calls flow; outcomes are counted.
    case closed
    /// Calls are rejected at once until the break ends.
    case open
    /// A configured number of probe calls are let through; every other call is rejected.
    case halfOpen = "half-open"
    /// Isolated by hand: every call is rejected until ``CircuitBreaker/reset()``.
    case isolated

    public var description: String { rawValue }
}

/// A change of a circuit breaker's state, as given to state-change callbacks.
public struct CircuitTransition: Sendable, Hashable, CustomStringConvertible {
    /// The breaker's name.
    public var breaker: String
    /// The state it left.
    public var from: CircuitState
    /// The state it entered.
    public var to: CircuitState
    /// Why, in words: "failure ratio 0.6 >= 0.5 over 12 calls", "1 probe(s) succeeded".
    public var reason: String
    /// How long the break lasts, when the breaker opened.
    public var breakDuration: Duration?

    /// Creates a transition.
    public init(breaker: String, from: CircuitState, to: CircuitState, reason: String, breakDuration: Duration? = nil) {
        self.breaker = breaker
        self.from = from
        self.to = to
        self.reason = reason
        self.breakDuration = breakDuration
    }

    public var description: String {
        "\(breaker): \(from) -> \(to) (\(reason))"
    }
}
