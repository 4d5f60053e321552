import Synchronization

/// Stops calling a dependency that is failing, then probes it before letting traffic back.
///
/// **Closed**: calls flow and outcomes are counted over a time-based sliding window. Once
/// at least ``Configuration/minimumThroughput`` calls are in the window and the failure
/// ratio reaches ``Configuration/failureRatio`` (or, when configured, N consecutive calls
/// fail, or the slow-call ratio is reached), the breaker **opens**: every call is rejected
/// at once with ``ResilienceError/Code/circuitOpen``, a `retryAfter` and what opened it
/// (``ResilienceError/circuitOpening``, and the failure as ``ResilienceError/underlying``).
/// After the break, it is **half-open**: exactly ``Configuration/halfOpenProbes`` calls are
/// let through while every other call is rejected; if they all succeed it closes, if one
/// fails (or, with ``HalfOpenJudgment/failureRatio``, once their failure ratio reaches
/// ``Configuration/failureRatio``), or the slow ones among them reach
/// ``Configuration/slowCallRatio``, it opens again (for longer, if
/// ``Configuration/breakDurationMultiplier`` > 1).
/// ``isolate()`` holds it open by hand; ``reset()`` closes it.
///
/// A breaker is a shared object: give one to every pipeline that calls the same dependency.
///
/// ```swift
/// let breaker = try CircuitBreaker(.init(failureRatio: 0.5, minimumThroughput: 10, window: .seconds(30),
///                                        breakDuration: .seconds(5)))
/// let pipeline = try ResiliencePipeline<Int>.Builder().circuitBreaker(breaker).build()
/// ```
public final class CircuitBreaker<C: Clock>: Sendable where C.Duration == Duration {
    /// Options of a circuit breaker.
    public struct Configuration: Sendable {
        /// The breaker's name in events, errors and transitions. Default `circuit-breaker`.
        public var name: String
        /// The failure ratio, in `(0, 1]`, that opens the breaker. Default 0.5.
        public var failureRatio: Double
        /// Calls the window must hold before the ratio is judged. At least 1; default 10.
        public var minimumThroughput: Int
        /// The sliding window the ratio is computed over, kept in 10 buckets (counts expire in
        /// steps of a tenth of the window). Default 30 s.
        public var window: Duration
        /// How long the breaker stays open. Default 5 s.
        public var breakDuration: Duration
        /// Each consecutive trip multiplies the break by this (≥ 1). Default 1: no growth.
        public var breakDurationMultiplier: Double
        /// The longest a grown break may last. Default 5 minutes.
        public var maxBreakDuration: Duration
        /// Also open after this many consecutive failures, if set. Default nil.
        public var consecutiveFailures: Int?
        /// A call slower than this counts as slow, if set. Default nil.
        public var slowCallDuration: Duration?
        /// The slow-call ratio, in `(0, 1]`, that opens the breaker, when slow calls are counted. Default 1.
        public var slowCallRatio: Double
        /// Calls let through while half-open. At least 1; default 1.
        public var halfOpenProbes: Int
        /// How the half-open probes are judged. Default ``HalfOpenJudgment/anyFailure``: one
        /// failed probe reopens the breaker.
        public var halfOpenJudgment: HalfOpenJudgment
        /// Called after every state change, outside the breaker's lock.
        public var onStateChange: (@Sendable (CircuitTransition) -> Void)?

        /// Creates a configuration.
        public init(
            failureRatio: Double = 0.5,
            minimumThroughput: Int = 10,
            window: Duration = .seconds(30),
            breakDuration: Duration = .seconds(5),
            breakDurationMultiplier: Double = 1,
            maxBreakDuration: Duration = .seconds(300),
            consecutiveFailures: Int? = nil,
            slowCallDuration: Duration? = nil,
            slowCallRatio: Double = 1,
            halfOpenProbes: Int = 1,
            halfOpenJudgment: HalfOpenJudgment = .anyFailure,
            onStateChange: (@Sendable (CircuitTransition) -> Void)? = nil,
            name: String = "circuit-breaker"
        ) {
            self.name = name
            self.failureRatio = failureRatio
            self.minimumThroughput = minimumThroughput
            self.window = window
            self.breakDuration = breakDuration
            self.breakDurationMultiplier = breakDurationMultiplier
            self.maxBreakDuration = maxBreakDuration
            self.consecutiveFailures = consecutiveFailures
            self.slowCallDuration = slowCallDuration
            self.slowCallRatio = slowCallRatio
            self.halfOpenProbes = halfOpenProbes
            self.halfOpenJudgment = halfOpenJudgment
            self.onStateChange = onStateChange
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.ratio(failureRatio, "failureRatio")
            validator.require(failureRatio > 0, "failureRatio", "must be greater than 0 (got \(failureRatio))")
            validator.atLeast(minimumThroughput, 1, "minimumThroughput")
            validator.positive(window, "window")
            validator.positive(breakDuration, "breakDuration")
            validator.require(
                breakDurationMultiplier >= 1,
                "breakDurationMultiplier",
                "must be at least 1 (got \(breakDurationMultiplier))"
            )
            validator.require(
                maxBreakDuration >= breakDuration,
                "maxBreakDuration",
                "must be at least breakDuration (got \(maxBreakDuration))"
            )
            if let consecutiveFailures {
                validator.atLeast(consecutiveFailures, 1, "consecutiveFailures")
            }
            if let slowCallDuration {
                validator.positive(slowCallDuration, "slowCallDuration")
            }
            validator.ratio(slowCallRatio, "slowCallRatio")
            validator.require(slowCallRatio > 0, "slowCallRatio", "must be greater than 0 (got \(slowCallRatio))")
            validator.atLeast(halfOpenProbes, 1, "halfOpenProbes")
            try validator.check()
        }
    }

