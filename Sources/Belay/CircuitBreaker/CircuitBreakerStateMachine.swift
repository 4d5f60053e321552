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
        case halfOpen(admitted: Int, succeeded: Int)
        case isolated
    }

    /// A permission to run one call; hand it back with the call's result.
    struct Permit: Sendable, Hashable {
        var generation: UInt64
        var isProbe: Bool
    }

    enum Acquire: Sendable {
        case permitted(Permit, CircuitTransition?)
        case rejected(isolated: Bool, retryAfter: Duration?)
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
                return .rejected(isolated: false, retryAfter: until - now)
            }
            let transition = move(to: .halfOpen(admitted: 1, succeeded: 0), reason: "break of \(name) ended")
            return .permitted(Permit(generation: generation, isProbe: true), transition)
        case .halfOpen(let admitted, let succeeded):
            guard admitted < settings.halfOpenProbes else {
                return .rejected(isolated: false, retryAfter: Self.probeRetryAfter(settings))
            }
            state = .halfOpen(admitted: admitted + 1, succeeded: succeeded)
            return .permitted(Permit(generation: generation, isProbe: true), nil)
        case .isolated:
            return .rejected(isolated: true, retryAfter: nil)
        }
    }

    /// What a call refused while every probe slot is taken is told: come back in a second
    /// (or after one break, if that is shorter), when the probes have likely settled it.
    static func probeRetryAfter(_ settings: Settings) -> Duration {
        min(settings.breakDuration, .seconds(1))
    }

    /// Records the result of a permitted call; returns the transition it caused, if any.
    mutating func record(_ result: CallResult, slow: Bool, permit: Permit, now: Duration) -> CircuitTransition? {
        guard permit.generation == generation else { return nil }
        switch state {
        case .closed:
            guard result != .ignored else { return nil }
            let failed = result == .failure
            window.record(Counts(calls: 1, failures: failed ? 1 : 0, slow: slow ? 1 : 0), at: now)
            consecutive = failed ? consecutive + 1 : 0
            if let limit = settings.consecutiveFailures, consecutive >= limit {
                return trip(now: now, reason: "\(consecutive) consecutive failures")
            }
            let total = window.total
            guard total.calls >= settings.minimumThroughput else { return nil }
            let failureRatio = Double(total.failures) / Double(total.calls)
            if total.failures > 0 && failureRatio >= settings.failureRatio {
                return trip(
                    now: now,
                    reason:
                        "failure ratio \(rounded(failureRatio)) >= \(settings.failureRatio) over \(total.calls) calls"
                )
            }
            if let slowRatio = settings.slowCallRatio, total.slow > 0 {
                let observed = Double(total.slow) / Double(total.calls)
                if observed >= slowRatio {
                    return trip(
                        now: now,
                        reason: "slow-call ratio \(rounded(observed)) >= \(slowRatio) over \(total.calls) calls"
                    )
                }
            }
            return nil
        case .halfOpen(let admitted, let succeeded):
            guard permit.isProbe else { return nil }
            switch result {
            case .ignored:
                state = .halfOpen(admitted: max(admitted - 1, 0), succeeded: succeeded)
                return nil
            case .failure:
                return trip(now: now, reason: "probe failed")
            case .success:
                guard succeeded + 1 >= settings.halfOpenProbes else {
                    state = .halfOpen(admitted: admitted, succeeded: succeeded + 1)
                    return nil
                }
                trips = 0
                return move(to: .closed, reason: "\(settings.halfOpenProbes) probe(s) succeeded")
            }
        case .open, .isolated:
            return nil
        }
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

    private mutating func trip(now: Duration, reason: String) -> CircuitTransition? {
        var duration = settings.breakDuration
        if trips > 0 && settings.breakDurationMultiplier > 1 {
            let grown = settings.breakDuration.inSeconds * pow(settings.breakDurationMultiplier, trips)
            duration = min(settings.maxBreakDuration, grown.isFinite ? .seconds(grown) : settings.maxBreakDuration)
        }
        trips += 1
        var transition = move(to: .open(until: now + duration), reason: reason)
        transition?.breakDuration = duration
        return transition
    }

    private mutating func move(to newState: State, reason: String) -> CircuitTransition? {
        let from = publicState
        state = newState
        generation &+= 1
        window.reset()
        consecutive = 0
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
