public import ServiceLifecycle
import Synchronization

/// The recent past of each adaptive concurrency limit, for the status page: the limit and the
/// calls in flight, sampled every ``every`` on the injected clock, the latest ``capacity``
/// samples kept per upstream (by default one every 5 seconds for 10 minutes: 120 of 16 bytes).
///
/// It samples at start and then every ``every`` until graceful shutdown; with no source it
/// waits for shutdown (a service that returned early would stop the gateway).
public final class ConcurrencyHistory<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// One reading of a limit.
    public struct Sample: Sendable, Hashable {
        /// The concurrency limit.
        public var limit: Int
        /// Calls holding a slot of it.
        public var inFlight: Int

        /// Creates a sample.
        public init(limit: Int, inFlight: Int) {
            self.limit = limit
            self.inFlight = inFlight
        }
    }

    /// An upstream's limit, read at each sample.
    public struct Source: Sendable {
        /// The upstream's name.
        public var upstream: String
        /// Reads the limit now.
        public var read: @Sendable () -> Sample

        /// Creates a source.
        public init(upstream: String, read: @escaping @Sendable () -> Sample) {
            self.upstream = upstream
            self.read = read
        }
    }

    /// The time between two samples (default 5 seconds).
    public let every: Duration
    /// The samples kept per upstream (default 120); older ones are dropped.
    public let capacity: Int
    /// The upstreams sampled, in the order given.
    public let sources: [Source]
    private let clock: C
    private let samples: Mutex<[String: [Sample]]>

    /// - Parameters:
    ///   - sources: the limits to sample.
    ///   - every: the time between two samples; at least a millisecond.
    ///   - capacity: the samples kept per upstream; at least 1.
    ///   - clock: the clock samples are timed on.
    public init(sources: [Source], every: Duration = .seconds(5), capacity: Int = 120, clock: C) {
        self.sources = sources
        self.every = max(every, .milliseconds(1))
        self.capacity = max(capacity, 1)
        self.clock = clock
        self.samples = Mutex(Dictionary(uniqueKeysWithValues: sources.map { ($0.upstream, []) }))
    }

    /// Reads every source once and appends what it read, dropping the oldest beyond ``capacity``.
    public func sample() {
        let readings = sources.map { ($0.upstream, $0.read()) }
        let capacity = capacity
        samples.withLock { samples in
            for (upstream, reading) in readings {
                samples[upstream, default: []].append(reading)
                let excess = samples[upstream, default: []].count - capacity
                if excess > 0 { samples[upstream]?.removeFirst(excess) }
            }
        }
    }

    /// The samples kept of `upstream`, oldest first; empty for an upstream not sampled.
    public func series(_ upstream: String) -> [Sample] {
        samples.withLock { $0[upstream] ?? [] }
    }

    public func run() async throws {
        guard !sources.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            var next = self.clock.now
            while !Task.isCancelled {
                self.sample()
                next = next.advanced(by: self.every)
                // After a stall, the samples missed are skipped, not taken in a burst.
                let now = self.clock.now
                if next <= now { next = now.advanced(by: self.every) }
                do { try await self.clock.sleep(until: next, tolerance: nil) } catch { return }
            }
        }
    }
}
