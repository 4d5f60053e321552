import Belay
import BelayHTTP
public import BelayStore
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Opens, extends and closes incidents per upstream, and stores them.
///
/// It hears three things, each with one lock and a few integers:
/// - every proxied call (a ``ProxyObserver``): the first failure of a run of failures, then the
///   impact (calls failed, served stale) — counted from that first failure, so the calls that
///   failed before anyone noticed are part of it;
/// - every alert (``heard(_:)``): the timeline's breaker, endpoint, probe, SLO and drill
///   entries; a fast burn of the error budget opens an incident by itself;
/// - every recorded delivery attempt (``deliveryRecorded(upstream:id:status:attempted:at:)``): deliveries
///   delayed, and how long the longest waited.
///
/// ``evaluate()`` (every ``Configuration/interval``, and at once after an alert) reads each
/// upstream's health and decides: an upstream that turned `down`, `degraded` or `stale`, or
/// burns its budget fast, gets an incident (or joins the one another instance sharing the store
/// opened); one healthy again is noted recovered, and closed once healthy for
/// ``Configuration/closeAfter``; one that relapses before that stays in the same incident. What
/// was counted since the last evaluation is written then, as one change.
///
/// ```swift
/// let tracker = IncidentTracker(store: store, wall: wall, logger: logger)
/// tracker.attach(upstreams: { names }, health: { report($0) }, drill: { drills.current($0) != nil })
/// alerter.tap { tracker.heard($0) }
/// ```
public final class IncidentTracker<C: Clock>: ProxyObserver, Service, Sendable where C.Duration == Duration {
    /// How the tracker judges.
    public struct Configuration: Sendable, Hashable {
        /// How long an upstream must stay healthy before its incident closes. Default 5 minutes.
        public var closeAfter: Duration = .seconds(300)
        /// How often health is read. Default 5 seconds (alerts wake it sooner).
        public var interval: Duration = .seconds(5)
        /// A run of failures ends after this long without one: its first failure is forgotten.
        /// Default 60 seconds, the health model's window.
        public var failureRun: Duration = .seconds(60)
        /// Timeline entries one instance adds to one incident, at most (the rest are counted
        /// in a last entry). Default 200.
        public var timelineLimit = 200

        /// Creates the default configuration.
        public init() {}
    }

    /// The configuration in force.
    public let configuration: Configuration
    private let store: any IncidentStore
    private let wall: WallClock<C>
    private let logger: Logger
    private let newID: @Sendable () -> String
    private let sources = Mutex<Sources?>(nil)
    private let tracks = Mutex<[String: Track]>([:])
    private let doorbell = Doorbell()

    /// What an evaluation reads (``attach(upstreams:health:drill:)``).
    private struct Sources: Sendable {
        var upstreams: @Sendable () -> [String]
        var health: @Sendable (String) -> UpstreamHealthReport?
        var drill: @Sendable (String) -> Bool
    }

    /// - Parameters:
    ///   - store: where incidents are kept (shared by every instance on PostgreSQL).
    ///   - wall: calendar time for the records, and the clock slept on between evaluations.
    ///   - newID: a new incident id (time-ordered by default).
    public init(
        store: any IncidentStore,
        configuration: Configuration = .init(),
        wall: WallClock<C>,
        logger: Logger,
        newID: (@Sendable () -> String)? = nil
    ) {
        self.configuration = configuration
        self.store = store
        self.wall = wall
        self.logger = logger
        self.newID =
            newID ?? {
                let milliseconds = UInt64(max(wall.now().timeIntervalSince1970, 0) * 1_000)
                return "inc_" + RandomID.timeOrderedUUIDString(unixMilliseconds: milliseconds).lowercased()
            }
    }

    /// Gives the tracker what it judges (the gateway is made after its observers, so this comes
    /// after): the upstreams (read at each evaluation: a reload changes them), an upstream's
    /// health now, and whether a failure drill runs on it now. Evaluations before it do nothing.
    public func attach(
        upstreams: @escaping @Sendable () -> [String],
        health: @escaping @Sendable (String) -> UpstreamHealthReport?,
        drill: @escaping @Sendable (String) -> Bool = { _ in false }
    ) {
        sources.withLock { $0 = Sources(upstreams: upstreams, health: health, drill: drill) }
    }

    // MARK: Inputs

