import Foundation
import GRDB

/// What `belay storage copy` reads (``StoreCopy``): rows as they are stored, in keyed batches.
extension SQLiteStore {
    /// Up to `limit` rows of `table` after `cursor` (nil: from the start), in cursor order,
    /// fewer once they hold `maxBytes` (at least one). `now` is what `{now}` in a column's
    /// source expression stands for (milliseconds since 1970).
    func exportBatch(
        _ table: CopyTable,
        after cursor: [CopyValue]?,
        limit: Int,
        maxBytes: Int,
        now: Int64
    ) async throws(StoreError) -> CopyBatch {
        let cursorList = table.cursor.map(\.source).joined(separator: ", ")
        let columns = table.columns.map { $0.source.replacingOccurrences(of: "{now}", with: String(now)) }
            .joined(separator: ", ")
        var sql = "SELECT \(cursorList), \(columns) FROM \(table.name)"
        var arguments = StatementArguments()
        if let cursor {
            sql += " WHERE (\(cursorList)) > (\(databaseQuestionMarks(count: cursor.count)))"
            arguments = StatementArguments(cursor.map(\.databaseValue))
        }
        sql += " ORDER BY \(cursorList) LIMIT \(max(limit, 1))"
        return try await reading("read \(table.name) to copy") { [sql, arguments] db in
            var rows: [[CopyValue]] = []
            var last: [CopyValue]?
            var bytes = 0
            let fetched = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try fetched.next() {
                var key: [CopyValue] = []
                for (index, column) in table.cursor.enumerated() {
                    key.append(try Self.copyValue(row[index], column, of: table))
                }
                var values: [CopyValue] = []
                values.reserveCapacity(table.columns.count)
                for (index, column) in table.columns.enumerated() {
                    let value = try Self.copyValue(row[table.cursor.count + index], column, of: table)
                    bytes += value.size
                    values.append(value)
                }
                rows.append(values)
                last = key
                if bytes >= maxBytes { break }
            }
            return CopyBatch(rows: rows, cursor: last)
        }
    }

    /// The identity values (``CopyTable/identity``) of the rows of `table` whose lookup
    /// values are among `keys`.
    func exportIdentities(_ table: CopyTable, matching keys: [[CopyValue]]) async throws(StoreError) -> Set<[CopyValue]>
    {
        guard !keys.isEmpty else { return [] }
        let identity = table.identity.map(\.source).joined(separator: ", ")
        let lookup = table.identity.prefix(table.lookupCount).map(\.source).joined(separator: ", ")
        let tuple = "(" + databaseQuestionMarks(count: table.lookupCount) + ")"
        let list =
            table.lookupCount == 1
            ? databaseQuestionMarks(count: keys.count)
            : "VALUES " + Array(repeating: tuple, count: keys.count).joined(separator: ", ")
        let sql = "SELECT \(identity) FROM \(table.name) WHERE (\(lookup)) IN (\(list))"
        let arguments = StatementArguments(keys.flatMap { $0.map(\.databaseValue) })
        return try await reading("look up \(table.name) rows") { db in
            var found: Set<[CopyValue]> = []
            let fetched = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try fetched.next() {
                var values: [CopyValue] = []
                for (index, column) in table.identity.enumerated() {
                    values.append(try Self.copyValue(row[index], column, of: table))
                }
                found.insert(values)
            }
            return found
        }
    }

    /// How many rows each table holds, how many deliveries are in flight, and the audit
    /// trail's size total.
    func exportCounts() async throws(StoreError) -> (rows: [StoreCopy.Table: Int64], inFlight: Int64, auditBytes: Int64)
    {
        try await reading("count the rows to copy") { db in
            var rows: [StoreCopy.Table: Int64] = [:]
            for table in StoreCopy.Table.allCases {
                rows[table] = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table.rawValue)") ?? 0
            }
            let inFlight = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries WHERE status = 'in_flight'")
            let bytes = try Int64.fetchOne(db, sql: "SELECT bytes FROM audit_usage WHERE id = 1")
            return (rows, inFlight ?? 0, bytes ?? 0)
        }
    }

    /// `value` as `column` takes it; a stored value of another type is ``StoreError/Code/corrupt``.
    private static func copyValue(_ value: DatabaseValue, _ column: CopyColumn, of table: CopyTable) throws -> CopyValue
    {
        switch (value.storage, column.kind) {
        case (.null, _): return .null
        case (.int64(let number), .integer): return .integer(number)
        case (.int64(let number), .boolean): return .boolean(number != 0)
        case (.int64(let number), .real): return .real(Double(number))
        case (.double(let number), .real): return .real(number)
        case (.string(let text), .text): return .text(text)
        case (.blob(let data), .blob): return .blob(data)
        case (.string(let text), .blob): return .blob(Data(text.utf8))
        default:
            // Its type only: the value itself may be a payload.
            let stored =
                switch value.storage {
                case .null: "null"
                case .int64: "an integer"
                case .double: "a real"
                case .string: "text"
                case .blob: "a blob"
                }
            throw StoreError(.corrupt, "\(table.name).\(column.name) holds \(stored) where \(column.kind) belongs")
        }
    }
}

extension CopyValue {
    /// The value as SQLite takes it (a cursor's or a lookup's argument).
    fileprivate var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let number): number.databaseValue
        case .real(let number): number.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let data): data.databaseValue
        case .boolean(let flag): flag.databaseValue
        }
    }
}
