import Foundation
import Logging
import PostgresNIO

/// What `belay storage copy` writes (``StoreCopy``): rows as they were stored, ids and `seq`
/// values kept, each batch one transaction that skips the rows already there.
extension PostgresStore {
    /// Runs `body` with one connection that writes batches of `table` (``ImportSession``),
    /// turning database errors into ``StoreError``.
    func importing<T: Sendable>(
        _ table: CopyTable,
        _ body: (ImportSession) async throws -> T
    ) async throws(StoreError) -> T {
        let stage = "belay_copy_\(table.name)"
        return try await reading("write \(table.name) rows") { connection in
            try await connection.run(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TEMPORARY TABLE IF NOT EXISTS \(stage) (LIKE \(table.name) INCLUDING DEFAULTS)
                        ON COMMIT DELETE ROWS
                        """
                ),
                logger: logger
            )
            let result = try await body(
                ImportSession(connection: connection, table: table, stage: stage, logger: logger)
            )
            try await connection.run(PostgresQuery(unsafeSQL: "DROP TABLE \(stage)"), logger: logger)
            return result
        }
    }

    /// Up to `limit` rows' identity values (``CopyTable/identity``) of `table` after `cursor`
    /// (the lookup values of the last row of the previous page; nil: from the start).
    func importIdentities(
        _ table: CopyTable,
        after cursor: [CopyValue]?,
        limit: Int
    ) async throws(StoreError) -> [[CopyValue]] {
        let identity = table.identity.map(\.name).joined(separator: ", ")
        let lookup = table.identity.prefix(table.lookupCount).map(\.name).joined(separator: ", ")
        var bindings = PostgresBindings()
        var sql = "SELECT \(identity) FROM \(table.name)"
        if let cursor {
            do {
                for value in cursor { try Self.bind(value, to: &bindings) }
            } catch {
                throw StoreError(.io, "cannot encode a \(table.name) key", underlying: PostgresFailure(error))
            }
            sql += " WHERE (\(lookup)) > (\((1...cursor.count).map { "$\($0)" }.joined(separator: ", ")))"
        }
        sql += " ORDER BY \(lookup) LIMIT \(max(limit, 1))"
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        return try await reading("read the \(table.name) rows already there") { connection in
            try await connection.rows(query, logger: logger).map { row in
                try table.identity.map { column throws -> CopyValue in
                    switch column.kind {
                    case .integer: try row.value(column.name, as: Int64?.self).map(CopyValue.integer) ?? .null
                    default: try row.value(column.name, as: String?.self).map(CopyValue.text) ?? .null
                    }
                }
            }
        }
    }

    /// How many rows each copied table holds, and the audit trail's size total.
    func importCounts() async throws(StoreError) -> (rows: [StoreCopy.Table: Int64], auditBytes: Int64) {
        try await reading("count the copied rows") { connection in
            var rows: [StoreCopy.Table: Int64] = [:]
            for table in StoreCopy.Table.allCases {
                rows[table] =
                    try await connection.rows(
                        PostgresQuery(unsafeSQL: "SELECT COUNT(*) AS count FROM \(table.rawValue)"),
                        logger: logger
                    ).first?.value("count", as: Int64.self) ?? 0
            }
            let bytes =
                try await connection.rows("SELECT bytes FROM audit_usage WHERE id = 1", logger: logger)
                .first?.value("bytes", as: Int64.self) ?? 0
            return (rows, bytes)
        }
    }

    /// Moves `table`'s `seq` sequence past its largest value: the rows written after the copy
    /// come after the copied ones (the order of an ordering key, the audit trail's pages).
    func importFinish(_ table: CopyTable) async throws(StoreError) {
        guard table.setsIdentity else { return }
        _ = try await reading("move the \(table.name) sequence past the copied rows") { connection in
            try await connection.run(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(table.name)', 'seq'), COALESCE(MAX(seq), 0) + 1, false)
                        FROM \(table.name)
                        """
                ),
                logger: logger
            )
        }
    }

    /// Sets the audit trail's size total (the source's, copied as is).
    func importAuditBytes(_ bytes: Int64) async throws(StoreError) {
        _ = try await reading("set the audit trail's size total") { connection in
            try await connection.run(
                """
                INSERT INTO audit_usage (id, bytes) VALUES (1, \(bytes))
                ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes
                """,
                logger: logger
            )
        }
    }

    private static func bind(_ value: CopyValue, to bindings: inout PostgresBindings) throws {
        switch value {
        case .null: bindings.appendNull()
        case .integer(let number): bindings.append(number)
        case .real(let number): bindings.append(number)
        case .text(let text): bindings.append(text)
        case .blob(let data): try bindings.append(data)
        case .boolean(let flag): bindings.append(flag)
        }
    }
}