    public func observe(_ exchange: ProxyExchange) {
        // The same calls the health model counts: a caller's own mistakes say nothing.
        guard
            !exchange.attempts.isEmpty || exchange.staleAge != nil || exchange.fallback || exchange.queuedByFailure
                || exchange.status >= 500
        else { return }
        guard exchange.fault != .caller else { return }
        let failed = exchange.status >= 500 && exchange.staleAge == nil && !exchange.fallback
        let stale = exchange.staleAge != nil
        let retried = exchange.attempts.contains { $0.failure != nil || ($0.status ?? 0) >= 500 }
        let troubled = failed || stale || exchange.fallback || exchange.queuedByFailure || retried
        let at = exchange.receivedAt
        tracks.withLock { tracks in
            var track = tracks[exchange.upstream] ?? Track()
            defer { tracks[exchange.upstream] = track }
            if troubled { track.trouble(at: at, detail: Self.describe(exchange), run: configuration.failureRun) }
            // Counted while an incident is open, or a run of failures may become one.
            guard track.open != nil || track.firstTrouble != nil else { return }
            if failed { track.impact.failed += 1 }
            let limit = configuration.timelineLimit
            if stale {
                track.impact.stale += 1
                let age = exchange.staleAge.map { " (\(HealthWords.span($0)) old)" } ?? ""
                track.noteFirst(
                    "first_stale",
                    at: at,
                    detail: "first answer served from the stale cache\(age)",
                    limit: limit
                )
            }
            if let delivery = exchange.queued, !exchange.replayed {
                track.impact.queued += 1
                track.noteFirst(
                    "first_queued",
                    at: at,
                    detail: "first write queued for later delivery (\(exchange.method), delivery \(delivery))",
                    limit: limit
                )
            }
            if exchange.fallback {
                track.impact.fallback += 1
                track.noteFirst(
                    "first_fallback",
                    at: at,
                    detail: "first call answered with the upstream's fallback (nothing stale was cached)",
                    limit: limit
                )
            }
        }
    }

    /// Hears an alert: an entry on the timeline of its upstream's incident (or of the one its
    /// run of failures may become); a fast burn opens one. Wakes the evaluation.
    public func heard(_ alert: Alert) {
        guard let upstream = alert.upstream, Self.timelineKinds.contains(alert.kind) else { return }
        tracks.withLock { tracks in
            var track = tracks[upstream] ?? Track()
            defer { tracks[upstream] = track }
            if alert.kind == .sloFastBurn {
                track.fastBurnSince = track.fastBurnSince ?? alert.at
                track.fastBurnCause = alert.summary
            } else if alert.resolvedKind == .sloFastBurn {
                track.fastBurnSince = nil
            }
            if alert.level >= .warning, alert.resolvedKind == nil, let since = alert.since {
                track.earliestSign = min(track.earliestSign ?? since, since)
            }
            track.note(
                IncidentEvent(at: alert.at, event: alert.kind.rawValue, detail: alert.summary),
                limit: configuration.timelineLimit
            )
        }
        doorbell.ring()
    }

    /// Hears a recorded attempt of delivery `id` to `upstream`: a failed one while an incident
    /// is open (or may open) delays it; a delivered one ends its delay.
    public func deliveryRecorded(upstream: String, id: String, status: DeliveryStatus, attempted: Bool, at: Date) {
        guard attempted else { return }
        let failed = status == .pending || status == .dead
        tracks.withLock { tracks in
            guard var track = tracks[upstream] else { return }
            defer { tracks[upstream] = track }
            if failed {
                guard track.open != nil || track.firstTrouble != nil, track.delayed[id] == nil else { return }
                track.impact.deliveriesDelayed += 1
                if track.delayed.count < Self.delayedLimit { track.delayed[id] = at }
            } else if let since = track.delayed.removeValue(forKey: id) {
                track.impact.longestDelayMilliseconds = max(
                    track.impact.longestDelayMilliseconds,
                    Int64(max(at.timeIntervalSince(since), 0) * 1_000)
                )
            }
        }
    }

    // MARK: Judging