    typealias StateMachine = CircuitBreakerStateMachine

    /// The options in force.
    public let configuration: Configuration
    let clock: C
    private let origin: C.Instant
    private let machine: Mutex<StateMachine>

    /// Creates a breaker on `clock`, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.machine = Mutex(
            StateMachine(
                name: configuration.name,
                settings: .init(
                    failureRatio: configuration.failureRatio,
                    minimumThroughput: configuration.minimumThroughput,
                    consecutiveFailures: configuration.consecutiveFailures,
                    slowCallRatio: configuration.slowCallDuration == nil ? nil : configuration.slowCallRatio,
                    breakDuration: configuration.breakDuration,
                    breakDurationMultiplier: configuration.breakDurationMultiplier,
                    maxBreakDuration: configuration.maxBreakDuration,
                    halfOpenProbes: configuration.halfOpenProbes,
                    halfOpenJudgment: configuration.halfOpenJudgment
                ),
                window: configuration.window
            )
        )
        self.origin = clock.now
    }

    /// The breaker's state now. An open breaker whose break has ended still reads `open`
    /// until the next call turns it half-open.
    public var state: CircuitState {
        machine.withLock { $0.publicState }
    }

    /// While the breaker is open, the time left before its break ends and a probe may run
    /// (zero once it has ended); nil in every other state.
    public var remainingBreak: Duration? {
        let now = origin.duration(to: clock.now)
        return machine.withLock { machine in
            guard case .open(let until) = machine.state else { return nil }
            return max(until - now, .zero)
        }
    }

    /// Holds the breaker open: every call is rejected with `circuit-isolated` until ``reset()``.
    ///
    /// Manual transitions reach ``Configuration/onStateChange``, not a pipeline's event sink
    /// (no execution is running to carry one).
    public func isolate() {
        let transition = machine.withLock { $0.isolate() }
        notify(transition, context: nil)
    }

    /// Closes the breaker and forgets its counts.
    public func reset() {
        let transition = machine.withLock { $0.reset() }
        notify(transition, context: nil)
    }

    /// Asks to run one call. On rejection, returns the error to report.
    func acquire(context: ResilienceContext) -> Result<StateMachine.Permit, ResilienceError> {
        let decision = machine.withLock { $0.acquire(now: { self.elapsed() }) }
        switch decision {
        case .permitted(let permit, let transition):
            notify(transition, context: context)
            return .success(permit)
        case .rejected(let isolated, let retryAfter, let cause):
            var error = ResilienceError(
                code: isolated ? .circuitIsolated : .circuitOpen,
                strategy: configuration.name,
                message: isolated
                    ? "the circuit is isolated; calls are rejected until it is reset"
                    : cause?.message ?? "the circuit is open; calls are rejected until it recovers",
                retryAfter: retryAfter,
                underlying: cause?.failure
            )
            error.circuitOpening = cause?.opening
            context.emit(.rejected(error.code, retryAfter: retryAfter), strategy: configuration.name)
            return .failure(error)
        }
    }

    /// Records the result of a permitted call; `failure` is a failed call's error (or its
    /// ``ReturnedFailure``), the cause a circuit-open rejection reports if this call trips it.
    func record(
        _ result: StateMachine.CallResult,
        slow: Bool,
        permit: StateMachine.Permit,
        failure: (any Error)?,
        context: ResilienceContext
    ) {
        let now = elapsed()
        let transition = machine.withLock {
            $0.record(result, slow: slow, permit: permit, now: now, failure: failure)
        }
        notify(transition, context: context)
    }

    /// Time since the breaker was created, on its clock.
    private func elapsed() -> Duration {
        origin.duration(to: clock.now)
    }

    private func notify(_ transition: CircuitTransition?, context: ResilienceContext?) {
        guard let transition else { return }
        context?.emit(.circuitStateChanged(from: transition.from, to: transition.to), strategy: configuration.name)
        configuration.onStateChange?(transition)
    }
}

extension CircuitBreaker where C == ContinuousClock {
    /// Creates a breaker on the continuous clock.
    public convenience init(_ configuration: Configuration) throws(ConfigurationError) {
        try self.init(configuration, clock: ContinuousClock())
    }
}
