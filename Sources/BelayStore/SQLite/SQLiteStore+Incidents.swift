public import Foundation
import GRDB

extension SQLiteStore: IncidentStore {
    /// Migration `v8-incidents`: incidents (one open per upstream, by a partial unique index)
    /// and their timelines.
    static let incidentSchema = """
        CREATE TABLE incidents (
            id TEXT PRIMARY KEY NOT NULL,
            upstream TEXT NOT NULL,
            status TEXT NOT NULL,
            cause TEXT NOT NULL,
            drill INTEGER NOT NULL,
            opened_at INTEGER NOT NULL,
            detected_at INTEGER NOT NULL,
            recovered_at INTEGER,
            closed_at INTEGER,
            failed INTEGER NOT NULL DEFAULT 0,
            stale INTEGER NOT NULL DEFAULT 0,
            fallback INTEGER NOT NULL DEFAULT 0,
            queued INTEGER NOT NULL DEFAULT 0,
            deliveries_delayed INTEGER NOT NULL DEFAULT 0,
            longest_delay_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX incidents_open ON incidents(upstream) WHERE status = 'open';
        CREATE INDEX incidents_upstream ON incidents(upstream, id);
        CREATE INDEX incidents_closed ON incidents(closed_at) WHERE closed_at IS NOT NULL;
        CREATE TABLE incident_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            event TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX incident_events_incident ON incident_events(incident_id, seq);
        """

    static let incidentColumns = """
        id, upstream, status, cause, drill, opened_at, detected_at, recovered_at, closed_at,
        failed, stale, fallback, queued, deliveries_delayed, longest_delay_ms
        """

    public func openIncident(_ incident: Incident) async throws(StoreError) -> (incident: Incident, opened: Bool) {
        try await writing("open an incident for \(incident.upstream)") { db in
            // The single writer: nothing opens one between this look and the insert.
            if let open = try Self.openIncident(upstream: incident.upstream, in: db) { return (open, false) }
            try db.execute(
                sql: """
                    INSERT INTO incidents (\(Self.incidentColumns))
                    VALUES (?, ?, 'open', ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    incident.id, incident.upstream, incident.cause, incident.drill,
                    incident.openedAt.storeMilliseconds, incident.detectedAt.storeMilliseconds,
                    incident.recoveredAt?.storeMilliseconds, incident.impact.failed, incident.impact.stale,
                    incident.impact.fallback, incident.impact.queued, incident.impact.deliveriesDelayed,
                    incident.impact.longestDelayMilliseconds,
                ]
            )
            try Self.append(incident.timeline, to: incident.id, in: db)
            var stored = incident
            stored.status = .open
            stored.closedAt = nil
            return (stored, true)
        }
    }

    @discardableResult
    public func updateIncident(id: String, _ change: IncidentChange) async throws(StoreError) -> Bool {
        try await writing("update incident \(id)") { db in
            guard
                let status = try String.fetchOne(db, sql: "SELECT status FROM incidents WHERE id = ?", arguments: [id])
            else { return false }
            let impact = change.impact
            var recovery = "recovered_at"
            var arguments: StatementArguments = [
                impact.failed, impact.stale, impact.fallback, impact.queued, impact.deliveriesDelayed,
                impact.longestDelayMilliseconds,
            ]
            if status == IncidentStatus.open.rawValue {
                switch change.recovery {
                case .recovered(let at):
                    recovery = "COALESCE(recovered_at, ?)"
                    arguments += [at.storeMilliseconds]
                case .relapsed:
                    recovery = "NULL"
                case nil:
                    break
                }
            }
            let closing = status == IncidentStatus.open.rawValue ? change.closedAt : nil
            arguments += [closing == nil ? status : IncidentStatus.closed.rawValue, closing?.storeMilliseconds, id]
            try db.execute(
                sql: """
                    UPDATE incidents SET
                        failed = failed + ?, stale = stale + ?, fallback = fallback + ?, queued = queued + ?,
                        deliveries_delayed = deliveries_delayed + ?, longest_delay_ms = MAX(longest_delay_ms, ?),
                        recovered_at = \(recovery), status = ?, closed_at = COALESCE(closed_at, ?)
                    WHERE id = ?
                    """,
                arguments: arguments
            )
            try Self.append(change.events, to: id, in: db)
            return true
        }
    }

    public func incident(id: String) async throws(StoreError) -> Incident? {
        try await reading("read incident \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.incidentColumns) FROM incidents WHERE id = ?", arguments: [id])
                .map { try Self.incident($0, in: db) }
        }
    }

    public func openIncident(upstream: String) async throws(StoreError) -> Incident? {
        try await reading("read the open incident of \(upstream)") { db in
            try Self.openIncident(upstream: upstream, in: db)
        }
    }

    public func incidents(_ query: IncidentQuery) async throws(StoreError) -> IncidentPage {
        try await reading("list incidents") { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let upstream = query.upstream {
                conditions.append("upstream = ?")
                arguments += [upstream]
            }
            if let status = query.status {
                conditions.append("status = ?")
                arguments += [status.rawValue]
            }
            if let cursor = query.cursor {
                conditions.append("id < ?")
                arguments += [cursor]
            }
            let limit = max(1, min(query.limit, 200))
            arguments += [limit + 1]
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Self.incidentColumns) FROM incidents \(filter) ORDER BY id DESC LIMIT ?",
                arguments: arguments
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let incidents = try rows.map { try Self.incident($0, in: db) }
            return IncidentPage(incidents: incidents, nextCursor: more ? incidents.last?.id : nil)
        }
    }

    public func purgeIncidents(closedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        try await writing("purge old incidents") { db in
            let ids = try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?
                    ORDER BY closed_at LIMIT ?
                    """,
                arguments: [date.storeMilliseconds, max(limit, 1)]
            )
            guard !ids.isEmpty else { return 0 }
            let list = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            try db.execute(
                sql: "DELETE FROM incident_events WHERE incident_id IN (\(list))",
                arguments: StatementArguments(ids)
            )
            try db.execute(sql: "DELETE FROM incidents WHERE id IN (\(list))", arguments: StatementArguments(ids))
            return ids.count
        }
    }

