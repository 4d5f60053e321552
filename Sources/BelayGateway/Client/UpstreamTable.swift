import Foundation

/// Renders the management API's upstream JSON (`GET /v1/upstreams`) as plain text for the CLI.
public enum UpstreamTable {
    /// Every upstream, one row each: its state in the health model's words and its last minute.
    public static func list(_ answer: [String: Any]) -> String {
        let upstreams = answer["upstreams"] as? [[String: Any]] ?? []
        guard !upstreams.isEmpty else { return "no upstreams configured" }
        var rows = [["NAME", "STATE", "BREAKER", "ERRORS", "RETRIES", "P50 MS", "P99 MS", "WHY"]]
        for upstream in upstreams {
            let latency = upstream["latency_ms"] as? [String: Any]
            rows.append([
                text(upstream["name"]),
                text(upstream["state"]),
                text(upstream["breaker"]),
                percent(upstream["error_rate"]),
                percent(upstream["retry_rate"]),
                text(latency?["p50"]),
                text(latency?["p99"]),
                TextTable.clip(text(upstream["reason"]), 72),
            ])
        }
        return TextTable.render(rows)
    }

    /// One upstream (`GET /v1/upstreams/{name}`): its state, endpoints, windows, objectives,
    /// breaker history and probe.
    public static func show(_ upstream: [String: Any]) -> String {
        var lines = [
            "\(text(upstream["name"])): \(text(upstream["state"])) since \(text(upstream["since"]))",
            text(upstream["reason"]),
            "",
            "breaker         \(text(upstream["breaker"]))",
        ]
        if let budget = upstream["retry_budget"] as? [String: Any] {
            lines.append("retry budget    \(text(budget["retries"])) retries for \(text(budget["requests"])) requests")
        }
        if let concurrency = upstream["concurrency"] as? [String: Any] {
            lines.append(
                "concurrency     limit \(text(concurrency["limit"])) (\(text(concurrency["algorithm"])), "
                    + "\(text(concurrency["min"]))..\(text(concurrency["max"]))), "
                    + "\(text(concurrency["in_flight"])) in flight, \(text(concurrency["queued"])) queued, "
                    + "\(text(concurrency["rejected"])) rejected"
                    + ((concurrency["minimum_rtt_ms"] as? NSNumber).map { ", minimum round trip \($0.doubleValue) ms" }
                        ?? "")
            )
        }
        if let probe = upstream["probe"] as? [String: Any] {
            let last = probe.keys.sorted().map { "\($0)=\(text(probe[$0]))" }.joined(separator: " ")
            lines.append("probe           \(last)")
        }
        lines.append("")
        var endpoints = [["ENDPOINT", "EJECTED"]]
        for endpoint in upstream["endpoints"] as? [[String: Any]] ?? [] {
            endpoints.append([text(endpoint["url"]), (endpoint["ejected"] as? Bool) == true ? "yes" : "no"])
        }
        lines.append(TextTable.render(endpoints))
        if let windows = upstream["windows"] as? [String: [String: Any]], !windows.isEmpty {
            var rows = [["WINDOW", "REQUESTS", "ERRORS", "RETRIES", "STALE", "P50 MS", "P95 MS", "P99 MS"]]
            for label in windows.keys.sorted(by: { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }) {
                let window = windows[label] ?? [:]
                let latency = window["latency_ms"] as? [String: Any]
                rows.append([
                    label, text(window["requests"]), percent(window["error_rate"]), percent(window["retry_rate"]),
                    text(window["stale"]), text(latency?["p50"]), text(latency?["p95"]), text(latency?["p99"]),
                ])
            }
            lines.append("")
            lines.append(TextTable.render(rows))
        }
        if let slo = upstream["slo"] as? [String: Any] {
            lines.append("")
            lines.append("objectives      \(text(slo["summary"]))")
            var rows = [["OBJECTIVE", "TARGET", "MEASURED", "BUDGET LEFT", "BURN 5M", "30M", "1H", "6H", "BURNING"]]
            for objective in slo["objectives"] as? [[String: Any]] ?? [] {
                let burns = objective["burn_rates"] as? [String: Any] ?? [:]
                let burning = objective["burning"] as? [String] ?? []
                rows.append([
                    text(objective["name"]), text(objective["label"]), percent(objective["measured"]),
                    percent(objective["budget_remaining"]), text(burns["5m"]), text(burns["30m"]),
                    text(burns["1h"]), text(burns["6h"]), burning.isEmpty ? "–" : burning.joined(separator: ","),
                ])
            }
            lines.append(TextTable.render(rows))
        }
        let history = upstream["breaker_history"] as? [[String: Any]] ?? []
        lines.append("")
        if history.isEmpty {
            lines.append("no breaker changes")
        } else {
            var rows = [["AT", "FROM", "TO"]]
            for change in history { rows.append([text(change["at"]), text(change["from"]), text(change["to"])]) }
            lines.append(TextTable.render(rows))
        }
        return lines.joined(separator: "\n")
    }

    private static func percent(_ value: Any?) -> String {
        guard let rate = value as? Double else { return text(value) }
        return String(format: "%.1f%%", rate * 100)
    }

    private static func text(_ value: Any?) -> String { TextTable.text(value, absent: "–") }
}
