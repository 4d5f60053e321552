/// The sans-IO core of ``CircuitBreaker``: takes times (elapsed since the breaker's
/// origin) and outcomes, returns decisions.
struct CircuitBreakerStateMachine: Sendable {
    struct Settings: Sendable {
        var failureRatio: Double
        var minimumThroughput: Int
        var consecutiveFailures: Int?
        var slowCallRatio: Double?
        var breakDuration: Duration
        var breakDurationMultiplier: Double
        var maxBreakDuration: Duration
        var halfOpenProbes: Int
        var halfOpenJudgment: HalfOpenJudgment
    }

    struct Counts: WindowCounts {
        var calls: Int
        var failures: Int
        var slow: Int
        static var zero: Counts { Counts(calls: 0, failures: 0, slow: 0) }
        mutating func add(_ other: Counts) {
            calls += other.calls
            failures += other.failures
            slow += other.slow
        }
        mutating func subtract(_ other: Counts) {
            calls -= other.calls
            failures -= other.failures
            slow -= other.slow
        }
    }

    enum State: Sendable {
        case closed
        case open(until: Duration)
        case halfOpen(Probes)
        case isolated
    }

    /// The half-open state's probes so far.
    struct Probes: Sendable {
        /// Probes let through (a probe whose result is ignored gives its slot back).
        var admitted = 0
        /// Probes whose result was counted.
        var finished = 0
        var failed = 0
        var slow = 0
    }

    /// What opened the breaker, kept from the trip until it closes or is isolated.
    struct Cause: Sendable {
        var opening: CircuitOpening
        /// The failure that tripped it; nil when slow calls did.
        var failure: (any Error)?
        /// The rejections' message, made once per trip.
        var message: String
    }

    /// A permission to run one call; hand it back with the call's result.
    struct Permit: Sendable, Hashable {
        var generation: UInt64
        var isProbe: Bool
    }

    enum Acquire: Sendable {
        case permitted(Permit, CircuitTransition?)
        case rejected(isolated: Bool, retryAfter: Duration?, cause: Cause?)
    }

    enum CallResult: Sendable {
        case success
        case failure
        /// Neither: cancelled, or rejected further in. A probe slot is given back.
        case ignored
    }

    private let name: String
    private let settings: Settings
    private(set) var state: State = .closed
    private var window: SlidingWindow<Counts>
    private var consecutive = 0
    /// Consecutive trips without a successful close; grows the break duration.
    private var trips = 0
    /// Bumped on every transition so late results of an older state are not counted.
    private var generation: UInt64 = 0
    /// The last failure counted in the current state (the candidate cause of a trip).
    private var lastFailure: (any Error)?
    /// What opened the breaker, while it is open or half-open.
    private(set) var cause: Cause?

    init(name: String, settings: Settings, window: Duration) {
        self.name = name
        self.settings = settings
        self.window = SlidingWindow(window: window, bucketCount: 10)
    }

    var publicState: CircuitState {
        switch state {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        case .isolated: .isolated
        }
    }

    /// Asks to run one call. `now` is only read when the state needs it.
    mutating func acquire(now: () -> Duration) -> Acquire {
        switch state {
        case .closed:
            return .permitted(Permit(generation: generation, isProbe: false), nil)
        case .open(let until):
            let now = now()
            guard now >= until else {
                return .rejected(isolated: false, retryAfter: until - now, cause: cause)
            }
            let transition = move(to: .halfOpen(Probes(admitted: 1)), reason: "break of \(name) ended")
            return .permitted(Permit(generation: generation, isProbe: true), transition)
        case .halfOpen(var probes):
            guard probes.admitted < settings.halfOpenProbes else {
                return .rejected(isolated: false, retryAfter: Self.probeRetryAfter(settings), cause: cause)
            }
            probes.admitted += 1
            state = .halfOpen(probes)
            return .permitted(Permit(generation: generation, isProbe: true), nil)
        case .isolated:
            return .rejected(isolated: true, retryAfter: nil, cause: nil)
        }
    }

    /// What a call refused while every probe slot is taken is told: come back in a second
    /// (or after one break, if that is shorter), when the probes have likely settled it.
    static func probeRetryAfter(_ settings: Settings) -> Duration {
        min(settings.breakDuration, .seconds(1))
    }

