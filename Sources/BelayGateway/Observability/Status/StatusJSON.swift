import Belay
import BelayStore
import Foundation

/// The JSON forms of health reports and status snapshots (`/v1/upstreams`, `/v1/status`).
enum StatusJSON {
    /// One upstream, as `/v1/upstreams/{name}` answers: the client's fields (`breaker`,
    /// `endpoints`, `retry_budget`, `quota_pacing`, and `concurrency` for an adaptive limit) and
    /// the health model's (`state`, `reason`,
    /// `since`, `windows`, `error_rate`, `retry_rate`, `latency_ms`, `breaker_history`, `probe`).
    static func upstream(_ upstream: StatusSnapshot.Upstream) -> [String: Any] {
        let report = upstream.report
        var object: [String: Any] = [
            "name": report.name,
            "breaker": upstream.live.breaker.rawValue,
            "endpoints": zip(upstream.endpointURLs, upstream.live.endpoints).map { url, endpoint in
                ["url": url, "ejected": endpoint.ejected] as [String: Any]
            },
            "retry_budget": ["requests": upstream.retryBudget.requests, "retries": upstream.retryBudget.retries],
            "quota_pacing": upstream.quotaPacing,
            "state": report.state.rawValue,
            "reason": report.reason,
            "since": report.since.iso8601,
            "windows": Dictionary(report.windows.map { ($0.label, window($0)) }) { first, _ in first },
            "breaker_history": report.breakerHistory.map { change in
                ["at": change.at.iso8601, "from": change.from.rawValue, "to": change.to.rawValue]
            },
            "probe": report.probe.map(probe) ?? NSNull(),
        ]
        if let first = report.windows.first {
            object["error_rate"] = rounded(first.errorRate, places: 4)
            object["retry_rate"] = rounded(first.retryRate, places: 4)
            object["latency_ms"] = latency(first)
        }
        if let concurrency = upstream.concurrency {
            object["concurrency"] = [
                "limit": concurrency.limit, "in_flight": concurrency.inFlight, "queued": concurrency.queued,
                "rejected": concurrency.rejected, "algorithm": concurrency.algorithm, "min": concurrency.minimum,
                "max": concurrency.maximum,
                "minimum_rtt_ms": concurrency.minimumRTT.map { rounded($0.inSeconds * 1_000, places: 3) } as Any?
                    ?? NSNull(),
                "history": [
                    "every_seconds": rounded(concurrency.historyEvery.inSeconds, places: 3),
                    "limit": concurrency.history.map(\.limit),
                    "in_flight": concurrency.history.map(\.inFlight),
                ] as [String: Any],
            ]
        }
        if let age = report.staleAge {
            object["stale_age_seconds"] = Int(age.components.seconds)
        }
        if let slo = report.slo {
            object["slo"] = self.slo(slo)
        }
        object["drill"] = upstream.drill.map { DrillAnswer.json($0) as Any } ?? NSNull()
        object["criticality"] = (upstream.config?.criticality ?? .critical).rawValue
        let degradation = Degradation.of(report, config: upstream.config)
        object["degradation"] = ["level": degradation.level.rawValue, "summary": degradation.summary]
        return object
    }

    /// An upstream's objectives: `window_seconds`, `counted_since`, `summary`, `objectives` (each
    /// `name`, `target`, `bound_ms` for latency, `label`, `calls`, `bad`, `measured`,
    /// `budget_remaining`, `burn_rates` by window, `burning`, `exhausted_in_seconds`), and the
    /// latency baseline (`latency_baseline_ms`, `latency_spike_factor`, `latency_spike_since`).
    static func slo(_ slo: SLOReport) -> [String: Any] {
        [
            "window_seconds": Int(slo.window.components.seconds),
            "counted_since": slo.countedSince.iso8601,
            "summary": slo.summary,
            "objectives": slo.objectives.map { objective -> [String: Any] in
                [
                    "name": objective.name,
                    "target": objective.target,
                    "bound_ms": objective.bound.map { rounded($0.inSeconds * 1_000, places: 3) as Any } ?? NSNull(),
                    "label": objective.label,
                    "calls": objective.calls,
                    "bad": objective.bad,
                    "measured": objective.measured.map { rounded($0, places: 6) as Any } ?? NSNull(),
                    "budget_remaining": rounded(objective.budgetRemaining, places: 4),
                    "burn_rates": Dictionary(objective.burnRates.map { ($0.window, rounded($0.rate, places: 3)) }) {
                        first,
                        _ in first
                    },
                    "burning": objective.burning,
                    "exhausted_in_seconds": objective.exhaustedIn.map { Int($0.components.seconds) as Any }
                        ?? NSNull(),
                ]
            },
            "latency_baseline_ms": slo.latencyBaseline.map { rounded($0.inSeconds * 1_000, places: 1) as Any }
                ?? NSNull(),
            "latency_spike_factor": slo.latencySpikeFactor,
            "latency_spike_since": slo.latencySpikeSince.map { $0.iso8601 as Any } ?? NSNull(),
        ]
    }

