public import Foundation

/// Copies what one gateway stored in SQLite — its deliveries (with their attempts, statuses,
/// leases, caller and ordering keys, consumers and acknowledgements), its webhook inbox (the
/// events and their body digests) and its audit trail (with its size total) — into a
/// PostgreSQL database, so the gateway can move to PostgreSQL without losing its history.
/// `belay storage copy` runs it.
///
/// - The source must not be in use: opening the ``SQLiteStore`` takes the database's lock,
///   so a gateway still running on it makes the open fail, and nothing writes while the copy
///   reads.
/// - Rows keep their ids, and their `seq` (deliveries: the SQLite `rowid`) keeps its value:
///   the order an ordering key's deliveries go out in and the audit trail's page cursors are
///   the same afterwards. Each sequence is then moved past the copied values.
/// - A delivery `in_flight` is copied as `pending`, due at `now`, without its lease owner
///   (its fencing token is kept): the process that held the lease is gone, as SQLite's own
///   restart assumes (``SQLiteStore/releaseAbandoned(now:)``). It is sent again at once by
///   the first instance on PostgreSQL; its receiver may see it twice, as after any crash.
/// - The target must be empty, or hold only rows of this very source (an interrupted copy):
///   anything else is refused with ``StoreError/Code/refused`` before a row is written.
///   Rows are written in keyed batches (``Configuration/batchSize`` per transaction), each
///   skipping the rows already there (`ON CONFLICT DO NOTHING`), so running the copy again
///   after an interruption finishes it without writing anything twice.
///
/// ```swift
/// let source = try SQLiteStore(path: "./belay-data/belay.db")
/// let target = try await PostgresStore.open(PostgresLocation(url: url), logger: logger)
/// let report = try await StoreCopy(from: source, to: target).run { print($0) }
/// guard report.matches else { … }
/// ```
public struct StoreCopy: Sendable {
    /// A table the copy writes, by its name in both stores.
    public enum Table: String, Sendable, Hashable, CaseIterable {
        /// The deliveries, with their statuses, leases, keys and acknowledgements.
        case deliveries
        /// Every attempt of every delivery.
        case deliveryAttempts = "delivery_attempts"
        /// The webhook inbox.
        case webhookEvents = "webhook_events"
        /// The body digests that catch a replayed webhook body within its window.
        case webhookBodyDigests = "webhook_body_digests"
        /// The audit trail of proxied requests.
        case auditRequests = "audit_requests"
        /// Incidents, open and closed.
        case incidents
        /// The incidents' timelines.
        case incidentEvents = "incident_events"
    }

    /// How the copy runs.
    public struct Configuration: Sendable, Hashable {
        /// Rows per batch, each one transaction (default 1,000; at most as many as one
        /// PostgreSQL statement can bind, ~2,500 deliveries).
        public var batchSize: Int
        /// A batch ends early once its rows hold this many bytes of text and bodies (default 16 MiB).
        public var batchBytes: Int
        /// How often a table's ``Progress`` is reported while it is copied (default 2 s); it
        /// is always reported when the table is done.
        public var progressInterval: Duration

        /// A configuration; see each property for its default.
        public init(batchSize: Int = 1_000, batchBytes: Int = 16 << 20, progressInterval: Duration = .seconds(2)) {
            self.batchSize = batchSize
            self.batchBytes = batchBytes
            self.progressInterval = progressInterval
        }
    }

    /// How far the copy of one table is.
    public struct Progress: Sendable, Hashable {
        /// The table.
        public var table: Table
        /// Rows written so far.
        public var copied: Int64
        /// Rows found already there (written by an earlier, interrupted copy) so far.
        public var present: Int64
        /// The rows the source holds.
        public var total: Int64
        /// Time spent on this table so far.
        public var elapsed: Duration
        /// Whether the table is done.
        public var isFinished: Bool

        /// Rows done (written or found already there).
        public var done: Int64 { copied + present }

        /// Rows done per second so far (0 before any time has passed).
        public var rowsPerSecond: Double {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(done) / seconds : 0
        }
    }

    /// One line of the final check: what the source holds and what the target holds.
    public struct Count: Sendable, Hashable {
        /// The table's name, or `audit_usage.bytes` for the audit trail's size total.
        public var name: String
        /// In SQLite.
        public var source: Int64
        /// In PostgreSQL, after the copy.
        public var target: Int64

        /// Whether they are equal.
        public var matches: Bool { source == target }
    }

    /// What the copy did.
    public struct Report: Sendable, Hashable {
        /// Each table's rows in the source and in the target, then the audit size total.
        public var counts: [Count]
        /// Each table's rows written by this run (the rest were there already).
        public var copied: [Table: Int64]
        /// Deliveries that were in flight and were copied as pending, due at once.
        public var released: Int64

        /// Whether every count matches: the target holds everything the source does.
        public var matches: Bool { counts.allSatisfy(\.matches) }
    }

    /// Where the rows come from.
    public let source: SQLiteStore
    /// Where they go.
    public let target: PostgresStore
    /// How the copy runs.
    public let configuration: Configuration