    /// Records the result of a permitted call; returns the transition it caused, if any.
    /// `failure` is the failed call's error (or its ``ReturnedFailure``), nil for other results.
    mutating func record(
        _ result: CallResult,
        slow: Bool,
        permit: Permit,
        now: Duration,
        failure: (any Error)? = nil
    ) -> CircuitTransition? {
        guard permit.generation == generation else { return nil }
        switch state {
        case .closed:
            guard result != .ignored else { return nil }
            let failed = result == .failure
            if failed { lastFailure = failure }
            window.record(Counts(calls: 1, failures: failed ? 1 : 0, slow: slow ? 1 : 0), at: now)
            consecutive = failed ? consecutive + 1 : 0
            if let limit = settings.consecutiveFailures, consecutive >= limit {
                return trip(
                    now: now,
                    reason: "\(consecutive) consecutive failures",
                    opening: CircuitOpening(trigger: .consecutiveFailures, counted: consecutive, calls: consecutive),
                    failure: lastFailure
                )
            }
            let total = window.total
            guard total.calls >= settings.minimumThroughput else { return nil }
            let failureRatio = Double(total.failures) / Double(total.calls)
            if total.failures > 0 && failureRatio >= settings.failureRatio {
                return trip(
                    now: now,
                    reason:
                        "failure ratio \(rounded(failureRatio)) >= \(settings.failureRatio) over \(total.calls) calls",
                    opening: CircuitOpening(trigger: .failureRatio, counted: total.failures, calls: total.calls),
                    failure: lastFailure
                )
            }
            if let slowRatio = settings.slowCallRatio, total.slow > 0 {
                let observed = Double(total.slow) / Double(total.calls)
                if observed >= slowRatio {
                    return trip(
                        now: now,
                        reason: "slow-call ratio \(rounded(observed)) >= \(slowRatio) over \(total.calls) calls",
                        opening: CircuitOpening(trigger: .slowCallRatio, counted: total.slow, calls: total.calls),
                        failure: nil
                    )
                }
            }
            return nil
        case .halfOpen(var probes):
            guard permit.isProbe else { return nil }
            if result == .ignored {
                probes.admitted = max(probes.admitted - 1, 0)
                state = .halfOpen(probes)
                return nil
            }
            return judge(probes: &probes, failed: result == .failure, slow: slow, failure: failure, now: now)
        case .open, .isolated:
            return nil
        }
    }

    /// Counts a probe's result and decides: reopen as soon as the probes' failures (one, or
    /// their ratio) or slow calls (their ratio) settle it, close once every probe has finished.
    private mutating func judge(
        probes: inout Probes,
        failed: Bool,
        slow: Bool,
        failure: (any Error)?,
        now: Duration
    ) -> CircuitTransition? {
        let total = settings.halfOpenProbes
        probes.finished += 1
        if failed {
            probes.failed += 1
            lastFailure = failure
        }
        if slow { probes.slow += 1 }
        let failuresReopen: Bool
        switch settings.halfOpenJudgment {
        case .anyFailure: failuresReopen = probes.failed > 0
        case .failureRatio:
            failuresReopen = probes.failed > 0 && Double(probes.failed) / Double(total) >= settings.failureRatio
        }
        if failuresReopen {
            let opening = CircuitOpening(trigger: .failedProbes, counted: probes.failed, calls: total)
            return trip(now: now, reason: opening.description, opening: opening, failure: lastFailure)
        }
        if let slowRatio = settings.slowCallRatio, probes.slow > 0,
            Double(probes.slow) / Double(total) >= slowRatio
        {
            let opening = CircuitOpening(trigger: .slowProbes, counted: probes.slow, calls: total)
            return trip(now: now, reason: opening.description, opening: opening, failure: nil)
        }
        guard probes.finished >= total else {
            state = .halfOpen(probes)
            return nil
        }
        trips = 0
        let reason =
            probes.failed == 0 && probes.slow == 0
            ? "\(total) probe(s) succeeded"
            : "\(probes.failed) of \(total) probe(s) failed and \(probes.slow) were slow, below the ratios"
        return move(to: .closed, reason: reason)
    }

    mutating func isolate() -> CircuitTransition? {
        if case .isolated = state { return nil }
        return move(to: .isolated, reason: "isolated by hand")
    }

    mutating func reset() -> CircuitTransition? {
        trips = 0
        if case .closed = state {
            window.reset()
            consecutive = 0
            return nil
        }
        return move(to: .closed, reason: "reset by hand")
    }

    private mutating func trip(
        now: Duration,
        reason: String,
        opening: CircuitOpening,
        failure: (any Error)?
    ) -> CircuitTransition? {
        var duration = settings.breakDuration
        if trips > 0 && settings.breakDurationMultiplier > 1 {
            let grown = settings.breakDuration.inSeconds * pow(settings.breakDurationMultiplier, trips)
            duration = min(settings.maxBreakDuration, grown.isFinite ? .seconds(grown) : settings.maxBreakDuration)
        }
        trips += 1
        var transition = move(to: .open(until: now + duration), reason: reason)
        transition?.breakDuration = duration
        cause = Cause(
            opening: opening,
            failure: failure,
            message: "the circuit opened after \(opening); calls are rejected until it recovers"
        )
        return transition
    }

    private mutating func move(to newState: State, reason: String) -> CircuitTransition? {
        let from = publicState
        state = newState
        generation &+= 1
        window.reset()
        consecutive = 0
        lastFailure = nil
        switch newState {
        case .closed, .isolated: cause = nil
        case .open, .halfOpen: break
        }
        return CircuitTransition(breaker: name, from: from, to: publicState, reason: reason, breakDuration: nil)
    }

    private func rounded(_ value: Double) -> Double {
        (value * 1000).rounded() / 1000
    }

    private func pow(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<min(exponent, 64) { result *= base }
        return result
    }
}
