import Belay
import BelayAPI
import BelayStore
import Foundation

/// Health reports and status snapshots as the API shows them (`/v1/upstreams`, `/v1/status`;
/// the ``BelayAPI`` types).
enum StatusJSON {
    /// One upstream, as `/v1/upstreams/{name}` answers: the client's fields (`breaker`,
    /// `endpoints`, `retry_budget`, `quota_pacing`, and `concurrency` for an adaptive limit) and
    /// the health model's (`state`, `reason`,
    /// `since`, `windows`, `error_rate`, `retry_rate`, `latency_ms`, `breaker_history`, `probe`).
    static func upstream(_ upstream: StatusSnapshot.Upstream) -> UpstreamHealthView {
        let report = upstream.report
        let degradation = Degradation.of(report, config: upstream.config)
        var view = UpstreamHealthView(
            name: report.name,
            breaker: upstream.live.breaker.rawValue,
            endpoints: zip(upstream.endpointURLs, upstream.live.endpoints).map { url, endpoint in
                .init(url: url, ejected: endpoint.ejected)
            },
            retryBudget: .init(requests: upstream.retryBudget.requests, retries: upstream.retryBudget.retries),
            quotaPacing: upstream.quotaPacing,
            state: report.state.rawValue,
            reason: report.reason,
            since: report.since,
            windows: Dictionary(report.windows.map { ($0.label, window($0)) }) { first, _ in first },
            breakerHistory: report.breakerHistory.map { change in
                .init(at: change.at, from: change.from.rawValue, to: change.to.rawValue)
            },
            criticality: (upstream.config?.criticality ?? .critical).rawValue,
            degradation: .init(level: degradation.level.rawValue, summary: degradation.summary)
        )
        view.probe = report.probe.map(probe)
        if let first = report.windows.first {
            view.errorRate = rounded(first.errorRate, places: 4)
            view.retryRate = rounded(first.retryRate, places: 4)
            view.latencyMs = latency(first)
        }
        if let concurrency = upstream.concurrency {
            view.concurrency = .init(
                limit: concurrency.limit,
                inFlight: concurrency.inFlight,
                queued: concurrency.queued,
                rejected: concurrency.rejected,
                algorithm: concurrency.algorithm,
                min: concurrency.minimum,
                max: concurrency.maximum,
                minimumRttMs: concurrency.minimumRTT.map { rounded($0.inSeconds * 1_000, places: 3) },
                history: .init(
                    everySeconds: rounded(concurrency.historyEvery.inSeconds, places: 3),
                    limit: concurrency.history.map(\.limit),
                    inFlight: concurrency.history.map(\.inFlight)
                )
            )
        }
        view.staleAgeSeconds = report.staleAge.map { Int($0.components.seconds) }
        view.slo = report.slo.map(slo)
        view.drill = upstream.drill.map(DrillAnswer.view)
        return view
    }

    /// An upstream's objectives: `window_seconds`, `counted_since`, `summary`, `objectives` (each
    /// `name`, `target`, `bound_ms` for latency, `label`, `calls`, `bad`, `measured`,
    /// `budget_remaining`, `burn_rates` by window, `burning`, `exhausted_in_seconds`), and the
    /// latency baseline (`latency_baseline_ms`, `latency_spike_factor`, `latency_spike_since`).
    static func slo(_ slo: SLOReport) -> UpstreamHealthView.SLO {
        UpstreamHealthView.SLO(
            windowSeconds: Int(slo.window.components.seconds),
            countedSince: slo.countedSince,
            summary: slo.summary,
            objectives: slo.objectives.map { objective in
                UpstreamHealthView.SLO.Objective(
                    name: objective.name,
                    target: objective.target,
                    boundMs: objective.bound.map { rounded($0.inSeconds * 1_000, places: 3) },
                    label: objective.label,
                    calls: objective.calls,
                    bad: objective.bad,
                    measured: objective.measured.map { rounded($0, places: 6) },
                    budgetRemaining: rounded(objective.budgetRemaining, places: 4),
                    burnRates: Dictionary(objective.burnRates.map { ($0.window, rounded($0.rate, places: 3)) }) {
                        first,
                        _ in first
                    },
                    burning: objective.burning,
                    exhaustedInSeconds: objective.exhaustedIn.map { Int($0.components.seconds) }
                )
            },
            latencyBaselineMs: slo.latencyBaseline.map { rounded($0.inSeconds * 1_000, places: 1) },
            latencySpikeFactor: slo.latencySpikeFactor,
            latencySpikeSince: slo.latencySpikeSince
        )
    }

    static func window(_ window: WindowReport) -> UpstreamHealthView.Window {
        .init(
            requests: window.requests,
            errorRate: rounded(window.errorRate, places: 4),
            retryRate: rounded(window.retryRate, places: 4),
            stale: window.stale,
            latencyMs: latency(window)
        )
    }

    static func latency(_ window: WindowReport) -> UpstreamHealthView.Latency {
        func milliseconds(_ duration: Duration?) -> Double? {
            duration.map { rounded($0.inSeconds * 1_000, places: 1) }
        }
        return .init(p50: milliseconds(window.p50), p95: milliseconds(window.p95), p99: milliseconds(window.p99))
    }

    static func probe(_ probe: ProbeReport) -> UpstreamHealthView.Probe {
        .init(
            path: probe.path,
            everySeconds: Int(probe.every.components.seconds),
            passing: probe.passing,
            consecutiveFailures: probe.consecutiveFailures,
            failingSince: probe.failingSince,
            lastAt: probe.lastAt,
            lastResult: probe.lastResult,
            nextAt: probe.nextAt
        )
    }

    static func alert(_ recent: RecentAlert) -> StatusView.Alert {
        let alert = recent.alert
        return .init(
            kind: alert.kind.rawValue,
            severity: alert.severity,
            summary: alert.summary,
            upstream: alert.upstream,
            since: alert.since,
            at: alert.at,
            lastAt: recent.lastAt,
            repeats: recent.repeats,
            link: alert.link
        )
    }

    /// What `/v1/status` answers (and the status page renders).
    static func status(_ snapshot: StatusSnapshot) -> StatusView {
        let counts = snapshot.deliveries.map { counts in
            Dictionary(DeliveryStatus.allCases.map { ($0.rawValue, counts[$0, default: 0]) }) { first, _ in first }
        }
        return StatusView(
            generatedAt: snapshot.generatedAt,
            upstreams: snapshot.upstreams.map(upstream),
            deliveries: .init(
                available: snapshot.deliveries != nil,
                counts: counts,
                deadLetter: .init(
                    count: snapshot.deliveries?[.dead, default: 0] ?? 0,
                    link: "/v1/deliveries?status=dead"
                )
            ),
            webhooks: snapshot.webhooks.map { source in
                .init(
                    source: source.name,
                    scheme: source.scheme,
                    forwardsTo: source.forwardsTo,
                    link: "/v1/webhooks/events?source=\(source.name)"
                )
            },
            alerts: snapshot.alerts.map(alert)
        )
    }

    static func rounded(_ value: Double, places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (value * scale).rounded() / scale
    }
}
