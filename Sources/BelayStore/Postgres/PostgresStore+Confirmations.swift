public import Foundation
import Logging
import PostgresNIO

extension PostgresStore: ConfirmationStore, EscalationStore {
    /// Migration `pg2-confirmations`, as SQLite's `v7-confirmations`: the inbox event that
    /// confirmed or rejected a delivery, the provider's reason for a rejection, when "still
    /// trying" is due by age, and the indexes a confirmation and the age escalation read.
    static let confirmationSchema = [
        "ALTER TABLE deliveries ADD COLUMN ack_event TEXT",
        "ALTER TABLE deliveries ADD COLUMN ack_rejection TEXT",
        "ALTER TABLE deliveries ADD COLUMN escalate_at BIGINT",
        "CREATE INDEX deliveries_key ON deliveries (upstream, idempotency_key)",
        """
        CREATE INDEX deliveries_escalate ON deliveries (upstream, escalate_at)
            WHERE escalate_at IS NOT NULL AND NOT escalated AND status = 'pending'
        """,
    ]

    public func confirm(_ confirmation: DeliveryConfirmation) async throws(StoreError) -> [Delivery] {
        let at = confirmation.at.storeMilliseconds
        let rejection = confirmation.rejection
        let event = confirmation.event
        // One statement: each row is locked, and re-read after any writer that held it commits
        // (READ COMMITTED), so a worker's record of the attempt and this confirmation see each
        // other whichever commits first. Every SET expression reads the row as it was.
        let noted = "(status = 'in_flight' AND delivered_at IS NULL)"
        return try await transaction("apply a confirmation to the deliveries of \(confirmation.upstream)") {
            connection in
            let rows = try await connection.rows(
                """
                UPDATE deliveries SET
                    status = CASE WHEN \(unescaped: noted) THEN status
                        WHEN (CASE WHEN ack_event IS NULL THEN \(rejection)::text ELSE ack_rejection END) IS NULL
                        THEN 'acknowledged' ELSE 'dead' END,
                    due_at = CASE WHEN \(unescaped: noted) THEN due_at ELSE NULL END,
                    lease_owner = CASE WHEN \(unescaped: noted) THEN lease_owner ELSE NULL END,
                    acknowledged_at = CASE
                        WHEN \(unescaped: noted)
                            OR (CASE WHEN ack_event IS NULL THEN \(rejection)::text ELSE ack_rejection END) IS NOT NULL
                        THEN acknowledged_at ELSE COALESCE(acknowledged_at, \(at)) END,
                    ack_received_at = CASE WHEN \(rejection)::text IS NULL
                        THEN COALESCE(ack_received_at, \(at)) ELSE ack_received_at END,
                    last_error = CASE
                        WHEN \(unescaped: noted)
                            OR (CASE WHEN ack_event IS NULL THEN \(rejection)::text ELSE ack_rejection END) IS NULL
                        THEN last_error
                        ELSE (CASE WHEN ack_event IS NULL THEN \(rejection)::text ELSE ack_rejection END) END,
                    ack_rejection = CASE WHEN ack_event IS NULL THEN \(rejection)::text ELSE ack_rejection END,
                    ack_event = COALESCE(ack_event, \(event)),
                    updated_at = \(at)
                WHERE upstream = \(confirmation.upstream) AND idempotency_key = \(confirmation.idempotencyKey)
                    AND status IN ('pending', 'in_flight', 'delivered')
                RETURNING \(unescaped: Self.columns), seq
                """,
                logger: logger
            )
            return try rows.map { row in (try row.value("seq", as: Int64.self), try Self.delivery(row)) }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func escalateAged(upstreams: [String], now: Date) async throws(StoreError) -> [Delivery] {
        guard !upstreams.isEmpty else { return [] }
        // A row another instance is escalating is waited for and then no longer matches: each
        // delivery is escalated (and alerted) once.
        return try await transaction("escalate deliveries by age") { connection in
            try await connection.rows(
                """
                UPDATE deliveries SET escalated = TRUE
                WHERE upstream = ANY(\(upstreams)) AND escalate_at IS NOT NULL AND NOT escalated
                    AND status = 'pending' AND escalate_at <= \(now.storeMilliseconds)
                RETURNING \(unescaped: Self.columns), escalate_at AS escalate_order
                """,
                logger: logger
            ).map { row in (try row.value("escalate_order", as: Int64.self), try Self.delivery(row)) }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func nextEscalation(upstreams: [String]) async throws(StoreError) -> Date? {
        guard !upstreams.isEmpty else { return nil }
        return try await reading("find the next escalation by age") { connection in
            try await connection.rows(
                """
                SELECT MIN(escalate_at) AS next FROM deliveries
                WHERE upstream = ANY(\(upstreams)) AND escalate_at IS NOT NULL AND NOT escalated
                    AND status = 'pending'
                """,
                logger: logger
            ).first?.value("next", as: Int64?.self).map(Date.init(storeMilliseconds:))
        }
    }
}
