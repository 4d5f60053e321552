import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded store: one SQLite database file in WAL mode, opened and migrated on init.
///
/// Durability: `synchronous = FULL`, so every commit fsyncs the write-ahead log before it
/// returns and a committed delivery survives a crash of the process *and* of the machine
/// (power loss). Concurrent accepts share one commit through ``DeliveryIntake``, which is
/// what keeps that affordable. Readers never block the writer (WAL).
///
/// The audit trail writes through a second connection at `synchronous = NORMAL`: its commits
/// do not wait for an fsync (records that are only buffered in memory before their batch
/// is written do not need a power-loss guarantee either), and the next delivery commit's
/// fsync of the shared write-ahead log makes them durable too. An application crash loses
/// no committed record in either mode.
///
/// ```swift
/// let store = try SQLiteStore(path: "./belay-data/belay.db")
/// let intake = DeliveryIntake(store: store)
/// ```
public final class SQLiteStore: Sendable {
    let pool: DatabasePool
    /// The audit trail's writer: the same file, `synchronous = NORMAL`.
    let auditWriter: DatabaseQueue
    /// The database file.
    public let path: String
    /// The open `<path>.lock` file whose exclusive lock marks this process as the database's
    /// only user; the kernel drops the lock when the process dies, even by SIGKILL.
    private let lockDescriptor: Int32
    /// The history part of the status counts, reused for a while once it is large.
    let statusCounts: StatusCounts

    /// Opens (creating it and its folder if needed) and migrates the database at `path`.
    ///
    /// One process at a time: a second one gets ``StoreError/Code/open`` (several gateway
    /// instances share work through PostgreSQL, not one SQLite file).
    public convenience init(path: String) throws(StoreError) {
        try self.init(path: path, clock: ContinuousClock())
    }

