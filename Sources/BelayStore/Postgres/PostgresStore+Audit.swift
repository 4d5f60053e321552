public import Foundation
import Logging
import PostgresNIO

extension PostgresStore: AuditStore {
    private static let auditColumns = """
        seq, request_id, upstream, consumer, method, path, received_at, duration_ms, status, outcome, problem,
        stale_age_ms, trail, correlation_id
        """
    private static let auditInsertColumns = 14

    public func insertAudit(_ batch: [AuditRecord]) async throws(StoreError) {
        guard !batch.isEmpty else { return }
        // One statement per chunk (PostgreSQL takes at most 65,535 values in one), all of them
        // in one transaction, as the protocol promises.
        var statements: [PostgresQuery] = []
        var total: Int64 = 0
        for chunk in stride(from: 0, to: batch.count, by: 2_000).map({ batch[$0..<min($0 + 2_000, batch.count)] }) {
            var bindings = PostgresBindings(capacity: chunk.count * Self.auditInsertColumns)
            var values: [String] = []
            for record in chunk {
                let trail = AuditTrailJSON.encode(record)
                let size = SQLiteStore.estimatedSize(record, trailBytes: trail.utf8.count)
                total += size
                let first = bindings.count + 1
                bindings.append(record.requestID)
                bindings.append(record.upstream)
                bindings.append(record.consumer)
                bindings.append(record.method)
                bindings.append(record.path)
                bindings.append(record.receivedAt.storeMilliseconds)
                bindings.append(record.durationMilliseconds)
                bindings.append(Int64(record.status))
                bindings.append(record.outcome)
                bindings.append(record.problem)
                bindings.append(record.staleAgeMilliseconds)
                bindings.append(trail)
                bindings.append(size)
                bindings.append(record.correlationID)
                values.append(
                    "(" + (first..<(first + Self.auditInsertColumns)).map { "$\($0)" }.joined(separator: ", ") + ")"
                )
            }
            let sql = """
                INSERT INTO audit_requests (request_id, upstream, consumer, method, path, received_at, duration_ms,
                    status, outcome, problem, stale_age_ms, trail, size, correlation_id)
                VALUES \(values.joined(separator: ", "))
                """
            statements.append(PostgresQuery(unsafeSQL: sql, binds: bindings))
        }
        try await transaction("store \(batch.count) audit records") { [statements, total] connection in
            for statement in statements { try await connection.run(statement, logger: logger) }
            try await connection.run("UPDATE audit_usage SET bytes = bytes + \(total) WHERE id = 1", logger: logger)
        }
    }