    /// A copy from `source` to `target`; nothing happens until ``run(now:clock:progress:)``.
    public init(from source: SQLiteStore, to target: PostgresStore, configuration: Configuration = Configuration()) {
        self.source = source
        self.target = target
        self.configuration = configuration
    }

    /// Copies every table, then counts both sides.
    ///
    /// - Parameters:
    ///   - now: when a delivery that was in flight becomes due again.
    ///   - clock: times the ``Progress`` (its rate, and how often it is reported).
    ///   - progress: called with each table's progress, every ``Configuration/progressInterval``
    ///     and when the table is done.
    /// - Returns: the counts of both sides; check ``Report/matches``.
    /// - Throws: ``StoreError/Code/refused`` (nothing written) when the target holds rows
    ///   that are not this source's; any other ``StoreError`` when a read or write fails (run
    ///   the copy again: what was written stays, and is skipped).
    public func run<C: Clock>(
        now: Date = Date(),
        clock: C = ContinuousClock(),
        progress: (Progress) -> Void = { _ in }
    ) async throws(StoreError) -> Report where C.Duration == Duration {
        let before = try await source.exportCounts()
        for table in CopyTable.all {
            try await checkTarget(table)
        }
        var copied: [Table: Int64] = [:]
        for table in CopyTable.all {
            copied[table.table] = try await copy(
                table,
                total: before.rows[table.table] ?? 0,
                now: now.storeMilliseconds,
                clock: clock,
                progress: progress
            )
        }
        try await target.importAuditBytes(before.auditBytes)
        let after = try await target.importCounts()
        var counts = Table.allCases.map { table in
            Count(name: table.rawValue, source: before.rows[table] ?? 0, target: after.rows[table] ?? 0)
        }
        counts.append(Count(name: "audit_usage.bytes", source: before.auditBytes, target: after.auditBytes))
        return Report(counts: counts, copied: copied, released: before.inFlight)
    }

    /// Refuses a target that holds a row of `table` this source does not: the copy would mix
    /// two instances' histories (or one gateway's history with a copy of it).
    private func checkTarget(_ table: CopyTable) async throws(StoreError) {
        let page = 400
        var cursor: [CopyValue]?
        while true {
            let identities = try await target.importIdentities(table, after: cursor, limit: page)
            guard let last = identities.last else { return }
            let keys = identities.map { Array($0.prefix(table.lookupCount)) }
            let found = try await source.exportIdentities(table, matching: keys)
            if let stranger = identities.first(where: { !found.contains($0) }) {
                let key = stranger.prefix(table.lookupCount).map(\.copyDescription).joined(separator: ", ")
                throw StoreError(
                    .refused,
                    "\(target.location) (schema \(target.location.schema)) is not empty: its \(table.name) row "
                        + "\(key) is not one of the SQLite database's, or changed there since it was copied; copy "
                        + "into an empty database or schema (this run wrote nothing)"
                )
            }
            cursor = Array(last.prefix(table.lookupCount))
            if identities.count < page { return }
        }
    }

    /// One batch of `table` from the source, after `cursor`.
    private func read(
        _ table: CopyTable,
        after cursor: [CopyValue]?,
        limit: Int,
        now: Int64
    ) async -> Result<CopyBatch, StoreError> {
        do throws(StoreError) {
            return .success(
                try await source.exportBatch(
                    table,
                    after: cursor,
                    limit: limit,
                    maxBytes: configuration.batchBytes,
                    now: now
                )
            )
        } catch {
            return .failure(error)
        }
    }

    /// Copies one table in keyed batches; returns how many rows were written.
    private func copy<C: Clock>(
        _ table: CopyTable,
        total: Int64,
        now: Int64,
        clock: C,
        progress: (Progress) -> Void
    ) async throws(StoreError) -> Int64 where C.Duration == Duration {
        let start = clock.now
        var reported = start
        var state = Progress(table: table.table, copied: 0, present: 0, total: total, elapsed: .zero, isFinished: false)
        // PostgreSQL binds at most 65,535 values in one statement.
        let limit = max(1, min(configuration.batchSize, 65_535 / table.columns.count))
        // The next batch is read from SQLite while this one is written to PostgreSQL.
        try await target.importing(table) { session in
            var batch = await read(table, after: nil, limit: limit, now: now)
            while true {
                let rows = try batch.get()
                guard let cursor = rows.cursor else { break }
                async let following = read(table, after: cursor, limit: limit, now: now)
                let inserted = Int64(try await session.write(rows.rows))
                state.copied += inserted
                state.present += Int64(rows.rows.count) - inserted
                let instant = clock.now
                if reported.duration(to: instant) >= configuration.progressInterval {
                    reported = instant
                    state.elapsed = start.duration(to: instant)
                    progress(state)
                }
                batch = await following
            }
        }
        try await target.importFinish(table)
        state.elapsed = start.duration(to: clock.now)
        state.isFinished = true
        progress(state)
        return state.copied
    }
}

extension CopyValue {
    /// The value as an error names it (a key: an id, a number).
    fileprivate var copyDescription: String {
        switch self {
        case .null: "null"
        case .integer(let number): String(number)
        case .real(let number): String(number)
        case .text(let text): text
        case .blob(let data): "\(data.count) bytes"
        case .boolean(let flag): String(flag)
        }
    }
}
