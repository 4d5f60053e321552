import Foundation
import Logging
import PostgresNIO

extension PostgresStore: WebhookStore {
    private static let eventColumns = "id, source, event_id, headers, body, received_at, delivery_id"

    public func ingest(_ batch: [NewWebhookEvent]) async throws(StoreError) -> [IngestOutcome] {
        guard !batch.isEmpty else { return [] }
        return try await transaction("store \(batch.count) webhook events") { connection in
            var outcomes: [IngestOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for item in batch {
                outcomes.append(try await self.ingest(item, on: connection))
            }
            return outcomes
        }
    }

    /// Stores one event inside the batch's transaction, under a savepoint: a repeat found
    /// after a write (another instance stored the same body a moment ago) undoes that write.
    private func ingest(_ item: NewWebhookEvent, on connection: PostgresConnection) async throws -> IngestOutcome {
        try await connection.run("SAVEPOINT event", logger: logger)
        // The event first: two instances storing one event id at once meet on the unique
        // index, and the second waits for the first to commit, then stores nothing.
        let headers = try Self.encode(item.headers)
        let stored = try await connection.run(
            """
            INSERT INTO webhook_events (id, source, event_id, headers, body, received_at)
            VALUES (\(item.id), \(item.source), \(item.eventID), \(headers), \(item.body),
                \(item.receivedAt.storeMilliseconds))
            ON CONFLICT (source, event_id) DO NOTHING
            RETURNING 1
            """,
            logger: logger
        )
        if stored == 0 {
            try await connection.run("RELEASE SAVEPOINT event", logger: logger)
            guard
                let existing = try await connection.rows(
                    """
                    SELECT \(unescaped: Self.eventColumns) FROM webhook_events
                    WHERE source = \(item.source) AND event_id = \(item.eventID)
                    """,
                    logger: logger
                ).first
            else { throw StoreError(.io, "webhook event \(item.eventID) was neither stored nor found") }
            return .repeated(try Self.event(existing))
        }
        if let digest = item.bodyDigest {
            // The first event with this body within its window takes the digest (a digest past
            // its window, not purged yet, is replaced); a later one finds it taken.
            let received = item.receivedAt.storeMilliseconds
            let taken = try await connection.run(
                """
                INSERT INTO webhook_body_digests (source, digest, event_id, expires_at)
                VALUES (\(item.source), \(digest.sha256), \(item.id), \(digest.expiresAt.storeMilliseconds))
                ON CONFLICT (source, digest) DO UPDATE SET event_id = excluded.event_id,
                    expires_at = excluded.expires_at
                WHERE webhook_body_digests.expires_at <= \(received)
                RETURNING 1
                """,
                logger: logger
            )
            if taken == 0 {
                let first = try await connection.rows(
                    """
                    SELECT \(unescaped: Self.qualifiedEventColumns) FROM webhook_body_digests d
                    JOIN webhook_events e ON e.id = d.event_id
                    WHERE d.source = \(item.source) AND d.digest = \(digest.sha256)
                    """,
                    logger: logger
                ).first
                if let first {
                    try await connection.run("ROLLBACK TO SAVEPOINT event", logger: logger)
                    try await connection.run("RELEASE SAVEPOINT event", logger: logger)
                    return .repeated(try Self.event(first))
                }
                // Its event was purged: this one takes the digest.
                try await connection.run(
                    """
                    UPDATE webhook_body_digests SET event_id = \(item.id),
                        expires_at = \(digest.expiresAt.storeMilliseconds)
                    WHERE source = \(item.source) AND digest = \(digest.sha256)
                    """,
                    logger: logger
                )
            }
        }
        var forward: Delivery?
        if let delivery = item.forward {
            forward = try await insertRow(delivery, on: connection)
            try await connection.run(
                "UPDATE webhook_events SET delivery_id = \(delivery.id) WHERE id = \(item.id)",
                logger: logger
            )
        }
        try await connection.run("RELEASE SAVEPOINT event", logger: logger)
        return .stored(
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
    }

    private static let qualifiedEventColumns = eventColumns.split(separator: ",")
        .map { "e." + $0.trimmingCharacters(in: .whitespaces) }
        .joined(separator: ", ")

    public func event(id: String) async throws(StoreError) -> WebhookEvent? {
        try await reading("read webhook event \(id)") { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.eventColumns) FROM webhook_events WHERE id = \(id)",
                logger: logger
            ).first.map(Self.event)
        }
    }

