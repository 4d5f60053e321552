public import Foundation
import Logging
import PostgresNIO

extension PostgresStore: IncidentStore {
    /// Migration `pg3-incidents`, as SQLite's `v8-incidents`: incidents, one open per upstream
    /// across every instance (a partial unique index), and their timelines.
    static let incidentSchema = [
        """
        CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            upstream TEXT NOT NULL,
            status TEXT NOT NULL,
            cause TEXT NOT NULL,
            drill BOOLEAN NOT NULL,
            opened_at BIGINT NOT NULL,
            detected_at BIGINT NOT NULL,
            recovered_at BIGINT,
            closed_at BIGINT,
            failed BIGINT NOT NULL DEFAULT 0,
            stale BIGINT NOT NULL DEFAULT 0,
            fallback BIGINT NOT NULL DEFAULT 0,
            queued BIGINT NOT NULL DEFAULT 0,
            deliveries_delayed BIGINT NOT NULL DEFAULT 0,
            longest_delay_ms BIGINT NOT NULL DEFAULT 0
        )
        """,
        "CREATE UNIQUE INDEX incidents_open ON incidents (upstream) WHERE status = 'open'",
        "CREATE INDEX incidents_upstream ON incidents (upstream, id)",
        "CREATE INDEX incidents_closed ON incidents (closed_at) WHERE closed_at IS NOT NULL",
        """
        CREATE TABLE incident_events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            incident_id TEXT NOT NULL,
            at BIGINT NOT NULL,
            event TEXT NOT NULL,
            detail TEXT NOT NULL
        )
        """,
        "CREATE INDEX incident_events_incident ON incident_events (incident_id, seq)",
    ]

    static let incidentColumns = """
        id, upstream, status, cause, drill, opened_at, detected_at, recovered_at, closed_at,
        failed, stale, fallback, queued, deliveries_delayed, longest_delay_ms
        """

    public func openIncident(_ incident: Incident) async throws(StoreError) -> (incident: Incident, opened: Bool) {
        let impact = incident.impact
        let inserted = try await transaction("open an incident for \(incident.upstream)") { connection -> Bool in
            // The partial unique index decides between two instances opening one at once: the
            // loser's insert waits for the winner's commit, then does nothing.
            let inserted =
                try await connection.run(
                    """
                    INSERT INTO incidents (\(unescaped: Self.incidentColumns))
                    VALUES (\(incident.id), \(incident.upstream), 'open', \(incident.cause), \(incident.drill),
                        \(incident.openedAt.storeMilliseconds), \(incident.detectedAt.storeMilliseconds),
                        \(incident.recoveredAt?.storeMilliseconds), NULL, \(impact.failed), \(impact.stale),
                        \(impact.fallback), \(impact.queued), \(impact.deliveriesDelayed),
                        \(impact.longestDelayMilliseconds))
                    ON CONFLICT (upstream) WHERE status = 'open' DO NOTHING
                    RETURNING 1
                    """,
                    logger: logger
                ) > 0
            if inserted { try await Self.append(incident.timeline, to: incident.id, on: connection, logger: logger) }
            return inserted
        }
        if inserted {
            var stored = incident
            stored.status = .open
            stored.closedAt = nil
            return (stored, true)
        }
        // Another instance's, or one closed between the insert and this read: try again once.
        if let open = try await openIncident(upstream: incident.upstream) { return (open, false) }
        return try await openIncident(incident)
    }

    @discardableResult
    public func updateIncident(id: String, _ change: IncidentChange) async throws(StoreError) -> Bool {
        let impact = change.impact
        var recovered: Int64?
        var relapsed = false
        switch change.recovery {
        case .recovered(let at): recovered = at.storeMilliseconds
        case .relapsed: relapsed = true
        case nil: break
        }
        let closing = change.closedAt?.storeMilliseconds
        return try await transaction("update incident \(id)") { connection -> Bool in
            // One statement: the row is locked and re-read after any other instance's update
            // commits, so impact added by two instances at once adds up.
            let updated =
                try await connection.run(
                    """
                    UPDATE incidents SET
                        failed = failed + \(impact.failed), stale = stale + \(impact.stale),
                        fallback = fallback + \(impact.fallback), queued = queued + \(impact.queued),
                        deliveries_delayed = deliveries_delayed + \(impact.deliveriesDelayed),
                        longest_delay_ms = GREATEST(longest_delay_ms, \(impact.longestDelayMilliseconds)),
                        recovered_at = CASE WHEN status <> 'open' THEN recovered_at
                            WHEN \(relapsed) THEN NULL
                            ELSE COALESCE(recovered_at, \(recovered)::bigint) END,
                        closed_at = CASE WHEN status = 'open' THEN \(closing)::bigint ELSE closed_at END,
                        status = CASE WHEN status = 'open' AND \(closing)::bigint IS NOT NULL THEN 'closed' ELSE status END
                    WHERE id = \(id)
                    RETURNING 1
                    """,
                    logger: logger
                ) > 0
            if updated { try await Self.append(change.events, to: id, on: connection, logger: logger) }
            return updated
        }
    }

