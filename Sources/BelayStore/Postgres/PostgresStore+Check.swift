import Foundation
public import Logging
import PostgresNIO

/// `belay storage check` on PostgreSQL: migrations and counts. PostgreSQL checks its own
/// pages and enforces its foreign keys, so the report's integrity and foreign-key parts are
/// nil (not checked); use `amcheck` and the server's monitoring for its storage.
extension PostgresStore {
    /// Checks the database at `location` (see ``StoreCheck``) over one connection of its own:
    /// it only reads, applies no migration and takes no lock, so it runs beside the gateways.
    ///
    /// - Throws: ``StoreError/Code/open`` when it cannot connect (the reason, never the password).
    public static func check(_ location: PostgresLocation, logger: Logger) async throws(StoreError) -> StoreCheck {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try connectionConfiguration(location),
                id: 0,
                logger: logger
            )
        } catch let error as StoreError {
            throw error
        } catch {
            throw cannotConnect(to: location, error)
        }
        let schema = quoted(location.schema)
        var failures: [String] = []
        func attempt<T>(_ what: String, _ body: () async throws -> T) async -> T? {
            do {
                return try await body()
            } catch {
                failures.append("cannot \(what): \(PostgresFailure(error))")
                return nil
            }
        }
        func count(_ sql: String) async throws -> Int {
            let rows = try await connection.rows(PostgresQuery(unsafeSQL: sql), logger: logger)
            return Int(try rows.first?.value("count", as: Int64.self) ?? 0)
        }
        let applied =
            await attempt("read the applied migrations") { () -> [String] in
                let exists = try await connection.run(
                    """
                    SELECT 1 FROM information_schema.tables
                    WHERE table_schema = \(location.schema) AND table_name = 'belay_migrations'
                    """,
                    logger: logger
                )
                guard exists > 0 else { return [] }
                return try await connection.rows(
                    PostgresQuery(unsafeSQL: "SELECT name FROM \(schema).belay_migrations ORDER BY applied_at, name"),
                    logger: logger
                ).map { try $0.value("name", as: String.self) }
            } ?? []
        let deliveries = await attempt("count the deliveries") { () -> [DeliveryStatus: Int] in
            var counts: [DeliveryStatus: Int] = [:]
            let rows = try await connection.rows(
                PostgresQuery(unsafeSQL: "SELECT status, COUNT(*) AS count FROM \(schema).deliveries GROUP BY status"),
                logger: logger
            )
            for row in rows {
                let name = try row.value("status", as: String.self)
                guard let status = DeliveryStatus(rawValue: name) else {
                    throw StoreError(.corrupt, "deliveries hold an unknown status \(name.debugDescription)")
                }
                counts[status] = Int(try row.value("count", as: Int64.self))
            }
            return counts
        }
        let events = await attempt("count the webhook events") {
            try await count("SELECT COUNT(*) AS count FROM \(schema).webhook_events")
        }
        let audit = await attempt("count the audit records") {
            try await count("SELECT COUNT(*) AS count FROM \(schema).audit_requests")
        }
        try? await connection.close()
        return StoreCheck(
            store: location.description,
            integrity: nil,
            foreignKeys: nil,
            appliedMigrations: applied,
            expectedMigrations: migrations.map(\.name),
            deliveries: deliveries,
            webhookEvents: events,
            auditRecords: audit,
            failures: failures
        )
    }
}
