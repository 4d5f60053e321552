import Foundation
import GRDB

/// `belay storage check` on SQLite: integrity, foreign keys, migrations and counts.
extension SQLiteStore {
    /// Checks this store's database (see ``StoreCheck``), on one of its readers.
    public func check() async throws(StoreError) -> StoreCheck {
        let path = self.path
        return try await reading("check the database") { db in Self.inspect(db, path: path) }
    }

    /// Checks the database at `path` without opening it as a store: read only, without the
    /// lock a running gateway holds, without migrating it. It can run beside `belay serve`,
    /// or on a backup.
    ///
    /// - Throws: ``StoreError/Code/open`` when there is no file at `path` or SQLite cannot
    ///   open it at all. A file that opens but is not sound gives a report with problems.
    public static func check(databaseAt path: String) throws(StoreError) -> StoreCheck {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.open, "there is no SQLite database at \(path)")
        }
        do {
            let database = try openReadOnly(path)
            return try database.read { db in inspect(db, path: path) }
        } catch {
            // SQLite cannot even start reading: the file is not a database, or its header is damaged.
            let reason = (error as? StoreError)?.underlying ?? error
            return StoreCheck(
                store: "sqlite:\(path)",
                integrity: ["cannot read the file: \(plain(reason))"],
                foreignKeys: nil,
                appliedMigrations: [],
                expectedMigrations: migrator.migrations,
                deliveries: nil,
                webhookEvents: nil,
                auditRecords: nil
            )
        }
    }

    /// The database at `path`, opened read only: no lock file, no migration, no write. It
    /// must exist (a read-only open never creates it).
    static func openReadOnly(_ path: String) throws(StoreError) -> DatabaseQueue {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.open, "there is no SQLite database at \(path)")
        }
        var configuration = Configuration()
        configuration.label = "belay-inspect"
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            return try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError(.open, "cannot open the SQLite database at \(path)", underlying: error)
        }
    }

    /// Everything ``StoreCheck`` reports, read in one transaction of `db`. A part that cannot
    /// be read becomes a failure of the report, not an error: a damaged file still gets a
    /// report saying what is wrong.
    static func inspect(_ db: Database, path: String) -> StoreCheck {
        var failures: [String] = []
        func attempt<T>(_ what: String, _ body: () throws -> T) -> T? {
            do {
                return try body()
            } catch {
                failures.append("cannot \(what): \(plain(error))")
                return nil
            }
        }
        let integrity = attempt("run the integrity check") {
            try String.fetchAll(db, sql: "PRAGMA integrity_check(100)").filter { $0 != "ok" }
        }
        let foreignKeys = attempt("run the foreign key check") {
            try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").map { row -> String in
                let table: String = row[0] ?? "?"
                let rowID: Int64? = row[1]
                let parent: String = row[2] ?? "?"
                return "\(table) row \(rowID.map(String.init) ?? "?") refers to a row of \(parent) that does not exist"
            }
        }
        let applied =
            attempt("read the applied migrations") { () -> [String] in
                guard try db.tableExists("grdb_migrations") else { return [] }
                return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
            } ?? []
        let deliveries = attempt("count the deliveries") { () -> [DeliveryStatus: Int] in
            var counts: [DeliveryStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) FROM deliveries GROUP BY status") {
                let name: String = row[0] ?? ""
                guard let status = DeliveryStatus(rawValue: name) else {
                    throw StoreError(.corrupt, "deliveries hold an unknown status \(name.debugDescription)")
                }
                counts[status] = row[1]
            }
            return counts
        }
        let events = attempt("count the webhook events") {
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_events") ?? 0
        }
        let audit = attempt("count the audit records") {
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_requests") ?? 0
        }
        return StoreCheck(
            store: "sqlite:\(path)",
            integrity: integrity,
            foreignKeys: foreignKeys,
            appliedMigrations: applied,
            expectedMigrations: migrator.migrations,
            deliveries: deliveries,
            webhookEvents: events,
            auditRecords: audit,
            failures: failures
        )
    }

    /// An error in a few words: SQLite's message without GRDB's statement dump.
    static func plain(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "SQLite error \(error.resultCode.rawValue)"
        }
        if let error = error as? StoreError { return error.message }
        return "\(error)"
    }
}
