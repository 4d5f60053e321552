/// The sans-IO core of ``AdaptiveConcurrencyLimit``: the limit, the calls in flight, the FIFO
/// queue of waiters, and the algorithm that moves the limit from what finished calls tell it.
///
/// It takes instants and returns what to do (which waiters get a slot, whether the limit
/// changed); it never sleeps, resumes or emits anything itself.
struct AdaptiveConcurrencyStateMachine<Instant: InstantProtocol, Waiter: Sendable>: Sendable
where Instant.Duration == Duration {
    typealias Permit = AdaptiveConcurrencyPermit<Instant>

    enum Acquire {
        case acquired(Permit)
        case enqueued
        case rejected
    }

    /// What a finished call changes: waiters that now get a slot (in FIFO order), and the
    /// limit's change, if it moved.
    struct Release {
        var handoffs: [(waiter: Waiter, permit: Permit)] = []
        var change: (from: Int, to: Int)?
    }

    let minimum: Int
    let maximum: Int
    let maxQueue: Int
    let algorithm: AdaptiveConcurrencyAlgorithm

    /// The limit as the algorithm estimates it; ``limit`` is its whole part.
    private(set) var estimate: Double
    private(set) var inFlight = 0
    /// Calls refused since the limiter was made (queue full or `maxWait` passed).
    private(set) var rejections = 0
    /// A smoothed round trip of successful calls, in seconds; nil before the first.
    private(set) var smoothedRTT: Double?
    private var waiters = FIFOQueue<Waiter>()
    private var generation: UInt64 = 0

    // AIMD: successes at the limit since the last increase.
    private var successesAtLimit = 0
    // Gradient: the long-term round trip and the current window of samples.
    private var longRTT: Double?
    private var longSamples = 0
    private var windowSum = 0.0
    private var windowCount = 0
    private var windowMaxInFlight = 0

    init(initial: Int, minimum: Int, maximum: Int, maxQueue: Int, algorithm: AdaptiveConcurrencyAlgorithm) {
        self.minimum = minimum
        self.maximum = maximum
        self.maxQueue = maxQueue
        self.algorithm = algorithm
        self.estimate = Double(initial)
    }

    /// The current limit: calls that may be in flight at once.
    var limit: Int { Int(estimate) }
    var queued: Int { waiters.count }

    /// Admits a call if it is under the limit and nobody is waiting (FIFO: no overtaking).
    mutating func tryAcquire(now: Instant) -> Permit? {
        guard inFlight < limit, waiters.isEmpty else { return nil }
        return admit(now: now)
    }

    /// Whether a call that found no slot may wait for one at all.
    var mayQueue: Bool { waiters.count < maxQueue }

    /// Admits a call, or queues `waiter`, or refuses (and counts the refusal).
    mutating func acquire(id: UInt64, waiter: Waiter, now: Instant) -> Acquire {
        if let permit = tryAcquire(now: now) { return .acquired(permit) }
        guard mayQueue else {
            rejections += 1
            return .rejected
        }
        waiters.append(id: id, waiter)
        return .enqueued
    }

    /// Counts a call refused without a slot (not queued, or its wait ended).
    mutating func reject() {
        rejections += 1
    }

    /// Removes a waiter that was cancelled; nil if it already got a slot.
    mutating func cancel(id: UInt64) -> Waiter? {
        waiters.remove(id: id)
    }

    /// A call finished with `signal`: the limit moves, the slot is freed, and queued calls get
    /// slots while there is room under the (new) limit.
    mutating func release(_ permit: Permit, _ signal: ConcurrencySignal, now: Instant) -> Release {
        let before = limit
        let rtt = permit.start.duration(to: now).inSeconds
        switch signal {
        case .success:
            smoothedRTT = smoothedRTT.map { $0 * 0.8 + rtt * 0.2 } ?? rtt
            switch algorithm.kind {
            case .aimd(let increase, _): aimdSuccess(permit, increase: increase)
            case .gradient(let parameters): gradientSample(permit, rtt: rtt, parameters)
            }
        case .dropped:
            // Only a call admitted since the latest decrease decreases it again: one overload
            // seen by every call then in flight is one decrease, not one per call.
            if permit.generation == generation {
                let backoff = algorithm.backoff
                let decreased = Double(Int(estimate * backoff))
                estimate = clamp(min(decreased, estimate - 1))
                generation &+= 1
                successesAtLimit = 0
                resetWindow()
            }
        case .ignored:
            break
        }
        inFlight -= 1
        var release = Release()
        if limit != before { release.change = (before, limit) }
        while inFlight < limit, let waiter = waiters.popFirst() {
            release.handoffs.append((waiter, admit(now: now)))
        }
        return release
    }

    private mutating func admit(now: Instant) -> Permit {
        inFlight += 1
        return Permit(start: now, generation: generation, inFlight: inFlight)
    }

    private func clamp(_ value: Double) -> Double {
        min(max(value, Double(minimum)), Double(maximum))
    }

    /// Additive increase: `increase` more after as many successes as the limit, counting only
    /// calls admitted while at least half the limit was in use (Netflix's test: a limit the
    /// callers do not use is not raised).
    private mutating func aimdSuccess(_ permit: Permit, increase: Int) {
        guard permit.inFlight * 2 >= limit else { return }
        successesAtLimit += 1
        if successesAtLimit >= limit {
            successesAtLimit = 0
            estimate = clamp(Double(limit + increase))
        }
    }

    private mutating func resetWindow() {
        windowSum = 0
        windowCount = 0
        windowMaxInFlight = 0
    }

    /// Gradient2 (Netflix concurrency-limits): once per window of samples, the short-term
    /// round trip (the window's mean) is compared with the long-term one (an exponential
    /// average, warmed up as a plain mean); their ratio, times the tolerance, and clamped to
    /// [0.5, 1], scales the limit, plus a queue allowance, smoothed.
    private mutating func gradientSample(
        _ permit: Permit,
        rtt: Double,
        _ parameters: AdaptiveConcurrencyAlgorithm.GradientParameters
    ) {
        windowSum += rtt
        windowCount += 1
        windowMaxInFlight = max(windowMaxInFlight, permit.inFlight)
        guard windowCount >= parameters.sampleWindow else { return }
        let short = max(windowSum / Double(windowCount), 1e-9)
        let peak = windowMaxInFlight
        resetWindow()
        longSamples += 1
        var long = longRTT ?? short
        if longSamples <= 10 {
            long += (short - long) / Double(longSamples)
        } else {
            let factor = 2 / (Double(parameters.longWindow) + 1)
            long = long * (1 - factor) + short * factor
        }
        // Latency came back down after a long overload: let the long-term figure follow
        // faster than its average would.
        if long / short > 2 { long *= 0.95 }
        longRTT = long
        // Callers that do not use half the limit tell nothing about it.
        guard Double(peak) >= estimate / 2 else { return }
        let gradient = min(max(parameters.tolerance * long / short, 0.5), 1)
        let allowance = parameters.queueAllowance ?? estimate.squareRoot()
        let target = estimate * gradient + allowance
        estimate = clamp(estimate * (1 - parameters.smoothing) + target * parameters.smoothing)
    }

    /// The long-term round trip the gradient compares with, in seconds; nil before a window.
    var longTermRTT: Double? { longRTT }
}

/// A slot held by one call: when it was admitted and what the limiter looked like then.
struct AdaptiveConcurrencyPermit<Instant: InstantProtocol>: Sendable {
    /// When the call was admitted: its round trip counts from here.
    var start: Instant
    /// The decrease count when it was admitted: a drop signal from a call admitted before
    /// the latest decrease does not decrease the limit again (one decrease per round trip,
    /// as TCP's congestion window).
    var generation: UInt64
    /// Calls in flight when it was admitted, itself included.
    var inFlight: Int
}
