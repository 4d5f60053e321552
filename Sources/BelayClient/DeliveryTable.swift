public import BelayAPI
import Foundation

/// Renders the management API's deliveries (the ``BelayAPI`` types the CLI decodes) as
/// plain-text tables.
public enum DeliveryTable {
    /// A page of deliveries (`GET /v1/deliveries`) as a table, one row each.
    public static func list(_ page: DeliveryPage) -> String {
        guard !page.deliveries.isEmpty else { return "no deliveries" }
        var rows = [["ID", "STATUS", "UPSTREAM", "REQUEST", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"]]
        for delivery in page.deliveries {
            rows.append([
                delivery.id,
                delivery.status,
                delivery.upstream,
                TextTable.clip("\(delivery.method) \(delivery.path)", 40),
                String(delivery.attemptCount),
                TextTable.date(delivery.nextAttemptAt),
                TextTable.clip(delivery.lastError ?? "", 48),
            ])
        }
        var output = TextTable.render(rows)
        if let cursor = page.nextCursor {
            output += "\nmore: --cursor \(cursor)"
        }
        return output
    }

    /// One delivery (`GET /v1/deliveries/{id}`): its fields, then its attempts.
    public static func show(_ detail: DeliveryDetail) -> String {
        let delivery = detail.summary
        var lines = TextTable.fields([
            ("id", delivery.id), ("status", delivery.status), ("upstream", delivery.upstream),
            ("method", delivery.method), ("path", delivery.path), ("idempotency key", delivery.idempotencyKey),
            ("require ack", delivery.requireAck ? "yes" : "no"), ("attempts", String(delivery.attemptCount)),
            ("created", TextTable.date(delivery.createdAt)), ("updated", TextTable.date(delivery.updatedAt)),
            ("next attempt", TextTable.date(delivery.nextAttemptAt)),
            ("delivered", TextTable.date(delivery.deliveredAt)),
            ("acknowledged", TextTable.date(delivery.acknowledgedAt)), ("last error", delivery.lastError ?? ""),
            ("lease until", TextTable.date(delivery.leaseExpiresAt)), ("waiting", delivery.waiting ?? ""),
        ])
        lines.append("")
        lines.append(attempts(detail.attempts))
        return lines.joined(separator: "\n")
    }

    /// A delivery's attempts as a table, or `no attempts yet`.
    static func attempts(_ attempts: [DeliveryAttemptView]) -> String {
        guard !attempts.isEmpty else { return "no attempts yet" }
        var rows = [["#", "STARTED", "MS", "ENDPOINT", "RESULT", "DECISION"]]
        for attempt in attempts {
            let result = attempt.statusCode.map { "HTTP \($0)" } ?? attempt.errorClass ?? ""
            // A lookup (`ack.poll`) is not a send: shown as "look", not as an attempt's number.
            rows.append([
                attempt.kind == "lookup" ? "look" : String(attempt.number), TextTable.date(attempt.startedAt),
                String(attempt.durationMs), attempt.endpoint ?? "", result, attempt.decision,
            ])
        }
        return TextTable.render(rows)
    }
}