    private static func openIncident(upstream: String, in db: Database) throws -> Incident? {
        try Row.fetchOne(
            db,
            sql: "SELECT \(incidentColumns) FROM incidents WHERE upstream = ? AND status = 'open'",
            arguments: [upstream]
        ).map { try incident($0, in: db) }
    }

    private static func append(_ events: [IncidentEvent], to id: String, in db: Database) throws {
        for event in events {
            try db.execute(
                sql: "INSERT INTO incident_events (incident_id, at, event, detail) VALUES (?, ?, ?, ?)",
                arguments: [id, event.at.storeMilliseconds, event.event, event.detail]
            )
        }
    }

    private static func incident(_ row: Row, in db: Database) throws -> Incident {
        let id: String = row["id"]
        let events = try Row.fetchAll(
            db,
            sql: "SELECT at, event, detail FROM incident_events WHERE incident_id = ? ORDER BY at, seq",
            arguments: [id]
        ).map { event in
            IncidentEvent(at: Date(storeMilliseconds: event["at"]), event: event["event"], detail: event["detail"])
        }
        return Incident(
            id: id,
            upstream: row["upstream"],
            status: IncidentStatus(rawValue: row["status"]) ?? .open,
            cause: row["cause"],
            drill: row["drill"],
            openedAt: Date(storeMilliseconds: row["opened_at"]),
            detectedAt: Date(storeMilliseconds: row["detected_at"]),
            recoveredAt: (row["recovered_at"] as Int64?).map(Date.init(storeMilliseconds:)),
            closedAt: (row["closed_at"] as Int64?).map(Date.init(storeMilliseconds:)),
            timeline: events,
            impact: IncidentImpact(
                failed: row["failed"],
                stale: row["stale"],
                fallback: row["fallback"],
                queued: row["queued"],
                deliveriesDelayed: row["deliveries_delayed"],
                longestDelayMilliseconds: row["longest_delay_ms"]
            )
        )
    }
}
