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

/// How a half-open ``CircuitBreaker`` judges its ``CircuitBreaker/Configuration/halfOpenProbes``
/// probes.
///
/// Either way, when slow calls are counted (``CircuitBreaker/Configuration/slowCallDuration``),
/// the probes reopen the breaker once the slow ones among them reach
/// ``CircuitBreaker/Configuration/slowCallRatio`` of the probes (Resilience4j's rule).
public enum HalfOpenJudgment: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// One failed probe reopens the breaker; it closes once every probe has succeeded. The default.
    case anyFailure = "any-failure"
    /// The probes' failure ratio, over all ``CircuitBreaker/Configuration/halfOpenProbes`` of
    /// them, is judged against ``CircuitBreaker/Configuration/failureRatio``: the breaker reopens
    /// as soon as enough probes failed to reach it, and closes once every probe has finished
    /// below it (as Resilience4j's half-open state does).
    case failureRatio = "failure-ratio"

    public var description: String { rawValue }
}

/// Why a circuit breaker opened: what it judged and the counts that crossed the threshold.
///
/// Carried by its `circuit-open` rejections (``ResilienceError/circuitOpening``) from the
/// moment it opens until it closes, with the failure that opened it as
/// ``ResilienceError/underlying``.
public struct CircuitOpening: Sendable, Hashable, CustomStringConvertible {
    /// What crossed its threshold.
    public enum Trigger: String, Sendable, Hashable {
        /// The failure ratio over the sliding window reached `failureRatio`.
        case failureRatio = "failure-ratio"
        /// `consecutiveFailures` calls in a row failed.
        case consecutiveFailures = "consecutive-failures"
        /// The slow-call ratio over the sliding window reached `slowCallRatio`.
        case slowCallRatio = "slow-call-ratio"
        /// Half-open probes failed: one, or (``HalfOpenJudgment/failureRatio``) enough to reach
        /// `failureRatio` of the probes.
        case failedProbes = "failed-probes"
        /// Half-open probes were slow: enough to reach `slowCallRatio` of the probes.
        case slowProbes = "slow-probes"
    }

    /// What crossed its threshold.
    public var trigger: Trigger
    /// The calls that counted against the dependency: failed ones, or slow ones for
    /// ``Trigger/slowCallRatio`` and ``Trigger/slowProbes``.
    public var counted: Int
    /// The calls judged: those in the window, the run of failures, or the half-open probes.
    public var calls: Int

    /// Creates an opening.
    public init(trigger: Trigger, counted: Int, calls: Int) {
        self.trigger = trigger
        self.counted = counted
        self.calls = calls
    }

    /// In words, after "opened after": `6 of 10 calls failed`, `3 consecutive calls failed`,
    /// `the probe failed`, `4 of 4 probes were slow`.
    public var description: String {
        switch trigger {
        case .failureRatio: "\(counted) of \(calls) calls failed"
        case .consecutiveFailures: "\(counted) consecutive calls failed"
        case .slowCallRatio: "\(counted) of \(calls) calls were slow"
        case .failedProbes: calls == 1 ? "the probe failed" : "\(counted) of \(calls) probes failed"
        case .slowProbes: calls == 1 ? "the probe was slow" : "\(counted) of \(calls) probes were slow"
        }
    }
}
