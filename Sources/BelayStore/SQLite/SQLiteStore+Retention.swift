public import Foundation
import GRDB

extension SQLiteStore {
    /// The `v6-retention` schema: what retention and replay protection need.
    ///
    /// - `deliveries_finished`: the deliveries no longer pending or in flight, by their last
    ///   update, the order they are purged in. Partial, on the simplest condition that holds
    ///   every finished delivery: a delivery enters it when it is first delivered (or
    ///   cancelled, or dead), and accepts and claims of live deliveries add no index work
    ///   (measured: a condition listing the finished statuses cost ~2.5 µs per claimed row,
    ///   this one nothing measurable; docs/BENCHMARKS.md).
    /// - `webhook_events_delivery`: the event that names a delivery (purging a delivery
    ///   unlinks it; the foreign key's check needs it too), `webhook_events_received`: events
    ///   by arrival, the order they are purged in.
    /// - `webhook_body_digests`: the SHA-256 of each stored body of a scheme that signs no
    ///   timestamp (`github`, `hmac`), per source, until its replay window ends.
    static let retentionSchema = """
        CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE \(finishedIndexCondition);
        CREATE INDEX webhook_events_delivery ON webhook_events(delivery_id);
        CREATE INDEX webhook_events_received ON webhook_events(received_at);
        CREATE TABLE webhook_body_digests (
            source TEXT NOT NULL,
            digest TEXT NOT NULL,
            event_id TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (source, digest)
        ) WITHOUT ROWID;
        CREATE INDEX webhook_body_digests_expiry ON webhook_body_digests(expires_at);
        """

    /// True for a row of `deliveries` that nothing will send again: delivered without an
    /// acknowledgement required, acknowledged, cancelled or dead. The exact text of the
    /// `deliveries_finished` index's condition, so that queries repeating it can use the index.
    static let finishedCondition =
        "(status IN ('acknowledged', 'cancelled', 'dead') OR (status = 'delivered' AND require_ack = 0))"

    /// The condition of the `deliveries_finished` index: every finished delivery meets it
    /// (so do deliveries delivered and awaiting their acknowledgement, which the purge skips).
    static let finishedIndexCondition = "status != 'pending' AND status != 'in_flight'"

    /// The purge's selection: the oldest `?` finished deliveries last updated before `?`, one
    /// range of `deliveries_finished` in purge order (INDEXED BY: without statistics the
    /// planner would rather read each finished status through `deliveries_status` and sort).
    static let purgeSelection = """
        SELECT id FROM deliveries INDEXED BY deliveries_finished
        WHERE \(finishedIndexCondition) AND updated_at < ? AND \(finishedCondition)
        ORDER BY updated_at LIMIT ?
        """

    /// Deletes up to `limit` finished deliveries last updated before `date`, oldest first,
    /// with their attempts, in one transaction; an inbox event that names one as its forward
    /// keeps no link to it. Returns how many were deleted.
    public func purgeFinished(updatedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        let deleted = try await writing("purge finished deliveries") { db -> Int in
            let ids = try String.fetchAll(
                db,
                sql: Self.purgeSelection,
                arguments: [date.storeMilliseconds, max(limit, 1)]
            )
            guard !ids.isEmpty else { return 0 }
            let list = databaseQuestionMarks(count: ids.count)
            let arguments = StatementArguments(ids)
            try db.execute(
                sql: "UPDATE webhook_events SET delivery_id = NULL WHERE delivery_id IN (\(list))",
                arguments: arguments
            )
            try db.execute(sql: "DELETE FROM delivery_attempts WHERE delivery_id IN (\(list))", arguments: arguments)
            try db.execute(sql: "DELETE FROM deliveries WHERE id IN (\(list))", arguments: arguments)
            return db.changesCount
        }
        if deleted > 0 { statusCounts.invalidate() }
        return deleted
    }

    /// Deletes up to `limit` inbox events received before `date`, oldest first, in one
    /// transaction: only events without a forward, or whose forward is finished or gone.
    /// Returns how many were deleted.
    public func purgeEvents(receivedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        try await writing("purge old webhook events") { db -> Int in
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT e.id FROM webhook_events e LEFT JOIN deliveries d ON d.id = e.delivery_id
                    WHERE e.received_at < ? AND (d.id IS NULL OR d.status IN ('acknowledged', 'cancelled', 'dead')
                        OR (d.status = 'delivered' AND d.require_ack = 0))
                    ORDER BY e.received_at LIMIT ?
                    """,
                arguments: [date.storeMilliseconds, max(limit, 1)]
            )
            guard !ids.isEmpty else { return 0 }
            try db.execute(
                sql: "DELETE FROM webhook_events WHERE id IN (\(databaseQuestionMarks(count: ids.count)))",
                arguments: StatementArguments(ids)
            )
            return db.changesCount
        }
    }

    /// Deletes up to `limit` body digests whose replay window ended at or before `date`, in
    /// one transaction. Returns how many were deleted.
    public func purgeBodyDigests(expiredBy date: Date, limit: Int) async throws(StoreError) -> Int {
        try await writing("purge expired webhook body digests") { db -> Int in
            try db.execute(
                sql: """
                    DELETE FROM webhook_body_digests WHERE (source, digest) IN (
                        SELECT source, digest FROM webhook_body_digests WHERE expires_at <= ?
                        ORDER BY expires_at LIMIT ?)
                    """,
                arguments: [date.storeMilliseconds, max(limit, 1)]
            )
            return db.changesCount
        }
    }
}
