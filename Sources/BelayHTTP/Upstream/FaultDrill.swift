public import Belay
import Synchronization

/// A failure drill: a fault injected into a share of one upstream's attempts, to rehearse
/// how callers are served while it fails (the breaker opening, retries, failover, stale
/// answers, alerts).
///
/// Injected at the attempt, where the upstream's own failures happen, so that everything
/// above it reacts as it would to a real one: an injected 503 is retried and counted by the
/// breaker, a reset is classified `reset`, an outage fails to connect, and each attempt is in
/// the audit trail with the decision `[drill <id>] attempt N: injected … fault`.
public struct FaultDrill: Sendable, Hashable {
    /// What is injected.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The attempt is answered `status` by the endpoint, without calling it.
        case error
        /// The attempt waits `latency` (within its deadline), then calls the endpoint.
        case latency
        /// The attempt fails as a connection reset after the request was sent.
        case reset
        /// The attempt fails to connect, as if the endpoint were down.
        case outage
    }

    /// The drill's id (`drl_…`), named in every decision it causes.
    public var id: String
    /// What is injected.
    public var kind: Kind
    /// The share of attempts that get the fault, above 0 and at most 1.
    public var ratio: Double
    /// The status an `error` attempt is answered with.
    public var status: Int
    /// The time a `latency` attempt waits first; with another kind, a wait added to every
    /// attempt before its fault is drawn (errors on 20% of attempts, all of them 500 ms slow).
    public var latency: Duration

    /// Creates a drill.
    public init(id: String, kind: Kind, ratio: Double = 1, status: Int = 503, latency: Duration = .zero) {
        self.id = id
        self.kind = kind
        self.ratio = ratio
        self.status = status
        self.latency = latency
    }

}

extension FaultDrill {
    /// What a drill does to one attempt that is not failed outright.
    public enum Effect: Sendable, Hashable {
        /// Call the endpoint (after any injected latency).
        case proceed
        /// Answer with this status instead of calling the endpoint.
        case answer(status: Int)
    }

    /// The connection failures a drill injects, before the client names the endpoint.
    public enum Failure: Error, Sendable, Hashable {
        /// A connection reset after the request was sent.
        case reset
        /// A refused connection.
        case refused
    }

    /// The library's ``FaultInjection`` configurations for this drill, outermost first: the
    /// added latency of a drill of another kind (on every attempt), then its fault at its
    /// ratio; each named `drill <id>` in the events it emits.
    func injections(random: @escaping @Sendable () -> Double) -> [FaultInjection<Effect, ContinuousClock>.Configuration]
    {
        let name = "drill \(id)"
        let fault: FaultInjection<Effect, ContinuousClock>.Fault =
            switch kind {
            case .error: .outcome { [status] in .answer(status: status) }
            case .latency: .latency(latency)
            case .reset: .error { Failure.reset }
            case .outage: .error { Failure.refused }
            }
        let slow: [FaultInjection<Effect, ContinuousClock>.Configuration] =
            kind != .latency && latency > .zero
            ? [.init(enabled: true, rate: 1, fault: .latency(latency), random: random, name: name)] : []
        return slow + [.init(enabled: true, rate: ratio, fault: fault, random: random, name: name)]
    }
}

/// The drill in force on one upstream, if any, shared by every client of that upstream (a
/// config reload's new client too).
///
/// A drill is run by the library's own ``FaultInjection`` strategy, in a pipeline made when
/// the drill starts (the added latency, if any, then the fault at its ratio); each attempt
/// asks it whether to proceed, answer, or fail. With no drill in force an attempt costs one
/// lock.
public final class FaultDrillSwitch: Sendable {
    private struct Armed: Sendable {
        var drill: FaultDrill
        var pipeline: ResiliencePipeline<FaultDrill.Effect>
    }

    private let current = Mutex<Armed?>(nil)
    private let random: @Sendable () -> Double
    private let clock: ContinuousClock

    /// - Parameter random: a uniform number in `0..<1`, drawn per attempt.
    public init(random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.random = random
        self.clock = ContinuousClock()
    }

    /// The drill in force.
    public var drill: FaultDrill? { current.withLock { $0?.drill } }

    /// Puts `drill` in force (in place of any other); throws if the library refuses its
    /// options (a ratio outside `0...1`, a negative latency).
    public func start(_ drill: FaultDrill) throws(ConfigurationError) {
        let pipeline = try drill.injections(random: random)
            .reduce(ResiliencePipeline<FaultDrill.Effect>.Builder(clock: clock)) { $0.faultInjection($1) }
            .build()
        current.withLock { $0 = Armed(drill: drill, pipeline: pipeline) }
    }

    /// Ends the drill `id`, if it is the one in force; says whether it was.
    @discardableResult
    public func stop(_ id: String) -> Bool {
        current.withLock { current in
            guard current?.drill.id == id else { return false }
            current = nil
            return true
        }
    }

    /// What the drill in force does to one attempt, nil with none in force: its events go to
    /// `context`'s sink, so the attempt's audit trail names the drill.
    public func apply(
        _ context: ResilienceContext
    ) async -> (drill: FaultDrill, effect: Result<FaultDrill.Effect, any Error>)? {
        guard let armed = current.withLock({ $0 }) else { return nil }
        let effect = await armed.pipeline.executeOutcome(context: context) { _ in .proceed }
        return (armed.drill, effect)
    }
}
