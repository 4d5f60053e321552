import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import BelayStore

/// What the two-backend tests get: every store protocol, whichever backend is under it.
typealias AnyStore = any DeliveryStore & WebhookStore & AuditStore

/// The backends the store suite runs against. PostgreSQL cases run when postgres-nio's
/// variables are set (`eval "$(scripts/pg-cluster.sh start)"`) and are cancelled, saying
/// why, when they are not.
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { self == .sqlite ? "SQLite" : "PostgreSQL" }

    /// SQLite always; PostgreSQL when a test database is set. When it is not,
    /// ``StoreBackendTests`` reports the PostgreSQL cases skipped, with the reason.
    static var available: [StoreBackend] { TestPostgres.isConfigured ? [.sqlite, .postgres] : [.sqlite] }
}

/// Says whether the two-backend suite ran on PostgreSQL: skipped, with the reason, when no
/// test database is set (a silent pass would look like coverage).
@Suite struct StoreBackendTests {
    @Test(
        "the store suite runs on PostgreSQL too",
        .enabled(if: TestPostgres.isConfigured, Comment(rawValue: TestPostgres.notConfigured))
    )
    func theStoreSuiteRunsOnPostgreSQLToo() async throws {
        #expect(StoreBackend.available == [.sqlite, .postgres])
        try await withStore(.postgres) { store in
            let postgres = try #require(store as? PostgresStore)
            #expect(try await postgres.appliedMigrations() == PostgresStore.migrations.map(\.name))
            // The tables are in the test's own schema, the first of its search_path.
            let schema = try await postgres.reading("find the tables") { connection in
                try await connection.rows(
                    """
                    SELECT table_schema FROM information_schema.tables
                    WHERE table_name = 'belay_migrations' AND table_schema = current_schema()
                    """,
                    logger: postgres.logger
                ).map { try $0.value("table_schema", as: String.self) }
            }
            #expect(schema == [postgres.location.schema])
        }
    }
}

/// A fresh store of `backend` for one test, removed afterwards: a new SQLite file, or a new
/// PostgreSQL schema (random name, dropped afterwards).
func withStore<T>(_ backend: StoreBackend, _ body: (AnyStore) async throws -> T) async throws -> T {
    switch backend {
    case .sqlite:
        return try await withStore { (store: SQLiteStore) in try await body(store) }
    case .postgres:
        return try await TestPostgres.withSchema { schema in
            let store = try await TestPostgres.open(schema: schema)
            do {
                let result = try await body(store)
                await store.close()
                return result
            } catch {
                await store.close()
                throw error
            }
        }
    }
}

/// A fresh SQLite database per test, removed afterwards (the SQLite-only tests).
func withStore<T>(_ body: (SQLiteStore) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-store-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
    return try await body(store)
}

/// The test database named by postgres-nio's variables.
enum TestPostgres {
    private static let environment = ProcessInfo.processInfo.environment

    /// Why the PostgreSQL cases do not run, when they do not.
    static let notConfigured =
        "PostgreSQL not configured: set POSTGRES_HOSTNAME, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and "
        + "POSTGRES_DB (eval \"$(scripts/pg-cluster.sh start)\")"

    /// Whether the variables name a database.
    static var isConfigured: Bool { environment["POSTGRES_HOSTNAME"].map { !$0.isEmpty } ?? false }

    static var host: String { environment["POSTGRES_HOSTNAME"] ?? "localhost" }
    static var port: Int { environment["POSTGRES_PORT"].flatMap(Int.init) ?? 5432 }
    static var user: String { environment["POSTGRES_USER"] ?? "postgres" }
    static var password: String? { environment["POSTGRES_PASSWORD"] }
    static var database: String { environment["POSTGRES_DB"] ?? user }

    /// Why the TLS cases do not run, when they do not.
    static let tlsNotConfigured =
        "PostgreSQL over TLS not configured: set the POSTGRES_* variables and POSTGRES_SSLROOTCERT (the PEM file "
        + "of the CA that signed the server's certificate) (eval \"$(scripts/pg-cluster.sh start)\")"

    /// The PEM file of the CA that signed the test server's certificate (for 127.0.0.1 and
    /// localhost), when the server has TLS.
    static var rootCertificate: String? { environment["POSTGRES_SSLROOTCERT"].flatMap { $0.isEmpty ? nil : $0 } }

    /// Whether the test database is set and has TLS.
    static var isTLSConfigured: Bool { isConfigured && rootCertificate != nil }

