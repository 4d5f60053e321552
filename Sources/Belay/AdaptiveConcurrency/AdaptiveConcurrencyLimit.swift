import Synchronization

/// A concurrency limit that learns the dependency's capacity from what its calls do, and keeps
/// callers just under it (Netflix's concurrency-limits, Envoy's adaptive-concurrency filter).
///
/// The limit starts at `initial` (the gradient first measures the round trip without load,
/// with the limit held at `minimum`) and moves between `minimum` and `maximum` by its
/// ``AdaptiveConcurrencyAlgorithm``: ``AdaptiveConcurrencyAlgorithm/aimd(increase:backoff:)``
/// or ``AdaptiveConcurrencyAlgorithm/gradient(tolerance:smoothing:queueAllowance:sampleWindow:minimumRTTInterval:minimumRTTSamples:backoff:)``.
/// Each finished call brings a ``ConcurrencySignal``: a success (with its round trip on the
/// limiter's clock), a drop (a timeout, a 429 or 503, a reset: the limit decreases) or nothing
/// (the caller's own doing). A call that finds the limit reached waits in FIFO order for up to
/// `maxWait` (or until a deadline nothing enforces by cancellation passes, or it is
/// cancelled, when it leaves the queue) and is then rejected with
/// ``ResilienceError/Code/concurrencyLimited``; so is one that finds `maxQueue` calls waiting.
///
/// A limiter is a **shared object**: ``AdaptiveConcurrencyStrategy`` applies it to a pipeline,
/// and several pipelines may share one.
///
/// ```swift
/// let limit = try AdaptiveConcurrencyLimit(
///     .init(algorithm: .gradient(), initial: 20, minimum: 2, maximum: 200, maxWait: .seconds(1))
/// )
/// let pipeline = try ResiliencePipeline<Data>.Builder()
///     .timeout(.seconds(10))
///     .adaptiveConcurrencyLimit(limit)
///     .build()
/// ```
public final class AdaptiveConcurrencyLimit<C: Clock>: Sendable where C.Duration == Duration {
    /// Options of an adaptive concurrency limit.
    public struct Configuration: Sendable, Hashable {
        /// The limiter's name in events and errors. Default `concurrency-limit`.
        public var name: String
        /// How the limit moves. Default ``AdaptiveConcurrencyAlgorithm/gradient(tolerance:smoothing:queueAllowance:sampleWindow:minimumRTTInterval:minimumRTTSamples:backoff:)``.
        public var algorithm: AdaptiveConcurrencyAlgorithm
        /// The limit to start from. Between `minimum` and `maximum`; default 20.
        public var initial: Int
        /// The lowest the limit goes. At least 1; default 2.
        public var minimum: Int
        /// The highest the limit goes. At least `minimum`; default 200.
        public var maximum: Int
        /// Calls that may wait for a slot. At least 0; default 50.
        public var maxQueue: Int
        /// How long a call waits for a slot before it is rejected. Not negative; default 1 s
        /// (zero: reject at once).
        public var maxWait: Duration

        /// Creates a configuration.
        public init(
            algorithm: AdaptiveConcurrencyAlgorithm = .gradient(),
            initial: Int = 20,
            minimum: Int = 2,
            maximum: Int = 200,
            maxQueue: Int = 50,
            maxWait: Duration = .seconds(1),
            name: String = "concurrency-limit"
        ) {
            self.name = name
            self.algorithm = algorithm
            self.initial = initial
            self.minimum = minimum
            self.maximum = maximum
            self.maxQueue = maxQueue
            self.maxWait = maxWait
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.atLeast(minimum, 1, "minimum")
            validator.require(
                maximum >= minimum,
                "maximum",
                "must be at least minimum (\(minimum)) (got \(maximum))"
            )
            validator.require(
                initial >= minimum && initial <= maximum,
                "initial",
                "must be between minimum and maximum (\(minimum)...\(maximum)) (got \(initial))"
            )
            validator.atLeast(maxQueue, 0, "maxQueue")
            validator.nonNegative(maxWait, "maxWait")
            algorithm.validate(&validator)
            try validator.check()
        }
    }

