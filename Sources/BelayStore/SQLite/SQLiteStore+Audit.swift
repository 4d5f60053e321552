public import Foundation
import GRDB

extension SQLiteStore: AuditStore {
    /// The estimated bytes a record takes beyond its text: its integer and real columns,
    /// SQLite's record and cell headers, and the keys and row ids of its three index entries
    /// beyond the text they repeat. Checked against the file's growth in
    /// `SQLiteAuditStoreTests`.
    static let auditRowOverhead = 120

    /// Rows deleted per transaction by ``pruneAudit(olderThan:maxBytes:)``.
    static let auditPruneChunk = 2_000

    static let auditColumns = """
        seq, request_id, upstream, consumer, method, path, received_at, duration_ms, status, outcome, problem,
        stale_age_ms, trail, correlation_id
        """

    public func insertAudit(_ batch: [AuditRecord]) async throws(StoreError) {
        guard !batch.isEmpty else { return }
        // Encoded before the transaction, so the write lock is held for the inserts alone.
        let rows = batch.map { record in
            let trail = AuditTrailJSON.encode(record)
            return (record: record, trail: trail, size: Self.estimatedSize(record, trailBytes: trail.utf8.count))
        }
        try await auditWriting("store \(batch.count) audit records") { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO audit_requests (request_id, upstream, consumer, method, path, received_at,
                        duration_ms, status, outcome, problem, stale_age_ms, trail, size, correlation_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            var total: Int64 = 0
            for (record, trail, size) in rows {
                total += size
                try statement.execute(arguments: [
                    record.requestID, record.upstream, record.consumer, record.method, record.path,
                    record.receivedAt.storeMilliseconds, record.durationMilliseconds, record.status, record.outcome,
                    record.problem, record.staleAgeMilliseconds, trail, size, record.correlationID,
                ])
            }
            try db.execute(sql: "UPDATE audit_usage SET bytes = bytes + ? WHERE id = 1", arguments: [total])
        }
    }

    public func auditRecord(requestID: String) async throws(StoreError) -> AuditRecord? {
        try await reading("read the audit record of request \(requestID)") { db in
            try Row.fetchOne(
                db,
                sql: "SELECT \(Self.auditColumns) FROM audit_requests WHERE request_id = ? ORDER BY seq DESC LIMIT 1",
                arguments: [requestID]
            ).map(Self.auditRecord)
        }
    }

    public func auditRecords(_ query: AuditQuery) async throws(StoreError) -> AuditPage {
        try await reading("list audit records") { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let upstream = query.upstream {
                conditions.append("upstream = ?")
                arguments += [upstream]
            }
            if let outcome = query.outcome {
                conditions.append("outcome = ?")
                arguments += [outcome]
            }
            if let since = query.since {
                conditions.append("received_at >= ?")
                arguments += [since.storeMilliseconds]
            }
            if let correlationID = query.correlationID {
                conditions.append("correlation_id = ?")
                arguments += [correlationID]
            }
            if let consumer = query.consumer {
                conditions.append("consumer = ?")
                arguments += [consumer]
            }
            if let cursor = query.cursor {
                // An unreadable cursor is an empty page, never an error or the first page again.
                conditions.append("seq < ?")
                arguments += [Int64(cursor) ?? 0]
            }
            let limit = max(1, min(query.limit, 500))
            arguments += [limit + 1]
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Self.auditColumns) FROM audit_requests \(filter) ORDER BY seq DESC LIMIT ?",
                arguments: arguments
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let next: String? = more ? rows.last.map { String($0["seq"] as Int64) } : nil
            return AuditPage(records: try rows.map(Self.auditRecord), nextCursor: next)
        }
    }

