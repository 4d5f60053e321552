public import Logging
public import ServiceLifecycle

/// Synthetic probes: keeps each upstream's health known without traffic.
///
/// For every upstream with a `probe` it sends `GET <path>` through the upstream's client (so
/// through its breaker, retries and endpoints: a probe is what a caller's GET would meet) at
/// start and then every `every`, and hands each result to the ``UpstreamHealth``, which
/// alerts when the probe starts failing and when it recovers. Stops on graceful shutdown.
public final class Prober<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// An upstream to probe.
    public struct Target: Sendable {
        /// The upstream's name.
        public var upstream: String
        /// The path probed, with an optional query, e.g. `/health`.
        public var path: String
        /// The time between two probes.
        public var every: Duration

        /// Creates a target.
        public init(upstream: String, path: String, every: Duration) {
            self.upstream = upstream
            self.path = path
            self.every = every
        }
    }

    /// Sends one probe of `target` and says what it found.
    public typealias Probe = @Sendable (_ target: Target) async -> UpstreamHealth<C>.ProbeOutcome

    /// The upstreams probed.
    public let targets: [Target]
    private let clock: C
    private let health: UpstreamHealth<C>
    private let probe: Probe
    private let logger: Logger

    /// - Parameters:
    ///   - targets: what to probe.
    ///   - clock: the clock probes are timed on (the health model's).
    ///   - health: receives each result and the time of the next probe.
    ///   - probe: sends one probe.
    public init(targets: [Target], clock: C, health: UpstreamHealth<C>, logger: Logger, probe: @escaping Probe) {
        self.targets = targets
        self.clock = clock
        self.health = health
        self.probe = probe
        self.logger = logger
    }

    public func run() async throws {
        // A service that returns early would stop the gateway: with nothing to probe, wait.
        guard !targets.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        await withDiscardingTaskGroup { group in
            for target in targets {
                group.addTask { await self.loop(target) }
            }
        }
    }

    /// Probes `target` now and every `every` until cancelled or shut down.
    func loop(_ target: Target) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.probeOnce(target)
                let next = self.clock.now.advanced(by: target.every)
                self.health.probeScheduled(target.upstream, at: next)
                do { try await self.clock.sleep(until: next, tolerance: nil) } catch { return }
            }
        }
    }

    /// Sends one probe of `target` and records what it found.
    func probeOnce(_ target: Target) async {
        let outcome = await probe(target)
        if !outcome.passed {
            logger.notice(
                "probe failed",
                metadata: [
                    "belay.upstream": "\(target.upstream)", "belay.probe.path": "\(target.path)",
                    "belay.probe.result": "\(outcome.detail)",
                ]
            )
        }
        health.probed(target.upstream, outcome)
    }
}
