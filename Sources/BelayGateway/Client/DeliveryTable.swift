import Foundation

/// Renders the management API's delivery JSON as plain-text tables for the CLI.
public enum DeliveryTable {
    /// A page of deliveries (`GET /v1/deliveries`) as a table, one row each.
    public static func list(_ page: [String: Any]) -> String {
        let deliveries = page["deliveries"] as? [[String: Any]] ?? []
        guard !deliveries.isEmpty else { return "no deliveries" }
        var rows = [["ID", "STATUS", "UPSTREAM", "REQUEST", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"]]
        for delivery in deliveries {
            rows.append([
                text(delivery["id"]),
                text(delivery["status"]),
                text(delivery["upstream"]),
                clip("\(text(delivery["method"])) \(text(delivery["path"]))", 40),
                text(delivery["attempt_count"]),
                text(delivery["next_attempt_at"]),
                clip(text(delivery["last_error"]), 48),
            ])
        }
        var output = TextTable.render(rows)
        if let cursor = page["next_cursor"] as? String {
            output += "\nmore: --cursor \(cursor)"
        }
        return output
    }

    /// One delivery (`GET /v1/deliveries/{id}`): its fields, then its attempts.
    public static func show(_ delivery: [String: Any]) -> String {
        let fields: [(String, String)] = [
            ("id", "id"), ("status", "status"), ("upstream", "upstream"), ("method", "method"), ("path", "path"),
            ("idempotency key", "idempotency_key"), ("require ack", "require_ack"), ("attempts", "attempt_count"),
            ("created", "created_at"), ("updated", "updated_at"), ("next attempt", "next_attempt_at"),
            ("delivered", "delivered_at"), ("acknowledged", "acknowledged_at"), ("last error", "last_error"),
            ("lease until", "lease_expires_at"), ("waiting", "waiting"),
        ]
        var lines: [String] = []
        for (label, key) in fields {
            guard let value = delivery[key], !(value is NSNull) else { continue }
            // JSON numbers cast to Bool on Linux: only known flags are shown as yes/no.
            let shown = key == "require_ack" ? ((value as? Bool) == true ? "yes" : "no") : text(value)
            if shown.isEmpty { continue }
            lines.append(label.padding(toLength: 16, withPad: " ", startingAt: 0) + shown)
        }
        let attempts = delivery["attempts"] as? [[String: Any]] ?? []
        lines.append("")
        if attempts.isEmpty {
            lines.append("no attempts yet")
        } else {
            var rows = [["#", "STARTED", "MS", "ENDPOINT", "RESULT", "DECISION"]]
            for attempt in attempts {
                let result = attempt["status_code"].map { "HTTP \(text($0))" } ?? text(attempt["error_class"])
                // A lookup (`ack.poll`) is not a send: shown as "look", not as an attempt's number.
                let lookup = attempt["kind"] as? String == "lookup"
                rows.append([
                    lookup ? "look" : text(attempt["number"]), text(attempt["started_at"]),
                    text(attempt["duration_ms"]),
                    text(attempt["endpoint"]), result, text(attempt["decision"]),
                ])
            }
            lines.append(TextTable.render(rows))
        }
        return lines.joined(separator: "\n")
    }

    private static func text(_ value: Any?) -> String { TextTable.text(value) }

    private static func clip(_ text: String, _ width: Int) -> String { TextTable.clip(text, width) }
}