    public func events(
        _ query: WebhookEventQuery
    ) async throws(StoreError) -> (
        events: [(WebhookEvent, Delivery?)], nextCursor: String?
    ) {
        let page = try await reading("list webhook events") {
            connection -> ([WebhookEvent], [String: Delivery], String?) in
            var conditions: [String] = []
            var bindings = PostgresBindings()
            func bind(_ value: String) -> String {
                bindings.append(value)
                return "$\(bindings.count)"
            }
            if let source = query.source { conditions.append("e.source = \(bind(source))") }
            if let status = query.forwardStatus { conditions.append("d.status = \(bind(status.rawValue))") }
            if let cursor = query.cursor { conditions.append("e.id < \(bind(cursor))") }
            let limit = max(1, min(query.limit, 500))
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try await connection.rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.qualifiedEventColumns) FROM webhook_events e
                        LEFT JOIN deliveries d ON d.id = e.delivery_id
                        \(filter) ORDER BY e.id DESC LIMIT \(limit + 1)
                        """,
                    binds: bindings
                ),
                logger: logger
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let events = try rows.map(Self.event)
            var forwards: [String: Delivery] = [:]
            let ids = events.compactMap(\.deliveryID)
            if !ids.isEmpty {
                for row in try await connection.rows(
                    "SELECT \(unescaped: Self.columns) FROM deliveries WHERE id = ANY(\(ids))",
                    logger: logger
                ) {
                    let delivery = try Self.delivery(row)
                    forwards[delivery.id] = delivery
                }
            }
            return (events, forwards, more ? events.last?.id : nil)
        }
        return (page.0.map { ($0, $0.deliveryID.flatMap { page.1[$0] }) }, page.2)
    }

    public func reforward(eventID: String, as delivery: NewDelivery) async throws(StoreError) -> ReforwardOutcome {
        try await transaction("replay webhook event \(eventID)") { connection in
            // The event's row is locked until the replay commits: replays of one event take
            // turns, and each reads the forward the one before it stored.
            guard
                let event = try await connection.rows(
                    "SELECT delivery_id FROM webhook_events WHERE id = \(eventID) FOR UPDATE",
                    logger: logger
                ).first
            else { return .notFound }
            if let current = try event.value("delivery_id", as: String?.self),
                let row = try await connection.rows(
                    "SELECT \(unescaped: Self.columns) FROM deliveries WHERE id = \(current)",
                    logger: logger
                ).first
            {
                let forward = try Self.delivery(row)
                if forward.status == .pending || forward.status == .inFlight { return .stillForwarding(forward) }
            }
            let stored = try await insertRow(delivery, on: connection)
            try await connection.run(
                "UPDATE webhook_events SET delivery_id = \(stored.id) WHERE id = \(eventID)",
                logger: logger
            )
            return .reforwarded(stored)
        }
    }

    static func event(_ row: PostgresRandomAccessRow) throws -> WebhookEvent {
        let id = try row.value("id", as: String.self)
        return WebhookEvent(
            id: id,
            source: try row.value("source"),
            eventID: try row.value("event_id"),
            headers: try decodeHeaders(try row.value("headers"), of: "webhook event \(id)"),
            body: try row.value("body"),
            receivedAt: Date(storeMilliseconds: try row.value("received_at")),
            deliveryID: try row.value("delivery_id")
        )
    }
}
