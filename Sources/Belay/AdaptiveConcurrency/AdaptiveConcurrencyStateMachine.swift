/// The sans-IO core of ``AdaptiveConcurrencyLimit``: the limit, the calls in flight, the FIFO
/// queue of waiters, and the algorithm that moves the limit from what finished calls tell it.
///
/// It takes the time as a `Duration` since an origin the limiter chose (so that it is not
/// generic over a clock and its instants) and returns what to do (which waiters get a slot,
/// whether the limit changed); it never sleeps, resumes or emits anything itself.
struct AdaptiveConcurrencyStateMachine<Waiter: Sendable>: Sendable {
    typealias Permit = AdaptiveConcurrencyPermit

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

    /// The gradient's measurement of the round trip without load: calls admitted while it
    /// runs (at most `minimum` in flight) are its samples.
    private struct Probe {
        var sum = 0.0
        var count = 0
    }

    let minimum: Int
    let maximum: Int
    let maxQueue: Int
    let algorithm: AdaptiveConcurrencyAlgorithm

    /// The limit as the algorithm estimates it; ``limit`` is its whole part, except while the
    /// gradient measures the round trip without load.
    private(set) var estimate: Double
    private(set) var inFlight = 0
    /// Calls refused since the limiter was made (queue full or `maxWait` passed).
    private(set) var rejections = 0
    /// A smoothed round trip of successful calls, in seconds; nil before the first.
    private(set) var smoothedRTT: Double?
    private var waiters = FIFOQueue<Waiter>()
    /// Bumped on each decrease: a drop decreases the limit once per round trip.
    private var generation: UInt64 = 0

    // AIMD: successes at the limit since the last increase.
    private var successesAtLimit = 0
    // Gradient: the round trip without load, its measurement, and the current window.
    /// The round trip measured with `minimum` calls in flight, in seconds; nil before the first
    /// measurement ends.
    private(set) var minimumRTT: Double?
    private var probe: Probe?
    /// When the next measurement of the round trip without load starts.
    private var nextProbe = Duration.zero
    /// Bumped when a measurement starts and ends: a call counts in the phase it was admitted in.
    private var phase: UInt64 = 0
    private var windowSum = 0.0
    private var windowCount = 0
    private var windowMaxInFlight = 0

    init(initial: Int, minimum: Int, maximum: Int, maxQueue: Int, algorithm: AdaptiveConcurrencyAlgorithm) {
        self.minimum = minimum
        self.maximum = maximum
        self.maxQueue = maxQueue
        self.algorithm = algorithm
        self.estimate = Double(initial)
        // The gradient needs the round trip without load before it can read any other: it
        // measures it first (as Envoy's adaptive-concurrency filter does).
        if case .gradient = algorithm.kind { probe = Probe() }
    }

    /// The current limit: calls that may be in flight at once (`minimum` while the gradient
    /// measures the round trip without load).
    var limit: Int { probe == nil ? Int(estimate) : minimum }
    var queued: Int { waiters.count }
    /// Whether the gradient is measuring the round trip without load.
    var isMeasuringMinimumRTT: Bool { probe != nil }

    /// Admits a call if it is under the limit and nobody is waiting (FIFO: no overtaking).
    mutating func tryAcquire(now: Duration) -> Permit? {
        guard inFlight < limit, waiters.isEmpty else { return nil }
        return admit(now: now)
    }

    /// Whether a call that found no slot may wait for one at all.
    var mayQueue: Bool { waiters.count < maxQueue }

    /// Admits a call, or queues `waiter`, or refuses (and counts the refusal).
    mutating func acquire(id: UInt64, waiter: Waiter, now: Duration) -> Acquire {
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
    mutating func release(_ permit: Permit, _ signal: ConcurrencySignal, now: Duration) -> Release {
        let before = limit
        switch signal {
        case .success:
            let rtt = (now - permit.start).inSeconds
            smoothedRTT = smoothedRTT.map { $0 * 0.8 + rtt * 0.2 } ?? rtt
            switch algorithm.kind {
            case .aimd(let increase, _): aimdSuccess(permit, increase: increase)
            case .gradient(let parameters): gradientSample(permit, rtt: rtt, now: now, parameters)
            }
        case .dropped:
            // Only a call admitted since the latest decrease decreases it again: one overload
            // seen by every call then in flight is one decrease, not one per call.
            if permit.generation == generation {
                let decreased = Double(Int(estimate * algorithm.backoff))
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
        while !waiters.isEmpty, inFlight < limit, let waiter = waiters.popFirst() {
            release.handoffs.append((waiter, admit(now: now)))
        }
        return release
    }

    private mutating func admit(now: Duration) -> Permit {
        inFlight += 1
        return Permit(start: now, generation: generation, phase: phase, inFlight: inFlight)
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

    /// The gradient over the minimum round trip (Envoy's adaptive-concurrency filter, Netflix's
    /// Gradient2 formula): the round trip without load is measured with `minimum` calls in
    /// flight, first and then every `minimumRTTInterval`; between measurements, once per window
    /// of samples, the window's mean round trip is compared with it, and the limit follows
    /// `tolerance × minimum ÷ mean` (clamped to [0.5, 2]), plus a queue allowance, smoothed.
    private mutating func gradientSample(
        _ permit: Permit,
        rtt: Double,
        now: Duration,
        _ parameters: AdaptiveConcurrencyAlgorithm.GradientParameters
    ) {
        // A call admitted in another phase measured another load: it tells nothing here.
        guard permit.phase == phase else { return }
        if var measuring = probe {
            measuring.sum += rtt
            measuring.count += 1
            guard measuring.count >= parameters.minimumRTTSamples else {
                probe = measuring
                return
            }
            minimumRTT = max(measuring.sum / Double(measuring.count), 1e-9)
            probe = nil
            phase &+= 1
            nextProbe = now + parameters.minimumRTTInterval
            resetWindow()
            return
        }
        if now >= nextProbe {
            probe = Probe()
            phase &+= 1
            resetWindow()
            return
        }
        windowSum += rtt
        windowCount += 1
        windowMaxInFlight = max(windowMaxInFlight, permit.inFlight)
        guard windowCount >= parameters.sampleWindow, let minimumRTT else { return }
        let short = max(windowSum / Double(windowCount), 1e-9)
        let peak = windowMaxInFlight
        resetWindow()
        // Callers that do not use half the limit tell nothing about it.
        guard Double(peak) >= estimate / 2 else { return }
        let gradient = min(max(parameters.tolerance * minimumRTT / short, 0.5), 2)
        let allowance = parameters.queueAllowance ?? estimate.squareRoot() / 2
        let target = estimate * gradient + allowance
        estimate = clamp(estimate * (1 - parameters.smoothing) + target * parameters.smoothing)
    }
}

/// A slot held by one call: when it was admitted and what the limiter looked like then.
struct AdaptiveConcurrencyPermit: Sendable {
    /// When the call was admitted, since the limiter's origin: its round trip counts from here.
    var start: Duration
    /// The decrease count when it was admitted: a drop signal from a call admitted before
    /// the latest decrease does not decrease the limit again (one decrease per round trip,
    /// as TCP's congestion window).
    var generation: UInt64
    /// The gradient's phase when it was admitted (measuring the round trip without load, or
    /// not): its round trip counts only in that phase.
    var phase: UInt64
    /// Calls in flight when it was admitted, itself included.
    var inFlight: Int
}
