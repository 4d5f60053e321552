import Foundation
import GRDB

extension SQLiteStore: WebhookStore {
    private static let eventColumns = "id, source, event_id, headers, body, received_at, delivery_id"

    public func ingest(_ batch: [NewWebhookEvent]) async throws(StoreError) -> [IngestOutcome] {
        try await writing("store \(batch.count) webhook events") { db in
            var outcomes: [IngestOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for item in batch {
                if let existing = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.eventColumns) FROM webhook_events WHERE source = ? AND event_id = ?",
                    arguments: [item.source, item.eventID]
                ) {
                    outcomes.append(.repeated(try Self.event(existing)))
                    continue
                }
                if let digest = item.bodyDigest, let first = try Self.event(withDigest: digest, of: item, in: db) {
                    outcomes.append(.repeated(first))
                    continue
                }
                let forward = try item.forward.map { try Self.insertRow($0, into: db) }
                try db.execute(
                    sql: """
                        INSERT INTO webhook_events (id, source, event_id, headers, body, received_at, delivery_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        item.id, item.source, item.eventID, try Self.encode(item.headers), item.body,
                        item.receivedAt.storeMilliseconds, forward?.id,
                    ]
                )
                if let digest = item.bodyDigest {
                    // The first event with this body within its window; a digest past its
                    // window (not purged yet) is replaced.
                    try db.execute(
                        sql: """
                            INSERT INTO webhook_body_digests (source, digest, event_id, expires_at) VALUES (?, ?, ?, ?)
                            ON CONFLICT (source, digest) DO UPDATE SET event_id = excluded.event_id,
                                expires_at = excluded.expires_at
                            """,
                        arguments: [item.source, digest.sha256, item.id, digest.expiresAt.storeMilliseconds]
                    )
                }
                outcomes.append(
                    .stored(
                        WebhookEvent(
                            id: item.id,
                            source: item.source,
                            eventID: item.eventID,
                            headers: item.headers,
                            body: item.body,
                            receivedAt: item.receivedAt,
                            deliveryID: forward?.id
                        )
                    )
                )
            }
            return outcomes
        }
    }

    public func event(id: String) async throws(StoreError) -> WebhookEvent? {
        try await reading("read webhook event \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.eventColumns) FROM webhook_events WHERE id = ?", arguments: [id])
                .map(Self.event)
        }
    }

    public func events(
        _ query: WebhookEventQuery
    ) async throws(StoreError) -> (
        events: [(WebhookEvent, Delivery?)], nextCursor: String?
    ) {
        let page = try await reading("list webhook events") { db -> ([WebhookEvent], [String: Delivery], String?) in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let source = query.source {
                conditions.append("e.source = ?")
                arguments += [source]
            }
            if let status = query.forwardStatus {
                conditions.append("d.status = ?")
                arguments += [status.rawValue]
            }
            if let cursor = query.cursor {
                conditions.append("e.id < ?")
                arguments += [cursor]
            }
            let limit = max(1, min(query.limit, 500))
            arguments += [limit + 1]
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let columns = Self.eventColumns.split(separator: ",").map { "e." + $0.trimmingCharacters(in: .whitespaces) }
            var rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(columns.joined(separator: ", ")) FROM webhook_events e
                    LEFT JOIN deliveries d ON d.id = e.delivery_id
                    \(filter) ORDER BY e.id DESC LIMIT ?
                    """,
                arguments: arguments
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let events = try rows.map(Self.event)
            var forwards: [String: Delivery] = [:]
            for id in events.compactMap(\.deliveryID) {
                if let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM deliveries WHERE id = ?",
                    arguments: [id]
                ) {
                    forwards[id] = try Self.delivery(row)
                }
            }
            return (events, forwards, more ? events.last?.id : nil)
        }
        return (page.0.map { ($0, $0.deliveryID.flatMap { page.1[$0] }) }, page.2)
    }

    public func reforward(eventID: String, as delivery: NewDelivery) async throws(StoreError) -> ReforwardOutcome {
        // One write transaction: SQLite's single writer serializes it against every other
        // replay, so the check below and the insert cannot be separated.
        try await writing("replay webhook event \(eventID)") { db in
            guard
                let event = try Row.fetchOne(
                    db,
                    sql: "SELECT delivery_id FROM webhook_events WHERE id = ?",
                    arguments: [eventID]
                )
            else { return .notFound }
            if let current: String = event["delivery_id"],
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM deliveries WHERE id = ?",
                    arguments: [current]
                )
            {
                let forward = try Self.delivery(row)
                if forward.status == .pending || forward.status == .inFlight {
                    return .stillForwarding(forward)
                }
            }
            let stored = try Self.insertRow(delivery, into: db)
            try db.execute(
                sql: "UPDATE webhook_events SET delivery_id = ? WHERE id = ?",
                arguments: [stored.id, eventID]
            )
            return .reforwarded(stored)
        }
    }

    /// The stored event of `item`'s source whose body has `digest`, if that digest has not
    /// expired when `item` arrived (and the event has not been purged).
    private static func event(
        withDigest digest: BodyDigest,
        of item: NewWebhookEvent,
        in db: Database
    ) throws
        -> WebhookEvent?
    {
        guard
            let id = try String.fetchOne(
                db,
                sql: "SELECT event_id FROM webhook_body_digests WHERE source = ? AND digest = ? AND expires_at > ?",
                arguments: [item.source, digest.sha256, item.receivedAt.storeMilliseconds]
            )
        else { return nil }
        return try Row.fetchOne(db, sql: "SELECT \(eventColumns) FROM webhook_events WHERE id = ?", arguments: [id])
            .map(event)
    }

    private static func event(_ row: Row) throws -> WebhookEvent {
        let headersText: String = row["headers"]
        let headers: [DeliveryHeader]
        do {
            headers = try JSONDecoder().decode([DeliveryHeader].self, from: Data(headersText.utf8))
        } catch {
            throw StoreError(.corrupt, "webhook event \(row["id"] as String) has unreadable headers", underlying: error)
        }
        return WebhookEvent(
            id: row["id"],
            source: row["source"],
            eventID: row["event_id"],
            headers: headers,
            body: row["body"],
            receivedAt: Date(storeMilliseconds: row["received_at"]),
            deliveryID: row["delivery_id"]
        )
    }
}
