public import Foundation
import GRDB

extension SQLiteStore: ConfirmationStore, EscalationStore {
    /// Migration `v7-confirmations`: the inbox event that confirmed or rejected a delivery, the
    /// provider's reason for a rejection, and when "still trying" is due by age; the index a
    /// confirmation finds its deliveries by, and the one the age escalation reads.
    static let confirmationSchema = """
        ALTER TABLE deliveries ADD COLUMN ack_event TEXT;
        ALTER TABLE deliveries ADD COLUMN ack_rejection TEXT;
        ALTER TABLE deliveries ADD COLUMN escalate_at INTEGER;
        CREATE INDEX deliveries_key ON deliveries(upstream, idempotency_key);
        CREATE INDEX deliveries_escalate ON deliveries(upstream, escalate_at)
            WHERE escalate_at IS NOT NULL AND escalated = 0 AND status = 'pending';
        """

    /// Run by ``finish(id:lease:outcome:)`` on the row it just recorded (`?` its id): a
    /// confirmation or rejection noted while the attempt was in flight settles it now.
    static let settleNoted = """
        UPDATE deliveries SET
            status = CASE WHEN ack_rejection IS NULL THEN 'acknowledged' ELSE 'dead' END,
            due_at = NULL,
            acknowledged_at = CASE WHEN ack_rejection IS NULL
                THEN COALESCE(acknowledged_at, ack_received_at, updated_at) ELSE acknowledged_at END,
            last_error = COALESCE(ack_rejection, last_error)
        WHERE id = ? AND ack_event IS NOT NULL AND status IN ('pending', 'delivered', 'dead', 'acknowledged')
        """

    /// A row a confirmation only notes: its first attempt is in flight and no 2xx was recorded.
    private static let noted = "(status = 'in_flight' AND delivered_at IS NULL)"
    /// The rejection that decides the row: the one noted first, else this event's.
    private static let rejection = "(CASE WHEN ack_event IS NULL THEN :rejection ELSE ack_rejection END)"

    public func confirm(_ confirmation: DeliveryConfirmation) async throws(StoreError) -> [Delivery] {
        try await writing("apply a confirmation to the deliveries of \(confirmation.upstream)") { db in
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM deliveries
                    WHERE upstream = ? AND idempotency_key = ? AND status IN ('pending', 'in_flight', 'delivered')
                    ORDER BY rowid
                    """,
                arguments: [confirmation.upstream, confirmation.idempotencyKey]
            )
            guard !ids.isEmpty else { return [] }
            let list = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            var named: [String: (any DatabaseValueConvertible)?] = [
                "at": confirmation.at.storeMilliseconds,
                "rejection": confirmation.rejection,
                "event": confirmation.event,
            ]
            for (index, id) in ids.enumerated() { named["id\(index)"] = id }
            let idList = ids.indices.map { ":id\($0)" }.joined(separator: ", ")
            // Every SET expression reads the row as it was before this statement.
            try db.execute(
                sql: """
                    UPDATE deliveries SET
                        status = CASE WHEN \(Self.noted) THEN status
                            WHEN \(Self.rejection) IS NULL THEN 'acknowledged' ELSE 'dead' END,
                        due_at = CASE WHEN \(Self.noted) THEN due_at ELSE NULL END,
                        lease_owner = CASE WHEN \(Self.noted) THEN lease_owner ELSE NULL END,
                        acknowledged_at = CASE WHEN \(Self.noted) OR \(Self.rejection) IS NOT NULL
                            THEN acknowledged_at ELSE COALESCE(acknowledged_at, :at) END,
                        ack_received_at = CASE WHEN \(Self.rejection) IS NULL
                            THEN COALESCE(ack_received_at, :at) ELSE ack_received_at END,
                        last_error = CASE WHEN \(Self.noted) OR \(Self.rejection) IS NULL
                            THEN last_error ELSE \(Self.rejection) END,
                        ack_rejection = \(Self.rejection),
                        ack_event = COALESCE(ack_event, :event),
                        updated_at = :at
                    WHERE id IN (\(idList))
                    """,
                arguments: StatementArguments(named)
            )
            return try Row.fetchAll(
                db,
                sql: "SELECT \(Self.columns) FROM deliveries WHERE id IN (\(list)) ORDER BY rowid",
                arguments: StatementArguments(ids)
            ).map(Self.delivery)
        }
    }

    public func escalateAged(upstreams: [String], now: Date) async throws(StoreError) -> [Delivery] {
        guard !upstreams.isEmpty else { return [] }
        return try await writing("escalate deliveries by age") { db in
            let list = Array(repeating: "?", count: upstreams.count).joined(separator: ", ")
            var arguments = StatementArguments(upstreams)
            arguments += [now.storeMilliseconds]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.columns) FROM deliveries
                    WHERE upstream IN (\(list)) AND escalate_at IS NOT NULL AND escalated = 0 AND status = 'pending'
                        AND escalate_at <= ?
                    ORDER BY escalate_at
                    """,
                arguments: arguments
            )
            var escalated: [Delivery] = []
            for row in rows {
                var delivery = try Self.delivery(row)
                try db.execute(sql: "UPDATE deliveries SET escalated = 1 WHERE id = ?", arguments: [delivery.id])
                delivery.escalated = true
                escalated.append(delivery)
            }
            return escalated
        }
    }

    public func nextEscalation(upstreams: [String]) async throws(StoreError) -> Date? {
        guard !upstreams.isEmpty else { return nil }
        return try await reading("find the next escalation by age") { db in
            let list = Array(repeating: "?", count: upstreams.count).joined(separator: ", ")
            return try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(escalate_at) FROM deliveries
                    WHERE upstream IN (\(list)) AND escalate_at IS NOT NULL AND escalated = 0 AND status = 'pending'
                    """,
                arguments: StatementArguments(upstreams)
            ).map(Date.init(storeMilliseconds:))
        }
    }
}
