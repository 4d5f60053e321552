import Synchronization

/// Paces calls with a token bucket: `permitsPerSecond` on average, bursts up to `burst`.
///
/// A call that finds no token waits for the next one if it comes within
/// ``Configuration/maxWait`` (and before the deadline), and is rejected with
/// ``ResilienceError/Code/rateLimited`` and a `retryAfter` otherwise. With
/// ``Configuration/partitioned`` each ``ResilienceContext/partitionKey`` (a consumer, a
/// tenant) has its own bucket.
///
/// ```swift
/// // Outbound pacing: wait up to 2 s rather than exceed the provider's 50 requests/s.
/// let limiter = try RateLimiter(.init(permitsPerSecond: 50, burst: 100, maxWait: .seconds(2)))
/// ```
public final class RateLimiter<C: Clock>: Sendable where C.Duration == Duration {
    /// Options of a rate limiter.
    public struct Configuration: Sendable, Hashable {
        /// The limiter's name in events and errors. Default `rate-limiter`.
        public var name: String
        /// Average permits per second, in ``permitsPerSecondRange`` (one in about 31 years up
        /// to 10^15 a second: a slower rate's wait would not fit in a `Duration`).
        public var permitsPerSecond: Double
        /// Permits that may be taken at once after a quiet spell. At least 1.
        public var burst: Int
        /// The longest a call waits for a permit before it is rejected. Default zero.
        public var maxWait: Duration
        /// One bucket per partition key instead of one for all. Default false.
        public var partitioned: Bool
        /// Partitions kept before idle (full) buckets are forgotten. A soft cap: buckets still
        /// in use are kept even beyond it. Default 10,000.
        public var maxPartitions: Int

        /// Creates a configuration.
        public init(
            permitsPerSecond: Double,
            burst: Int,
            maxWait: Duration = .zero,
            partitioned: Bool = false,
            maxPartitions: Int = 10_000,
            name: String = "rate-limiter"
        ) {
            self.name = name
            self.permitsPerSecond = permitsPerSecond
            self.burst = burst
            self.maxWait = maxWait
            self.partitioned = partitioned
            self.maxPartitions = maxPartitions
        }

        /// The rates a limiter accepts.
        public static var permitsPerSecondRange: ClosedRange<Double> { 1e-9...1e15 }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            // NaN and the infinities are in no range.
            validator.require(
                Self.permitsPerSecondRange.contains(permitsPerSecond),
                "permitsPerSecond",
                "must be between 1e-9 and 1e15 (got \(permitsPerSecond))"
            )
            validator.atLeast(burst, 1, "burst")
            validator.nonNegative(maxWait, "maxWait")
            validator.atLeast(maxPartitions, 1, "maxPartitions")
            try validator.check()
        }
    }

    private struct State: Sendable {
        var shared: TokenBucket
        var partitions: [String: TokenBucket] = [:]
    }

    /// The options in force.
    public let configuration: Configuration
    let clock: C
    private let origin: C.Instant
    private let state: Mutex<State>

    /// Creates a rate limiter on `clock`, validating its options.
    public init(_ configuration: Configuration, clock: C) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.state = Mutex(
            State(shared: TokenBucket(rate: configuration.permitsPerSecond, burst: configuration.burst, now: .zero))
        )
        self.origin = clock.now
    }

    /// Takes a permit for `partition`, reserving a future one if it comes within `maxWait`.
    ///
    /// `.wait(d)` means the caller must wait `d` before it acts; the permit is already its own.
    func decide(partition: String?, maxWait: Duration) -> TokenBucket.Decision {
        let now = origin.duration(to: clock.now)
        let configuration = self.configuration
        return state.withLock { state in
            guard configuration.partitioned, let partition else {
                return state.shared.acquire(now: now, maxWait: maxWait)
            }
            if state.partitions[partition] == nil {
                if state.partitions.count >= configuration.maxPartitions {
                    state.partitions = state.partitions.filter { _, bucket in
                        var bucket = bucket
                        return !bucket.isFull(now: now)
                    }
                }
                state.partitions[partition] = TokenBucket(
                    rate: configuration.permitsPerSecond,
                    burst: configuration.burst,
                    now: now
                )
            }
            return state.partitions[partition]!.acquire(now: now, maxWait: maxWait)
        }
    }

    /// Takes a permit now if one is free; otherwise returns how long until one is.
    ///
    /// Use this for inbound limits that answer `429` with `Retry-After` instead of waiting.
    public func tryAcquire(partition: String? = nil) -> Duration? {
        switch decide(partition: partition, maxWait: .zero) {
        case .granted, .wait: nil
        case .rejected(let retryAfter): retryAfter
        }
    }

    func refund(partition: String?) {
        let now = origin.duration(to: clock.now)
        let partitioned = configuration.partitioned
        state.withLock { state in
            if partitioned, let partition {
                state.partitions[partition]?.refund(now: now)
            } else {
                state.shared.refund(now: now)
            }
        }
    }

    /// Partitions that currently have a bucket.
    public var partitionCount: Int { state.withLock { $0.partitions.count } }
}

extension RateLimiter where C == ContinuousClock {
    /// Creates a rate limiter on the continuous clock.
    public convenience init(_ configuration: Configuration) throws(ConfigurationError) {
        try self.init(configuration, clock: ContinuousClock())
    }
}