    /// A slot one call holds, from ``tryAcquire()`` or ``acquire(context:sleep:)`` until
    /// ``release(_:_:context:)``.
    typealias Permit = AdaptiveConcurrencyPermit
    typealias Waiter = CheckedContinuation<Permit, any Error>

    /// The options in force.
    public let configuration: Configuration
    /// The clock round trips and waits are measured on.
    public let clock: C
    /// The instant the state machine's time counts from.
    private let origin: C.Instant
    private let machine: Mutex<AdaptiveConcurrencyStateMachine<Waiter>>
    private let nextWaiterID = Atomic<UInt64>(0)

    /// Creates a limiter on `clock`, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.origin = clock.now
        self.machine = Mutex(
            AdaptiveConcurrencyStateMachine(
                initial: configuration.initial,
                minimum: configuration.minimum,
                maximum: configuration.maximum,
                maxQueue: configuration.maxQueue,
                algorithm: configuration.algorithm
            )
        )
    }

    /// The current limit: calls that may be in flight at once.
    public var limit: Int { machine.withLock { $0.limit } }
    /// Calls in flight now.
    public var inFlight: Int { machine.withLock { $0.inFlight } }
    /// Calls waiting for a slot now.
    public var queued: Int { machine.withLock { $0.queued } }
    /// Calls rejected with ``ResilienceError/Code/concurrencyLimited`` since the limiter was made.
    public var rejections: Int { machine.withLock { $0.rejections } }

    /// The limit, calls in flight and waiting, and rejections so far, read at one moment.
    public var snapshot: (limit: Int, inFlight: Int, queued: Int, rejections: Int) {
        machine.withLock { ($0.limit, $0.inFlight, $0.queued, $0.rejections) }
    }

    /// A smoothed round trip of recent successful calls; nil before the first.
    public var roundTripTime: Duration? {
        machine.withLock { $0.smoothedRTT }.map { Duration.seconds($0) }
    }

    /// The time since the origin: the state machine's `now`.
    private var now: Duration {
        @_specialize(where C == ContinuousClock)
        get { origin.duration(to: clock.now) }
    }

    /// The gradient's round trip without load (measured with the limit at `minimum`); nil
    /// before its first measurement ends, and always for AIMD.
    public var minimumRoundTripTime: Duration? {
        machine.withLock { $0.minimumRTT }.map { Duration.seconds($0) }
    }

    /// Takes a slot if the limit allows and nobody waits, without waiting.
    // The success path runs as unspecialised generic code from a pipeline's strategies; the
    // common clock gets a specialised body (clock reads without metadata lookups).
    @_specialize(where C == ContinuousClock)
    func tryAcquire() -> Permit? {
        let now = self.now
        return machine.withLock { $0.tryAcquire(now: now) }
    }

    private enum Start {
        case acquired(Permit)
        case refused
        case wait
    }

    private enum QueuedWait: Sendable {
        case acquired(Permit)
        case failed(any Error)
        case waitEnded
        case timerCancelled
    }

    /// Takes a slot, waiting in the FIFO queue until one frees, `maxWait` passes, `deadline`
    /// (one nothing enforces by cancellation) passes, or the task is cancelled. Throws
    /// ``ResilienceError`` (`concurrency-limited`) or `CancellationError`.
    func acquire(context: ResilienceContext) async throws -> Permit {
        let instant = clock.now
        let now = origin.duration(to: instant)
        let maxWait = configuration.maxWait
        let start: Start = machine.withLock { machine in
            if let permit = machine.tryAcquire(now: now) { return .acquired(permit) }
            guard machine.mayQueue, maxWait > .zero else {
                machine.reject()
                return .refused
            }
            return .wait
        }
        switch start {
        case .acquired(let permit): return permit
        case .refused: throw rejection(context: context, queueFull: true)
        case .wait: break
        }
        var until = instant.advanced(by: configuration.maxWait)
        if let deadline = context.deadline, !deadline.isEnforced {
            until = min(until, deadline.instant(on: clock))
        }
        let waitUntil = until
        let clock = self.clock
        let id = nextWaiterID.wrappingAdd(1, ordering: .relaxed).newValue
        let outcome = await withTaskGroup(of: QueuedWait.self, returning: Result<Permit, any Error>.self) { group in
            group.addTask {
                do {
                    return .acquired(try await self.wait(id: id, context: context))
                } catch {
                    return .failed(error)
                }
            }
            group.addTask {
                do {
                    try await clock.sleep(until: waitUntil, tolerance: nil)
                    return .waitEnded
                } catch {
                    return .timerCancelled
                }
            }
            var waitEnded = false
            while let event = await group.next() {
                switch event {
                case .acquired(let permit):
                    group.cancelAll()
                    guard !waitEnded else {
                        // The slot came as the wait ended: too late, hand it on.
                        release(permit, .ignored, context: context)
                        machine.withLock { $0.reject() }
                        return .failure(rejection(context: context, queueFull: false))
                    }
                    return .success(permit)
                case .failed(let error):
                    group.cancelAll()
                    if waitEnded, error is CancellationError {
                        // Cancelled by the end of its wait, not by its caller: a rejection.
                        machine.withLock { $0.reject() }
                        return .failure(rejection(context: context, queueFull: false))
                    }
                    return .failure(error)
                case .waitEnded:
                    // Cancelling the waiter takes it out of the queue (or keeps it from joining
                    // it); how it ended comes next.
                    waitEnded = true
                    group.cancelAll()
                case .timerCancelled:
                    // This task was cancelled: the waiter reports how it ended.
                    continue
                }
            }
            return .failure(CancellationError())
        }
        return try outcome.get()
    }

    /// Queues the current task until a slot is handed to it; leaves the queue when cancelled.
    private func wait(id: UInt64, context: ResilienceContext) async throws -> Permit {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let now = self.now
                let decision: AdaptiveConcurrencyStateMachine<Waiter>.Acquire? = machine.withLock {
                    machine in
                    if Task.isCancelled { return nil }
                    return machine.acquire(id: id, waiter: continuation, now: now)
                }
                switch decision {
                case .acquired(let permit):
                    continuation.resume(returning: permit)
                case .enqueued:
                    break
                case .rejected:
                    continuation.resume(throwing: rejection(context: context, queueFull: true))
                case nil:
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let waiter = machine.withLock { $0.cancel(id: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Gives the slot back with what the call's outcome says, moving the limit; queued calls
    /// get the slots the (new) limit allows. Emits the limit's change, if any.
    @_specialize(where C == ContinuousClock)
    func release(_ permit: Permit, _ signal: ConcurrencySignal, context: ResilienceContext) {
        let now = self.now
        let release = machine.withLock { $0.release(permit, signal, now: now) }
        for handoff in release.handoffs {
            handoff.waiter.resume(returning: handoff.permit)
        }
        if let change = release.change {
            context.emit(
                .concurrencyLimitChanged(from: change.from, to: change.to),
                strategy: configuration.name
            )
        }
    }

    private func rejection(context: ResilienceContext, queueFull: Bool) -> ResilienceError {
        let (limit, smoothed) = machine.withLock { ($0.limit, $0.smoothedRTT) }
        // A slot is expected to free within about one round trip.
        let retryAfter = smoothed.map { Duration.seconds($0) } ?? .seconds(1)
        context.emit(.rejected(.concurrencyLimited, retryAfter: retryAfter), strategy: configuration.name)
        let reason =
            queueFull
            ? (configuration.maxWait == .zero || configuration.maxQueue == 0
                ? "and calls may not wait" : "and \(configuration.maxQueue) calls are already waiting")
            : "and no slot freed within \(configuration.maxWait.formattedForHumans) or the deadline"
        return ResilienceError(
            code: .concurrencyLimited,
            strategy: configuration.name,
            message: "the concurrency limit of \(limit) is reached \(reason)",
            retryAfter: retryAfter
        )
    }
}

extension AdaptiveConcurrencyLimit where C == ContinuousClock {
    /// Creates a limiter on the continuous clock.
    public convenience init(_ configuration: Configuration) throws(ConfigurationError) {
        try self.init(configuration, clock: ContinuousClock())
    }
}