    public func run() async throws {
        let clock = wall.clock
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.evaluate()
                await self.doorbell.wait(until: clock.now.advanced(by: self.configuration.interval), clock: clock)
            }
        }
        // What was counted since the last evaluation is written before the store closes.
        await evaluate()
    }

    /// Reads every upstream's health once, opens, notes recovered, closes, and writes what was
    /// counted. A store failure is logged; what it did not write is kept for the next time.
    /// One caller at a time: ``run()``'s loop, or a test.
    public func evaluate() async {
        guard let sources = sources.withLock({ $0 }) else { return }
        // An upstream a reload removed keeps being judged until its incident closes.
        let configured = sources.upstreams()
        let known = Set(configured)
        let removed = tracks.withLock { tracks in
            tracks.filter { $0.value.open != nil && !known.contains($0.key) }.keys.sorted()
        }
        for upstream in configured + removed {
            await evaluate(upstream, sources)
        }
    }

    private func evaluate(_ upstream: String, _ sources: Sources) async {
        let now = wall.now()
        let report = sources.health(upstream)
        let unhealthy = report.map { $0.state != .healthy } ?? false
        let step = tracks.withLock { tracks -> Step in
            var track = tracks[upstream] ?? Track()
            defer { tracks[upstream] = track }
            return track.step(
                upstream: upstream,
                report: report,
                unhealthy: unhealthy,
                now: now,
                configuration: configuration
            )
        }
        switch step {
        case .nothing:
            return
        case .open(let opening):
            await open(upstream, opening, drill: sources.drill(upstream))
        case .update(let id, let change, let closing):
            await update(upstream, id: id, change: change, closing: closing)
        }
    }

    private func open(_ upstream: String, _ opening: Opening, drill: Bool) async {
        var incident = Incident(
            id: newID(),
            upstream: upstream,
            cause: opening.cause,
            drill: drill,
            openedAt: opening.openedAt,
            detectedAt: opening.detectedAt,
            timeline: opening.events,
            impact: opening.impact
        )
        do {
            let (stored, opened) = try await store.openIncident(incident)
            if !opened {
                // Another instance opened it: this one's view joins it.
                try await store.updateIncident(
                    id: stored.id,
                    IncidentChange(events: opening.joinEvents, impact: opening.impact)
                )
            }
            incident = stored
            tracks.withLock { $0[upstream]?.open?.id = stored.id }
            logger.notice(
                opened ? "incident opened" : "incident joined (another instance opened it)",
                metadata: [
                    "belay.incident.id": "\(incident.id)", "belay.upstream": "\(upstream)",
                    "belay.incident.cause": "\(opening.cause)",
                ]
            )
        } catch {
            logger.error(
                "could not open an incident; it is tried again at the next evaluation",
                metadata: ["belay.upstream": "\(upstream)", "belay.error": "\(error)"]
            )
            tracks.withLock { $0[upstream]?.restore(opening) }
        }
    }

    private func update(_ upstream: String, id: String, change: IncidentChange, closing: Bool) async {
        do {
            if !change.isEmpty { try await store.updateIncident(id: id, change) }
            if closing {
                logger.notice(
                    "incident closed",
                    metadata: ["belay.incident.id": "\(id)", "belay.upstream": "\(upstream)"]
                )
                return
            }
            // Closed by another instance (it saw the upstream healthy long enough): this one
            // opens a new one at its next evaluation if it still sees trouble.
            if try await store.openIncident(upstream: upstream)?.id != id {
                tracks.withLock { tracks in
                    if tracks[upstream]?.open?.id == id { tracks[upstream]?.open = nil }
                }
            }
        } catch {
            logger.error(
                "could not update an incident; it is tried again at the next evaluation",
                metadata: ["belay.incident.id": "\(id)", "belay.upstream": "\(upstream)", "belay.error": "\(error)"]
            )
            tracks.withLock {
                $0[upstream]?.restore(change, id: id, closing: closing, closeAfter: configuration.closeAfter)
            }
        }
    }

    // MARK: State

    /// The alerts that are timeline entries.
    static var timelineKinds: Set<Alert.Kind> {
        [
            .breakerOpened, .breakerClosed, .endpointEjected, .endpointReadmitted, .probeFailing, .probeRecovered,
            .sloFastBurn, .sloSlowBurn, .sloBurnEnded, .sloLatencySpike, .sloLatencyNormal, .drillStarted, .drillEnded,
            .dead, .stillTrying,
        ]
    }

    /// Delayed deliveries remembered per upstream, at most (more are counted, not timed).
    static var delayedLimit: Int { 10_000 }

    static func describe(_ exchange: ProxyExchange) -> String {
        if exchange.staleAge != nil { return "\(exchange.method) answered from the stale cache" }
        if exchange.fallback { return "\(exchange.method) answered with the fallback" }
        if exchange.queued != nil { return "\(exchange.method) queued for later delivery" }
        if exchange.status >= 500 {
            return "\(exchange.method) answered \(exchange.status) (\(exchange.outcome))"
        }
        let failures = exchange.attempts.filter { $0.failure != nil || ($0.status ?? 0) >= 500 }.count
        return "\(exchange.method) needed a retry: \(failures) of \(exchange.attempts.count) attempts failed"
    }
}
