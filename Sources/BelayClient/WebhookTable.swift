public import BelayAPI
import Foundation

/// Renders the webhook inbox's events (`GET /v1/webhooks/events`) as plain-text tables.
public enum WebhookTable {
    /// A page of events, one row each: the event, and how its forward went.
    public static func list(_ page: WebhookEventPage) -> String {
        guard !page.events.isEmpty else { return "no webhook events" }
        var rows = [["ID", "SOURCE", "EVENT", "RECEIVED", "BYTES", "FORWARD", "ATTEMPTS", "LAST ERROR"]]
        for event in page.events {
            let forward = event.forward?.delivery
            rows.append([
                event.id, event.source, TextTable.clip(event.eventID, 36), TextTable.date(event.receivedAt),
                String(event.bytes), forward?.status ?? "not forwarded", forward.map { String($0.attemptCount) } ?? "",
                TextTable.clip(forward?.lastError ?? "", 48),
            ])
        }
        var output = TextTable.render(rows)
        if let cursor = page.nextCursor {
            output += "\nmore: --cursor \(cursor)"
        }
        return output
    }

    /// One event: its fields, its forward's, and the forward's attempts.
    public static func show(_ event: WebhookEventView) -> String {
        var lines = TextTable.fields([
            ("id", event.id), ("source", event.source), ("event id", event.eventID),
            ("received", TextTable.date(event.receivedAt)), ("bytes", String(event.bytes)),
        ])
        guard let forward = event.forward else {
            lines.append("forward         none (the source does not forward)")
            return lines.joined(separator: "\n")
        }
        let delivery = forward.delivery
        lines += TextTable.fields([
            ("forward", delivery.id), ("forward status", delivery.status),
            ("next attempt", TextTable.date(delivery.nextAttemptAt)), ("last error", delivery.lastError ?? ""),
        ])
        lines.append("")
        lines.append(DeliveryTable.attempts(forward.attempts ?? []))
        return lines.joined(separator: "\n")
    }

    /// A replay: the event and its new forward.
    public static func replayed(_ replay: WebhookReplay) -> String {
        "\(replay.id): forwarded again as \(replay.forward.id) (\(replay.forward.status))"
    }
}