    static func window(_ window: WindowReport) -> [String: Any] {
        [
            "requests": window.requests,
            "error_rate": rounded(window.errorRate, places: 4),
            "retry_rate": rounded(window.retryRate, places: 4),
            "stale": window.stale,
            "latency_ms": latency(window),
        ]
    }

    static func latency(_ window: WindowReport) -> [String: Any] {
        func milliseconds(_ duration: Duration?) -> Any {
            duration.map { rounded($0.inSeconds * 1_000, places: 1) } ?? NSNull()
        }
        return ["p50": milliseconds(window.p50), "p95": milliseconds(window.p95), "p99": milliseconds(window.p99)]
    }

    static func probe(_ probe: ProbeReport) -> [String: Any] {
        [
            "path": probe.path,
            "every_seconds": Int(probe.every.components.seconds),
            "passing": probe.passing.map { $0 as Any } ?? NSNull(),
            "consecutive_failures": probe.consecutiveFailures,
            "failing_since": probe.failingSince.map { $0.iso8601 as Any } ?? NSNull(),
            "last_at": probe.lastAt.map { $0.iso8601 as Any } ?? NSNull(),
            "last_result": probe.lastResult.map { $0 as Any } ?? NSNull(),
            "next_at": probe.nextAt.map { $0.iso8601 as Any } ?? NSNull(),
        ]
    }

    static func alert(_ recent: RecentAlert) -> [String: Any] {
        let alert = recent.alert
        return [
            "kind": alert.kind.rawValue,
            "severity": alert.severity,
            "summary": alert.summary,
            "upstream": alert.upstream.map { $0 as Any } ?? NSNull(),
            "since": alert.since.map { $0.iso8601 as Any } ?? NSNull(),
            "at": alert.at.iso8601,
            "last_at": recent.lastAt.iso8601,
            "repeats": recent.repeats,
            "link": alert.link.map { $0 as Any } ?? NSNull(),
        ]
    }

    /// What `/v1/status` answers (and the status page renders).
    static func status(_ snapshot: StatusSnapshot) -> [String: Any] {
        var deliveries: [String: Any] = ["available": snapshot.deliveries != nil]
        if let counts = snapshot.deliveries {
            deliveries["counts"] = Dictionary(
                DeliveryStatus.allCases.map { ($0.rawValue, counts[$0, default: 0]) }
            ) { first, _ in first }
        }
        deliveries["dead_letter"] =
            [
                "count": snapshot.deliveries?[.dead, default: 0] ?? 0,
                "link": "/v1/deliveries?status=dead",
            ] as [String: Any]
        return [
            "generated_at": snapshot.generatedAt.iso8601,
            "upstreams": snapshot.upstreams.map(upstream),
            "deliveries": deliveries,
            "webhooks": snapshot.webhooks.map { source in
                [
                    "source": source.name,
                    "scheme": source.scheme,
                    "forwards_to": source.forwardsTo.map { $0 as Any } ?? NSNull(),
                    "link": "/v1/webhooks/events?source=\(source.name)",
                ] as [String: Any]
            },
            "alerts": snapshot.alerts.map(alert),
        ]
    }

    static func rounded(_ value: Double, places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (value * scale).rounded() / scale
    }
}
