public import Belay
import BelayHTTP
import Foundation
import Synchronization

/// The health model: one per gateway, tracking every upstream.
///
/// It is a ``ProxyObserver`` (each proxied request counts into sliding windows: latency
/// percentiles, error rate, retry rate, stale answers), a `ResilienceEventSink` (breaker
/// transitions, kept as history), and it hears endpoint ejections and probe results. From
/// these and the client's live state it derives each upstream's ``HealthState`` with a
/// plain-words reason and a "since" (``report(_:live:)``), and raises alerts on breaker
/// opened/closed, endpoint ejected/readmitted and probe failing/recovered.
///
/// Per request it takes one lock and increments a few integers; it allocates nothing.
public final class UpstreamHealth<C: Clock>: ProxyObserver, ResilienceEventSink, Sendable
where C.Duration == Duration {
    /// Options of the health model.
    public struct Configuration: Sendable {
        /// The window the state is judged over (errors, stale answers). Default 60 s.
        public var window: Duration = .seconds(60)
        /// The windows reported, with their labels. Default 1 and 5 minutes.
        public var windows: [(label: String, span: Duration)] = [("1m", .seconds(60)), ("5m", .seconds(300))]
        /// The error rate over ``window`` from which an upstream is degraded. Default 0.05.
        public var degradedErrorRate = 0.05
        /// Requests ``window`` must hold before its error rate is judged. Default 10.
        public var minimumRequests = 10
        /// The share of calls needing a retry over ``retryWindow`` above which an upstream is
        /// degraded, even when the retries saved every call. Default 0.05.
        public var degradedRetryShare = 0.05
        /// The span the retry share is judged over (at most 5 minutes). Default 5 minutes.
        public var retryWindow: Duration = .seconds(300)
        /// Probes failed in a row before the probe counts as failing (and is alerted). Default 2.
        public var probeFailuresToAlert = 2

        /// Creates the default options.
        public init() {}
    }

    /// An upstream the model tracks.
    public struct Subject: Sendable {
        /// The upstream's configured name.
        public var name: String
        /// Its probe, if configured.
        public var probe: (path: String, every: Duration)?
        /// What opens its breaker, in words (e.g. `at least 50% of at least 10 calls in 1 minute failed`),
        /// for the breaker-opened alert, if known.
        public var breakerRule: String?
        /// Its objectives, if it sets `slo`.
        public var slo: UpstreamConfig.SLO?

        /// Creates a subject.
        public init(
            name: String,
            probe: (path: String, every: Duration)? = nil,
            breakerRule: String? = nil,
            slo: UpstreamConfig.SLO? = nil
        ) {
            self.name = name
            self.probe = probe
            self.breakerRule = breakerRule
            self.slo = slo
        }
    }

    /// What one probe found.
    public struct ProbeOutcome: Sendable {
        /// Whether it passed (a 2xx or 3xx answer from the upstream itself, not the cache).
        public var passed: Bool
        /// In words: `HTTP 200 in 12ms`, `HTTP 503 from api.pay.example:443`, `circuit-open`.
        public var detail: String

        /// Creates an outcome.
        public init(passed: Bool, detail: String) {
            self.passed = passed
            self.detail = detail
        }
    }

    /// A mutex-guarded record per upstream; the table of them never changes after init.
    final class Slot: Sendable {
        let record: Mutex<HealthRecord>

        init(_ record: HealthRecord) {
            self.record = Mutex(record)
        }
    }

    /// The options in force.
    public let configuration: Configuration
    let wall: WallClock<C>
    private let origin: C.Instant
    let slots: [String: Slot]
    private let order: [String]
    private let alert: @Sendable (Alert) -> Void

    /// - Parameters:
    ///   - upstreams: the upstreams to track (others are ignored).
    ///   - wall: the time: its clock for windows, its dates for reports and alerts.
    ///   - alert: receives the alerts the model raises.
    public init(
        upstreams: [Subject],
        configuration: Configuration = .init(),
        wall: WallClock<C>,
        alert: @escaping @Sendable (Alert) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.wall = wall
        self.origin = wall.clock.now
        self.alert = alert
        self.order = upstreams.map(\.name)
        var slots: [String: Slot] = [:]
        for upstream in upstreams {
            var record = HealthRecord(probe: upstream.probe.map { ProbeRecord(path: $0.path, every: $0.every) })
            record.breakerRule = upstream.breakerRule
            record.slo = upstream.slo.map { SLORecord($0) }
            slots[upstream.name] = Slot(record)
        }
        self.slots = slots
    }

    /// The tracked upstreams, in configured order.
    public var upstreams: [String] { order }

    func elapsed() -> Duration {
        origin.duration(to: wall.clock.now)
    }

    /// The date of an instant given as time since the model's start, `now` being the present.
    func date(_ instant: Duration, now: Duration, today: Date) -> Date {
        today.addingTimeInterval(-(now - instant).inSeconds)
    }

    // MARK: Inputs

    public func observe(_ exchange: ProxyExchange) {
        guard let slot = slots[exchange.upstream] else { return }
        // Belay's own refusals of the caller (its rate limit, a body too large, a bad
        // Belay-Timeout) say nothing about the upstream: only calls that reached it, stale
        // answers and the policy's refusals (503: circuit open, bulkhead full) count.
        guard
            !exchange.attempts.isEmpty || exchange.staleAge != nil || exchange.fallback || exchange.queuedByFailure
                || exchange.status >= 500
        else { return }
        // Nor does a call the caller cut short (its Belay-Timeout) or that the client refused to send.
        guard exchange.fault != .caller else { return }
        let now = elapsed()
        let window = configuration.window
        // A write queued for later is the upstream's failure, though the caller got its 202.
        let answeredBadly = exchange.status >= 500 && !exchange.fallback
        let error = answeredBadly || exchange.queuedByFailure
        let degraded = exchange.staleAge != nil || exchange.fallback
        // A hedge is an extra attempt side by side with another, not a retry of a failed one.
        let retries = max(exchange.attempts.count(where: { !$0.hedged }) - 1, 0)
        slot.record.withLock { record in
            record.counters.record(
                at: now,
                latency: exchange.duration,
                error: error,
                retries: retries,
                stale: degraded
            )
            record.slo?.record(at: now, failed: answeredBadly, latency: exchange.duration)
            if error {
                // A queued write's 202 is Belay's answer: the upstream's was its last attempt's.
                let status = exchange.queuedByFailure ? (exchange.attempts.last?.status ?? 503) : exchange.status
                record.lastError = HealthRecord.ErrorNote(at: now, status: status, problem: exchange.problem)
            }
            if degraded {
                if record.lastStaleAt.map({ $0.duration(to: now) > window }) ?? true {
                    record.staleSince = now
                }
                record.lastStaleAt = now
                record.lastStaleAge = exchange.staleAge ?? .zero
                record.lastWasFallback = exchange.staleAge == nil
            } else if !error {
                record.lastFreshAt = now
            }
        }
    }

    public func receive(_ event: ResilienceEvent) {
        guard case .circuitStateChanged(let from, let to) = event.kind else { return }
        breakerChanged(event.strategy, from: from, to: to)
    }

    /// Records a breaker transition of `upstream` (its breaker is named after it).
    public func breakerChanged(_ upstream: String, from: CircuitState, to: CircuitState) {
        guard let slot = slots[upstream] else { return }
        let now = elapsed()
        let today = wall.now()
        let window = configuration.window
        let (opened, closedAfter, why) = slot.record.withLock { record -> (Bool, Duration?, String) in
            record.breakerHistory.append(.init(at: now, from: from, to: to))
            if record.breakerHistory.count > 20 { record.breakerHistory.removeFirst() }
            var closedAfter: Duration?
            let opened = from == .closed && to != .closed
            if opened { record.breakerOpenedAt = now }
            if to == .closed, from != .closed {
                closedAfter = record.breakerOpenedAt.map { $0.duration(to: now) } ?? .zero
                record.breakerOpenedAt = nil
            }
            return (opened, closedAfter, record.failureWords(at: now, window: window))
        }
        let link = "/v1/upstreams/\(upstream)"
        if opened {
            let manual = to == .isolated
            raise(
                Alert(
                    kind: .breakerOpened,
                    severity: "critical",
                    summary: manual
                        ? "\(upstream): circuit isolated by hand at \(HealthWords.clockTime(today)); every call is "
                            + "refused until it is reset"
                        : "\(upstream): circuit opened at \(HealthWords.clockTime(today)) because \(why); calls are "
                            + "refused (or served stale) until a trial call succeeds",
                    upstream: upstream,
                    since: today,
                    lastError: why,
                    link: link,
                    at: today
                )
            )
        } else if let closedAfter {
            raise(
                Alert(
                    kind: .breakerClosed,
                    severity: "info",
                    summary: "\(upstream): circuit closed at \(HealthWords.clockTime(today)) after being open for "
                        + "\(HealthWords.span(closedAfter)); calls flow again",
                    upstream: upstream,
                    since: date(now - closedAfter, now: now, today: today),
                    link: link,
                    at: today
                )
            )
        }
    }

    /// Records that `upstream`'s endpoint `endpoint` (named `name`, `host:port`) was ejected
    /// as an outlier after `failures` failures in a row (`ejected`), or re-admitted.
    public func endpointChanged(_ upstream: String, endpoint: Int, name: String, ejected: Bool, failures: Int) {
        guard let slot = slots[upstream] else { return }
        let now = elapsed()
        let today = wall.now()
        let since = slot.record.withLock { record -> Duration? in
            let since = record.ejectedSince[endpoint]
            if ejected {
                record.ejectedSince[endpoint] = now
            } else {
                record.ejectedSince[endpoint] = nil
                record.lastReadmittedAt = now
            }
            return since
        }
        if ejected {
            raise(
                Alert(
                    kind: .endpointEjected,
                    severity: "warning",
                    summary: "\(upstream): endpoint \(name) ejected at \(HealthWords.clockTime(today)) after "
                        + "\(failures) failures in a row; calls go to the other endpoints and it is tried again later",
                    upstream: upstream,
                    subject: name,
                    since: today,
                    link: "/v1/upstreams/\(upstream)",
                    at: today
                )
            )
        } else {
            let ejectedFor = since.map { $0.duration(to: now) } ?? .zero
            raise(
                Alert(
                    kind: .endpointReadmitted,
                    severity: "info",
                    summary: "\(upstream): endpoint \(name) re-admitted at \(HealthWords.clockTime(today)) after a "
                        + "successful call; it was ejected for \(HealthWords.span(ejectedFor))",
                    upstream: upstream,
                    subject: name,
                    since: date(now - ejectedFor, now: now, today: today),
                    link: "/v1/upstreams/\(upstream)",
                    at: today
                )
            )
        }
    }

    /// Records what `upstream`'s probe found; alerts when it starts failing
    /// (``Configuration/probeFailuresToAlert`` in a row) and when it recovers.
    public func probed(_ upstream: String, _ outcome: ProbeOutcome) {
        guard let slot = slots[upstream] else { return }
        let now = elapsed()
        let today = wall.now()
        let threshold = max(configuration.probeFailuresToAlert, 1)
        let change = slot.record.withLock { record -> ProbeChange? in
            guard var probe = record.probe else { return nil }
            defer { record.probe = probe }
            probe.lastAt = now
            probe.lastResult = outcome.detail
            probe.passing = outcome.passed
            if outcome.passed {
                probe.consecutiveFailures = 0
                guard let since = probe.failingSince else { return nil }
                probe.failingSince = nil
                probe.recoveredAt = now
                return .recovered(after: since.duration(to: now), path: probe.path)
            }
            probe.consecutiveFailures += 1
            if probe.consecutiveFailures == 1 { probe.firstFailureAt = now }
            guard probe.consecutiveFailures >= threshold, probe.failingSince == nil else { return nil }
            probe.failingSince = probe.firstFailureAt ?? now
            return .failing(since: probe.failingSince ?? now, count: probe.consecutiveFailures, path: probe.path)
        }
        let link = "/v1/upstreams/\(upstream)"
        switch change {
        case .failing(let since, let count, let path):
            raise(
                Alert(
                    kind: .probeFailing,
                    severity: "critical",
                    summary: "\(upstream): probe GET \(path) failed \(count) times in a row since "
                        + "\(HealthWords.clockTime(date(since, now: now, today: today))) (last: \(outcome.detail))",
                    upstream: upstream,
                    subject: path,
                    since: date(since, now: now, today: today),
                    lastError: outcome.detail,
                    attempts: count,
                    link: link,
                    at: today
                )
            )
        case .recovered(let after, let path):
            raise(
                Alert(
                    kind: .probeRecovered,
                    severity: "info",
                    summary: "\(upstream): probe GET \(path) passes again (\(outcome.detail)) after failing for "
                        + "\(HealthWords.span(after))",
                    upstream: upstream,
                    subject: path,
                    since: date(now - after, now: now, today: today),
                    link: link,
                    at: today
                )
            )
        case nil:
            break
        }
    }

    /// Records when `upstream`'s next probe runs (an instant of the model's clock).
    public func probeScheduled(_ upstream: String, at instant: C.Instant) {
        guard let slot = slots[upstream] else { return }
        let next = origin.duration(to: instant)
        slot.record.withLock { $0.probe?.nextAt = next }
    }

    func raise(_ alert: Alert) {
        self.alert(alert)
    }

    // MARK: Reports

    /// The health of `upstream` now, given its client's live state; nil if it is not tracked.
    public func report(_ upstream: String, live: UpstreamLiveState) -> UpstreamHealthReport? {
        guard let slot = slots[upstream] else { return nil }
        let now = elapsed()
        let today = wall.now()
        let configuration = self.configuration
        return slot.record.withLock { record in
            record.report(
                name: upstream,
                live: live,
                now: now,
                thresholds: .init(
                    window: configuration.window,
                    windows: configuration.windows,
                    degradedErrorRate: configuration.degradedErrorRate,
                    minimumRequests: configuration.minimumRequests,
                    degradedRetryShare: configuration.degradedRetryShare,
                    retryWindow: configuration.retryWindow
                ),
                date: { self.date($0, now: now, today: today) }
            )
        }
    }
}

/// A probe's run of results changing: it starts failing, or passes again.
private enum ProbeChange {
    case failing(since: Duration, count: Int, path: String)
    case recovered(after: Duration, path: String)
}

extension Alert.Kind {
    /// An upstream's circuit breaker opened (or was isolated): calls are refused.
    public static let breakerOpened = Alert.Kind(rawValue: "breaker.opened")
    /// An upstream's circuit breaker closed again.
    public static let breakerClosed = Alert.Kind(rawValue: "breaker.closed")
    /// An endpoint was ejected as an outlier after failures in a row.
    public static let endpointEjected = Alert.Kind(rawValue: "endpoint.ejected")
    /// An ejected endpoint answered well again and was re-admitted.
    public static let endpointReadmitted = Alert.Kind(rawValue: "endpoint.readmitted")
    /// An upstream's synthetic probe failed several times in a row.
    public static let probeFailing = Alert.Kind(rawValue: "probe.failing")
    /// A failing probe passes again.
    public static let probeRecovered = Alert.Kind(rawValue: "probe.recovered")
    /// A webhook event's forward failed for good; the event waits for a replay.
    public static let webhookDead = Alert.Kind(rawValue: "webhook.dead")
}