    public func auditRecord(requestID: String) async throws(StoreError) -> AuditRecord? {
        try await reading("read the audit record of request \(requestID)") { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.auditColumns) FROM audit_requests WHERE request_id = \(requestID)
                ORDER BY seq DESC LIMIT 1
                """,
                logger: logger
            ).first.map(Self.auditRecord)
        }
    }

    public func auditRecords(_ query: AuditQuery) async throws(StoreError) -> AuditPage {
        try await reading("list audit records") { connection in
            var conditions: [String] = []
            var bindings = PostgresBindings()
            func bind(_ value: String) -> String {
                bindings.append(value)
                return "$\(bindings.count)"
            }
            func bind(_ value: Int64) -> String {
                bindings.append(value)
                return "$\(bindings.count)"
            }
            if let upstream = query.upstream { conditions.append("upstream = \(bind(upstream))") }
            if let outcome = query.outcome { conditions.append("outcome = \(bind(outcome))") }
            if let since = query.since { conditions.append("received_at >= \(bind(since.storeMilliseconds))") }
            if let correlationID = query.correlationID {
                conditions.append("correlation_id = \(bind(correlationID))")
            }
            if let consumer = query.consumer { conditions.append("consumer = \(bind(consumer))") }
            if let cursor = query.cursor {
                // An unreadable cursor is an empty page, never an error or the first page again.
                conditions.append("seq < \(bind(Int64(cursor) ?? 0))")
            }
            let limit = max(1, min(query.limit, 500))
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try await connection.rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT \(Self.auditColumns) FROM audit_requests \(filter) ORDER BY seq DESC LIMIT \(limit + 1)
                        """,
                    binds: bindings
                ),
                logger: logger
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let next: String? = more ? try rows.last.map { String(try $0.value("seq", as: Int64.self)) } : nil
            return AuditPage(records: try rows.map(Self.auditRecord), nextCursor: next)
        }
    }

    public func pruneAudit(olderThan date: Date, maxBytes: Int64) async throws(StoreError) -> AuditPruning {
        let cutoff = date.storeMilliseconds
        let chunk = SQLiteStore.auditPruneChunk
        var expired = 0
        var trimmed = 0
        // By age, in chunks: each transaction is short.
        while true {
            let deleted = try await transaction("delete expired audit records") { connection -> Int in
                let rows = try await connection.rows(
                    """
                    WITH gone AS (
                        DELETE FROM audit_requests WHERE seq IN (
                            SELECT seq FROM audit_requests WHERE received_at < \(cutoff)
                            ORDER BY received_at, seq LIMIT \(chunk))
                        RETURNING size
                    )
                    SELECT COUNT(*) AS count, COALESCE(SUM(size), 0)::BIGINT AS freed FROM gone
                    """,
                    logger: logger
                )
                let count = try rows.first?.value("count", as: Int.self) ?? 0
                let freed = try rows.first?.value("freed", as: Int64.self) ?? 0
                try await connection.run(
                    "UPDATE audit_usage SET bytes = GREATEST(bytes - \(freed), 0) WHERE id = 1",
                    logger: logger
                )
                return count
            }
            expired += deleted
            if deleted < chunk { break }
        }
        // By size: the oldest written first, until the estimate is within the budget.
        while true {
            let deleted = try await transaction("trim the audit trail to its size budget") { connection -> Int in
                // The running total's row is locked: two instances trimming at once take turns.
                let bytes =
                    try await connection.rows(
                        "SELECT bytes FROM audit_usage WHERE id = 1 FOR UPDATE",
                        logger: logger
                    ).first?.value("bytes", as: Int64.self) ?? 0
                guard bytes > maxBytes else { return 0 }
                let rows = try await connection.rows(
                    "SELECT seq, size FROM audit_requests ORDER BY seq LIMIT \(chunk)",
                    logger: logger
                )
                guard !rows.isEmpty else {
                    // Nothing left to delete: the running total drifted; start it again from zero.
                    try await connection.run("UPDATE audit_usage SET bytes = 0 WHERE id = 1", logger: logger)
                    return 0
                }
                var freed: Int64 = 0
                var last: Int64 = 0
                var count = 0
                for row in rows {
                    freed += try row.value("size", as: Int64.self)
                    last = try row.value("seq")
                    count += 1
                    if bytes - freed <= maxBytes { break }
                }
                try await connection.run("DELETE FROM audit_requests WHERE seq <= \(last)", logger: logger)
                try await connection.run(
                    "UPDATE audit_usage SET bytes = GREATEST(bytes - \(freed), 0) WHERE id = 1",
                    logger: logger
                )
                return count
            }
            trimmed += deleted
            if deleted < chunk { break }
        }
        return AuditPruning(expired: expired, trimmed: trimmed, bytes: try await auditBytes())
    }

    public func auditBytes() async throws(StoreError) -> Int64 {
        try await reading("read the audit trail's size") { connection in
            try await connection.rows("SELECT bytes FROM audit_usage WHERE id = 1", logger: logger)
                .first?.value("bytes", as: Int64.self) ?? 0
        }
    }

    private static func auditRecord(_ row: PostgresRandomAccessRow) throws -> AuditRecord {
        let requestID = try row.value("request_id", as: String.self)
        let trail: AuditTrailJSON.Trail
        do {
            trail = try JSONDecoder().decode(
                AuditTrailJSON.Trail.self,
                from: Data(try row.value("trail", as: String.self).utf8)
            )
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(
                .corrupt,
                "the audit record of request \(requestID) has an unreadable trail",
                underlying: error
            )
        }
        return AuditRecord(
            requestID: requestID,
            upstream: try row.value("upstream"),
            consumer: try row.value("consumer"),
            method: try row.value("method"),
            path: try row.value("path"),
            receivedAt: Date(storeMilliseconds: try row.value("received_at")),
            durationMilliseconds: try row.value("duration_ms"),
            status: try row.value("status"),
            outcome: try row.value("outcome"),
            problem: try row.value("problem"),
            staleAgeMilliseconds: try row.value("stale_age_ms"),
            attempts: trail.attempts,
            decisions: trail.decisions,
            correlationID: try row.value("correlation_id")
        )
    }
}