    /// Opens and migrates the database at `path` (see ``init(path:)``), `clock` timing how
    /// long ``counts()`` reuses the counts of `delivered` and `acknowledged` once together
    /// they reach `historyCountsThreshold` rows: `historyCountsMaxAge` (default 30 s).
    public init<C: Clock>(
        path: String,
        clock: C,
        historyCountsMaxAge: Duration = .seconds(30),
        historyCountsThreshold: Int = 100_000
    ) throws(StoreError) where C.Duration == Duration {
        self.path = path
        self.statusCounts = StatusCounts(clock: clock, maxAge: historyCountsMaxAge, threshold: historyCountsThreshold)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.open, "cannot create the folder \(folder)", underlying: error)
        }
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StoreError(.open, "cannot create the lock file \(path).lock (errno \(errno))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw StoreError(
                .open,
                "another process is using the SQLite database at \(path); run one gateway per SQLite file, "
                    + "or share a PostgreSQL database"
            )
        }
        self.lockDescriptor = descriptor
        var configuration = Configuration()
        configuration.label = "belay"
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            close(descriptor)
            throw StoreError(.open, "cannot open the SQLite database at \(path)", underlying: error)
        }
        do {
            try Self.migrator.migrate(pool)
        } catch {
            close(descriptor)
            throw StoreError(.migration, "cannot migrate the SQLite database at \(path)", underlying: error)
        }
        var audit = Configuration()
        audit.label = "belay-audit"
        audit.busyMode = .timeout(10)
        audit.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            auditWriter = try DatabaseQueue(path: path, configuration: audit)
        } catch {
            close(descriptor)
            throw StoreError(.open, "cannot open the audit trail's connection to \(path)", underlying: error)
        }
    }

    deinit {
        close(lockDescriptor)
    }

    /// The migrations applied so far, oldest first.
    public func appliedMigrations() throws(StoreError) -> [String] {
        do {
            return try pool.read { db in try Self.migrator.appliedMigrations(db) }
        } catch {
            throw StoreError(.io, "cannot read the applied migrations", underlying: error)
        }
    }

    /// Every migration, in order. A released migration is never edited; add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-deliveries") { db in
            try db.execute(
                sql: """
                    CREATE TABLE deliveries (
                        id TEXT PRIMARY KEY NOT NULL,
                        upstream TEXT NOT NULL,
                        method TEXT NOT NULL,
                        path TEXT NOT NULL,
                        headers TEXT NOT NULL,
                        body BLOB,
                        idempotency_key TEXT NOT NULL,
                        caller_key TEXT,
                        fingerprint TEXT NOT NULL,
                        require_ack INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        attempt_count INTEGER NOT NULL DEFAULT 0,
                        schedule_step INTEGER NOT NULL DEFAULT 0,
                        due_at INTEGER,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        delivered_at INTEGER,
                        acknowledged_at INTEGER,
                        last_error TEXT,
                        escalated INTEGER NOT NULL DEFAULT 0,
                        lease_owner TEXT
                    );
                    CREATE UNIQUE INDEX deliveries_caller_key ON deliveries(upstream, caller_key)
                        WHERE caller_key IS NOT NULL;
                    CREATE INDEX deliveries_due ON deliveries(upstream, due_at) WHERE due_at IS NOT NULL;
                    CREATE INDEX deliveries_status ON deliveries(status, id);
                    CREATE INDEX deliveries_upstream ON deliveries(upstream, id);
                    CREATE TABLE delivery_attempts (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
                        number INTEGER NOT NULL,
                        started_at INTEGER NOT NULL,
                        duration_ms INTEGER NOT NULL,
                        endpoint TEXT,
                        status_code INTEGER,
                        error_class TEXT,
                        decision TEXT NOT NULL
                    );
                    CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, seq);
                    """
            )
        }
        migrator.registerMigration("v2-webhook-events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE webhook_events (
                        id TEXT PRIMARY KEY NOT NULL,
                        source TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        headers TEXT NOT NULL,
                        body BLOB NOT NULL,
                        received_at INTEGER NOT NULL,
                        delivery_id TEXT REFERENCES deliveries(id)
                    );
                    CREATE UNIQUE INDEX webhook_events_event ON webhook_events(source, event_id);
                    CREATE INDEX webhook_events_source ON webhook_events(source, id);
                    """
            )
        }
        migrator.registerMigration("v3-ordering-keys") { db in
            try db.execute(
                sql: """
                    ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
                    CREATE INDEX deliveries_ordering ON deliveries(upstream, ordering_key)
                        WHERE ordering_key IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v4-audit") { db in
            // One row per proxied request; its attempts and decisions are one JSON column
            // (`trail`): always written and read with their request, never queried alone, and
            // one insert per request instead of several. `size` is the row's estimated bytes,
            // summed in `audit_usage` so the size budget is checked without a scan.
            try db.execute(
                sql: """
                    CREATE TABLE audit_requests (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        request_id TEXT NOT NULL,
                        upstream TEXT NOT NULL,
                        consumer TEXT,
                        method TEXT NOT NULL,
                        path TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        duration_ms REAL NOT NULL,
                        status INTEGER NOT NULL,
                        outcome TEXT NOT NULL,
                        problem TEXT,
                        stale_age_ms INTEGER,
                        trail TEXT NOT NULL,
                        size INTEGER NOT NULL
                    );
                    CREATE INDEX audit_requests_request ON audit_requests(request_id, seq);
                    CREATE INDEX audit_requests_upstream ON audit_requests(upstream, seq);
                    CREATE INDEX audit_requests_received ON audit_requests(received_at);
                    CREATE TABLE audit_usage (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        bytes INTEGER NOT NULL
                    );
                    INSERT INTO audit_usage (id, bytes) VALUES (1, 0);
                    """
            )
        }
        migrator.registerMigration("v5-leases-and-owners") { db in
            // A fencing token per claim; the consumer that owns each delivery, its caller keys
            // unique per consumer and upstream; an acknowledgement that came before the 2xx; and
            // the audit trail keyed by Belay's own request id, the caller's X-Request-Id kept
            // as a correlation id.
            try db.execute(
                sql: """
                    ALTER TABLE deliveries ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE deliveries ADD COLUMN consumer TEXT NOT NULL DEFAULT '';
                    ALTER TABLE deliveries ADD COLUMN ack_received_at INTEGER;
                    DROP INDEX deliveries_caller_key;
                    CREATE UNIQUE INDEX deliveries_caller_key ON deliveries(upstream, consumer, caller_key)
                        WHERE caller_key IS NOT NULL;
                    CREATE INDEX deliveries_consumer ON deliveries(consumer, id);
                    ALTER TABLE audit_requests ADD COLUMN correlation_id TEXT;
                    CREATE INDEX audit_requests_correlation ON audit_requests(correlation_id, seq)
                        WHERE correlation_id IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v6-retention") { db in
            try db.execute(sql: retentionSchema)
        }
        migrator.registerMigration("v7-confirmations") { db in
            try db.execute(sql: confirmationSchema)
        }
        migrator.registerMigration("v8-incidents") { db in
            try db.execute(sql: incidentSchema)
        }
        migrator.registerMigration("v9-lookups") { db in
            // A trail row is a send or a lookup (`ack.poll`); every row before this is a send.
            try db.execute(sql: "ALTER TABLE delivery_attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'send'")
        }
        return migrator
    }

    /// Runs `body` in a write transaction, turning database errors into ``StoreError``.
    func writing<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        do {
            return try await pool.write(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot \(what)", underlying: error)
        }
    }

    /// Runs `body` in an immediate write transaction on the audit trail's connection
    /// (``auditWriter``), turning database errors into ``StoreError``. Immediate: it takes the
    /// write lock first (waiting for the delivery writer if need be), so it never fails to
    /// upgrade a read.
    func auditWriting<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        do {
            return try await auditWriter.writeWithoutTransaction { db in
                var result: Result<T, any Error> = .failure(CancellationError())
                try db.inTransaction(.immediate) {
                    result = Result { try body(db) }
                    if case .failure = result { return .rollback }
                    return .commit
                }
                return try result.get()
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot \(what)", underlying: error)
        }
    }

    /// Runs `body` on a reader, turning database errors into ``StoreError``.
    func reading<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot \(what)", underlying: error)
        }
    }
}

extension Date {
    /// Milliseconds since 1970, as the SQLite schema stores instants.
    var storeMilliseconds: Int64 {
        let milliseconds = (timeIntervalSince1970 * 1_000).rounded()
        // Saturate: a date beyond Int64 milliseconds (~292 million years) must not trap.
        guard milliseconds.isFinite else { return milliseconds > 0 ? .max : .min }
        if milliseconds >= 9.2e18 { return .max }
        if milliseconds <= -9.2e18 { return .min }
        return Int64(milliseconds)
    }

    init(storeMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(storeMilliseconds) / 1_000)
    }
}