    public func incident(id: String) async throws(StoreError) -> Incident? {
        try await reading("read incident \(id)") { connection in
            guard
                let row = try await connection.rows(
                    "SELECT \(unescaped: Self.incidentColumns) FROM incidents WHERE id = \(id)",
                    logger: logger
                ).first
            else { return nil }
            return try await Self.incident(row, on: connection, logger: logger)
        }
    }

    public func openIncident(upstream: String) async throws(StoreError) -> Incident? {
        try await reading("read the open incident of \(upstream)") { connection in
            guard
                let row = try await connection.rows(
                    """
                    SELECT \(unescaped: Self.incidentColumns) FROM incidents
                    WHERE upstream = \(upstream) AND status = 'open'
                    """,
                    logger: logger
                ).first
            else { return nil }
            return try await Self.incident(row, on: connection, logger: logger)
        }
    }

    public func incidents(_ query: IncidentQuery) async throws(StoreError) -> IncidentPage {
        let limit = max(1, min(query.limit, 200))
        return try await reading("list incidents") { connection in
            var rows = try await connection.rows(
                """
                SELECT \(unescaped: Self.incidentColumns) FROM incidents
                WHERE (\(query.upstream)::text IS NULL OR upstream = \(query.upstream))
                    AND (\(query.status?.rawValue)::text IS NULL OR status = \(query.status?.rawValue))
                    AND (\(query.cursor)::text IS NULL OR id < \(query.cursor))
                ORDER BY id DESC LIMIT \(limit + 1)
                """,
                logger: logger
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            var incidents: [Incident] = []
            for row in rows { incidents.append(try await Self.incident(row, on: connection, logger: logger)) }
            return IncidentPage(incidents: incidents, nextCursor: more ? incidents.last?.id : nil)
        }
    }

    public func purgeIncidents(closedBefore date: Date, limit: Int) async throws(StoreError) -> Int {
        try await transaction("purge old incidents") { connection -> Int in
            let ids = try await connection.rows(
                """
                SELECT id FROM incidents WHERE closed_at IS NOT NULL AND closed_at < \(date.storeMilliseconds)
                ORDER BY closed_at LIMIT \(max(limit, 1))
                FOR UPDATE SKIP LOCKED
                """,
                logger: logger
            ).map { try $0.value("id", as: String.self) }
            guard !ids.isEmpty else { return 0 }
            try await connection.run("DELETE FROM incident_events WHERE incident_id = ANY(\(ids))", logger: logger)
            return try await connection.run("DELETE FROM incidents WHERE id = ANY(\(ids)) RETURNING 1", logger: logger)
        }
    }

    private static func append(
        _ events: [IncidentEvent],
        to id: String,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        for event in events {
            try await connection.run(
                """
                INSERT INTO incident_events (incident_id, at, event, detail)
                VALUES (\(id), \(event.at.storeMilliseconds), \(event.event), \(event.detail))
                """,
                logger: logger
            )
        }
    }

    private static func incident(
        _ row: PostgresRandomAccessRow,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Incident {
        let id = try row.value("id", as: String.self)
        let events = try await connection.rows(
            "SELECT at, event, detail FROM incident_events WHERE incident_id = \(id) ORDER BY at, seq",
            logger: logger
        ).map { event in
            IncidentEvent(
                at: Date(storeMilliseconds: try event.value("at", as: Int64.self)),
                event: try event.value("event", as: String.self),
                detail: try event.value("detail", as: String.self)
            )
        }
        func date(_ name: String) throws -> Date? {
            try row.value(name, as: Int64?.self).map(Date.init(storeMilliseconds:))
        }
        func count(_ name: String) throws -> Int { Int(try row.value(name, as: Int64.self)) }
        return Incident(
            id: id,
            upstream: try row.value("upstream", as: String.self),
            status: IncidentStatus(rawValue: try row.value("status", as: String.self)) ?? .open,
            cause: try row.value("cause", as: String.self),
            drill: try row.value("drill", as: Bool.self),
            openedAt: Date(storeMilliseconds: try row.value("opened_at", as: Int64.self)),
            detectedAt: Date(storeMilliseconds: try row.value("detected_at", as: Int64.self)),
            recoveredAt: try date("recovered_at"),
            closedAt: try date("closed_at"),
            timeline: events,
            impact: IncidentImpact(
                failed: try count("failed"),
                stale: try count("stale"),
                fallback: try count("fallback"),
                queued: try count("queued"),
                deliveriesDelayed: try count("deliveries_delayed"),
                longestDelayMilliseconds: try row.value("longest_delay_ms", as: Int64.self)
            )
        )
    }
}