    public func pruneAudit(olderThan date: Date, maxBytes: Int64) async throws(StoreError) -> AuditPruning {
        let cutoff = date.storeMilliseconds
        let chunk = Self.auditPruneChunk
        var expired = 0
        var trimmed = 0
        // By age, in chunks: each transaction holds the write lock briefly.
        while true {
            let deleted = try await auditWriting("delete expired audit records") { db -> Int in
                let selection = """
                    SELECT seq FROM audit_requests WHERE received_at < ? ORDER BY received_at, seq LIMIT ?
                    """
                let freed =
                    try Int64.fetchOne(
                        db,
                        sql: "SELECT COALESCE(SUM(size), 0) FROM audit_requests WHERE seq IN (\(selection))",
                        arguments: [cutoff, chunk]
                    ) ?? 0
                try db.execute(
                    sql: "DELETE FROM audit_requests WHERE seq IN (\(selection))",
                    arguments: [cutoff, chunk]
                )
                let count = db.changesCount
                try db.execute(sql: "UPDATE audit_usage SET bytes = MAX(bytes - ?, 0) WHERE id = 1", arguments: [freed])
                return count
            }
            expired += deleted
            if deleted < chunk { break }
        }
        // By size: the oldest written first, until the estimate is within the budget.
        while true {
            let deleted = try await auditWriting("trim the audit trail to its size budget") { db -> Int in
                let bytes = try Int64.fetchOne(db, sql: "SELECT bytes FROM audit_usage WHERE id = 1") ?? 0
                guard bytes > maxBytes else { return 0 }
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT seq, size FROM audit_requests ORDER BY seq LIMIT ?",
                    arguments: [chunk]
                )
                guard !rows.isEmpty else {
                    // Nothing left to delete: the running total drifted; start it again from zero.
                    try db.execute(sql: "UPDATE audit_usage SET bytes = 0 WHERE id = 1")
                    return 0
                }
                var freed: Int64 = 0
                var last: Int64 = 0
                var count = 0
                for row in rows {
                    freed += row["size"] as Int64
                    last = row["seq"]
                    count += 1
                    if bytes - freed <= maxBytes { break }
                }
                try db.execute(sql: "DELETE FROM audit_requests WHERE seq <= ?", arguments: [last])
                try db.execute(sql: "UPDATE audit_usage SET bytes = MAX(bytes - ?, 0) WHERE id = 1", arguments: [freed])
                return count
            }
            trimmed += deleted
            if deleted < chunk { break }
        }
        return AuditPruning(expired: expired, trimmed: trimmed, bytes: try await auditBytes())
    }

    public func auditBytes() async throws(StoreError) -> Int64 {
        try await reading("read the audit trail's size") { db in
            try Int64.fetchOne(db, sql: "SELECT bytes FROM audit_usage WHERE id = 1") ?? 0
        }
    }

    // MARK: helpers

    /// A record's estimated footprint: its text, its trail's JSON, and ``auditRowOverhead``.
    static func estimatedSize(_ record: AuditRecord, trailBytes: Int) -> Int64 {
        // The request id and upstream are stored twice more, as index keys.
        let text =
            record.requestID.utf8.count * 2 + record.upstream.utf8.count * 2 + (record.consumer?.utf8.count ?? 0)
            + record.method.utf8.count + record.path.utf8.count + record.outcome.utf8.count
            + (record.problem?.utf8.count ?? 0) + (record.correlationID?.utf8.count ?? 0) * 2
        return Int64(text + trailBytes + auditRowOverhead)
    }

    static func auditRecord(_ row: Row) throws -> AuditRecord {
        let trailText: String = row["trail"]
        let trail: AuditTrailJSON.Trail
        do {
            trail = try JSONDecoder().decode(AuditTrailJSON.Trail.self, from: Data(trailText.utf8))
        } catch {
            throw StoreError(
                .corrupt,
                "the audit record of request \(row["request_id"] as String) has an unreadable trail",
                underlying: error
            )
        }
        return AuditRecord(
            requestID: row["request_id"],
            upstream: row["upstream"],
            consumer: row["consumer"],
            method: row["method"],
            path: row["path"],
            receivedAt: Date(storeMilliseconds: row["received_at"]),
            durationMilliseconds: row["duration_ms"],
            status: row["status"],
            outcome: row["outcome"],
            problem: row["problem"],
            staleAgeMilliseconds: row["stale_age_ms"],
            attempts: trail.attempts,
            decisions: trail.decisions,
            correlationID: row["correlation_id"]
        )
    }
}

/// The JSON a record's attempts and decisions are stored as, written by hand: this runs for
/// every proxied request (on the audit writer's task), where `JSONEncoder` would cost several
/// times as much. Read back with `JSONDecoder`.
enum AuditTrailJSON {
    struct Trail: Decodable {
        var attempts: [AuditAttempt]
        var decisions: [AuditDecision]
    }

    static func encode(_ record: AuditRecord) -> String {
        var out = #"{"attempts":["#
        for (index, attempt) in record.attempts.enumerated() {
            if index > 0 { out += "," }
            out += #"{"number":\#(attempt.number),"endpoint":"#
            string(attempt.endpoint, into: &out)
            if let status = attempt.status { out += #","status":\#(status)"# }
            if let failure = attempt.failure {
                out += #","failure":"#
                string(failure, into: &out)
            }
            out += #","started_ms":"#
            number(attempt.startedMilliseconds, into: &out)
            out += #","duration_ms":"#
            number(attempt.durationMilliseconds, into: &out)
            if !attempt.skipped.isEmpty {
                out += #","skipped":["#
                for (skippedIndex, endpoint) in attempt.skipped.enumerated() {
                    if skippedIndex > 0 { out += "," }
                    string(endpoint, into: &out)
                }
                out += "]"
            }
            out += "}"
        }
        out += #"],"decisions":["#
        for (index, decision) in record.decisions.enumerated() {
            if index > 0 { out += "," }
            out += #"{"attempt":\#(decision.attempt),"kind":"#
            string(decision.kind, into: &out)
            out += #","description":"#
            string(decision.description, into: &out)
            out += "}"
        }
        out += "]}"
        return out
    }

    /// A finite number rounded to the microsecond (0 for anything else, which JSON cannot hold).
    static func number(_ value: Double, into out: inout String) {
        guard value.isFinite else {
            out += "0"
            return
        }
        out += String((value * 1_000).rounded() / 1_000)
    }

    /// A JSON string literal (RFC 8259 §7).
    static func string(_ value: String, into out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
