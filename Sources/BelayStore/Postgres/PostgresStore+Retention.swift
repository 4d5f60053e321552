public import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    /// The finished deliveries (nothing will send them again): delivered without an
    /// acknowledgement required, acknowledged, cancelled or dead.
    static let finishedCondition =
        "(status IN ('acknowledged', 'cancelled', 'dead') OR (status = 'delivered' AND NOT require_ack))"

    public func purgeFinished(updatedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        let deleted = try await transaction("purge finished deliveries") { connection -> Int in
            // The condition repeats the `deliveries_finished` index's, so the selection is one
            // range of it; SKIP LOCKED: a row another instance is purging right now is its own.
            let ids = try await connection.rows(
                """
                SELECT id FROM deliveries
                WHERE status <> 'pending' AND status <> 'in_flight' AND updated_at < \(date.storeMilliseconds)
                    AND \(unescaped: Self.finishedCondition)
                ORDER BY updated_at LIMIT \(max(limit, 1))
                FOR UPDATE SKIP LOCKED
                """,
                logger: logger
            ).map { try $0.value("id", as: String.self) }
            guard !ids.isEmpty else { return 0 }
            try await connection.run(
                "UPDATE webhook_events SET delivery_id = NULL WHERE delivery_id = ANY(\(ids))",
                logger: logger
            )
            try await connection.run("DELETE FROM delivery_attempts WHERE delivery_id = ANY(\(ids))", logger: logger)
            return try await connection.run("DELETE FROM deliveries WHERE id = ANY(\(ids)) RETURNING 1", logger: logger)
        }
        if deleted > 0 { statusCounts.invalidate() }
        return deleted
    }

    public func purgeEvents(receivedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        try await transaction("purge old webhook events") { connection -> Int in
            let ids = try await connection.rows(
                """
                SELECT e.id FROM webhook_events e LEFT JOIN deliveries d ON d.id = e.delivery_id
                WHERE e.received_at < \(date.storeMilliseconds) AND (d.id IS NULL
                    OR d.status IN ('acknowledged', 'cancelled', 'dead') OR (d.status = 'delivered' AND NOT d.require_ack))
                ORDER BY e.received_at LIMIT \(max(limit, 1))
                FOR UPDATE OF e SKIP LOCKED
                """,
                logger: logger
            ).map { try $0.value("id", as: String.self) }
            guard !ids.isEmpty else { return 0 }
            return try await connection.run(
                "DELETE FROM webhook_events WHERE id = ANY(\(ids)) RETURNING 1",
                logger: logger
            )
        }
    }

    public func purgeBodyDigests(expiredBy date: Date, limit: Int) async throws(StoreError) -> Int {
        try await transaction("purge expired webhook body digests") { connection -> Int in
            try await connection.run(
                """
                DELETE FROM webhook_body_digests WHERE (source, digest) IN (
                    SELECT source, digest FROM webhook_body_digests WHERE expires_at <= \(date.storeMilliseconds)
                    ORDER BY expires_at LIMIT \(max(limit, 1)) FOR UPDATE SKIP LOCKED)
                RETURNING 1
                """,
                logger: logger
            )
        }
    }

    /// Runs `body` only if no other instance is running it (a session advisory lock named
    /// `name`, per schema); returns nil without running it otherwise. Retention runs on one
    /// instance at a time this way.
    public func exclusively<T: Sendable>(
        _ name: String,
        _ body: @Sendable () async throws(StoreError) -> T
    ) async throws(StoreError) -> T? {
        // The lock is held by one pooled connection, kept for the run.
        let key = "belay.\(name).\(location.schema)"
        do {
            return try await client.withConnection { connection -> T? in
                let rows = try await connection.rows(
                    "SELECT pg_try_advisory_lock(hashtext(\(key))) AS got",
                    logger: logger
                )
                guard try rows.first?.value("got", as: Bool.self) == true else { return nil }
                let result: Result<T, StoreError>
                do throws(StoreError) {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                try await connection.run("SELECT pg_advisory_unlock(hashtext(\(key)))", logger: logger)
                return try result.get()
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot take the \(name) lock", underlying: PostgresFailure(error))
        }
    }
}