/// One connection writing the batches of one table: each batch goes with `COPY` into a
/// temporary table (`COPY` is several times cheaper for the server to read than a statement
/// binding as many values), then into the table with `INSERT … SELECT … ON CONFLICT DO
/// NOTHING`, in one transaction.
struct ImportSession {
    let connection: PostgresConnection
    let table: CopyTable
    let stage: String
    let logger: Logger

    /// Writes `rows` in one transaction, skipping any whose key is taken already (an
    /// interrupted copy wrote it). Returns how many were inserted.
    func write(_ rows: [[CopyValue]]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let columns = table.columns.map(\.name).joined(separator: ", ")
        try await connection.run("BEGIN", logger: logger)
        do {
            try await connection.copyFrom(table: stage, columns: table.columns.map(\.name), logger: logger) { writer in
                var buffer = ByteBuffer()
                buffer.reserveCapacity(1 << 20)
                for row in rows {
                    for (index, value) in row.enumerated() {
                        if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
                        value.writeCopyText(to: &buffer)
                    }
                    buffer.writeInteger(UInt8(ascii: "\n"))
                    if buffer.readableBytes >= 1 << 20 {
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
            }
            let inserted =
                try await connection.rows(
                    PostgresQuery(
                        unsafeSQL: """
                            WITH inserted AS (
                                INSERT INTO \(table.name) (\(columns))
                                \(table.setsIdentity ? "OVERRIDING SYSTEM VALUE " : "")SELECT \(columns) FROM \(stage)
                                ON CONFLICT DO NOTHING RETURNING 1
                            )
                            SELECT COUNT(*) AS count FROM inserted
                            """
                    ),
                    logger: logger
                ).first?.value("count", as: Int.self) ?? 0
            try await connection.run("COMMIT", logger: logger)
            return inserted
        } catch {
            _ = try? await connection.run("ROLLBACK", logger: logger)
            throw error
        }
    }
}

extension CopyValue {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The value in `COPY`'s text format: `\N` for null, backslash escapes in text, `\\x…`
    /// hex for a blob, `t`/`f` for a boolean.
    fileprivate func writeCopyText(to buffer: inout ByteBuffer) {
        switch self {
        case .null:
            buffer.writeString("\\N")
        case .integer(let number):
            buffer.writeString(String(number))
        case .real(let number):
            buffer.writeString(
                number.isFinite ? "\(number)" : number.isNaN ? "NaN" : number > 0 ? "Infinity" : "-Infinity"
            )
        case .boolean(let flag):
            buffer.writeInteger(UInt8(ascii: flag ? "t" : "f"))
        case .text(let text):
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeString("\\t")
                case UInt8(ascii: "\n"): buffer.writeString("\\n")
                case UInt8(ascii: "\r"): buffer.writeString("\\r")
                default: buffer.writeInteger(byte)
                }
            }
        case .blob(let data):
            // bytea's hex form `\x…`, its backslash escaped for COPY.
            buffer.writeString("\\\\x")
            buffer.reserveCapacity(minimumWritableBytes: data.count * 2)
            for byte in data {
                buffer.writeInteger(Self.hexDigits[Int(byte >> 4)])
                buffer.writeInteger(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
    }
}
