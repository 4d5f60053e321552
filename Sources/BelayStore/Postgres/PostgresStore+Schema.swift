import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    /// One schema migration: a name, never reused, and its statements.
    struct Migration: Sendable {
        var name: String
        var statements: [String]
    }

    /// Every migration, in order. A released migration is never edited; add a new one.
    ///
    /// The first one creates the schema SQLite reached in `v6-retention` at once (a PostgreSQL
    /// database starts at this version). Instants are milliseconds since 1970 (`BIGINT`), as in
    /// SQLite, so the stores share their conversions and `belay storage copy` moves rows as is.
    static let migrations: [Migration] = [
        Migration(
            name: "pg1-schema",
            statements: [
                """
                CREATE TABLE deliveries (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY,
                    id TEXT PRIMARY KEY,
                    upstream TEXT NOT NULL,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    headers TEXT NOT NULL,
                    body BYTEA,
                    idempotency_key TEXT NOT NULL,
                    caller_key TEXT,
                    fingerprint TEXT NOT NULL,
                    require_ack BOOLEAN NOT NULL,
                    status TEXT NOT NULL,
                    attempt_count BIGINT NOT NULL DEFAULT 0,
                    schedule_step BIGINT NOT NULL DEFAULT 0,
                    due_at BIGINT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    delivered_at BIGINT,
                    acknowledged_at BIGINT,
                    last_error TEXT,
                    escalated BOOLEAN NOT NULL DEFAULT FALSE,
                    lease_owner TEXT,
                    lease_token BIGINT NOT NULL DEFAULT 0,
                    consumer TEXT NOT NULL DEFAULT '',
                    ack_received_at BIGINT,
                    ordering_key TEXT
                )
                """,
                """
                CREATE UNIQUE INDEX deliveries_caller_key ON deliveries (upstream, consumer, caller_key)
                    WHERE caller_key IS NOT NULL
                """,
                // The claim's order, whole: with (upstream, due_at) alone, a backlog due at one
                // instant (an outage's) was sorted by seq on every claim (30 ms at 54,000 rows).
                "CREATE INDEX deliveries_due ON deliveries (upstream, due_at, seq) WHERE due_at IS NOT NULL",
                // The claim's count of unexpired leases, without reading the deliveries due later.
                "CREATE INDEX deliveries_in_flight ON deliveries (upstream, due_at) WHERE status = 'in_flight'",
                "CREATE INDEX deliveries_status ON deliveries (status, id)",
                "CREATE INDEX deliveries_upstream ON deliveries (upstream, id)",
                "CREATE INDEX deliveries_consumer ON deliveries (consumer, id)",
                """
                CREATE INDEX deliveries_ordering ON deliveries (upstream, ordering_key, seq)
                    WHERE ordering_key IS NOT NULL
                """,
                """
                CREATE INDEX deliveries_finished ON deliveries (updated_at)
                    WHERE status <> 'pending' AND status <> 'in_flight'
                """,
                """
                CREATE INDEX deliveries_waiting ON deliveries (created_at)
                    WHERE status IN ('pending', 'in_flight')
                """,
                """
                CREATE TABLE delivery_attempts (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                    number BIGINT NOT NULL,
                    started_at BIGINT NOT NULL,
                    duration_ms BIGINT NOT NULL,
                    endpoint TEXT,
                    status_code BIGINT,
                    error_class TEXT,
                    decision TEXT NOT NULL
                )
                """,
                "CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, seq)",
                """
                CREATE TABLE webhook_events (
                    id TEXT PRIMARY KEY,
                    source TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    headers TEXT NOT NULL,
                    body BYTEA NOT NULL,
                    received_at BIGINT NOT NULL,
                    delivery_id TEXT REFERENCES deliveries (id)
                )
                """,
                "CREATE UNIQUE INDEX webhook_events_event ON webhook_events (source, event_id)",
                "CREATE INDEX webhook_events_source ON webhook_events (source, id)",
                "CREATE INDEX webhook_events_delivery ON webhook_events (delivery_id)",
                "CREATE INDEX webhook_events_received ON webhook_events (received_at)",
                """
                CREATE TABLE webhook_body_digests (
                    source TEXT NOT NULL,
                    digest TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (source, digest)
                )
                """,
                "CREATE INDEX webhook_body_digests_expiry ON webhook_body_digests (expires_at)",
                """
                CREATE TABLE audit_requests (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    request_id TEXT NOT NULL,
                    upstream TEXT NOT NULL,
                    consumer TEXT,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    received_at BIGINT NOT NULL,
                    duration_ms DOUBLE PRECISION NOT NULL,
                    status BIGINT NOT NULL,
                    outcome TEXT NOT NULL,
                    problem TEXT,
                    stale_age_ms BIGINT,
                    trail TEXT NOT NULL,
                    size BIGINT NOT NULL,
                    correlation_id TEXT
                )
                """,
                "CREATE INDEX audit_requests_request ON audit_requests (request_id, seq)",
                "CREATE INDEX audit_requests_upstream ON audit_requests (upstream, seq)",
                "CREATE INDEX audit_requests_received ON audit_requests (received_at)",
                """
                CREATE INDEX audit_requests_correlation ON audit_requests (correlation_id, seq)
                    WHERE correlation_id IS NOT NULL
                """,
                """
                CREATE TABLE audit_usage (
                    id BIGINT PRIMARY KEY CHECK (id = 1),
                    bytes BIGINT NOT NULL
                )
                """,
                "INSERT INTO audit_usage (id, bytes) VALUES (1, 0)",
            ]
        ),
        // As SQLite's `v7-confirmations`.
        Migration(name: "pg2-confirmations", statements: confirmationSchema),
        // As SQLite's `v8-incidents`.
        Migration(name: "pg3-incidents", statements: incidentSchema),
        // As SQLite's `v9-lookups`: a trail row is a send or a lookup (`ack.poll`).
        Migration(
            name: "pg4-lookups",
            statements: ["ALTER TABLE delivery_attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'send'"]
        ),
    ]

    /// Applies the migrations this database lacks, in order, each in its own transaction,
    /// holding an advisory lock (per schema) for the whole run: a second instance starting
    /// at the same time waits, then finds nothing left to do. Runs on a connection of its own,
    /// made first: ``StoreError/Code/open`` at once, with the server's reason, if it cannot be.
    func migrate() async throws(StoreError) {
        // A connection of its own: one that cannot be made fails at once, with the reason.
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try Self.connectionConfiguration(location),
                id: 0,
                logger: logger
            )
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.cannotConnect(to: location, error)
        }
        do {
            let lock = "belay.migrate.\(location.schema)"
            try await connection.run("SELECT pg_advisory_lock(hashtext(\(lock)))", logger: logger)
            do {
                try await applyMigrations(on: connection)
                try await connection.run("SELECT pg_advisory_unlock(hashtext(\(lock)))", logger: logger)
            } catch {
                _ = try? await connection.run("SELECT pg_advisory_unlock(hashtext(\(lock)))", logger: logger)
                throw error
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            if let error = error as? StoreError { throw error }
            throw StoreError(
                .migration,
                "cannot migrate the PostgreSQL database \(location)",
                underlying: PostgresFailure(error)
            )
        }
    }

    private func applyMigrations(on connection: PostgresConnection) async throws {
        // Created only if missing: CREATE SCHEMA needs the CREATE privilege on the database even
        // when the schema exists, which a role given only its own schema does not have.
        let exists = try await connection.run(
            "SELECT 1 FROM pg_namespace WHERE nspname = \(location.schema)",
            logger: logger
        )
        if exists == 0 {
            try await connection.run(
                PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"),
                logger: logger
            )
        }
        try await connection.run(
            """
            CREATE TABLE IF NOT EXISTS belay_migrations (
                name TEXT PRIMARY KEY,
                applied_at BIGINT NOT NULL
            )
            """,
            logger: logger
        )
        let applied = Set(
            try await connection.rows("SELECT name FROM belay_migrations", logger: logger)
                .map { try $0.value("name", as: String.self) }
        )
        let known = Set(Self.migrations.map(\.name))
        if let unknown = applied.subtracting(known).sorted().first {
            throw StoreError(
                .migration,
                "the database was migrated by a newer Belay (migration \(unknown)); run that version or newer"
            )
        }
        for migration in Self.migrations where !applied.contains(migration.name) {
            try await connection.run(Self.begin, logger: logger)
            do {
                for statement in migration.statements {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let now = Date().storeMilliseconds
                try await connection.run(
                    "INSERT INTO belay_migrations (name, applied_at) VALUES (\(migration.name), \(now))",
                    logger: logger
                )
                try await connection.run("COMMIT", logger: logger)
                logger.notice("applied a store migration", metadata: ["belay.migration": "\(migration.name)"])
            } catch {
                _ = try? await connection.run("ROLLBACK", logger: logger)
                throw StoreError(
                    .migration,
                    "migration \(migration.name) failed; the database is left at the one before",
                    underlying: PostgresFailure(error)
                )
            }
        }
    }

    /// The migrations applied so far, oldest first.
    public func appliedMigrations() async throws(StoreError) -> [String] {
        try await reading("read the applied migrations") { connection in
            try await connection.rows("SELECT name FROM belay_migrations ORDER BY applied_at, name", logger: logger)
                .map { try $0.value("name", as: String.self) }
        }
    }
}
