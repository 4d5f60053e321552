public import BelayAPI
import Foundation

/// Renders the audit trail of proxied requests (`GET /v1/requests`) as plain-text tables.
public enum RequestTable {
    /// A page of requests, newest first, one row each.
    public static func list(_ page: AuditRequestPage) -> String {
        guard !page.requests.isEmpty else { return "no requests recorded" }
        var rows = [["ID", "RECEIVED", "UPSTREAM", "REQUEST", "STATUS", "OUTCOME", "ATTEMPTS", "MS"]]
        for request in page.requests {
            rows.append([
                request.id, TextTable.date(request.receivedAt), request.upstream,
                TextTable.clip("\(request.method) \(request.path)", 40), String(request.status), request.outcome,
                String(request.attempts.count), milliseconds(request.durationMs),
            ])
        }
        var output = TextTable.render(rows)
        if let cursor = page.nextCursor {
            output += "\nmore: --cursor \(cursor)"
        }
        return output
    }

    /// One request: its fields, every attempt, then every decision in order.
    public static func show(_ request: AuditRequestView) -> String {
        var lines = TextTable.fields([
            ("id", request.id), ("received", TextTable.date(request.receivedAt)), ("upstream", request.upstream),
            ("consumer", request.consumer ?? ""), ("correlation id", request.correlationID ?? ""),
            ("request", "\(request.method) \(request.path)"), ("status", String(request.status)),
            ("outcome", request.outcome), ("problem", request.problem ?? ""),
            ("stale age", request.staleAgeSeconds.map { "\(milliseconds($0 * 1_000)) ms" } ?? ""),
            ("duration", "\(milliseconds(request.durationMs)) ms"),
        ])
        lines.append("")
        if request.attempts.isEmpty {
            lines.append("no attempts (answered by Belay)")
        } else {
            var rows = [["#", "AT MS", "MS", "ENDPOINT", "RESULT", "SKIPPED"]]
            for attempt in request.attempts {
                rows.append([
                    String(attempt.number), milliseconds(attempt.startedMs), milliseconds(attempt.durationMs),
                    attempt.endpoint, attempt.status.map { "HTTP \($0)" } ?? attempt.failure ?? "",
                    (attempt.skipped ?? []).joined(separator: "; "),
                ])
            }
            lines.append(TextTable.render(rows))
        }
        if !request.decisions.isEmpty {
            lines.append("")
            var rows = [["AFTER", "DECISION", "WHY"]]
            for decision in request.decisions {
                rows.append([decision.attempt == 0 ? "-" : "#\(decision.attempt)", decision.kind, decision.description])
            }
            lines.append(TextTable.render(rows))
        }
        return lines.joined(separator: "\n")
    }

    /// Milliseconds with at most three decimals, trailing zeros dropped.
    private static func milliseconds(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
