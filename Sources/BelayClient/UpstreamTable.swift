public import BelayAPI
import Foundation

/// Renders the management API's upstreams (`GET /v1/upstreams`, the ``BelayAPI`` types) as
/// plain text for the CLI.
public enum UpstreamTable {
    /// Every upstream, one row each: its state in the health model's words and its last minute.
    public static func list(_ answer: UpstreamList) -> String {
        guard !answer.upstreams.isEmpty else { return "no upstreams configured" }
        var rows = [["NAME", "STATE", "BREAKER", "ERRORS", "RETRIES", "P50 MS", "P99 MS", "WHY"]]
        for upstream in answer.upstreams {
            rows.append([
                upstream.name,
                upstream.state,
                upstream.breaker,
                percent(upstream.errorRate),
                percent(upstream.retryRate),
                number(upstream.latencyMs?.p50),
                number(upstream.latencyMs?.p99),
                TextTable.clip(upstream.reason, 72),
            ])
        }
        return TextTable.render(rows)
    }

    /// One upstream (`GET /v1/upstreams/{name}`): its state, endpoints, windows, objectives,
    /// breaker history and probe.
    public static func show(_ upstream: UpstreamHealthView) -> String {
        var lines = [
            "\(upstream.name): \(upstream.state) since \(TextTable.date(upstream.since))",
            upstream.reason,
            "",
            "breaker         \(upstream.breaker)",
            "retry budget    \(upstream.retryBudget.retries) retries for \(upstream.retryBudget.requests) requests",
        ]
        if let concurrency = upstream.concurrency {
            lines.append(
                "concurrency     limit \(concurrency.limit) (\(concurrency.algorithm), "
                    + "\(concurrency.min)..\(concurrency.max)), "
                    + "\(concurrency.inFlight) in flight, \(concurrency.queued) queued, "
                    + "\(concurrency.rejected) rejected"
                    + (concurrency.minimumRttMs.map { ", minimum round trip \($0) ms" } ?? "")
            )
        }
        if let probe = upstream.probe {
            let fields = [
                ("consecutive_failures", String(probe.consecutiveFailures)),
                ("every_seconds", String(probe.everySeconds)),
                ("failing_since", probe.failingSince.map(TextTable.date) ?? "–"),
                ("last_at", probe.lastAt.map(TextTable.date) ?? "–"), ("last_result", probe.lastResult ?? "–"),
                ("next_at", probe.nextAt.map(TextTable.date) ?? "–"),
                ("passing", probe.passing.map { $0 ? "true" : "false" } ?? "–"), ("path", probe.path),
            ]
            lines.append("probe           " + fields.map { "\($0)=\($1)" }.joined(separator: " "))
        }
        lines.append("")
        var endpoints = [["ENDPOINT", "EJECTED"]]
        for endpoint in upstream.endpoints { endpoints.append([endpoint.url, endpoint.ejected ? "yes" : "no"]) }
        lines.append(TextTable.render(endpoints))
        if !upstream.windows.isEmpty {
            var rows = [["WINDOW", "REQUESTS", "ERRORS", "RETRIES", "STALE", "P50 MS", "P95 MS", "P99 MS"]]
            for label in upstream.windows.keys.sorted(by: { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }) {
                guard let window = upstream.windows[label] else { continue }
                rows.append([
                    label, String(window.requests), percent(window.errorRate), percent(window.retryRate),
                    String(window.stale), number(window.latencyMs.p50), number(window.latencyMs.p95),
                    number(window.latencyMs.p99),
                ])
            }
            lines.append("")
            lines.append(TextTable.render(rows))
        }
        if let slo = upstream.slo {
            lines.append("")
            lines.append("objectives      \(slo.summary)")
            var rows = [["OBJECTIVE", "TARGET", "MEASURED", "BUDGET LEFT", "BURN 5M", "30M", "1H", "6H", "BURNING"]]
            for objective in slo.objectives {
                let burns = objective.burnRates
                rows.append([
                    objective.name, objective.label, percent(objective.measured), percent(objective.budgetRemaining),
                    number(burns["5m"]), number(burns["30m"]), number(burns["1h"]), number(burns["6h"]),
                    objective.burning.isEmpty ? "–" : objective.burning.joined(separator: ","),
                ])
            }
            lines.append(TextTable.render(rows))
        }
        lines.append("")
        if upstream.breakerHistory.isEmpty {
            lines.append("no breaker changes")
        } else {
            var rows = [["AT", "FROM", "TO"]]
            for change in upstream.breakerHistory { rows.append([TextTable.date(change.at), change.from, change.to]) }
            lines.append(TextTable.render(rows))
        }
        return lines.joined(separator: "\n")
    }

    private static func percent(_ rate: Double?) -> String {
        rate.map { String(format: "%.1f%%", $0 * 100) } ?? "–"
    }

    /// A number as JSON writes it (`3`, `12.5`); `–` for none.
    private static func number(_ value: Double?) -> String {
        guard let value else { return "–" }
        return value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