    /// A schema name no other test uses.
    static func freshSchema() -> String {
        "belay_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    /// The `storage.url` of the test database with its tables in `schema`, unencrypted unless
    /// `tls` gives other parameters (`sslmode=verify-full&sslrootcert=…`, encoded), at `host`
    /// (by default the variables').
    static func url(
        schema: String,
        poolSize: Int = 4,
        settings: [String: String] = [:],
        host: String = TestPostgres.host,
        tls: String = "sslmode=disable"
    ) -> String {
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        let credentials = encoded(user) + (password.map { ":" + encoded($0) } ?? "")
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(credentials)@\(hostText):\(port)/\(encoded(database))?\(tls)"
            + "&pool_size=\(poolSize)&options=-c%20search_path%3D\(schema)"
            + settings.sorted { $0.key < $1.key }.map { "%20-c%20\($0.key)%3D\(encoded($0.value))" }.joined()
    }

    /// Opens a store on `schema` of the test database (creating and migrating it).
    static func open<C: Clock>(
        schema: String,
        poolSize: Int = 4,
        settings: [String: String] = [:],
        clock: C = ContinuousClock()
    ) async throws -> PostgresStore where C.Duration == Duration {
        try await PostgresStore.open(
            PostgresLocation(url: url(schema: schema, poolSize: poolSize, settings: settings)),
            logger: Logger(label: "belay.test.store"),
            clock: clock
        )
    }

    /// Runs `body` with a fresh schema name, then drops that schema (and everything in it)
    /// over a connection of its own. Cancels the test, saying why, when no database is set.
    static func withSchema<T>(_ body: (String) async throws -> T) async throws -> T {
        guard isConfigured else { try Test.cancel(Comment(rawValue: notConfigured)) }
        let schema = freshSchema()
        do {
            let result = try await body(schema)
            try await drop(schema)
            return result
        } catch {
            try? await drop(schema)
            throw error
        }
    }

    /// Runs `sql` on a connection of its own (outside any store).
    static func execute(_ sql: String) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: host,
                port: port,
                username: user,
                password: password,
                database: database,
                tls: .disable
            ),
            id: 1,
            logger: Logger(label: "belay.test.admin")
        )
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    static func drop(_ schema: String) async throws {
        try await execute("DROP SCHEMA IF EXISTS \(PostgresStore.quoted(schema)) CASCADE")
    }
}

// MARK: writing rows directly (what the worker's claim and finish would leave)

/// Sets a delivery's status and last update directly (retention only reads what the
/// worker's claim and finish leave; those are tested elsewhere).
func setStatus(
    _ store: AnyStore,
    _ id: String,
    _ status: DeliveryStatus,
    updatedAt: Date,
    dueAt: Date? = nil
) async throws {
    switch store {
    case let sqlite as SQLiteStore:
        try await sqlite.pool.write { db in
            try db.execute(
                sql: "UPDATE deliveries SET status = ?, updated_at = ?, due_at = ? WHERE id = ?",
                arguments: [status.rawValue, updatedAt.storeMilliseconds, dueAt?.storeMilliseconds, id]
            )
        }
    case let postgres as PostgresStore:
        _ = try await postgres.transaction("set a status") { connection in
            try await connection.run(
                """
                UPDATE deliveries SET status = \(status.rawValue), updated_at = \(updatedAt.storeMilliseconds),
                    due_at = \(dueAt?.storeMilliseconds) WHERE id = \(id)
                """,
                logger: postgres.logger
            )
        }
    default:
        throw Failure("no direct writes for \(type(of: store))")
    }
}

/// Adds attempts to deliveries directly: (delivery id, number, decision).
func addAttempts(_ store: AnyStore, _ attempts: [(String, Int, String)]) async throws {
    for (id, number, decision) in attempts {
        switch store {
        case let sqlite as SQLiteStore:
            try await sqlite.pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, decision)
                        VALUES (?, ?, 0, 5, ?)
                        """,
                    arguments: [id, number, decision]
                )
            }
        case let postgres as PostgresStore:
            _ = try await postgres.transaction("add an attempt") { connection in
                try await connection.run(
                    """
                    INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, decision)
                    VALUES (\(id), \(number), 0, 5, \(decision))
                    """,
                    logger: postgres.logger
                )
            }
        default:
            throw Failure("no direct writes for \(type(of: store))")
        }
    }
}

/// The delivery ids of every stored attempt, sorted.
func attemptDeliveryIDs(_ store: AnyStore) async throws -> [String] {
    switch store {
    case let sqlite as SQLiteStore:
        return try await sqlite.pool.read { db in
            try String.fetchAll(db, sql: "SELECT delivery_id FROM delivery_attempts ORDER BY delivery_id")
        }
    case let postgres as PostgresStore:
        return try await postgres.reading("read attempts") { connection in
            try await connection.rows(
                "SELECT delivery_id FROM delivery_attempts ORDER BY delivery_id",
                logger: postgres.logger
            )
            .map { try $0.value("delivery_id", as: String.self) }
        }
    default:
        throw Failure("no direct reads for \(type(of: store))")
    }
}
